import { useState } from 'react';
import { api, message, thumbUrl, type Hit, type ImageRef, type RunSummary } from '../api';
import { Empty, ErrorBox, Loading } from '../components/load';
import { RunPicker, trained } from '../components/RunPicker';

/** Text → ranked images, image → ranked captions, through a run's index of a data set. */
export function Retrieval({
  runs,
  datasets,
  open,
}: {
  runs: RunSummary[];
  datasets: string[];
  open: (dataset: string, item: number) => void;
}) {
  const usable = trained(runs);
  const [run, setRun] = useState(usable[0]?.name ?? '');
  const [dataset, setDataset] = useState('');
  const [text, setText] = useState('');
  const [rerank, setRerank] = useState(false);
  const [k, setK] = useState(12);
  const [state, setState] = useState<
    { s: 'idle' } | { s: 'loading' } | { s: 'error'; error: string } | { s: 'done'; mode: 'images' | 'captions'; hits: Hit[] }
  >({ s: 'idle' });
  if (usable.length === 0) return <Empty>No trained run yet: pre-train or fine-tune one first.</Empty>;
  const go = async (mode: 'images' | 'captions', image?: ImageRef) => {
    setState({ s: 'loading' });
    try {
      const ds = dataset || null;
      const hits = mode === 'images' ? await api.searchText(run, ds, text, k, rerank) : await api.searchImage(run, ds, image!, k, rerank);
      setState({ s: 'done', mode, hits });
    } catch (e) {
      setState({ s: 'error', error: message(e) });
    }
  };
  const pick = async () => {
    try {
      const path = await api.pickImage();
      if (path) await go('captions', { kind: 'file', path });
    } catch (e) {
      setState({ s: 'error', error: message(e) });
    }
  };
  return (
    <section>
      <header className="bar">
        <h1>Retrieval</h1>
        <RunPicker label="run" runs={usable} value={run} onChange={setRun} />
        <select aria-label="searched data set" value={dataset} onChange={(e) => setDataset(e.target.value)}>
          <option value="">(the run's data set)</option>
          {datasets.map((d) => (
            <option key={d}>{d}</option>
          ))}
        </select>
        <label className="inline">
          <input type="checkbox" aria-label="re-rank" checked={rerank} onChange={(e) => setRerank(e.target.checked)} /> ITM re-rank
        </label>
        <label className="inline">
          k <input aria-label="k" type="number" min={1} max={100} value={k} onChange={(e) => setK(Number(e.target.value))} />
        </label>
      </header>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          go('images');
        }}
      >
        <input aria-label="text query" placeholder="Describe an image: a red bicycle…" value={text} onChange={(e) => setText(e.target.value)} />
        <button className="primary" type="submit">
          Find images
        </button>
        <button type="button" onClick={pick}>
          Find captions for an image…
        </button>
      </form>
      {state.s === 'loading' && <Loading what="results" />}
      {state.s === 'error' && <ErrorBox error={state.error} />}
      {state.s === 'done' && state.hits.length === 0 && <Empty>Nothing found.</Empty>}
      {state.s === 'done' && state.hits.length > 0 && (
        <ol className={state.mode === 'images' ? 'ranked images' : 'ranked captions'} aria-label="ranked results">
          {state.hits.map((h, i) => (
            <li
              key={`${h.image_hash}/${h.item_id ?? i}`}
              title={h.source}
              className={h.item_id != null ? 'clickable' : ''}
              onClick={() => h.item_id != null && open(dataset || usable.find((r) => r.name === run)?.dataset || '', h.item_id)}
            >
              <img src={thumbUrl(h.image_hash)} alt="" />
              <div>
                <span className="rank">{i + 1}.</span> <span className="score">{h.score.toFixed(3)}</span>
                {h.match_score != null && <span className="score"> match {h.match_score.toFixed(3)}</span>}
                <div className="caption">{h.captions.join(' | ') || h.source}</div>
              </div>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
