// A stand-in engine for the page's tests: answers each command the way src-tauri's workbench
// does (same shapes, same argument checks that matter to the page), from fixed data.
export type Call = { cmd: string; args: Record<string, unknown> };

declare global {
  // What the next file dialog returns, when a test sets it.
  var __nextPick: string[] | undefined;
}

const HASH = (i: number) => i.toString(16).padStart(64, '0');
const TOTAL = 100_000;

const item = (i: number) => ({
  id: i + 1,
  caption: i % 2 ? `a red circle number ${i}` : `a blue triangle number ${i}`,
  context_before: i === 0 ? 'said before' : '',
  context_after: i === 0 ? 'said after' : '',
  source_path: `/data/shapes/${i}.png`,
  start_s: null,
  end_s: null,
  frame_s: null,
  image_hash: HASH(i % 5000),
  no_speech: false,
  split: i % 10 === 0 ? 'test' : 'train',
});

const datasets = [
  { name: 'shapes', created_at: '2026-11-20T10:00:00Z', items: TOTAL, videos: 0, failed_videos: 0, no_speech_items: 0 },
  { name: 'talks', created_at: '2026-11-21T09:30:00Z', items: 42, videos: 3, failed_videos: 1, no_speech_items: 5 },
];

const runs = [
  { id: 2, name: 'shapes-vqa-1', kind: 'finetune', dataset: 'shapes', status: 'finished', error: null, step: 300, created_at: '', updated_at: '', parent: 'shapes-1', loss: 0.41 },
  { id: 1, name: 'shapes-1', kind: 'pretrain', dataset: 'shapes', status: 'stopped', error: null, step: 200, created_at: '', updated_at: '', parent: null, loss: 2.5 },
];

/** Whisper models installed. */
const installed = ['tiny.en'];

/** Runs started through `start_pretrain` in this page. */
const started: typeof runs = [];

const curve = (name: string, from: number, steps: number) => ({
  split: 'train',
  name,
  steps: Array.from({ length: steps }, (_, i) => (i + 1) * 10),
  values: Array.from({ length: steps }, (_, i) => from / (1 + i / 5)),
});

const objectives = {
  mlm: { enabled: true, weight: 1, mask_ratio: 0.15 },
  mim: { enabled: true, weight: 1, mask_ratio: 0.75 },
  itm: { enabled: true, weight: 1 },
  contrastive: { enabled: false, weight: 1, temperature: 0.07 },
};

const config = {
  model: { hidden: 128, layers: 2, heads: 4, image_size: 64, patch_size: 16 },
  train: { steps: 200, batch: 16, lr: 0.001 },
  objectives,
  task: 'pretrain',
};

function full(cmd: string, a: Record<string, unknown>): unknown {
  switch (cmd) {
    case 'datasets':
      return datasets;
    case 'runs':
      return runs;
    case 'system_info':
      return {
        data_dir: '/home/me/.local/share/tessera',
        device: 'cpu',
        whisper_models: installed.map((name) => ({
          file: `ggml-${name}.bin`,
          path: `/home/me/.local/share/tessera/models/ggml-${name}.bin`,
          size_bytes: 77_691_713,
        })),
        whisper_catalog: ['large-v3', 'small.en', 'base.en', 'tiny.en'].map((name, i) => ({
          name,
          size_mib: [2950, 466, 142, 75][i],
          installed: installed.includes(name),
        })),
        presets: ['tiny', 'small', 'base'],
      };
    case 'verify_whisper':
      if (a.file !== 'ggml-tiny.en.bin') throw `no Whisper model ${JSON.stringify(a.file)} in /home/me/.local/share/tessera/models`;
      return {
        path: '/home/me/.local/share/tessera/models/ggml-tiny.en.bin',
        size_bytes: 77_691_713,
        size_name: 'tiny',
        multilingual: false,
        official: null,
        header: { n_audio_layer: 4, n_text_layer: 4, n_audio_state: 384 },
      };
    case 'start_whisper_install': {
      const req = a.request as { name: string; from: string | null };
      if (!req.from && !['large-v3', 'small.en', 'base.en', 'tiny.en'].includes(req.name))
        throw `no official Whisper model ${JSON.stringify(req.name)}`;
      return 21;
    }
    case 'ablations':
      return [
        {
          name: 'evqa',
          path: '/home/me/.local/share/tessera/ablations/evqa.json',
          table: {
            metrics: ['accuracy'],
            rows: [
              { variant: 'scratch', values: [{ mean: 0.5512, std: 0.0141, n: 3 }], seeds: [[0.54, 0.55, 0.56]] },
              { variant: 'mlm+mim', values: [{ mean: 0.6378, std: 0.0121, n: 3 }], seeds: [[0.63, 0.64, 0.65]] },
            ],
          },
          error: null,
        },
        { name: 'broken', path: '/x/broken.json', table: null, error: '/x/broken.json: EOF while parsing a list at line 1 column 13' },
      ];
    case 'duplicates': {
      const near = a.near as number;
      if (near > 64) throw `--near ${near}: at most 64 bits`;
      if (a.dataset !== 'shapes') return { near, items: 42, duplicates: 0, dropped: 0, groups_total: 0, groups: [] };
      const group = (keep: number, kind: string) => ({
        kind,
        keep,
        items: [keep, keep + 7].map((id) => ({ id, image_hash: HASH(id), phash: 'ffee', source_path: `/data/${id}.png`, caption: `copy of ${keep}` })),
      });
      return {
        near,
        items: TOTAL,
        duplicates: near === 0 ? 1 : 2,
        dropped: a.drop ? (near === 0 ? 1 : 2) : 0,
        groups_total: near === 0 ? 1 : 2,
        groups: near === 0 ? [group(3, 'exact')] : [group(3, 'exact'), group(10, 'near')],
      };
    }
    case 'config_preset':
      if (a.name !== 'tiny' && a.name !== 'small' && a.name !== 'base') throw `unknown model config ${JSON.stringify(a.name)}`;
      return structuredClone(config);
    case 'items': {
      const { dataset, offset, limit, filter } = a as {
        dataset: string;
        offset: number;
        limit: number;
        filter: { split?: string; min_words?: number; max_words?: number };
      };
      if (filter.min_words != null && filter.max_words != null && filter.min_words > filter.max_words)
        throw `at least ${filter.min_words} words and at most ${filter.max_words}: no item can pass`;
      if (dataset !== 'shapes') return { total: 0, offset, items: [] };
      // Every tenth item is in the test split.
      const step = filter.split === 'test' ? 10 : 1;
      const total = TOTAL / step;
      const n = Math.max(0, Math.min(limit, total - offset));
      return { total, offset, items: Array.from({ length: n }, (_, i) => item((offset + i) * step)) };
    }
    case 'dataset_stats':
      return {
        dataset: a.dataset,
        items: TOTAL,
        distinct_images: 5000,
        splits: [
          { split: 'train', items: 90_000 },
          { split: 'test', items: 10_000 },
        ],
        videos: 0,
        files: 5000,
        caption_words_mean: 5,
      };
    case 'start_export':
      return 12;
    case 'checkpoints':
      return runs.map((r) => ({
        run: r.name,
        kind: r.kind,
        status: r.status,
        model: config.model,
        checkpoints: [{ step: r.step, bytes: 3_400_000, created_at: '' }],
      }));
    case 'delete_run': {
      if (a.run === 'shapes-1') throw 'run "shapes-1" is marked running: stop it (or resume and stop it) before deleting';
      const i = runs.findIndex((r) => r.name === a.run);
      runs.splice(i, 1);
      return { run: a.run, checkpoints: 1, bytes: 3_400_000 };
    }
    case 'item':
      if (a.dataset !== 'shapes' || (a.id as number) > TOTAL) throw `no item #${a.id} (see \`tessera items\`)`;
      return item((a.id as number) - 1);
    case 'search_captions': {
      const q = String(a.query);
      if ((q.match(/"/g) ?? []).length % 2) throw `search query ${JSON.stringify(q)}: unterminated string`;
      if (!q.includes('red')) return [];
      return [1, 3, 5].map((i) => ({ score: 3 - i / 10, snippet: `a [red] circle number ${i}`, item: item(i) }));
    }
    case 'edit_caption':
    case 'delete_item':
      return null;
    case 'run_detail': {
      const run = [...runs, ...started].find((r) => r.name === a.run);
      if (!run) throw `no training run named ${JSON.stringify(a.run)}`;
      return {
        run,
        // As the store keeps it: the data set, the whole config, where the weights came from.
        config: { dataset: run.dataset, config: { ...config, task: { kind: run.kind === 'finetune' ? 'vqa' : 'pretrain' } }, init: 'random' },
        curves: [curve('loss', run.id === 1 ? 9 : 3, 20), curve('mlm_loss', 6, 20)],
        evaluations:
          run.kind === 'finetune'
            ? [{ kind: 'vqa', dataset: 'shapes', split: 'test', step: 300, metrics: { accuracy: 0.8621, questions: 9673 } }]
            : [],
      };
    }
    case 'search_text':
      if (!String(a.text).trim()) throw 'the search text is empty';
      return [0, 1, 2].map((i) => ({ score: 0.9 - i / 10, image_hash: HASH(i), item_id: i + 1, captions: [item(i).caption] }));
    case 'search_image':
      return [0, 1].map((i) => ({ score: 0.8 - i / 10, image_hash: HASH(i), item_id: i + 1, captions: [`caption for ${i}`] }));
    case 'pick_image':
      return '/home/me/Pictures/shape.png';
    case 'pick_paths':
      // A test may say what the next dialog returns.
      if (globalThis.__nextPick) {
        const picked = globalThis.__nextPick;
        globalThis.__nextPick = undefined;
        return picked;
      }
      return a.kind === 'folder' ? ['/home/me/photos'] : ['/home/me/a.mp4', '/home/me/b.mov'];
    case 'start_import':
    case 'start_ingest': {
      const req = a.request as { dataset: string };
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(req.dataset)) throw `invalid dataset name ${JSON.stringify(req.dataset)}`;
      return 11;
    }
    case 'ask':
      if (!String(a.question).trim()) throw 'the question is empty';
      return {
        answers: [
          { answer: 'red', probability: 0.91 },
          { answer: 'blue', probability: 0.05 },
          { answer: 'green', probability: 0.02 },
          { answer: 'yes', probability: 0.01 },
          { answer: 'no', probability: 0.01 },
        ],
        attention: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
      };
    case 'start_pretrain': {
      const req = a.request as { dataset: string; run: string | null };
      started.push({ ...runs[1], id: 3, name: req.run ?? 'shapes-3', dataset: req.dataset, status: 'running', step: 0 });
      return 7;
    }
    case 'start_finetune':
      return 9;
    case 'resume_run':
      return 8;
    case 'cancel_job':
      return null;
    case 'jobs':
      return [];
  }
  throw `the mock engine has no command ${cmd}`;
}

export function engine(scenario: string, cmd: string, a: Record<string, unknown>): unknown {
  if (scenario === 'error') throw 'database disk image is malformed: /home/me/.local/share/tessera/catalog.sqlite';
  if (scenario === 'empty') {
    if (cmd === 'datasets' || cmd === 'runs') return [];
    if (cmd === 'system_info') {
      installed.length = 0;
      return full(cmd, a);
    }
    if (cmd === 'ablations') return [];
  }
  return full(cmd, a);
}
