import { useEffect, useMemo, useState } from 'react';
import { api, message, onEngineEvent, onJobEnded, type Curve, type Device, type JobInfo, type RunConfig, type RunSummary } from '../api';
import { LineChart } from '../components/Chart';
import { Empty, ErrorBox, Show, useLoad } from '../components/load';

type Live = {
  job: number;
  run?: string;
  device?: string;
  steps: number;
  step: number;
  samplesPerS: number;
  losses: { x: number[]; y: number[] };
  val: Map<string, { x: number[]; y: number[] }>;
  ended?: JobInfo;
};

type Task = 'pretrain' | 'vqa' | 'retrieval';

/** Pick a data set, a task and a config, switch objectives, start, watch the curves, stop,
 * resume. */
export function Train({ datasets, presets, runs }: { datasets: string[]; presets: string[]; runs: RunSummary[] }) {
  const [task, setTask] = useState<Task>('pretrain');
  const [from, setFrom] = useState('');
  const [answers, setAnswers] = useState(1000);
  const [dataset, setDataset] = useState(datasets[0] ?? '');
  const [preset, setPreset] = useState(presets[0] ?? 'tiny');
  const [config, setConfig] = useState<RunConfig | null>(null);
  const [device, setDevice] = useState<Device>('auto');
  const [runName, setRunName] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [live, setLive] = useState<Live | null>(null);
  const [loaded] = useLoad(() => api.configPreset(preset), [preset]);
  useEffect(() => {
    if (loaded.state === 'ready') setConfig(structuredClone(loaded.value));
  }, [loaded]);

  useEffect(() => {
    const off = [
      onEngineEvent((e) =>
        setLive((l) => {
          if (!l || l.job !== e.job) return l;
          const n = { ...l };
          if (e.event === 'train_started') {
            n.run = e.run as string;
            n.device = e.device as string;
            n.steps = e.steps as number;
            n.step = e.step as number;
          } else if (e.event === 'train_step') {
            n.step = e.step as number;
            n.samplesPerS = e.samples_per_s as number;
            n.losses = { x: [...l.losses.x, e.step as number], y: [...l.losses.y, e.loss as number] };
          } else if (e.event === 'train_validated') {
            n.val = new Map(l.val);
            for (const [name, v] of e.metrics as [string, number][]) {
              const s = n.val.get(name) ?? { x: [], y: [] };
              n.val.set(name, { x: [...s.x, e.step as number], y: [...s.y, v] });
            }
          }
          return n;
        }),
      ),
      onJobEnded((j) => setLive((l) => (l && l.job === j.id ? { ...l, ended: j } : l))),
    ];
    return () => off.forEach((p) => p.then((f) => f()));
  }, []);

  const start = async (resumeRun?: string) => {
    setError(null);
    try {
      const run = runName.trim() || null;
      const job = resumeRun
        ? await api.resumeRun(resumeRun)
        : task === 'pretrain'
          ? await api.startPretrain({ dataset, config: config!, run, device })
          : await api.startFinetune({
              dataset,
              task: task === 'vqa' ? { kind: 'vqa', answers } : { kind: 'retrieval' },
              from: from || null,
              config: config!,
              run,
              device,
            });
      setCurves([]);
      setLive({ job, steps: config?.train.steps ?? 0, step: 0, samplesPerS: 0, losses: { x: [], y: [] }, val: new Map(), run: resumeRun });
    } catch (e) {
      setError(message(e));
    }
  };
  const stop = () => live && api.cancelJob(live.job).catch((e) => setError(message(e)));

  // Each objective's loss is in the store per step: read it back while the run goes on.
  const [curves, setCurves] = useState<Curve[]>([]);
  const run = live?.run;
  const ended = !!live?.ended;
  useEffect(() => {
    if (!run) return;
    const poll = () => api.runDetail(run).then((d) => setCurves(d.curves), () => {});
    poll();
    if (ended) return;
    const timer = setInterval(poll, 2000);
    return () => clearInterval(timer);
  }, [run, ended]);
  const series = useMemo(() => {
    const stored = curves
      .filter((c) => c.name.endsWith('loss'))
      .map((c) => ({ label: `${c.split} ${c.name}`, x: c.steps, y: c.values }));
    if (stored.length > 0) return stored;
    return live
      ? [
          { label: 'train loss', ...live.losses },
          ...[...live.val].map(([name, s]) => ({ label: `val ${name}`, ...s })),
        ]
      : [];
  }, [curves, live]);
  if (datasets.length === 0) return <Empty>Import or ingest a data set first: training needs one.</Empty>;
  const running = live && !live.ended;
  const eta = live && live.samplesPerS > 0 && config ? ((live.steps - live.step) * config.train.batch) / live.samplesPerS : null;
  const setObjective = (name: string, key: string, value: number | boolean) =>
    setConfig((c) => c && { ...c, objectives: { ...c.objectives, [name]: { ...c.objectives[name], [key]: value } } });
  return (
    <section>
      <header className="bar">
        <h1>Train</h1>
      </header>
      <div className="form">
        <label>
          data set
          <select aria-label="train data set" value={dataset} onChange={(e) => setDataset(e.target.value)}>
            {datasets.map((d) => (
              <option key={d}>{d}</option>
            ))}
          </select>
        </label>
        <label>
          task
          <select aria-label="task" value={task} onChange={(e) => setTask(e.target.value as Task)}>
            <option value="pretrain">pre-train</option>
            <option value="vqa">fine-tune: VQA</option>
            <option value="retrieval">fine-tune: retrieval</option>
          </select>
        </label>
        {task !== 'pretrain' && (
          <label>
            from
            <select aria-label="from run" value={from} onChange={(e) => setFrom(e.target.value)}>
              <option value="">scratch (the model config below)</option>
              {runs
                .filter((r) => r.step > 0)
                .map((r) => (
                  <option key={r.name} value={r.name}>
                    {r.name} (step {r.step})
                  </option>
                ))}
            </select>
          </label>
        )}
        {task === 'vqa' && (
          <label>
            answers
            <input aria-label="answers" type="number" min={1} value={answers} onChange={(e) => setAnswers(Number(e.target.value))} />
          </label>
        )}
        <label>
          model
          <select aria-label="model config" value={preset} onChange={(e) => setPreset(e.target.value)}>
            {presets.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          device
          <select aria-label="device" value={device} onChange={(e) => setDevice(e.target.value as Device)}>
            {['auto', 'cpu', 'metal', 'cuda'].map((d) => (
              <option key={d}>{d}</option>
            ))}
          </select>
        </label>
        <label>
          run name
          <input aria-label="run name" placeholder="(automatic)" value={runName} onChange={(e) => setRunName(e.target.value)} />
        </label>
      </div>
      <Show what="model config" result={loaded}>
        {() =>
          config && (
            <>
              <div className="form">
                <label>
                  steps
                  <input
                    aria-label="steps"
                    type="number"
                    min={1}
                    value={config.train.steps}
                    onChange={(e) => setConfig({ ...config, train: { ...config.train, steps: Number(e.target.value) } })}
                  />
                </label>
                <label>
                  batch
                  <input
                    aria-label="batch"
                    type="number"
                    min={2}
                    value={config.train.batch}
                    onChange={(e) => setConfig({ ...config, train: { ...config.train, batch: Number(e.target.value) } })}
                  />
                </label>
              </div>
              {task === 'pretrain' && <table className="table objectives" aria-label="objectives">
                <thead>
                  <tr>
                    <th>objective</th>
                    <th>on</th>
                    <th>settings</th>
                  </tr>
                </thead>
                <tbody>
                  {Object.entries(config.objectives).map(([name, o]) => (
                    <tr key={name}>
                      <td>{name}</td>
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`objective ${name}`}
                          checked={o.enabled}
                          onChange={(e) => setObjective(name, 'enabled', e.target.checked)}
                        />
                      </td>
                      <td className="settings">
                        {Object.entries(o)
                          .filter(([, v]) => typeof v === 'number')
                          .map(([k, v]) => (
                            <label key={k}>
                              {k}
                              <input
                                aria-label={`${name} ${k}`}
                                type="number"
                                step="any"
                                value={v as number}
                                onChange={(e) => setObjective(name, k, Number(e.target.value))}
                              />
                            </label>
                          ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>}
            </>
          )
        }
      </Show>
      <div className="row">
        <button className="primary" disabled={!config || !!running} onClick={() => start()}>
          Start
        </button>
        <button disabled={!running} onClick={stop}>
          Stop
        </button>
        {live?.ended && live.run && live.ended.report?.status !== 'finished' && (
          <button onClick={() => start(live.run)}>Resume {live.run}</button>
        )}
      </div>
      {error && <ErrorBox error={error} />}
      {live && (
        <div className="live" aria-label="training">
          <p>
            <b>{live.run ?? 'starting…'}</b> step {live.step}/{live.steps}
            {live.device && <> · device {live.device}</>}
            {live.samplesPerS > 0 && <> · {live.samplesPerS.toFixed(1)} samples/s</>}
            {eta != null && running && <> · ETA {Math.ceil(eta)} s</>}
            {live.ended && (
              <>
                {' '}
                · <span className="status">{live.ended.error ? 'failed' : live.ended.report?.status}</span>
              </>
            )}
          </p>
          {live.ended?.error && <ErrorBox error={live.ended.error} />}
          {series.some((s) => s.x.length > 0) && <LineChart series={series} title="losses" />}
        </div>
      )}
    </section>
  );
}
