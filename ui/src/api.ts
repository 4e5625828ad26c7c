// The engine as the page sees it: one typed function per Tauri command (src-tauri/src/lib.rs)
// and the shapes they return. Nothing here decides anything; the engine does.
import { convertFileSrc, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';

export type DatasetSummary = {
  name: string;
  created_at: string;
  items: number;
  videos: number;
  failed_videos: number;
  no_speech_items: number;
};

export type DatasetStats = {
  dataset: string;
  items: number;
  distinct_images: number;
  splits: { split: string | null; items: number }[];
  videos: number;
  files: number;
  caption_words_mean: number;
};

export type Item = {
  id: number;
  caption: string;
  context_before: string;
  context_after: string;
  source_path: string;
  start_s: number | null;
  end_s: number | null;
  frame_s: number | null;
  image_hash: string;
  no_speech: boolean;
  split: string | null;
  question?: string;
  answers?: unknown;
  answer_type?: string;
};

/** Which items the grid shows (src/store ItemFilter); `split: ''` means items without one. */
export type ItemFilter = { split?: string; source?: string; min_words?: number; max_words?: number };

export type ItemsPage = { total: number; offset: number; items: Item[] };
export type SearchHit = { score: number; snippet: string; item: Item };

export type RunSummary = {
  id: number;
  name: string;
  kind: string;
  dataset: string | null;
  status: string;
  error: string | null;
  step: number;
  created_at: string;
  updated_at: string;
  parent: string | null;
  loss: number | null;
};

export type Curve = { split: string; name: string; steps: number[]; values: number[] };
export type Evaluation = {
  kind: string;
  dataset: string;
  split: string;
  step: number;
  metrics: Record<string, unknown>;
};
export type RunDetail = {
  run: RunSummary;
  config: Record<string, unknown> | null;
  curves: Curve[];
  evaluations: Evaluation[];
};

export type Hit = {
  score: number;
  match_score?: number;
  image_hash: string;
  item_id?: number;
  captions: string[];
  source?: string;
};

export type Answer = { answer: string; probability: number };
export type AskResult = { answers: Answer[]; attention: string };

export type RunCheckpoints = {
  run: string;
  kind: string;
  status: string;
  model: Record<string, number> | null;
  checkpoints: { step: number; bytes: number; created_at: string }[];
};

export type SystemInfo = {
  data_dir: string;
  device: string;
  whisper_models: { file: string; path: string; size_bytes: number }[];
  /** The official models the Models screen can download. */
  whisper_catalog: { name: string; size_mib: number; installed: boolean }[];
  presets: string[];
};

/** What loading a Whisper model file proved (src/asr/models.rs ModelInfo). */
export type WhisperInfo = {
  path: string;
  size_bytes: number;
  size_name: string;
  multilingual: boolean;
  official: string | null;
  header: Record<string, number>;
};

export type MeanStd = { mean: number | null; std: number | null; n: number };
export type AblationTable = { metrics: string[]; rows: { variant: string; values: MeanStd[]; seeds: (number | null)[][] }[] };
/** An ablation `tessera ablate` wrote, or why its file could not be read. */
export type Ablation = { name: string; path: string; table: AblationTable | null; error: string | null };

export type DupItem = { id: number; image_hash: string; phash: string; source_path: string; caption: string };
export type DupGroup = { kind: 'exact' | 'near'; keep: number; items: DupItem[] };
export type Duplicates = {
  near: number;
  items: number;
  duplicates: number;
  dropped: number;
  groups_total: number;
  groups: DupGroup[];
};

export type ImportRequest = {
  dataset: string;
  format: ImportFormat;
  path: string;
  strict?: boolean;
  image_column?: string | null;
  caption_column?: string | null;
  images_dir?: string | null;
  annotations?: string | null;
};

export type ObjectiveSettings = { enabled: boolean; [key: string]: number | boolean | string };
export type RunConfig = {
  model: Record<string, unknown>;
  train: { steps: number; batch: number; lr: number; [key: string]: unknown };
  objectives: Record<string, ObjectiveSettings>;
  task: unknown;
};

export type JobInfo = {
  id: number;
  what: string;
  state: 'running' | 'finished' | 'failed';
  /** The engine's report: a run's (status, step), an import's (added, problems), an ingest's (videos). */
  report: Record<string, any> | null;
  error: string | null;
};

/** An engine event of a job (src/events.rs), tagged by `event`. */
export type EngineEvent = { job: number; event: string; [key: string]: unknown };

export const IMPORT_FORMATS = {
  folder: 'Folder of images with .txt/.json captions',
  jsonl: 'JSONL (image, caption)',
  csv: 'CSV (image, caption)',
  tsv: 'TSV (image, caption)',
  coco: 'COCO / Karpathy captions file',
  vqa2: 'VQA v2 questions file (+ annotations)',
  webdataset: 'WebDataset shards',
  vqa_jsonl: 'VQA JSONL (image, question, answers)',
  easy_vqa: 'easy-VQA data folder',
} as const;
export type ImportFormat = keyof typeof IMPORT_FORMATS;

export type ImageRef = { kind: 'stored'; hash: string } | { kind: 'file'; path: string };
export type Device = 'auto' | 'cpu' | 'metal' | 'cuda';

export const api = {
  systemInfo: () => invoke<SystemInfo>('system_info'),
  configPreset: (name: string) => invoke<RunConfig>('config_preset', { name }),
  datasets: () => invoke<DatasetSummary[]>('datasets'),
  datasetStats: (dataset: string) => invoke<DatasetStats>('dataset_stats', { dataset }),
  items: (dataset: string, offset: number, limit: number, filter: ItemFilter = {}) =>
    invoke<ItemsPage>('items', { dataset, filter, offset, limit }),
  item: (dataset: string, id: number) => invoke<Item>('item', { dataset, id }),
  searchCaptions: (dataset: string, query: string, limit = 200) =>
    invoke<SearchHit[]>('search_captions', { dataset, query, limit }),
  editCaption: (dataset: string, id: number, caption: string) =>
    invoke<void>('edit_caption', { dataset, id, caption }),
  deleteItem: (dataset: string, id: number) => invoke<void>('delete_item', { dataset, id }),
  runs: () => invoke<RunSummary[]>('runs'),
  runDetail: (run: string) => invoke<RunDetail>('run_detail', { run }),
  checkpoints: () => invoke<RunCheckpoints[]>('checkpoints'),
  deleteRun: (run: string) => invoke<{ run: string; checkpoints: number; bytes: number }>('delete_run', { run }),
  searchText: (run: string, dataset: string | null, text: string, k: number, rerank: boolean) =>
    invoke<Hit[]>('search_text', { run, dataset, text, k, rerank }),
  searchImage: (run: string, dataset: string | null, image: ImageRef, k: number, rerank: boolean) =>
    invoke<Hit[]>('search_image', { run, dataset, image, k, rerank }),
  ask: (run: string, image: ImageRef, question: string, top = 5) =>
    invoke<AskResult>('ask', { run, image, question, top }),
  pickImage: () => invoke<string | null>('pick_image'),
  pickPaths: (kind: 'folder' | 'files') => invoke<string[]>('pick_paths', { kind }),
  startImport: (request: ImportRequest) => invoke<number>('start_import', { request }),
  duplicates: (dataset: string, near: number, drop: boolean) =>
    invoke<Duplicates>('duplicates', { dataset, near, drop }),
  verifyWhisper: (file: string) => invoke<WhisperInfo>('verify_whisper', { file }),
  startWhisperInstall: (request: { name: string; from: string | null }) =>
    invoke<number>('start_whisper_install', { request }),
  ablations: () => invoke<Ablation[]>('ablations'),
  startIngest: (request: { dataset: string; paths: string[] }) => invoke<number>('start_ingest', { request }),
  startExport: (request: { dataset: string; out: string; split: string | null }) =>
    invoke<number>('start_export', { request }),
  startPretrain: (request: { dataset: string; config: RunConfig; run: string | null; device: Device }) =>
    invoke<number>('start_pretrain', { request }),
  startFinetune: (request: {
    dataset: string;
    task: { kind: 'vqa'; answers: number } | { kind: 'retrieval' };
    from: string | null;
    config: RunConfig;
    run: string | null;
    device: Device;
  }) => invoke<number>('start_finetune', { request }),
  resumeRun: (run: string) => invoke<number>('resume_run', { run }),
  cancelJob: (job: number) => invoke<void>('cancel_job', { job }),
  jobs: () => invoke<JobInfo[]>('jobs'),
};

export const onEngineEvent = (f: (e: EngineEvent) => void): Promise<UnlistenFn> =>
  listen<EngineEvent>('engine', (e) => f(e.payload));
export const onJobEnded = (f: (j: JobInfo) => void): Promise<UnlistenFn> =>
  listen<JobInfo>('job-ended', (e) => f(e.payload));

/** The store's images reach the page through the `media:` protocol, by hash only. */
export const imageUrl = (hash: string) => convertFileSrc(hash, 'media');
export const thumbUrl = (hash: string) => convertFileSrc(`thumb/${hash}`, 'media');

/** Errors from commands arrive as the engine's message. */
export const message = (e: unknown) => (typeof e === 'string' ? e : e instanceof Error ? e.message : String(e));
