import { useState } from 'react';
import { api, message, type RunCheckpoints } from '../api';
import { Empty, ErrorBox, Show, useLoad } from '../components/load';

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

/** The compute device, where the data lives, the Whisper models installed, the model configs. */
export function Models() {
  const [info] = useLoad(() => api.systemInfo(), []);
  return (
    <section>
      <header className="bar">
        <h1>Models</h1>
      </header>
      <Show what="system information" result={info}>
        {(s) => (
          <>
            <dl className="facts">
              <dt>compute device</dt>
              <dd data-testid="device">{s.device}</dd>
              <dt>data directory</dt>
              <dd>{s.data_dir}</dd>
              <dt>model configs</dt>
              <dd>{s.presets.join(', ')}</dd>
            </dl>
            <h2>Whisper models</h2>
            {s.whisper_models.length === 0 ? (
              <Empty>
                None installed. <code>tessera models install tiny.en</code> fetches one.
              </Empty>
            ) : (
              <table className="table" aria-label="whisper models">
                <tbody>
                  {s.whisper_models.map((m) => (
                    <tr key={m.path}>
                      <td>{m.path}</td>
                      <td className="num">{mb(m.size_bytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </>
        )}
      </Show>
      <Checkpoints />
    </section>
  );
}

const shape = (m: RunCheckpoints['model']) =>
  m ? `D=${m.hidden} L=${m.layers} H=${m.heads} · ${m.image_size} px / ${m.patch_size} px patches` : '—';

/** Runs with their checkpoints on disk; delete asks once more before it goes. */
function Checkpoints() {
  const [runs, reload] = useLoad(() => api.checkpoints(), []);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const remove = (run: string) =>
    api.deleteRun(run).then(
      (d) => {
        setDone(`deleted ${d.run}: ${d.checkpoints} checkpoints, ${mb(d.bytes)}`);
        setConfirm(null);
        setError(null);
        reload();
      },
      (e) => setError(message(e)),
    );
  return (
    <>
      <h2>Checkpoints</h2>
      {error && <ErrorBox error={error} />}
      {done && <p className="ok">{done}</p>}
      <Show what="checkpoints" result={runs}>
        {(list) =>
          list.length === 0 ? (
            <Empty>No runs yet.</Empty>
          ) : (
            <table className="table" aria-label="checkpoints">
              <thead>
                <tr>
                  <th>run</th>
                  <th>model</th>
                  <th>status</th>
                  <th className="num">checkpoints</th>
                  <th className="num">size</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.run}>
                    <td>{r.run}</td>
                    <td>{shape(r.model)}</td>
                    <td>{r.status}</td>
                    <td className="num">{r.checkpoints.map((c) => c.step).join(', ') || '—'}</td>
                    <td className="num">{mb(r.checkpoints.reduce((a, c) => a + c.bytes, 0))}</td>
                    <td>
                      {confirm === r.run ? (
                        <button className="danger" onClick={() => remove(r.run)}>
                          Delete {r.run} and its files
                        </button>
                      ) : (
                        <button onClick={() => setConfirm(r.run)}>Delete…</button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
    </>
  );
}
