import { useEffect, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { api, imageUrl, message, thumbUrl, type EngineEvent, type Item, type ItemFilter, type SearchHit } from '../api';
import { useFollowJob, type Followed } from '../components/jobs';
import { Empty, ErrorBox, Loading, Show, useLoad } from '../components/load';
import { fileName } from '../format';

const PAGE = 200;
const TILE = 176;

const time = (s: number | null) =>
  s == null ? '' : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;

/** Every item of a data set in a virtualised grid (pages fetched as they scroll into view), or
 * the hits of a full-text search; one item at a time in the side panel. */
export function Browser({ dataset, focus, datasets }: { dataset: string | null; focus?: number; datasets: string[] }) {
  const [name, setName] = useState<string | null>(dataset ?? datasets[0] ?? null);
  const [query, setQuery] = useState('');
  const [submitted, setSubmitted] = useState('');
  const [selected, setSelected] = useState<Item | null>(null);
  const [version, setVersion] = useState(0);
  const [filter, setFilter] = useState<ItemFilter>({});
  // Bits two perceptual hashes may differ by in the duplicates view; null: the grid.
  const [near, setNear] = useState<number | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  useEffect(() => setSelected(null), [name, submitted, filter, near]);
  useEffect(() => setNotice(null), [name, near]);
  // Opened on one item (a retrieval hit): show it in the panel.
  const [focusError, setFocusError] = useState<string | null>(null);
  useEffect(() => {
    if (focus != null && name) api.item(name, focus).then(setSelected, (e) => setFocusError(message(e)));
  }, []); // eslint-disable-line react-hooks/exhaustive-deps
  if (!name) return <Empty>No data set to browse yet.</Empty>;
  return (
    <section className="browser">
      <header className="bar">
        <h1>Browse</h1>
        <select
          aria-label="data set"
          value={name}
          onChange={(e) => {
            setName(e.target.value);
            setFilter({});
            setNear(null);
          }}
        >
          {datasets.map((d) => (
            <option key={d}>{d}</option>
          ))}
        </select>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            setSubmitted(query.trim());
          }}
        >
          <input
            aria-label="search captions"
            placeholder='Search captions: words, "a phrase", prefix*'
            value={query}
            onChange={(e) => setQuery(e.target.value)}
          />
          <button type="submit">Search</button>
          {submitted && (
            <button
              type="button"
              onClick={() => {
                setQuery('');
                setSubmitted('');
              }}
            >
              Clear
            </button>
          )}
        </form>
        <Export dataset={name} split={filter.split} />
      </header>
      {focusError && <ErrorBox error={focusError} />}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {!submitted && (
        <Filters key={name} dataset={name} filter={filter} setFilter={setFilter} near={near} setNear={setNear} />
      )}
      <div className="split">
        <div className="pane">
          {submitted ? (
            <SearchResults key={`${name}/${submitted}/${version}`} dataset={name} query={submitted} select={setSelected} />
          ) : near != null ? (
            <DuplicateGroups
              key={`${name}/${near}/${version}`}
              dataset={name}
              near={near}
              select={setSelected}
              dropped={(note) => {
                setNotice(note);
                setVersion((v) => v + 1);
              }}
            />
          ) : (
            <Grid
              key={`${name}/${version}/${JSON.stringify(filter)}`}
              dataset={name}
              filter={filter}
              select={setSelected}
              selected={selected?.id}
            />
          )}
        </div>
        {selected && (
          <ItemPanel
            key={selected.id}
            dataset={name}
            item={selected}
            changed={(item) => {
              setSelected(item);
              setVersion((v) => v + 1);
            }}
          />
        )}
      </div>
    </section>
  );
}

function SearchResults({ dataset, query, select }: { dataset: string; query: string; select: (i: Item) => void }) {
  const [hits] = useLoad(() => api.searchCaptions(dataset, query), [dataset, query]);
  return (
    <Show what="search results" result={hits}>
      {(list: SearchHit[]) =>
        list.length === 0 ? (
          <Empty>No caption in {dataset} matches “{query}”.</Empty>
        ) : (
          <ol className="hits" aria-label="search results">
            {list.map((h) => (
              <li key={h.item.id} className="clickable" onClick={() => select(h.item)}>
                <img src={thumbUrl(h.item.image_hash)} alt="" loading="lazy" />
                <div>
                  <div className="caption">{h.item.caption || h.item.question || h.item.source_path}</div>
                  <div className="muted">{h.snippet.replace(/\[|\]/g, '')}</div>
                </div>
              </li>
            ))}
          </ol>
        )
      }
    </Show>
  );
}

/** Exact and near-duplicate groups (src/curate/dedupe.rs), each item opens in the panel; drop
 * deletes all but the first of each group after a second click. */
function DuplicateGroups({
  dataset,
  near,
  select,
  dropped,
}: {
  dataset: string;
  near: number;
  select: (i: Item) => void;
  dropped: (note: string) => void;
}) {
  const [result] = useLoad(() => api.duplicates(dataset, near, false), [dataset, near]);
  const [confirm, setConfirm] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const open = (id: number) => api.item(dataset, id).then(select, (e) => setError(message(e)));
  const drop = () =>
    api.duplicates(dataset, near, true).then(
      (r) => dropped(`${r.dropped} duplicates deleted; the first item of each group was kept.`),
      (e) => setError(message(e)),
    );
  return (
    <Show what="duplicates" result={result}>
      {(d) =>
        d.groups_total === 0 ? (
          <Empty>
            No duplicates among the {d.items} items of {dataset} (perceptual hashes within {near} bits).
          </Empty>
        ) : (
          <div className="dups" aria-label="duplicate groups">
            <p>
              <b>{d.duplicates}</b> duplicates in {d.groups_total} groups among {d.items} items
              {d.groups.length < d.groups_total && <> (the first {d.groups.length} groups shown)</>}.{' '}
              <button className={confirm ? 'danger' : ''} onClick={() => (confirm ? drop() : setConfirm(true))}>
                {confirm ? `Delete ${d.duplicates} items?` : 'Drop duplicates…'}
              </button>
            </p>
            {error && <ErrorBox error={error} />}
            <ol className="dup-groups">
              {d.groups.map((g) => (
                <li key={g.keep} aria-label="duplicate group">
                  <span className="tag">{g.kind}</span>
                  {g.items.map((it) => (
                    <figure key={it.id} className={`clickable${it.id === g.keep ? ' keep' : ''}`} onClick={() => open(it.id)}>
                      <img src={thumbUrl(it.image_hash)} alt="" loading="lazy" />
                      <figcaption>{it.caption || fileName(it.source_path)}</figcaption>
                    </figure>
                  ))}
                </li>
              ))}
            </ol>
          </div>
        )
      }
    </Show>
  );
}

/** Split, source and caption-length filters; the engine applies them (src/store ItemFilter).
 * "duplicates" swaps the grid for the data set's duplicate groups. */
function Filters({
  dataset,
  filter,
  setFilter,
  near,
  setNear,
}: {
  dataset: string;
  filter: ItemFilter;
  setFilter: (f: ItemFilter) => void;
  near: number | null;
  setNear: (n: number | null) => void;
}) {
  const [stats] = useLoad(() => api.datasetStats(dataset), [dataset]);
  const splits = stats.state === 'ready' ? stats.value.splits : [];
  const num = (v: string) => (v.trim() === '' ? undefined : Math.max(0, Math.floor(Number(v))));
  return (
    <form className="filters row" aria-label="filters" onSubmit={(e) => e.preventDefault()}>
      <label className="inline">
        split
        <select
          aria-label="split filter"
          value={filter.split ?? '*'}
          onChange={(e) => setFilter({ ...filter, split: e.target.value === '*' ? undefined : e.target.value })}
        >
          <option value="*">all</option>
          {splits.map((s) => (
            <option key={s.split ?? ''} value={s.split ?? ''}>
              {s.split ?? '(none)'} ({s.items})
            </option>
          ))}
        </select>
      </label>
      <label className="inline">
        source contains
        <input
          aria-label="source filter"
          defaultValue={filter.source ?? ''}
          onBlur={(e) => setFilter({ ...filter, source: e.target.value || undefined })}
          onKeyDown={(e) => e.key === 'Enter' && setFilter({ ...filter, source: e.currentTarget.value || undefined })}
        />
      </label>
      <label className="inline">
        words
        <input aria-label="min words" type="number" min={0} placeholder="min" defaultValue={filter.min_words}
          onBlur={(e) => setFilter({ ...filter, min_words: num(e.target.value) })} />
        –
        <input aria-label="max words" type="number" min={0} placeholder="max" defaultValue={filter.max_words}
          onBlur={(e) => setFilter({ ...filter, max_words: num(e.target.value) })} />
      </label>
      <label className="inline">
        <input
          type="checkbox"
          aria-label="duplicates"
          checked={near != null}
          onChange={(e) => setNear(e.target.checked ? 4 : null)}
        />
        duplicates
      </label>
      {near != null && (
        <label className="inline">
          within
          <input
            aria-label="near bits"
            type="number"
            min={0}
            max={64}
            value={near}
            onChange={(e) => setNear(Math.min(64, Math.max(0, Math.floor(Number(e.target.value) || 0))))}
          />
          bits
        </label>
      )}
    </form>
  );
}

type ExportJob = Followed & { items: number };
const countExported = (j: ExportJob, e: EngineEvent) => (e.event === 'export_item_done' ? { ...j, items: j.items + 1 } : j);

/** Writes the data set (or the split filtered on) as WebDataset shards into a chosen folder. */
function Export({ dataset, split }: { dataset: string; split?: string }) {
  const [job, setJob] = useState<ExportJob | null>(null);
  const [error, setError] = useState<string | null>(null);
  useFollowJob(setJob, countExported);
  const start = async () => {
    setError(null);
    try {
      const [out] = await api.pickPaths('folder');
      if (!out) return;
      const id = await api.startExport({ dataset, out, split: split ?? null });
      setJob({ id, items: 0 });
    } catch (e) {
      setError(message(e));
    }
  };
  const r = job?.ended?.report;
  return (
    <span className="export" aria-label="export">
      <button onClick={start} disabled={!!job && !job.ended}>
        Export WebDataset…
      </button>
      {job && !job.ended && <span className="muted"> {job.items} items written…</span>}
      {r && (
        <span className="ok">
          {' '}
          exported {r.items} items to {r.path} ({r.files?.length} shard{r.files?.length === 1 ? '' : 's'})
        </span>
      )}
      {job?.ended?.error && <ErrorBox error={job.ended.error} />}
      {error && <ErrorBox error={error} />}
    </span>
  );
}

function Grid({
  dataset,
  filter,
  select,
  selected,
}: {
  dataset: string;
  filter: ItemFilter;
  select: (i: Item) => void;
  selected?: number;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const pages = useRef(new Map<number, Item[] | 'loading'>());
  const [, redraw] = useState(0);
  const [columns, setColumns] = useState(4);

  const fetchPage = (page: number) => {
    if (pages.current.has(page)) return;
    pages.current.set(page, 'loading');
    api.items(dataset, page * PAGE, PAGE, filter).then(
      (p) => {
        pages.current.set(page, p.items);
        setTotal(p.total);
        redraw((n) => n + 1);
      },
      (e) => setError(message(e)),
    );
  };
  useEffect(() => fetchPage(0), []); // eslint-disable-line react-hooks/exhaustive-deps
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const fit = () => setColumns(Math.max(1, Math.floor(el.clientWidth / TILE)));
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    return () => ro.disconnect();
  }, [total]);

  const rows = total == null ? 0 : Math.ceil(total / columns);
  const virtual = useVirtualizer({
    count: rows,
    getScrollElement: () => scroller.current,
    estimateSize: () => TILE + 40,
    overscan: 3,
  });
  if (error) return <ErrorBox error={error} />;
  if (total == null) return <Loading what="items" />;
  if (total === 0)
    return <Empty>{Object.values(filter).some((v) => v !== undefined) ? 'No item passes these filters.' : `${dataset} has no items.`}</Empty>;
  const item = (i: number): Item | 'loading' => {
    const page = Math.floor(i / PAGE);
    const p = pages.current.get(page);
    if (p === undefined) fetchPage(page);
    return p === undefined || p === 'loading' ? 'loading' : p[i % PAGE];
  };
  return (
    <div className="grid-scroll" ref={scroller} aria-label="items" data-total={total}>
      <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
        {virtual.getVirtualItems().map((row) => (
          <div
            key={row.key}
            className="grid-row"
            style={{ transform: `translateY(${row.start}px)`, gridTemplateColumns: `repeat(${columns}, 1fr)` }}
          >
            {Array.from({ length: columns }, (_, c) => row.index * columns + c)
              .filter((i) => i < total)
              .map((i) => {
                const it = item(i);
                return it === 'loading' ? (
                  <div key={i} className="tile placeholder" />
                ) : (
                  <figure
                    key={i}
                    className={`tile clickable${selected === it.id ? ' selected' : ''}`}
                    onClick={() => select(it)}
                    data-item={it.id}
                  >
                    <img src={thumbUrl(it.image_hash)} alt="" loading="lazy" />
                    <figcaption>{it.caption || it.question || '(no caption)'}</figcaption>
                  </figure>
                );
              })}
          </div>
        ))}
      </div>
    </div>
  );
}

function ItemPanel({ dataset, item, changed }: { dataset: string; item: Item; changed: (i: Item | null) => void }) {
  const [caption, setCaption] = useState(item.caption);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const save = () =>
    api.editCaption(dataset, item.id, caption).then(
      () => {
        setSaved(true);
        setError(null);
        changed({ ...item, caption: caption.trim() });
      },
      (e) => setError(message(e)),
    );
  const remove = () =>
    api.deleteItem(dataset, item.id).then(
      () => changed(null),
      (e) => setError(message(e)),
    );
  return (
    <aside className="panel" aria-label="item">
      <img src={imageUrl(item.image_hash)} alt={item.caption} />
      <label>
        caption
        <textarea
          aria-label="caption"
          value={caption}
          rows={3}
          onChange={(e) => {
            setCaption(e.target.value);
            setSaved(false);
          }}
        />
      </label>
      <div className="row">
        <button onClick={save} disabled={caption === item.caption}>
          Save caption
        </button>
        <button className="danger" onClick={remove}>
          Delete item
        </button>
        {saved && <span className="ok">saved</span>}
      </div>
      {error && <ErrorBox error={error} />}
      {item.question && (
        <p>
          <b>Q:</b> {item.question} <span className="muted">{JSON.stringify(item.answers)}</span>
        </p>
      )}
      {(item.context_before || item.context_after) && (
        <div className="context">
          <p className="muted">{item.context_before}</p>
          <p>
            <b>{item.caption}</b>
          </p>
          <p className="muted">{item.context_after}</p>
        </div>
      )}
      <dl>
        <dt>source</dt>
        <dd>{item.source_path}</dd>
        {item.start_s != null && (
          <>
            <dt>time</dt>
            <dd>
              {time(item.start_s)}–{time(item.end_s)} (frame at {time(item.frame_s)})
            </dd>
          </>
        )}
        <dt>split</dt>
        <dd>{item.split ?? '—'}</dd>
        <dt>item</dt>
        <dd>#{item.id}</dd>
      </dl>
    </aside>
  );
}
