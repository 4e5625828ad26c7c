import { useEffect, useState } from 'react';
import { getCurrentWebview } from '@tauri-apps/api/webview';
import { api, IMPORT_FORMATS, message, type EngineEvent, type ImportFormat } from '../api';
import { CancelJob, useFollowJob, type Followed } from '../components/jobs';
import { ErrorBox } from '../components/load';
import { fileName } from '../format';

type Kind = 'videos' | ImportFormat;

/** The import's options the format takes (src/ingest/import ImportOptions). */
type Options = {
  strict: boolean;
  image_column: string;
  caption_column: string;
  images_dir: string | null;
  annotations: string | null;
};
const TABLES: Kind[] = ['jsonl', 'csv', 'tsv'];

/** One file's fate in a running job, as the engine's events tell it. */
type FileState = { path: string; state: string; ok?: boolean; reason?: string };

type Job = Followed & {
  files: Map<string, FileState>;
  done: number;
  failed: number;
  problems: string[];
};

/** One engine event of an ingest or import folded into the job's per-file view. */
function fileProgress(j: Job, e: EngineEvent): Job {
  const n: Job = { ...j, files: new Map(j.files), problems: j.problems };
  const put = (path: string, f: Partial<FileState>) =>
    n.files.set(path, { ...(n.files.get(path) ?? { path, state: '' }), ...f });
  switch (e.event) {
    case 'video_started':
      put(e.path as string, { state: 'started' });
      break;
    case 'stage_started':
      put(e.path as string, { state: e.stage as string });
      break;
    case 'stage_progress':
      put(e.path as string, { state: `${e.stage} ${Math.round((e.fraction as number) * 100)}%` });
      break;
    case 'video_finished': {
      const r = e.result as { outcome: string; items?: number; reason?: string };
      const ok = r.outcome !== 'failed';
      put(e.path as string, { state: ok ? `${r.outcome.replace('_', ' ')}: ${r.items} items` : 'failed', ok, reason: r.reason });
      n.done += 1;
      if (!ok) n.failed += 1;
      break;
    }
    case 'input_rejected':
      put(e.path as string, { state: 'failed', ok: false, reason: e.reason as string });
      n.failed += 1;
      break;
    case 'import_image_done':
      n.done += 1;
      if (!e.ok) n.failed += 1;
      break;
    case 'import_problem':
      n.problems = [...j.problems, e.message as string];
      break;
  }
  return n;
}

/** Pick or drop videos, folders and files; ingest or import them with per-file progress,
 * cancel, and the failed files with their reasons. */
export function AddData({ changed }: { changed: () => void }) {
  const [dataset, setDataset] = useState('');
  const [kind, setKind] = useState<Kind>('videos');
  const [paths, setPaths] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [job, setJob] = useState<Job | null>(null);
  const [options, setOptions] = useState<Options>({ strict: false, image_column: '', caption_column: '', images_dir: null, annotations: null });

  useEffect(() => {
    const off = getCurrentWebview().onDragDropEvent((e) => {
      if (e.payload.type !== 'drop') return;
      const dropped = e.payload.paths;
      setPaths((p) => [...new Set([...p, ...dropped])]);
    });
    return () => void off.then((f) => f());
  }, []);
  useFollowJob(setJob, fileProgress, changed);

  const pick = (what: 'folder' | 'files') =>
    api.pickPaths(what).then(
      (p) => setPaths((old) => [...new Set([...old, ...p])]),
      (e) => setError(message(e)),
    );
  const pickOption = (key: 'images_dir' | 'annotations', what: 'folder' | 'files') =>
    api.pickPaths(what).then(
      ([p]) => p && setOptions((o) => ({ ...o, [key]: p })),
      (e) => setError(message(e)),
    );
  const start = async () => {
    setError(null);
    try {
      const id =
        kind === 'videos'
          ? await api.startIngest({ dataset, paths })
          : await api.startImport({
              dataset,
              format: kind,
              path: paths[0],
              strict: options.strict,
              image_column: TABLES.includes(kind) ? options.image_column.trim() || null : null,
              caption_column: TABLES.includes(kind) ? options.caption_column.trim() || null : null,
              images_dir: kind === 'coco' ? options.images_dir : null,
              annotations: kind === 'vqa2' ? options.annotations : null,
            });
      setJob({ id, files: new Map(), done: 0, failed: 0, problems: [] });
      setPaths([]);
    } catch (e) {
      setError(message(e));
    }
  };
  const running = job && !job.ended;
  const r = job?.ended?.report;
  return (
    <div className="add-data" aria-label="add data">
      <h2>Add data</h2>
      <div className="form">
        <label>
          into data set
          <input aria-label="new data set" placeholder="name" value={dataset} onChange={(e) => setDataset(e.target.value)} />
        </label>
        <label>
          what
          <select aria-label="what to add" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
            <option value="videos">Videos (transcribe, keyframes, pairs)</option>
            {Object.entries(IMPORT_FORMATS).map(([k, label]) => (
              <option key={k} value={k}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <button onClick={() => pick('folder')}>Choose a folder…</button>
        <button onClick={() => pick('files')}>Choose files…</button>
      </div>
      <div className="drop" aria-label="chosen paths">
        {paths.length === 0 ? (
          <span className="muted">…or drop videos, folders and files on the window.</span>
        ) : (
          <ul>
            {paths.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        )}
      </div>
      {kind !== 'videos' && (
        <div className="form" aria-label="import options">
          {TABLES.includes(kind) && (
            <>
              <label>
                image column
                <input aria-label="image column" placeholder="image" value={options.image_column}
                  onChange={(e) => setOptions({ ...options, image_column: e.target.value })} />
              </label>
              <label>
                caption column
                <input aria-label="caption column" placeholder="caption" value={options.caption_column}
                  onChange={(e) => setOptions({ ...options, caption_column: e.target.value })} />
              </label>
            </>
          )}
          {kind === 'coco' && (
            <span>
              <button onClick={() => pickOption('images_dir', 'folder')}>Images folder…</button>{' '}
              <span className="muted">{options.images_dir ?? 'a Karpathy file finds its images beside it'}</span>
            </span>
          )}
          {kind === 'vqa2' && (
            <span>
              <button onClick={() => pickOption('annotations', 'files')}>Annotations file…</button>{' '}
              <span className="muted">{options.annotations ?? 'the answers: none chosen yet'}</span>
            </span>
          )}
          <label className="inline">
            <input type="checkbox" aria-label="strict" checked={options.strict}
              onChange={(e) => setOptions({ ...options, strict: e.target.checked })} />
            strict: the first problem stops the import, nothing written
          </label>
        </div>
      )}
      {kind !== 'videos' && paths.length > 1 && (
        <p className="muted">An import reads one folder or file: {fileName(paths[0])} goes in, the rest stays chosen.</p>
      )}
      <div className="row">
        <button className="primary" disabled={!dataset.trim() || paths.length === 0 || !!running} onClick={start}>
          {kind === 'videos' ? 'Ingest' : 'Import'}
        </button>
        <CancelJob job={job} onError={setError} />
      </div>
      {error && <ErrorBox error={error} />}
      {job && (
        <div className="job" aria-label="progress">
          <p>
            {job.done} done{job.failed > 0 && <>, {job.failed} failed</>}
            {job.ended && (
              <>
                {' '}
                ·{' '}
                <b>
                  {job.ended.error
                    ? 'failed'
                    : r?.cancelled
                      ? 'cancelled'
                      : r?.aborted
                        ? 'stopped at the first problem (strict): nothing written'
                        : 'finished'}
                </b>
                {r && r.added != null && !r.aborted && <> · {r.added} items added, {r.unchanged} already there</>}
              </>
            )}
          </p>
          {job.ended?.error && <ErrorBox error={job.ended.error} />}
          {job.files.size > 0 && (
            <table className="table" aria-label="files">
              <tbody>
                {[...job.files.values()].map((f) => (
                  <tr key={f.path} className={f.ok === false ? 'failed' : ''}>
                    <td>{fileName(f.path)}</td>
                    <td>{f.state}</td>
                    <td className="reason">{f.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {job.problems.length > 0 && (
            <ul className="problems" aria-label="problems">
              {job.problems.map((p, i) => (
                <li key={i}>{p}</li>
              ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
