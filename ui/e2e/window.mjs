// The built app in a real window (WebKitGTK under Xvfb), driven through tauri-driver over the
// data directory scripts/app-e2e.sh prepared: browse, search captions, search images by text,
// ask a question; screenshots in $SHOTS. Every check reads what the window shows.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { Builder, By, Capabilities, until } from 'selenium-webdriver';

const { TESSERA_APP: app, TESSERA_E2E_DATA: data, SHOTS: shots } = process.env;
const WAIT = 120_000;

const caps = new Capabilities();
caps.setBrowserName('wry');
caps.set('tauri:options', { application: app, args: ['--data-dir', data] });
const driver = await new Builder().withCapabilities(caps).usingServer('http://127.0.0.1:4444/').build();

const $ = (css) => driver.wait(until.elementLocated(By.css(css)), WAIT);
const $$ = async (css, atLeast = 1) => {
  await driver.wait(async () => (await driver.findElements(By.css(css))).length >= atLeast, WAIT, `${atLeast}× ${css}`);
  return driver.findElements(By.css(css));
};
const screen = async (name) => (await driver.findElement(By.xpath(`//nav//button[text()='${name}']`))).click();
const shot = async (name) => writeFile(`${shots}/${name}.png`, await driver.takeScreenshot(), 'base64');
/** Waits until the image has loaded through the `media:` protocol (or a data URL). */
const loaded = (img) =>
  driver.wait(() => driver.executeScript('return arguments[0].complete && arguments[0].naturalWidth', img), WAIT, 'image loads');
/** The element's text as the DOM holds it (WebDriver's getText drops clamped text). */
const text = (el) => driver.executeScript('return arguments[0].textContent', el);
/** Picks an option of a <select> the way a user does: clicking it. */
const choose = async (label, option) =>
  (await driver.findElement(By.xpath(`//select[@aria-label='${label}']/option[starts-with(text(), '${option}')]`))).click();
const step = async (name, f) => {
  process.stdout.write(`window: ${name} … `);
  try {
    await f();
  } catch (e) {
    await shot('failed').catch(() => {});
    throw e;
  }
  console.log('ok');
};

try {
  await step('library lists the prepared data sets', async () => {
    const rows = await $$('table[aria-label="data sets"] tbody tr', 2);
    const text = await Promise.all(rows.map((r) => r.getText()));
    assert.ok(text.some((t) => t.startsWith('e2e-vqa')), text.join('\n'));
    assert.ok(text.some((t) => t.startsWith('e2e-video')), text.join('\n'));
    await shot('1-library');
  });

  await step('browse the video data set: keyframes with their speech', async () => {
    await (await driver.findElement(By.xpath("//table[@aria-label='data sets']//td[text()='e2e-video']"))).click();
    const tiles = await $$('figure.tile', 2);
    await loaded(await tiles[0].findElement(By.css('img')));
    const caption = await text(await tiles[0].findElement(By.css('figcaption')));
    assert.ok(caption.split(' ').length >= 3, `a transcribed caption, got ${caption}`);
    await tiles[0].click();
    const panel = await $('aside[aria-label="item"]');
    assert.match(await panel.getText(), /talk\.mp4/);
    await shot('2-browse-video');
    // Search a word the transcript has.
    const word = caption.split(/\W+/).find((w) => w.length >= 5) ?? caption.split(' ')[0];
    await (await $('input[aria-label="search captions"]')).sendKeys(word);
    await (await driver.findElement(By.xpath("//button[text()='Search']"))).click();
    const hits = await $$('ol[aria-label="search results"] li');
    assert.match((await hits[0].getText()).toLowerCase(), new RegExp(word.toLowerCase()));
    await shot('3-search-caption');
  });

  await step('browse easy-VQA and search its questions', async () => {
    await choose('data set', 'e2e-vqa');
    // The search stays as typed across data sets; clear it to see the grid.
    await (await driver.findElement(By.xpath("//button[text()='Clear']"))).click();
    await driver.wait(async () => (await (await $('[aria-label="items"]')).getAttribute('data-total')) !== null, WAIT);
    const total = Number(await (await $('[aria-label="items"]')).getAttribute('data-total'));
    assert.ok(total > 1000, `easy-VQA subset: one item per question, got ${total}`);
    const search = await $('input[aria-label="search captions"]');
    await search.clear();
    await search.sendKeys('circle');
    await (await driver.findElement(By.xpath("//button[text()='Search']"))).click();
    const hits = await $$('ol[aria-label="search results"] li');
    assert.match(await hits[0].getText(), /circle/);
    await hits[0].click();
    assert.match(await (await $('aside[aria-label="item"]')).getText(), /Q: .*circle/);
  });

  await step('browse: duplicate groups of easy-VQA (the same question about alike pictures)', async () => {
    await (await driver.findElement(By.xpath("//button[text()='Clear']"))).click();
    // The filters are complete once the split counts have arrived.
    await $$('select[aria-label="split filter"] option', 2);
    await (await $('input[aria-label="duplicates"]')).click();
    const summary = await $('[aria-label="duplicate groups"] p');
    assert.match(await text(summary), /\d+ duplicates in \d+ groups among \d+ items/);
    const groups = await $$('li[aria-label="duplicate group"]');
    const first = await $$('li[aria-label="duplicate group"]:first-child figure img', 2);
    await loaded(first[0]);
    assert.ok(groups.length > 0);
    await shot('4b-duplicates');
    await (await $('input[aria-label="duplicates"]')).click();
  });

  await step('retrieval: text to images through the pre-trained run', async () => {
    await screen('Retrieval');
    await choose('run', 'e2e-pre');
    await (await $('input[aria-label="text query"]')).sendKeys('a red circle');
    await (await driver.findElement(By.xpath("//button[text()='Find images']"))).click();
    const ranked = await $$('ol[aria-label="ranked results"] li', 12);
    const scores = await Promise.all(ranked.map(async (li) => Number(await li.findElement(By.css('.score')).getText())));
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a), 'best first');
    await loaded(await ranked[0].findElement(By.css('img')));
    await shot('4-retrieval');
    // A hit opens its item in the browser.
    await ranked[0].click();
    assert.match(await text(await $('aside[aria-label="item"]')), /Q: /);
  });

  await step('ask: a question about a picked image, answers and attention', async () => {
    await screen('Ask');
    const strip = await $$('[aria-label="pick an image"] img', 3);
    await loaded(strip[0]);
    await strip[0].click();
    await (await $('input[aria-label="question"]')).sendKeys('what color is the shape?');
    await (await driver.findElement(By.xpath("//main//button[text()='Ask']"))).click();
    const answers = await $$('ol[aria-label="answers"] li', 5);
    const probs = await Promise.all(answers.map(async (li) => parseFloat(await li.findElement(By.css('.num')).getText())));
    assert.deepEqual(probs, [...probs].sort((a, b) => b - a), 'most probable first');
    assert.ok(probs.reduce((a, b) => a + b) <= 100.5);
    assert.equal(await loaded(await $('img.attention')), 256);
    await shot('5-ask');
  });

  await step('train: start, live progress streamed from the engine, stop, resume offered', async () => {
    await screen('Train');
    await choose('train data set', 'e2e-vqa');
    const steps = await $('input[aria-label="steps"]');
    await steps.clear();
    await steps.sendKeys('5000');
    await (await $('input[aria-label="run name"]')).sendKeys('e2e-live');
    await (await driver.findElement(By.xpath("//button[text()='Start']"))).click();
    const live = await $('[aria-label="training"]');
    await driver.wait(async () => /step ([3-9]|\d\d+)\/5000/.test(await text(live)), WAIT, 'steps stream in');
    assert.match(await text(live), /device cpu/);
    assert.match(await text(live), /samples\/s/);
    await $('[aria-label="training"] .chart canvas');
    await shot('6-train');
    await (await driver.findElement(By.xpath("//button[text()='Stop']"))).click();
    await driver.wait(async () => /stopped/.test(await text(live)), WAIT, 'the run stops');
    const resume = await driver.findElements(By.xpath("//button[normalize-space(.)='Resume e2e-live']"));
    assert.equal(resume.length, 1, 'resume is offered');
  });

  await step('runs: both runs listed, curves drawn', async () => {
    await screen('Runs');
    const rows = await $$('table[aria-label="runs"] tbody tr', 2);
    const listed = (await Promise.all(rows.map((r) => r.getText()))).join('\n');
    assert.match(listed, /e2e-pre/);
    assert.match(listed, /e2e-ask/);
    await (await $('input[aria-label="compare e2e-pre"]')).click();
    await $('.compare .chart canvas');
    // What the compared run was trained with, as the store keeps it.
    const config = await text(await $('table[aria-label="configs"] tbody tr'));
    assert.match(config, /^e2e-prepretrainD=\d+ L=\d+ H=\d+ · \d+ px \/ \d+ px patches/);
    for (const o of ['mlm 0.15', 'itm', 'contrastive']) assert.ok(config.includes(o), `${o} in ${config}`);
    assert.ok(!config.includes('mim'), `only the objectives the CLI switched on: ${config}`);
    // The ablation the CLI ran: a from-scratch row and the variant, accuracy as mean.
    const ablation = await $$('table[aria-label="ablation e2e-abl"] tbody tr', 2);
    const variants = await Promise.all(ablation.map(text));
    assert.match(variants[0], /^scratch\d+\.\d1$/);
    assert.match(variants[1], /^mlm\+itm\d+\.\d1$/);
    await shot('7-runs');
  });

  await step('models: the device and every run\'s checkpoints with their size', async () => {
    await screen('Models');
    assert.equal(await text(await $('[data-testid="device"]')), 'cpu');
    const rows = await $$('table[aria-label="checkpoints"] tbody tr', 3);
    const all = (await Promise.all(rows.map(text))).join('\n');
    assert.match(all, /e2e-pre.*D=\d+ L=\d+/);
    assert.match(all, /\d+\.\d MB/);
    // Verifying loads the installed Whisper model.
    await (await $('button[aria-label="verify tiny.en"]')).click();
    const check = await $('[aria-label="check of tiny.en"]');
    await driver.wait(async () => /^ok: tiny, English-only/.test(await text(check)), WAIT, 'the model verifies');
    await shot('8-models');
  });
} finally {
  await driver.quit();
}
