// Browser tests of the clinical workflows in headless Chromium against `mamori demo`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo, shot, PW, onePagePdf } from '../lib/harness.js';

let demo;
let base;
let browser;
const signIn = (...args) => demo.signIn(...args);

before(async () => {
  demo = await startDemo();
  ({ base, browser } = demo);
});

after(async () => {
  await demo?.stop();
});

test('a doctor finds a patient by kana, opens the chart and a record with its history', async () => {
  const { context, page } = await signIn('dr.tanaka');
  await shot(page, '01-home');
  await page.getByLabel('患者ID またはフリガナ').fill('いのうえ');
  await page.getByRole('button', { name: '検索' }).click();
  await page.getByRole('link', { name: '井上 健太' }).click();
  await assert.doesNotReject(page.getByRole('heading', { name: /井上 健太/ }).waitFor());
  await shot(page, '02-chart');
  await page.getByRole('link', { name: /外来診療録/ }).first().click();
  assert.match(await page.locator('main').innerText(), /版 1/);
  await shot(page, '03-record');
  await context.close();
});

test('a doctor writes and finalises a record with an attachment', async () => {
  const { context, page } = await signIn('dr.suzuki');
  await page.goto(`${base}/patients/P01005/records/new`);
  await page.getByLabel('表題').fill('ブラウザからの診療録');
  await page.getByLabel('本文').fill('S: 咳\nO: 体温 37.2℃\nA: 感冒\nP: 経過観察');
  await page.setInputFiles('#attachment', { name: '検査.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n% e2e\n') });
  await shot(page, '04-new-record');
  await page.getByRole('button', { name: '確定', exact: true }).click();
  const main = await page.locator('main').innerText();
  assert.match(main, /ブラウザからの診療録/);
  assert.match(main, /検査\.pdf/);
  assert.match(await page.locator('.status').first().innerText(), /確定/);
  await context.close();
});

test('a finalised record is signed and time-stamped; its evidence verifies and downloads', async () => {
  const { context, page } = await signIn('dr.suzuki');
  // Her signing window, opened with her signing PIN, signs what she finalises in this sign-in.
  await page.goto(`${base}/signing`);
  await page.getByLabel('署名用 PIN', { exact: true }).fill('mamori-sign-2026');
  await page.getByRole('button', { name: '開いて署名する' }).click();
  assert.match(await page.locator('#signing-notice').innerText(), /署名ウィンドウを開き/);
  await page.goto(`${base}/patients/P01005/records/new`);
  await page.getByLabel('表題').fill('署名される退院時要約');
  await page.getByLabel('本文').fill('経過良好にて退院。');
  await page.getByRole('button', { name: '確定', exact: true }).click();
  const facts = await page.locator('article.version').first().innerText();
  assert.match(facts, /電子署名/);
  assert.match(facts, /鈴木/);
  assert.match(facts, /CAdES-B-LT/);
  assert.match(facts, /開発用TSA・法的効力なし/);
  await shot(page, '21-record-signed');
  await page.getByRole('link', { name: '署名の検証' }).click();
  assert.match(await page.locator('#evidence-ok').innerText(), /検証に成功/);
  assert.match(await page.locator('#evidence tbody').innerText(), /正常/);
  await shot(page, '22-record-evidence');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.locator('#bundle').click(),
  ]);
  assert.match(download.suggestedFilename(), /^mamori-record-\d+\.zip$/);

  // To hand it outside: encrypted with the password mamori offers, noted in the take-out register.
  const password = await page.getByLabel('パスワード').inputValue();
  assert.match(password, /^([A-Z2-9]{4}-){5}[A-Z2-9]{4}$/);
  await page.getByLabel('目的').fill('紹介先の病院へ診療情報提供');
  await page.getByLabel('持ち出し先').fill('市立中央病院');
  await page.getByLabel('承認者').fill('院長 山本');
  await shot(page, '24-record-encrypted-export');
  const [sealed] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: '暗号化して出力' }).click(),
  ]);
  assert.match(sealed.suggestedFilename(), /^mamori-record-\d+-encrypted\.zip$/);
  const out = mkdtempSync(join(tmpdir(), 'mamori-sealed-'));
  const seven = ['7zz', '7z'].find((c) => spawnSync(c, ['i']).status === 0);
  assert.ok(seven, '7-Zip (apt-get install 7zip) opens the encrypted bundle');
  const opened = spawnSync(seven, ['x', '-y', `-p${password}`, `-o${out}`, await sealed.path()]);
  assert.equal(opened.status, 0, String(opened.stdout));
  assert.ok(readFileSync(join(out, 'mamori-bundle.zip')).subarray(0, 2).equals(Buffer.from('PK')));

  // An uploaded report she signs herself: a broken file is refused in Japanese, a real PDF is
  // signed in her open window and its signed copy downloads.
  await page.goto(`${base}/patients/P01005/records/new`);
  await page.getByLabel('表題').fill('院外の検査報告');
  await page.getByLabel('本文').fill('外部検査機関の報告書を添付。');
  await page.setInputFiles('#attachment', [
    { name: '壊れた.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n% broken\n') },
    { name: '報告書.pdf', mimeType: 'application/pdf', buffer: onePagePdf('Outside lab report') },
  ]);
  await page.getByRole('button', { name: '確定', exact: true }).click();
  const item = (name) => page.locator('article.version').first().locator('li', { hasText: name });
  await item('壊れた.pdf').getByRole('button', { name: 'この PDF に電子署名する（署名ウィンドウで）' }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /PDF として読めないため署名できません/);
  await item('報告書.pdf').getByRole('button', { name: 'この PDF に電子署名する（署名ウィンドウで）' }).click();
  const signed = item('報告書.pdf');
  assert.match(await signed.innerText(), /PAdES-B-LTA/);
  assert.equal(await signed.getByRole('button').count(), 0, 'signed once, no button any more');
  await shot(page, '25-attachment-signed');
  const [copy] = await Promise.all([
    page.waitForEvent('download'),
    signed.getByRole('link', { name: '作成者の署名付き PDF をダウンロード' }).click(),
  ]);
  assert.match(copy.suggestedFilename(), /-signed\.pdf$/);
  const bytes = readFileSync(await copy.path());
  assert.ok(bytes.subarray(0, onePagePdf('Outside lab report').length).equals(onePagePdf('Outside lab report')));
  await context.close();
});

test('a clerk enters on a doctor\'s behalf, cannot finalise, and the doctor approves', async () => {
  const clerk = await signIn('clerk.nakamura');
  await clerk.page.goto(`${base}/patients/P01006/records/new`);
  await clerk.page.getByLabel('表題').fill('代行入力の紹介状');
  await clerk.page.getByLabel('責任者').selectOption({ label: '田中 一郎（医師）' });
  await clerk.page.getByRole('button', { name: '確定', exact: true }).click();
  // Refused as a whole: nothing is saved, and the form comes back with what was typed.
  assert.match(await clerk.page.getByRole('alert').innerText(), /確定できるのは/);
  assert.equal(await clerk.page.getByLabel('表題').inputValue(), '代行入力の紹介状');
  await shot(clerk.page, '05-clerk-refused');
  await clerk.page.getByRole('button', { name: '承認を依頼' }).click();
  assert.match(await clerk.page.locator('.status').first().innerText(), /承認待ち/);
  const url = clerk.page.url();
  await clerk.context.close();

  const dr = await signIn('dr.tanaka');
  assert.match(await dr.page.locator('main').innerText(), /代行入力の紹介状/);
  await dr.page.goto(url);
  await dr.page.getByRole('button', { name: '承認して確定する' }).click();
  assert.match(await dr.page.locator('.status').first().innerText(), /確定/);
  await shot(dr.page, '06-approved');
  await dr.context.close();
});

test('a nurse cannot print a medical record; a locked account says what to do', async () => {
  const { context, page } = await signIn('ns.sato');
  const res = await page.goto(`${base}/records/1/print`);
  assert.equal(res.status(), 403);
  assert.match(await page.getByRole('alert').innerText(), /権限がありません/);
  await context.close();

  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  for (let i = 0; i < 5; i++) {
    await p.goto(`${base}/login`);
    await p.getByLabel('ログインID').fill('rt.watanabe');
    await p.getByLabel('パスワード').fill('wrong password');
    await p.getByRole('button', { name: 'ログイン' }).click();
  }
  assert.match(await p.getByRole('alert').innerText(), /一時的にロックされます.*システム管理者/);
  await shot(p, '07-locked');
  await ctx.close();
});

test('usable by keyboard alone, and at 200% zoom on a small screen', async () => {
  const ctx = await browser.newContext({ viewport: { width: 683, height: 384 }, deviceScaleFactor: 2 });
  const page = await ctx.newPage();
  await page.goto(`${base}/login`);
  // Walk the page with Tab from the top: every control is reachable, in a sensible order.
  await page.evaluate(() => document.activeElement.blur());
  const order = [];
  for (let i = 0; i < 10 && order.at(-1) !== 'login'; i++) {
    await page.keyboard.press('Tab');
    order.push(await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim()));
  }
  assert.equal(order.at(-1), 'login', `tab order: ${order.join(' → ')}`);
  await page.keyboard.type('dr.tanaka');
  await page.keyboard.press('Tab');
  await page.keyboard.type(PW);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, 'no horizontal scrolling at 200% zoom');
  await shot(page, '08-zoom-200');
  await ctx.close();
});
