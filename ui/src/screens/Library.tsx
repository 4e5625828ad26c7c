import { api } from '../api';
import { Empty, Show, useLoad } from '../components/load';
import { AddData } from './AddData';

/** Data sets with their counts; a click opens one in the browser. */
export function Library({ open }: { open: (dataset: string) => void }) {
  const [datasets, reload] = useLoad(() => api.datasets(), []);
  return (
    <section>
      <header className="bar">
        <h1>Library</h1>
        <button onClick={reload}>Refresh</button>
      </header>
      <Show what="data sets" result={datasets}>
        {(list) =>
          list.length === 0 ? (
            <Empty>
              No data sets yet: add videos or an image-caption set below (or with the command line,
              <code>tessera ingest</code> and <code>tessera import</code>).
            </Empty>
          ) : (
            <table className="table" aria-label="data sets">
              <thead>
                <tr>
                  <th>data set</th>
                  <th className="num">items</th>
                  <th className="num">videos</th>
                  <th className="num">failed videos</th>
                  <th className="num">without speech</th>
                  <th>created</th>
                </tr>
              </thead>
              <tbody>
                {list.map((d) => (
                  <tr key={d.name} className="clickable" onClick={() => open(d.name)}>
                    <td>{d.name}</td>
                    <td className="num">{d.items.toLocaleString()}</td>
                    <td className="num">{d.videos}</td>
                    <td className="num">{d.failed_videos}</td>
                    <td className="num">{d.no_speech_items}</td>
                    <td>{d.created_at.slice(0, 16).replace('T', ' ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Show>
      <AddData changed={reload} />
    </section>
  );
}
