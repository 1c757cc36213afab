// Browser tests of the 電子帳簿保存法 pages against `mamori demo`: the accounting clerk's
// search (ranges and counterparty, combined), registering a JP PINT e-invoice and a PDF (and
// being refused in Japanese), a correction and a cancellation with their reasons, 一括検証,
// the tax officer's ZIP, the English pages, and a nurse kept out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemo, shot } from '../lib/harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', '..', 'tests', 'fixtures', 'jp-pint');
const dir = mkdtempSync(join(tmpdir(), 'mamori-e2e-tx-'));
const today = new Date(Date.now() + 9 * 3600_000).toISOString().slice(0, 10); // JST
let demo;

before(async () => {
  demo = await startDemo();
});

after(async () => {
  await demo?.stop();
});

test('the accounting clerk searches, registers, corrects, cancels, verifies and downloads', async () => {
  const { context, page } = await demo.signIn('keiri.kimura');
  // No chart for this role: the home is the transaction documents.
  await page.getByRole('heading', { name: '取引書類（電子帳簿保存法）' }).waitFor();
  const rows = page.locator('#tx-results tbody tr');
  assert.ok((await rows.count()) >= 5, 'the demo documents are listed');
  await shot(page, 'transactions-list');

  // Search: part of a name (full-width in the data, ASCII typed) with an amount range.
  await page.getByLabel('取引先').fill('abc');
  await page.getByLabel('取引金額（下限・円）').fill('10000');
  await page.getByLabel('取引金額（上限・円）').fill('100000');
  await page.getByRole('button', { name: '検索' }).click();
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().innerText(), /ＡＢＣ薬品株式会社[\s\S]*/);
  // A bad range is refused in Japanese, with the form kept.
  await page.getByLabel('取引金額（上限・円）').fill('5');
  await page.getByRole('button', { name: '検索' }).click();
  assert.match(await page.getByRole('alert').innerText(), /上限が下限より小さい/);
  assert.equal(await page.getByLabel('取引先').inputValue(), 'abc');

  // Register a JP PINT e-invoice: its fields are read from the file.
  await page.getByRole('link', { name: '登録', exact: true }).first().click();
  await page.getByLabel(/^ファイル/).setInputFiles(join(fixtures, 'NTA_QandA_45.xml'));
  await page.getByLabel('受領日').fill(today);
  await shot(page, 'transactions-register');
  await page.getByRole('button', { name: '登録する' }).click();
  await page.locator('#registered').waitFor();
  const fields = await page.locator('#tx-fields').innerText();
  assert.match(fields, /18,400円/);
  assert.match(fields, /株式会社 △△商事/);
  const checks = await page.locator('#tx-checks').innerText();
  assert.match(checks, /✗ 不一致: 登録番号の検査用数字/);
  assert.match(checks, /✓ 一致: 税率8%/);
  assert.match(await page.locator('main').innerText(), /開発用TSA/);
  await shot(page, 'transactions-detail');
  const xmlUrl = page.url();

  // A PDF with a mistyped registration number: refused by field, nothing lost from the form.
  await page.getByRole('link', { name: '登録', exact: true }).first().click();
  const pdf = join(dir, '請求書_まもり薬品.pdf');
  writeFileSync(pdf, `%PDF-1.4\n% e2e ${Date.now()}\n%%EOF\n`);
  await page.getByLabel(/^ファイル/).setInputFiles(pdf);
  await page.getByLabel('取引年月日', { exact: true }).fill(today);
  await page.getByLabel('取引金額（円）').fill('22000');
  await page.getByLabel('取引先', { exact: true }).fill('まもり薬品株式会社');
  await page.getByLabel('登録番号（T＋13桁）').fill('T1234567890123');
  await page.getByRole('button', { name: '登録する' }).click();
  assert.match(await page.getByRole('alert').innerText(), /検査用数字/);
  assert.equal(await page.getByLabel('取引先', { exact: true }).inputValue(), 'まもり薬品株式会社');
  await shot(page, 'transactions-refused');
  await page.getByLabel('登録番号（T＋13桁）').fill('T7010705000725');
  await page.getByLabel(/^ファイル/).setInputFiles(pdf);
  await page.getByRole('button', { name: '登録する' }).click();
  await page.locator('#registered').waitFor();

  // Correct the amount with a reason; then cancel with a reason. Both stay as versions.
  await page.getByRole('link', { name: '訂正する' }).click();
  await page.getByLabel('取引金額（円）').fill('24200');
  // The browser asks for the reason first; a blank one (spaces) the server refuses.
  await page.getByLabel('理由').fill('  ');
  await page.getByRole('button', { name: '訂正を記録する' }).click();
  assert.match(await page.getByRole('alert').innerText(), /理由/);
  await page.getByLabel('理由').fill('請求書の再発行（送料の追加）');
  await page.getByRole('button', { name: '訂正を記録する' }).click();
  await page.locator('#tx-versions').waitFor();
  assert.match(await page.locator('#tx-fields').innerText(), /24,200円/);
  await page.locator('#cancel-reason').fill('二重に受領したため');
  await page.getByRole('button', { name: 'この書類を取り消す' }).click();
  const versions = await page.locator('#tx-versions').innerText();
  assert.match(versions, /登録[\s\S]*訂正[\s\S]*請求書の再発行[\s\S]*取消[\s\S]*二重に受領したため/);
  await shot(page, 'transactions-history');

  // The file opens (served as a download).
  await page.goto(xmlUrl);
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#open-file').click()]);
  assert.match(download.suggestedFilename(), /NTA_QandA_45\.xml/);

  // 一括検証 of this year.
  await page.getByRole('link', { name: '一括検証' }).click();
  await page.getByRole('button', { name: '一括検証する' }).click();
  const report = await page.locator('#verify-report').innerText();
  assert.match(report, /すべてのタイムスタンプを確認しました/);
  assert.match(report, /開発用TSA/);
  await shot(page, 'transactions-verify');

  // The tax officer's download.
  await page.getByRole('link', { name: '税務調査用ダウンロード' }).first().click();
  await page.getByLabel('取引年月日（から）').fill(`${today.slice(0, 4)}-01-01`);
  const [zip] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'ZIP をダウンロード' }).click()]);
  const saved = join(dir, 'export.zip');
  await zip.saveAs(saved);
  assert.ok(statSync(saved).size > 1000);
  assert.match(zip.suggestedFilename(), /^transactions_.*\.zip$/);

  // The drafts of the 事務処理規程 and システム概要書, filled in from the settings.
  await page.getByRole('link', { name: '設定' }).click();
  await page.getByRole('link', { name: '電子取引データの訂正及び削除の防止に関する事務処理規程' }).click();
  const rules = await page.locator('body').innerText();
  assert.match(rules, /第5条（訂正及び削除の原則禁止）/);
  assert.match(rules, /木村 恵/);
  await shot(page, 'transactions-rules');
  await page.goBack();

  // The same pages in English.
  await page.getByRole('link', { name: 'English' }).click();
  await page.goto(`${demo.base}/transactions`);
  await page.getByRole('heading', { name: 'Transaction documents' }).waitFor();
  await page.getByRole('link', { name: 'Verify all' }).waitFor();
  await shot(page, 'transactions-list-en');
  await context.close();
});

test('a nurse has no transaction menu and is refused the pages', async () => {
  const { context, page } = await demo.signIn('ns.sato');
  await page.getByRole('navigation', { name: 'main' }).waitFor();
  assert.equal(await page.getByRole('link', { name: '取引書類' }).count(), 0);
  const r = await page.goto(`${demo.base}/transactions`);
  assert.equal(r.status(), 403);
  assert.match(await page.locator('main').innerText(), /権限がありません/);
  await context.close();
});
