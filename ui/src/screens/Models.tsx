import { api } from '../api';
import { Empty, Show, useLoad } from '../components/load';

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
    </section>
  );
}
