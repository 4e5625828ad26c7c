import { useState } from 'react';
import { api, message, thumbUrl, type AskResult, type ImageRef, type RunSummary } from '../api';
import { Empty, ErrorBox, Loading, Show, useLoad } from '../components/load';
import { RunPicker, trained } from '../components/RunPicker';

type Asked = { question: string; image: ImageRef; result: AskResult };

const label = (image: ImageRef) => (image.kind === 'file' ? image.path.split(/[\\/]/).pop() : image.hash.slice(0, 12));

/** Pick an image (of a data set, or a file), ask, see the top answers and where it looked. */
export function Vqa({ runs, datasets }: { runs: RunSummary[]; datasets: string[] }) {
  const usable = trained(runs).filter((r) => r.kind === 'finetune');
  const [run, setRun] = useState(usable[0]?.name ?? '');
  const [dataset, setDataset] = useState(usable[0]?.dataset ?? datasets[0] ?? '');
  const [image, setImage] = useState<ImageRef | null>(null);
  const [question, setQuestion] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [history, setHistory] = useState<Asked[]>([]);
  const [strip] = useLoad(() => (dataset ? api.items(dataset, 0, 300) : Promise.resolve(null)), [dataset]);
  if (usable.length === 0) return <Empty>No fine-tuned run yet: fine-tune one for VQA first.</Empty>;
  const ask = async () => {
    if (!image) return;
    setBusy(true);
    setError(null);
    try {
      const result = await api.ask(run, image, question);
      setHistory((h) => [{ question, image, result }, ...h]);
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };
  const latest = history[0];
  return (
    <section>
      <header className="bar">
        <h1>Ask</h1>
        <RunPicker label="VQA run" runs={usable} value={run} onChange={setRun} />
        <select aria-label="images from" value={dataset} onChange={(e) => setDataset(e.target.value)}>
          {datasets.map((d) => (
            <option key={d}>{d}</option>
          ))}
        </select>
        <button
          onClick={() =>
            api.pickImage().then(
              (p) => p && setImage({ kind: 'file', path: p }),
              (e) => setError(message(e)),
            )
          }
        >
          Pick a file…
        </button>
      </header>
      <Show what="images" result={strip}>
        {(page) => (
          <div className="strip" aria-label="pick an image">
            {page?.items
              .filter((it, i, all) => all.findIndex((o) => o.image_hash === it.image_hash) === i)
              .slice(0, 24)
              .map((it) => (
                <img
                  key={it.id}
                  src={thumbUrl(it.image_hash)}
                  alt={`image ${it.image_hash.slice(0, 12)}`}
                  data-hash={it.image_hash}
                  className={image?.kind === 'stored' && image.hash === it.image_hash ? 'selected clickable' : 'clickable'}
                  onClick={() => setImage({ kind: 'stored', hash: it.image_hash })}
                />
              ))}
          </div>
        )}
      </Show>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          ask();
        }}
      >
        <span className="muted">{image ? `image ${label(image)}` : 'no image picked'}</span>
        <input aria-label="question" placeholder="What color is the shape?" value={question} onChange={(e) => setQuestion(e.target.value)} />
        <button className="primary" type="submit" disabled={!image || busy}>
          Ask
        </button>
      </form>
      {busy && <Loading what="answers" />}
      {error && <ErrorBox error={error} />}
      {latest && (
        <div className="answer">
          <img className="attention" src={latest.result.attention} alt="attention over the image" />
          <ol aria-label="answers">
            {latest.result.answers.map((a) => (
              <li key={a.answer}>
                <span className="answer-text">{a.answer}</span>
                <span className="bar-bg">
                  <span className="bar-fg" style={{ width: `${(a.probability * 100).toFixed(1)}%` }} />
                </span>
                <span className="num">{(a.probability * 100).toFixed(1)}%</span>
              </li>
            ))}
          </ol>
        </div>
      )}
      {history.length > 1 && (
        <details open>
          <summary>Earlier questions</summary>
          <ul aria-label="history">
            {history.slice(1).map((h, i) => (
              <li key={i}>
                {h.question} → <b>{h.result.answers[0]?.answer}</b> ({label(h.image)})
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
