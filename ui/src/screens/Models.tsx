import { useState } from 'react';
import { api, message, type EngineEvent, type SystemInfo, type WhisperInfo } from '../api';
import { CancelJob, useFollowJob, type Followed } from '../components/jobs';
import { Empty, ErrorBox, Show, useLoad } from '../components/load';
import { fileName, modelShape } from '../format';

const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;

/** The compute device, where the data lives, the Whisper models installed, the model configs. */
export function Models() {
  const [info, reload] = useLoad(() => api.systemInfo(), [], true);
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
            <Whisper info={s} changed={reload} />
          </>
        )}
      </Show>
      <Checkpoints />
    </section>
  );
}

/** A model name from its file: `ggml-small.en.bin` → `small.en`. */
const modelName = (path: string) => fileName(path).replace(/^ggml-/, '').replace(/\.bin$/, '');

type Install = Followed & { name: string; done: number; total: number };
const downloaded = (j: Install, e: EngineEvent) =>
  e.event === 'download' ? { ...j, done: e.done as number, total: e.total as number } : j;

/** Installed Whisper models (verify loads one), and installing more: an official model
 * downloaded and checked against its published checksum, or a model file from disk. */
function Whisper({ info, changed }: { info: SystemInfo; changed: () => void }) {
  const [checks, setChecks] = useState<Record<string, WhisperInfo | string>>({});
  const missing = info.whisper_catalog.filter((m) => !m.installed);
  const [pick, setPick] = useState(missing.find((m) => m.name === 'tiny.en')?.name ?? missing[0]?.name ?? '');
  const [job, setJob] = useState<Install | null>(null);
  const [error, setError] = useState<string | null>(null);
  useFollowJob(setJob, downloaded, changed);
  const verify = (file: string) => {
    setChecks((c) => ({ ...c, [file]: 'loading the model…' }));
    api.verifyWhisper(file).then(
      (v) => setChecks((c) => ({ ...c, [file]: v })),
      (e) => setChecks((c) => ({ ...c, [file]: `failed: ${message(e)}` })),
    );
  };
  const install = (name: string, from: string | null) => {
    setError(null);
    api.startWhisperInstall({ name, from }).then(
      (id) => setJob({ id, name, done: 0, total: 0 }),
      (e) => setError(message(e)),
    );
  };
  const fromFile = () =>
    api.pickPaths('files').then(([file]) => file && install(modelName(file), file), (e) => setError(message(e)));
  const running = job != null && !job.ended;
  const check = (file: string) => {
    const c = checks[file];
    if (c == null) return null;
    if (typeof c === 'string') return c;
    return `ok: ${c.size_name}${c.multilingual ? ', multilingual' : ', English-only'}${
      c.official ? `, the official ${c.official}` : ', not an official checksum'
    }`;
  };
  return (
    <>
      <h2>Whisper models</h2>
      {info.whisper_models.length === 0 ? (
        <Empty>None installed: videos cannot be transcribed until one is. Install one below.</Empty>
      ) : (
        <table className="table" aria-label="whisper models">
          <tbody>
            {info.whisper_models.map((m) => (
              <tr key={m.path}>
                <td>{modelName(m.path)}</td>
                <td className="muted">{m.path}</td>
                <td className="num">{mb(m.size_bytes)}</td>
                <td>
                  <button onClick={() => verify(m.file)} aria-label={`verify ${modelName(m.path)}`}>
                    Verify
                  </button>
                </td>
                <td aria-label={`check of ${modelName(m.path)}`}>{check(m.file)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="row" aria-label="install whisper">
        <select aria-label="official model" value={pick} onChange={(e) => setPick(e.target.value)}>
          {info.whisper_catalog.map((m) => (
            <option key={m.name} value={m.name}>
              {m.name} ({m.size_mib} MiB){m.installed ? ' · installed' : ''}
            </option>
          ))}
        </select>
        <button disabled={running || !pick} onClick={() => install(pick, null)}>
          Download
        </button>
        <button disabled={running} onClick={fromFile}>
          Install a model file…
        </button>
        <CancelJob job={job} onError={setError} />
      </div>
      {error && <ErrorBox error={error} />}
      {job && (
        <div className="job" aria-label="whisper install">
          {!job.ended ? (
            <p>
              installing {job.name}
              {job.total > 0 && (
                <>
                  {' '}
                  <progress max={job.total} value={job.done} /> {mb(job.done)} of {mb(job.total)}
                </>
              )}
              …
            </p>
          ) : job.ended.error ? (
            <ErrorBox error={job.ended.error} />
          ) : (
            <p className="ok">installed {job.name}</p>
          )}
        </div>
      )}
    </>
  );
}

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
                    <td>{modelShape(r.model)}</td>
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
