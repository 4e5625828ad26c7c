import { useMemo, useState } from 'react';
import { api, type Ablation, type MeanStd, type RunDetail } from '../api';
import { LineChart } from '../components/Chart';
import { Empty, ErrorBox, Show, useLoad } from '../components/load';
import { modelShape } from '../format';

const fmt = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : JSON.stringify(v));

/** Every run with its status and last loss; tick several to overlay a metric's curves. */
export function Runs() {
  const [runs, reload] = useLoad(() => api.runs(), []);
  const [picked, setPicked] = useState<string[]>([]);
  const [metric, setMetric] = useState('loss');
  const [details] = useLoad(() => Promise.all(picked.map((r) => api.runDetail(r))), [picked.join('\n')]);
  return (
    <section>
      <header className="bar">
        <h1>Runs</h1>
        <button onClick={reload}>Refresh</button>
      </header>
      <Show what="runs" result={runs}>
        {(list) =>
          list.length === 0 ? (
            <Empty>
              No runs yet. Start one in Train, or <code>tessera pretrain --dataset D --config models/tiny.toml</code>.
            </Empty>
          ) : (
            <table className="table" aria-label="runs">
              <thead>
                <tr>
                  <th />
                  <th>run</th>
                  <th>kind</th>
                  <th>data set</th>
                  <th>status</th>
                  <th className="num">step</th>
                  <th className="num">loss</th>
                  <th>from</th>
                </tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.name}>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`compare ${r.name}`}
                        checked={picked.includes(r.name)}
                        onChange={(e) =>
                          setPicked((p) => (e.target.checked ? [...p, r.name] : p.filter((x) => x !== r.name)))
                        }
                      />
                    </td>
                    <td>{r.name}</td>
                    <td>{r.kind}</td>
                    <td>{r.dataset ?? '—'}</td>
                    <td title={r.error ?? ''}>{r.status}</td>
                    <td className="num">{r.step}</td>
                    <td className="num">{r.loss == null ? '—' : r.loss.toFixed(4)}</td>
                    <td>{r.parent ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      {picked.length > 0 && (
        <Show what="curves" result={details}>
          {(ds) => <Compare details={ds} metric={metric} setMetric={setMetric} />}
        </Show>
      )}
      <Ablations />
    </section>
  );
}

type Stored = {
  dataset?: string;
  init?: unknown;
  config?: {
    model?: Record<string, number>;
    train?: Record<string, number | boolean>;
    objectives?: Record<string, { enabled: boolean; weight?: number; mask_ratio?: number }>;
    task?: { kind?: string } | string;
  };
};

/** What each compared run was trained with: shape, objectives (weight, mask ratio), schedule. */
function Configs({ details }: { details: RunDetail[] }) {
  return (
    <table className="table" aria-label="configs">
      <thead>
        <tr>
          <th>run</th>
          <th>task</th>
          <th>model</th>
          <th>objectives</th>
          <th className="num">steps</th>
          <th className="num">batch</th>
          <th className="num">lr</th>
        </tr>
      </thead>
      <tbody>
        {details.map((d) => {
          const c = (d.config as Stored | null)?.config ?? {};
          const m = c.model ?? {};
          const t = c.train ?? {};
          const task = typeof c.task === 'string' ? c.task : c.task?.kind ?? '—';
          const objectives = Object.entries(c.objectives ?? {})
            .filter(([, o]) => o.enabled)
            .map(([k, o]) => `${k}${o.weight != null && o.weight !== 1 ? ` ×${o.weight}` : ''}${o.mask_ratio != null ? ` ${o.mask_ratio}` : ''}`)
            .join(', ');
          return (
            <tr key={d.run.name}>
              <td>{d.run.name}</td>
              <td>{task}</td>
              <td>{modelShape(m)}</td>
              <td>{task === 'pretrain' ? objectives || '—' : '—'}</td>
              <td className="num">{String(t.steps ?? '—')}</td>
              <td className="num">{String(t.batch ?? '—')}</td>
              <td className="num">{String(t.lr ?? '—')}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

/** Percent with one decimal, ± the sample std over seeds (as the engine's tables print it). */
const meanStd = (v: MeanStd) =>
  v.mean == null ? '—' : v.n > 1 && v.std != null ? `${(100 * v.mean).toFixed(1)} ± ${(100 * v.std).toFixed(1)}` : (100 * v.mean).toFixed(1);

/** The tables `tessera ablate` wrote: one row per pre-training variant (and from scratch), the
 * downstream metrics as mean ± std over seeds; the best mean of each column in bold. */
function Ablations() {
  const [list, reload] = useLoad(() => api.ablations(), []);
  return (
    <div className="ablations">
      <h2>
        Ablations <button onClick={reload}>Refresh</button>
      </h2>
      <Show what="ablations" result={list}>
        {(all) =>
          all.length === 0 ? (
            <Empty>
              No ablations yet.{' '}
              <code>tessera ablate --dataset D --downstream vqa --vary objectives=mlm+mim,mlm+mim+alt --seeds 3</code>{' '}
              writes one.
            </Empty>
          ) : (
            all.map((a) => <AblationTable key={a.name} ablation={a} />)
          )
        }
      </Show>
    </div>
  );
}

function AblationTable({ ablation }: { ablation: Ablation }) {
  const t = ablation.table;
  if (!t) return <ErrorBox error={ablation.error ?? `${ablation.name}: unreadable`} />;
  const best = t.metrics.map((_, m) => Math.max(...t.rows.map((r) => r.values[m]?.mean ?? -Infinity)));
  return (
    <table className="table" aria-label={`ablation ${ablation.name}`}>
      <caption>
        {ablation.name} <span className="muted">{ablation.path}</span>
      </caption>
      <thead>
        <tr>
          <th>variant</th>
          {t.metrics.map((m) => (
            <th key={m} className="num">
              {m}
            </th>
          ))}
          <th className="num">seeds</th>
        </tr>
      </thead>
      <tbody>
        {t.rows.map((r) => (
          <tr key={r.variant}>
            <td>{r.variant}</td>
            {r.values.map((v, m) => (
              <td key={m} className="num">
                {v.mean != null && v.mean === best[m] ? <b>{meanStd(v)}</b> : meanStd(v)}
              </td>
            ))}
            <td className="num">{r.values[0]?.n ?? 0}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Compare({ details, metric, setMetric }: { details: RunDetail[]; metric: string; setMetric: (m: string) => void }) {
  const names = useMemo(
    () => Array.from(new Set(details.flatMap((d) => d.curves.map((c) => `${c.split} ${c.name}`)))).sort(),
    [details],
  );
  const chosen = names.includes(`train ${metric}`) ? `train ${metric}` : names.includes(metric) ? metric : names[0];
  const series = useMemo(
    () =>
      details.flatMap((d) =>
        d.curves
          .filter((c) => `${c.split} ${c.name}` === chosen)
          .map((c) => ({ label: d.run.name, x: c.steps, y: c.values })),
      ),
    [details, chosen],
  );
  return (
    <div className="compare">
      <label>
        metric
        <select aria-label="metric" value={chosen} onChange={(e) => setMetric(e.target.value)}>
          {names.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
      </label>
      {series.length > 0 ? <LineChart series={series} title={chosen} /> : <Empty>No {chosen} recorded.</Empty>}
      <Configs details={details} />
      {details.some((d) => d.evaluations.length > 0) && (
        <table className="table" aria-label="evaluations">
          <thead>
            <tr>
              <th>run</th>
              <th>evaluation</th>
              <th>metrics</th>
            </tr>
          </thead>
          <tbody>
            {details.flatMap((d) =>
              d.evaluations.map((e) => (
                <tr key={`${d.run.name}/${e.kind}/${e.dataset}/${e.split}`}>
                  <td>{d.run.name}</td>
                  <td>
                    {e.kind} on {e.dataset}/{e.split} @ {e.step}
                  </td>
                  <td>
                    {Object.entries(e.metrics)
                      .filter(([, v]) => typeof v === 'number')
                      .map(([k, v]) => `${k} ${fmt(v)}`)
                      .join(' · ')}
                  </td>
                </tr>
              )),
            )}
          </tbody>
        </table>
      )}
    </div>
  );
}
