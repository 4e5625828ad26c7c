// Every screen's main flow and its error state, in a real browser, against the page with the
// engine mocked (test/engine.ts): clicks and typing in, assertions on what is shown.
import { expect, test, type Page } from '@playwright/test';
import '../test/harness-types';

const open = async (page: Page, scenario = 'full') => {
  await page.goto(`/test/harness.html?scenario=${scenario}`);
  await expect(page.getByRole('navigation', { name: 'screens' })).toBeVisible();
};
const go = (page: Page, screen: string) => page.getByRole('navigation').getByRole('button', { name: screen }).click();
const calls = (page: Page, cmd: string) =>
  page.evaluate((c) => window.__calls.filter((x) => x.cmd === c).map((x) => x.args), cmd);
const emit = (page: Page, name: string, payload: unknown) =>
  page.evaluate(([n, p]) => window.__emit(n as string, p), [name, payload] as const);

test('library lists data sets with counts and opens one in the browser', async ({ page }) => {
  await open(page);
  const rows = page.getByRole('table', { name: 'data sets' }).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toContainText('shapes');
  await expect(rows.nth(0)).toContainText('100,000');
  await expect(rows.nth(1)).toContainText('talks');
  await rows.nth(0).click();
  await expect(page.getByRole('heading', { name: 'Browse' })).toBeVisible();
  await expect(page.getByLabel('data set', { exact: true })).toHaveValue('shapes');
});

test('library: empty and error states', async ({ page }) => {
  await open(page, 'empty');
  await expect(page.getByText('No data sets yet')).toBeVisible();
  await open(page, 'error');
  await expect(page.getByRole('alert')).toContainText('database disk image is malformed');
});

test('library: ingest picked videos with per-file progress, a failure and its reason, cancel', async ({ page }) => {
  await open(page);
  const add = page.getByLabel('add data');
  await expect(add.getByRole('button', { name: 'Ingest' })).toBeDisabled();
  await add.getByLabel('new data set').fill('talks2');
  await add.getByRole('button', { name: 'Choose files…' }).click();
  await expect(add.getByLabel('chosen paths')).toContainText('/home/me/a.mp4');
  await expect(add.getByLabel('chosen paths')).toContainText('/home/me/b.mov');
  await add.getByRole('button', { name: 'Ingest' }).click();
  expect(await calls(page, 'start_ingest')).toEqual([
    { request: { dataset: 'talks2', paths: ['/home/me/a.mp4', '/home/me/b.mov'] } },
  ]);
  await emit(page, 'engine', { job: 11, event: 'video_started', index: 0, path: '/home/me/a.mp4' });
  await emit(page, 'engine', { job: 11, event: 'stage_progress', path: '/home/me/a.mp4', stage: 'transcribed', fraction: 0.5 });
  const files = add.getByRole('table', { name: 'files' });
  await expect(files).toContainText('transcribed 50%');
  await emit(page, 'engine', { job: 11, event: 'video_finished', index: 0, path: '/home/me/a.mp4', result: { outcome: 'ingested', items: 7 } });
  await emit(page, 'engine', { job: 11, event: 'video_finished', index: 1, path: '/home/me/b.mov', result: { outcome: 'failed', reason: 'b.mov: no video stream' } });
  await expect(files.locator('tr').nth(0)).toContainText('ingested: 7 items');
  await expect(files.locator('tr.failed')).toContainText('b.mov: no video stream');
  await expect(add.getByLabel('progress')).toContainText('2 done, 1 failed');
  await add.getByRole('button', { name: 'Cancel' }).click();
  expect(await calls(page, 'cancel_job')).toEqual([{ job: 11 }]);
  await emit(page, 'job-ended', { id: 11, what: 'ingest', state: 'finished', report: { videos: [], cancelled: true }, error: null });
  await expect(add.getByLabel('progress')).toContainText('cancelled');
  await expect(add.getByRole('button', { name: 'Cancel' })).toBeDisabled();
});

test('library: import a dropped folder, problems listed; a bad name refused', async ({ page }) => {
  await open(page);
  const add = page.getByLabel('add data');
  await add.getByLabel('what to add').selectOption('easy_vqa');
  await emit(page, 'tauri://drag-drop', { paths: ['/home/me/easy-vqa/data'], position: { x: 10, y: 10 } });
  await expect(add.getByLabel('chosen paths')).toContainText('/home/me/easy-vqa/data');
  await add.getByLabel('new data set').fill('bad name!');
  await add.getByRole('button', { name: 'Import' }).click();
  await expect(add.getByRole('alert')).toContainText('invalid dataset name "bad name!"');
  await add.getByLabel('new data set').fill('vqa');
  await add.getByRole('button', { name: 'Import' }).click();
  const [req] = (await calls(page, 'start_import')).slice(-1);
  expect(req).toEqual({
    request: {
      dataset: 'vqa',
      format: 'easy_vqa',
      path: '/home/me/easy-vqa/data',
      strict: false,
      image_column: null,
      caption_column: null,
      images_dir: null,
      annotations: null,
    },
  });
  await emit(page, 'engine', { job: 11, event: 'import_image_done', source: 'train/images/0.png', ok: true });
  await emit(page, 'engine', { job: 11, event: 'import_image_done', source: 'train/images/1.png', ok: false });
  await emit(page, 'engine', { job: 11, event: 'import_problem', message: 'train/images/1.png: truncated PNG' });
  await expect(add.getByLabel('problems')).toContainText('train/images/1.png: truncated PNG');
  await emit(page, 'job-ended', { id: 11, what: 'import', state: 'finished', report: { added: 9, unchanged: 0, cancelled: false }, error: null });
  await expect(add.getByLabel('progress')).toContainText('2 done, 1 failed · finished · 9 items added, 0 already there');
});

test('library: import options per format (columns, COCO images folder, VQA v2 annotations, strict) reach the engine', async ({ page }) => {
  await open(page);
  const add = page.getByLabel('add data');
  await add.getByLabel('new data set').fill('pairs');
  await add.getByLabel('what to add').selectOption('csv');
  const options = add.getByLabel('import options');
  await options.getByLabel('image column').fill('file');
  await options.getByLabel('caption column').fill('text');
  await options.getByLabel('strict').check();
  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/pairs.csv']));
  await add.getByRole('button', { name: 'Choose files…' }).click();
  await add.getByRole('button', { name: 'Import' }).click();
  expect((await calls(page, 'start_import')).slice(-1)).toEqual([
    {
      request: {
        dataset: 'pairs',
        format: 'csv',
        path: '/home/me/pairs.csv',
        strict: true,
        image_column: 'file',
        caption_column: 'text',
        images_dir: null,
        annotations: null,
      },
    },
  ]);
  await emit(page, 'engine', { job: 11, event: 'import_problem', message: '/home/me/pairs.csv:4: /home/me/missing.png: no such file' });
  await emit(page, 'job-ended', { id: 11, what: 'import', state: 'finished', report: { added: 0, unchanged: 0, aborted: true, cancelled: false }, error: null });
  await expect(add.getByLabel('progress')).toContainText('stopped at the first problem (strict): nothing written');
  await expect(add.getByLabel('progress')).not.toContainText('items added');

  // COCO: the images folder is chosen in its own dialog and sent with the captions file.
  await add.getByLabel('what to add').selectOption('coco');
  await expect(options.getByLabel('image column')).toHaveCount(0);
  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/coco/val2017']));
  await options.getByRole('button', { name: 'Images folder…' }).click();
  await expect(options).toContainText('/home/me/coco/val2017');
  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/coco/captions_val2017.json']));
  await add.getByRole('button', { name: 'Choose files…' }).click();
  await add.getByLabel('new data set').fill('coco');
  await add.getByRole('button', { name: 'Import' }).click();
  const [coco] = (await calls(page, 'start_import')).slice(-1);
  expect(coco.request).toMatchObject({ format: 'coco', path: '/home/me/coco/captions_val2017.json', images_dir: '/home/me/coco/val2017', annotations: null });

  await emit(page, 'job-ended', { id: 11, what: 'import', state: 'finished', report: { added: 5, unchanged: 0, cancelled: false }, error: null });

  // VQA v2: the annotations file.
  await add.getByLabel('what to add').selectOption('vqa2');
  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/v2_mscoco_val2014_annotations.json']));
  await options.getByRole('button', { name: 'Annotations file…' }).click();
  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/v2_OpenEnded_mscoco_val2014_questions.json']));
  await add.getByRole('button', { name: 'Choose files…' }).click();
  await add.getByRole('button', { name: 'Import' }).click();
  const [vqa] = (await calls(page, 'start_import')).slice(-1);
  expect(vqa.request).toMatchObject({ format: 'vqa2', annotations: '/home/me/v2_mscoco_val2014_annotations.json', images_dir: null });
});

test('browser: duplicate groups side by side, an item opens, drop asks once more', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  await page.getByLabel('duplicates').check();
  const groups = page.getByRole('listitem', { name: 'duplicate group' });
  await expect(groups).toHaveCount(2);
  await expect(page.locator('.dups')).toContainText('2 duplicates in 2 groups among 100000 items');
  await expect(groups.first()).toContainText('exact');
  await expect(groups.nth(1)).toContainText('near');
  // (React's strict mode may load twice; neither call drops anything.)
  expect(new Set((await calls(page, 'duplicates')).map((c) => JSON.stringify(c)))).toEqual(
    new Set([JSON.stringify({ dataset: 'shapes', near: 4, drop: false })]),
  );
  await page.getByLabel('near bits').fill('0');
  await expect(groups).toHaveCount(1);
  await groups.first().locator('figure').nth(1).click();
  await expect(page.getByRole('complementary', { name: 'item' })).toContainText('#10');
  await page.getByRole('button', { name: 'Drop duplicates…' }).click();
  expect((await calls(page, 'duplicates')).filter((c) => c.drop)).toEqual([]);
  await page.getByRole('button', { name: 'Delete 1 items?' }).click();
  expect((await calls(page, 'duplicates')).filter((c) => c.drop)).toEqual([{ dataset: 'shapes', near: 0, drop: true }]);
  await expect(page.getByRole('status')).toContainText('1 duplicates deleted; the first item of each group was kept.');
  await page.getByLabel('near bits').fill('99');
  await expect(page.getByLabel('near bits')).toHaveValue('64');
  await page.getByLabel('duplicates').uncheck();
  await expect(page.locator('figure.tile').first()).toBeVisible();
});

test('the grid is virtualised: 100k items, a few tiles in the page, pages fetched on scroll', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  const grid = page.getByLabel('items');
  await expect(grid).toHaveAttribute('data-total', '100000');
  await expect(page.locator('figure.tile').first()).toContainText('a blue triangle number 0');
  const tiles = await page.locator('figure.tile, .tile.placeholder').count();
  expect(tiles).toBeGreaterThan(4);
  expect(tiles).toBeLessThan(200);
  await grid.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await expect(page.locator('figure.tile[data-item="50001"]')).toBeVisible();
  const offsets = (await calls(page, 'items')).map((a) => a.offset as number);
  expect(offsets).toContain(0);
  expect(Math.max(...offsets)).toBeGreaterThanOrEqual(49_800);
  // Only the pages in view were asked for, not the whole data set.
  expect(offsets.length).toBeLessThan(10);
});

test('browser: search, open an item, edit its caption, delete it; bad query and no hits', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  await page.getByLabel('search captions').fill('red');
  await page.getByRole('button', { name: 'Search' }).click();
  const hits = page.getByRole('list', { name: 'search results' }).locator('li');
  await expect(hits).toHaveCount(3);
  await hits.nth(1).click();
  const panel = page.getByRole('complementary', { name: 'item' });
  await expect(panel).toContainText('#4');
  await panel.getByLabel('caption').fill('  a red circle, edited  ');
  await panel.getByRole('button', { name: 'Save caption' }).click();
  await expect(panel.getByText('saved')).toBeVisible();
  expect(await calls(page, 'edit_caption')).toEqual([{ dataset: 'shapes', id: 4, caption: '  a red circle, edited  ' }]);
  await panel.getByRole('button', { name: 'Delete item' }).click();
  await expect(panel).toBeHidden();
  expect(await calls(page, 'delete_item')).toEqual([{ dataset: 'shapes', id: 4 }]);

  await page.getByLabel('search captions').fill('purple');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByText('No caption in shapes matches “purple”.')).toBeVisible();
  await page.getByLabel('search captions').fill('"red');
  await page.getByRole('button', { name: 'Search' }).click();
  await expect(page.getByRole('alert')).toContainText('unterminated string');
});

test('browser: filters reach the engine and narrow the grid; an impossible range is explained', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  await expect(page.getByLabel('items')).toHaveAttribute('data-total', '100000');
  await page.getByLabel('split filter').selectOption('test');
  await expect(page.getByLabel('items')).toHaveAttribute('data-total', '10000');
  await expect(page.locator('figure.tile').nth(1)).toContainText('number 10');
  const last = (await calls(page, 'items')).slice(-1)[0];
  expect(last.filter).toEqual({ split: 'test' });
  await page.getByLabel('min words').fill('9');
  await page.getByLabel('max words').fill('3');
  await page.getByLabel('max words').blur();
  await expect(page.getByRole('alert')).toContainText('no item can pass');
});

test('browser: export to WebDataset into a chosen folder, with progress and the result', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  const exp = page.getByLabel('export');
  await exp.getByRole('button', { name: 'Export WebDataset…' }).click();
  expect(await calls(page, 'start_export')).toEqual([{ request: { dataset: 'shapes', out: '/home/me/photos', split: null } }]);
  await expect(exp.getByRole('button', { name: 'Export WebDataset…' })).toBeDisabled();
  await emit(page, 'engine', { job: 12, event: 'export_item_done' });
  await emit(page, 'engine', { job: 12, event: 'export_item_done' });
  await expect(exp).toContainText('2 items written…');
  await emit(page, 'job-ended', {
    id: 12,
    what: 'export',
    state: 'finished',
    report: { items: 2, path: '/home/me/photos', files: ['/home/me/photos/00000.tar'] },
    error: null,
  });
  await expect(exp).toContainText('exported 2 items to /home/me/photos (1 shard)');
  await exp.getByRole('button', { name: 'Export WebDataset…' }).click();
  await emit(page, 'job-ended', { id: 12, what: 'export', state: 'failed', report: null, error: '/home/me/photos holds shards already' });
  await expect(exp.getByRole('alert')).toContainText('holds shards already');
});

test('browser: a video item shows its context; an empty data set says so', async ({ page }) => {
  await open(page);
  await go(page, 'Browse');
  await page.locator('figure.tile[data-item="1"]').click();
  const panel = page.getByRole('complementary', { name: 'item' });
  await expect(panel).toContainText('said before');
  await expect(panel).toContainText('said after');
  await page.getByLabel('data set', { exact: true }).selectOption('talks');
  await expect(page.getByText('talks has no items.')).toBeVisible();
});

test('train: objectives switched and steps set reach the engine; live progress; stop and resume', async ({ page }) => {
  await open(page);
  await go(page, 'Train');
  await expect(page.getByLabel('objective mlm')).toBeChecked();
  await page.getByLabel('objective mlm').uncheck();
  await page.getByLabel('objective contrastive').check();
  await page.getByLabel('mim mask_ratio').fill('0.5');
  await page.getByLabel('steps').fill('50');
  await page.getByLabel('run name').fill('my-run');
  await page.getByRole('button', { name: 'Start' }).click();
  const [req] = (await calls(page, 'start_pretrain')).map((a) => a.request as any);
  expect(req.dataset).toBe('shapes');
  expect(req.run).toBe('my-run');
  expect(req.config.train.steps).toBe(50);
  expect(req.config.objectives.mlm.enabled).toBe(false);
  expect(req.config.objectives.contrastive.enabled).toBe(true);
  expect(req.config.objectives.mim.mask_ratio).toBe(0.5);

  await emit(page, 'engine', { job: 7, event: 'train_started', run: 'my-run', step: 0, steps: 50, device: 'cpu' });
  await emit(page, 'engine', { job: 7, event: 'train_step', step: 1, steps: 50, loss: 9.5, samples_per_s: 32 });
  await emit(page, 'engine', { job: 7, event: 'train_step', step: 2, steps: 50, loss: 9.1, samples_per_s: 32 });
  // Events of another job are not this screen's.
  await emit(page, 'engine', { job: 99, event: 'train_step', step: 40, steps: 50, loss: 1, samples_per_s: 1 });
  const live = page.getByLabel('training');
  await expect(live).toContainText('step 2/50');
  await expect(live).toContainText('device cpu');
  await expect(live).toContainText('32.0 samples/s');
  await expect(live).toContainText('ETA 24 s');
  // The run's stored per-objective curves are drawn.
  await expect(live.locator('.chart')).toHaveAttribute('data-series', /train mlm_loss/);

  await page.getByRole('button', { name: 'Stop' }).click();
  expect(await calls(page, 'cancel_job')).toEqual([{ job: 7 }]);
  await emit(page, 'job-ended', { id: 7, what: 'pre-train', state: 'finished', report: { run: 'my-run', status: 'stopped', step: 2, steps: 50 }, error: null });
  await expect(live).toContainText('stopped');
  await page.getByRole('button', { name: 'Resume my-run' }).click();
  expect(await calls(page, 'resume_run')).toEqual([{ run: 'my-run' }]);
});

test('train: fine-tune for VQA from a run sends the task, parent and answer count', async ({ page }) => {
  await open(page);
  await go(page, 'Train');
  await page.getByLabel('task').selectOption('vqa');
  await expect(page.getByRole('table', { name: 'objectives' })).toBeHidden();
  await page.getByLabel('from run').selectOption('shapes-1');
  await page.getByLabel('answers').fill('13');
  await page.getByLabel('steps').fill('300');
  await page.getByRole('button', { name: 'Start' }).click();
  const [req] = (await calls(page, 'start_finetune')).map((a) => a.request as any);
  expect(req).toMatchObject({ dataset: 'shapes', task: { kind: 'vqa', answers: 13 }, from: 'shapes-1', run: null, device: 'auto' });
  expect(req.config.train.steps).toBe(300);
  await emit(page, 'engine', { job: 9, event: 'train_started', run: 'shapes-vqa-2', step: 0, steps: 300, device: 'cpu' });
  await expect(page.getByLabel('training')).toContainText('shapes-vqa-2 step 0/300');
});

test('train: an engine refusal is shown', async ({ page }) => {
  await open(page);
  await go(page, 'Train');
  await page.getByLabel('model config').selectOption('small');
  await page.evaluate(() => (window.__fail.start_pretrain = 'train.batch must be at least 2'));
  await page.getByRole('button', { name: 'Start' }).click();
  await expect(page.getByRole('alert')).toContainText('train.batch must be at least 2');
});

test('runs: table, overlay two runs, evaluations', async ({ page }) => {
  await open(page);
  await go(page, 'Runs');
  const rows = page.getByRole('table', { name: 'runs' }).locator('tbody tr');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText('stopped');
  await page.getByLabel('compare shapes-vqa-1').check();
  await page.getByLabel('compare shapes-1').check();
  const chart = page.locator('.compare .chart');
  await expect(chart).toHaveAttribute('data-series', 'shapes-vqa-1|shapes-1');
  await expect(chart.locator('canvas')).toBeVisible();
  await page.getByLabel('metric').selectOption('train mlm_loss');
  await expect(page.locator('.compare .u-title')).toHaveText('train mlm_loss');
  await expect(page.getByRole('table', { name: 'evaluations' })).toContainText('accuracy 0.8621');
  const configs = page.getByRole('table', { name: 'configs' }).locator('tbody tr');
  await expect(configs).toHaveCount(2);
  await expect(configs.nth(0)).toContainText('shapes-vqa-1vqaD=128 L=2 H=4 · 64 px / 16 px patches—200160.001');
  await expect(configs.nth(1)).toContainText('shapes-1pretrainD=128 L=2 H=4 · 64 px / 16 px patchesmlm 0.15, mim 0.75, itm200');
});

test('runs: ablation tables with mean ± std, the best in bold; a damaged file says why', async ({ page }) => {
  await open(page);
  await go(page, 'Runs');
  const table = page.getByRole('table', { name: 'ablation evqa' });
  await expect(table.locator('tbody tr')).toHaveCount(2);
  await expect(table.locator('tbody tr').nth(0)).toContainText('scratch55.1 ± 1.43');
  await expect(table.locator('tbody tr').nth(1).locator('b')).toHaveText('63.8 ± 1.2');
  await expect(page.getByRole('alert')).toContainText('broken.json: EOF while parsing');
  await open(page, 'empty');
  await go(page, 'Runs');
  await expect(page.getByText('No ablations yet.')).toBeVisible();
});

test('runs: empty and error states', async ({ page }) => {
  await open(page, 'empty');
  await go(page, 'Runs');
  await expect(page.getByText('No runs yet.')).toBeVisible();
  await open(page, 'error');
  await go(page, 'Runs');
  // The runs and the ablations each say what failed.
  await expect(page.getByRole('alert')).toHaveCount(2);
  await expect(page.getByRole('alert').first()).toContainText('malformed');
});

test('retrieval: text to images, image to captions, re-rank flag; errors shown', async ({ page }) => {
  await open(page);
  await go(page, 'Retrieval');
  await page.getByLabel('text query').fill('a red circle');
  await page.getByLabel('re-rank').check();
  await page.getByRole('button', { name: 'Find images' }).click();
  const ranked = page.getByRole('list', { name: 'ranked results' }).locator('li');
  await expect(ranked).toHaveCount(3);
  await expect(ranked.first()).toContainText('0.900');
  await expect(ranked.first().locator('img')).toHaveAttribute('src', /^media:\/\/localhost\/thumb/);
  expect(await calls(page, 'search_text')).toEqual([
    { run: 'shapes-vqa-1', dataset: null, text: 'a red circle', k: 12, rerank: true },
  ]);
  await page.getByRole('button', { name: 'Find captions for an image…' }).click();
  await expect(ranked).toHaveCount(2);
  await expect(ranked.first()).toContainText('caption for 0');
  const [img] = await calls(page, 'search_image');
  expect(img.image).toEqual({ kind: 'file', path: '/home/me/Pictures/shape.png' });

  // A hit opens its item in the browser.
  await page.getByRole('button', { name: 'Find images' }).click();
  await ranked.nth(1).click();
  await expect(page.getByRole('heading', { name: 'Browse' })).toBeVisible();
  await expect(page.getByRole('complementary', { name: 'item' })).toContainText('#2');
  expect((await calls(page, 'item')).slice(-1)).toEqual([{ dataset: 'shapes', id: 2 }]);
  await go(page, 'Retrieval');

  await page.getByLabel('text query').fill('   ');
  await page.getByRole('button', { name: 'Find images' }).click();
  await expect(page.getByRole('alert')).toContainText('the search text is empty');
});

test('retrieval and ask without runs say what to do', async ({ page }) => {
  await open(page, 'empty');
  await go(page, 'Retrieval');
  await expect(page.getByText('No trained run yet')).toBeVisible();
  await go(page, 'Ask');
  await expect(page.getByText('No fine-tuned run yet')).toBeVisible();
});

test('ask: pick an image, ask, see answers with probabilities, attention and history', async ({ page }) => {
  await open(page);
  await go(page, 'Ask');
  const askButton = page.getByRole('main').getByRole('button', { name: 'Ask' });
  await expect(askButton).toBeDisabled();
  await page.getByLabel('pick an image').locator('img').nth(2).click();
  await page.getByLabel('question').fill('what color is the shape?');
  await askButton.click();
  const answers = page.getByRole('list', { name: 'answers' }).locator('li');
  await expect(answers).toHaveCount(5);
  await expect(answers.first()).toContainText('red');
  await expect(answers.first()).toContainText('91.0%');
  await expect(page.getByAltText('attention over the image')).toHaveAttribute('src', /^data:image\/png;base64,/);
  const [a] = await calls(page, 'ask');
  expect(a).toMatchObject({ run: 'shapes-vqa-1', question: 'what color is the shape?', image: { kind: 'stored', hash: '2'.padStart(64, '0') } });

  await page.getByLabel('question').fill('is there a circle?');
  await askButton.click();
  await expect(page.getByRole('list', { name: 'history' })).toContainText('what color is the shape? → red');

  await page.getByLabel('question').fill(' ');
  await askButton.click();
  await expect(page.getByRole('alert')).toContainText('the question is empty');
});

test('models: device, data directory, whisper models verified; none installed', async ({ page }) => {
  await open(page);
  await go(page, 'Models');
  await expect(page.getByTestId('device')).toHaveText('cpu');
  const models = page.getByRole('table', { name: 'whisper models' });
  await expect(models).toContainText('ggml-tiny.en.bin');
  await expect(models).toContainText('77.7 MB');
  await models.getByRole('button', { name: 'verify tiny.en' }).click();
  await expect(page.getByLabel('check of tiny.en')).toHaveText('ok: tiny, English-only, not an official checksum');
  expect(await calls(page, 'verify_whisper')).toEqual([{ file: 'ggml-tiny.en.bin' }]);
  await open(page, 'empty');
  await go(page, 'Models');
  await expect(page.getByText('None installed')).toBeVisible();
  await open(page, 'error');
  await go(page, 'Models');
  await expect(page.getByRole('alert')).toHaveCount(2);
  await expect(page.getByRole('alert').first()).toContainText('malformed');
});

test('models: install Whisper from the catalogue with progress and cancel, or from a chosen file', async ({ page }) => {
  await open(page);
  await go(page, 'Models');
  const install = page.getByLabel('install whisper');
  await install.getByLabel('official model').selectOption('base.en');
  await install.getByRole('button', { name: 'Download' }).click();
  expect(await calls(page, 'start_whisper_install')).toEqual([{ request: { name: 'base.en', from: null } }]);
  await emit(page, 'engine', { job: 21, event: 'download', name: 'base.en', done: 74_000_000, total: 148_000_000 });
  const progress = page.getByLabel('whisper install');
  await expect(progress).toContainText('installing base.en');
  await expect(progress).toContainText('74.0 MB of 148.0 MB');
  await expect(progress.locator('progress')).toHaveAttribute('value', '74000000');
  await expect(install.getByRole('button', { name: 'Download' })).toBeDisabled();
  await install.getByRole('button', { name: 'Cancel' }).click();
  expect(await calls(page, 'cancel_job')).toEqual([{ job: 21 }]);
  await emit(page, 'job-ended', { id: 21, what: 'install', state: 'failed', report: null, error: 'installing base.en was cancelled; nothing was kept' });
  await expect(progress.getByRole('alert')).toContainText('was cancelled; nothing was kept');
  // The model list is read again once a job ends.
  expect((await calls(page, 'system_info')).length).toBeGreaterThan(1);

  await page.evaluate(() => (globalThis.__nextPick = ['/home/me/models/ggml-small.en-q5.bin']));
  await install.getByRole('button', { name: 'Install a model file…' }).click();
  expect((await calls(page, 'start_whisper_install')).slice(-1)).toEqual([
    { request: { name: 'small.en-q5', from: '/home/me/models/ggml-small.en-q5.bin' } },
  ]);
  await emit(page, 'job-ended', { id: 21, what: 'install', state: 'finished', report: { path: '/x' }, error: null });
  await expect(progress).toContainText('installed small.en-q5');
});

test('models: checkpoints with sizes; delete asks once more, refusals shown', async ({ page }) => {
  await open(page);
  await go(page, 'Models');
  const table = page.getByRole('table', { name: 'checkpoints' });
  await expect(table.locator('tbody tr')).toHaveCount(2);
  await expect(table.locator('tbody tr').first()).toContainText('D=128 L=2 H=4 · 64 px / 16 px patches');
  await expect(table.locator('tbody tr').first()).toContainText('3.4 MB');
  await table.locator('tbody tr').nth(1).getByRole('button', { name: 'Delete…' }).click();
  await table.getByRole('button', { name: 'Delete shapes-1 and its files' }).click();
  await expect(page.getByRole('alert')).toContainText('is marked running');
  await table.locator('tbody tr').first().getByRole('button', { name: 'Delete…' }).click();
  expect(await calls(page, 'delete_run')).toEqual([{ run: 'shapes-1' }]);
  await table.getByRole('button', { name: 'Delete shapes-vqa-1 and its files' }).click();
  await expect(page.getByText('deleted shapes-vqa-1: 1 checkpoints, 3.4 MB')).toBeVisible();
  await expect(table.locator('tbody tr')).toHaveCount(1);
});

test('a POSIX locale ("C", as WebKitGTK reports with LANG unset) does not stop the page', async ({ page }) => {
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'language', { get: () => 'C' }));
  await open(page);
  await go(page, 'Runs');
  await page.getByLabel('compare shapes-1').check();
  await expect(page.locator('.compare .chart canvas')).toBeVisible();
});
