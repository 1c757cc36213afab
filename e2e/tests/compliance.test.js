// Browser tests of the self-assessment (自己点検) against `mamori demo`: observed answers with
// their evidence, declarations and their rules, evidence and MDS/SDS files, the asset CSV
// import (good and bad), the printable report, and an observed answer changing when the
// system changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemo, shot } from '../lib/harness.js';

let demo;
let base;
const dir = mkdtempSync(join(tmpdir(), 'mamori-e2e-files-'));
const today = new Date(Date.now() + 9 * 3600_000).toISOString().slice(0, 10); // JST

before(async () => {
  demo = await startDemo();
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
});

const item = (page, number) => page.locator('section.item').filter({ has: page.getByRole('heading', { name: new RegExp(`^${number} `) }) });

async function answer(page, number, { value, due = '', note = '' }) {
  const card = item(page, number);
  // After a refused answer the page comes back with this item's form already open.
  if ((await card.locator('details').getAttribute('open')) === null) await card.locator('summary').click();
  await card.getByRole('radio', { name: value, exact: true }).check();
  await card.getByLabel('目標日').fill(due);
  await card.getByLabel('メモ').fill(note);
  await card.getByRole('button', { name: '回答を保存' }).click();
}

test('the officer starts a 令和7年度 assessment: observed answers, declarations, evidence, report', async () => {
  const { context, page } = await demo.signIn('audit.kato');
  await page.getByRole('link', { name: '自己点検' }).click();
  // Last year's closed assessment is there; start this year's on the latest sheet.
  assert.match(await page.locator('main').innerText(), /令和6年度版[\s\S]*締め済み/);
  assert.match(await page.getByLabel('点検表').inputValue(), /mhlw-checklist-medical-r7/);
  await page.getByRole('button', { name: '点検を始める' }).click();
  await page.getByRole('heading', { name: /医療機関確認用/ }).first().waitFor();

  // Observed: the named security officer (はい) and the missing MHLW/police contacts (いいえ),
  // each with what mamori saw; last year's answer beside it.
  const officer = item(page, '1-①');
  assert.match(await officer.innerText(), /はい[\s\S]*観測[\s\S]*事務長 中村 恵/);
  const chart = item(page, '3-①');
  assert.match(await chart.innerText(), /いいえ[\s\S]*観測[\s\S]*厚生労働省、警察/);
  assert.match(await item(page, '2-④').innerText(), /前回: はい/);
  await shot(page, 'compliance-assessment');

  // A declaration: いいえ needs a target date; overriding an observation needs a note.
  await answer(page, '2-⑨', { value: 'いいえ' });
  assert.match(await item(page, '2-⑨').getByRole('alert').innerText(), /目標日/);
  await answer(page, '2-⑨', { value: 'いいえ', due: '2027-03-31', note: 'USB 制御ソフトを導入予定' });
  assert.match(await item(page, '2-⑨').innerText(), /いいえ[\s\S]*申告[\s\S]*2027-03-31/);
  await answer(page, '1-①', { value: 'いいえ', due: '2027-03-31' });
  assert.match(await item(page, '1-①').getByRole('alert').innerText(), /理由をメモ/);
  await answer(page, '2-⑧', { value: 'はい', note: '院内規程で禁止し、年1回確認' });
  assert.match(await item(page, '2-⑧').innerText(), /はい[\s\S]*申告/);

  // Evidence: a link and a file.
  const card = item(page, '2-⑧');
  await card.locator('summary').click();
  writeFileSync(join(dir, 'policy.pdf'), '%PDF-1.4\n% policy\n');
  await card.getByLabel(/証跡ファイル/).setInputFiles(join(dir, 'policy.pdf'));
  await card.getByRole('button', { name: '証跡を添付' }).click();
  assert.match(await item(page, '2-⑧').innerText(), /policy\.pdf/);
  const url = page.url().split('#')[0];

  // The contact chart completed from its page turns 3-① into an observed はい.
  await page.getByRole('link', { name: '連絡体制図', exact: true }).click();
  const rows = page.locator('tbody tr');
  const fill = async (i, category, name, phone) => {
    await rows.nth(i).locator('select').selectOption({ label: category });
    await rows.nth(i).locator('input[name=name]').fill(name);
    await rows.nth(i).locator('input[name=phone]').fill(phone);
  };
  await fill(3, '厚生労働省', '医政局 医療情報担当', '03-0000-0000');
  await fill(4, '警察', '所轄警察署 サイバー犯罪相談窓口', '03-0000-0110');
  await page.getByRole('button', { name: '保存' }).click();
  await page.goto(url);
  assert.match(await item(page, '3-①').innerText(), /はい[\s\S]*観測[\s\S]*すべて連絡先あり/);

  // The printable report and its PDF.
  await page.getByRole('link', { name: '報告書を表示・印刷' }).click();
  const report = await page.locator('main').innerText();
  assert.match(report, /自己点検結果/);
  assert.match(report, /［観測］/);
  assert.match(report, /USB 制御ソフトを導入予定/);
  await shot(page, 'compliance-report');
  const pdf = await context.request.get(`${url}/report.pdf`);
  assert.equal(pdf.status(), 200);
  assert.equal((await pdf.body()).subarray(0, 5).toString(), '%PDF-');
  await context.close();
});

test('the asset ledger: a bad CSV imports nothing and names its rows; a good one changes the observed answers', async () => {
  const { context, page } = await demo.signIn('audit.kato');
  await page.goto(`${base}/compliance`);
  await page.getByRole('button', { name: '点検を始める' }).click();
  await page.getByRole('heading', { name: /医療機関確認用/ }).first().waitFor();
  const url = page.url();
  assert.match(await item(page, '2-⑪').innerText(), /いいえ[\s\S]*受付PC（2025-01-15）/);
  assert.match(await item(page, '2-②').innerText(), /いいえ[\s\S]*未確認の機器: 受付PC/);

  await page.goto(`${base}/compliance/assets`);
  const before = await page.locator('#assets tbody tr').count();
  const head = 'kind,name,location,owner,os,patched_on,remote_maintenance,maintainer,vendor,mds_sds,connection_restriction,note';
  writeFileSync(join(dir, 'bad.csv'), `${head}\npc,受付PC,受付,事務長,Windows 11,${today},no,,,na,,\nrouter,X,,,,,,,,,,\npc,PC9,,,,2026-02-30,,,,,,\n`);
  await page.getByLabel('CSVファイル（UTF-8）').setInputFiles(join(dir, 'bad.csv'));
  await page.getByRole('button', { name: '取り込む' }).click();
  const err = await page.getByRole('alert').innerText();
  assert.match(err, /何も取り込んでいません/);
  assert.match(err, /3行目/);
  assert.match(err, /4行目.*2026-02-30/);
  assert.equal(await page.locator('#assets tbody tr').count(), before);

  writeFileSync(join(dir, 'good.csv'), `\ufeff${head}\npc,受付PC,受付,事務長 中村,Windows 11 24H2,${today},no,,,na,,更新済み\nmedical,超音波診断装置,診察室2,院長 田中,FW 3.1,${today},yes,（株）サンプル医療機器,（株）サンプル医療機器,received,保守回線は作業時のみ,\n`);
  await page.getByLabel('CSVファイル（UTF-8）').setInputFiles(join(dir, 'good.csv'));
  await page.getByRole('button', { name: '取り込む' }).click();
  assert.match(await page.getByRole('status').innerText(), /取り込んだ機器の数: 2/);
  assert.equal(await page.locator('#assets tbody tr').count(), before + 1);

  // MDS/SDS from the VPN vendor, attached to its device.
  writeFileSync(join(dir, 'sds.pdf'), '%PDF-1.4\n% SDS\n');
  const utm = page.locator('#assets tbody tr').filter({ hasText: 'UTM' });
  await utm.locator('input[type=file]').setInputFiles(join(dir, 'sds.pdf'));
  await utm.locator('button', { hasText: 'MDS/SDSを添付' }).click();
  assert.match(await page.locator('#assets tbody tr').filter({ hasText: 'UTM' }).innerText(), /受領済み[\s\S]*sds\.pdf/);
  await shot(page, 'compliance-assets');

  await page.goto(url);
  assert.match(await item(page, '2-⑪').innerText(), /はい[\s\S]*観測/);
  assert.match(await item(page, '2-②').innerText(), /はい[\s\S]*確認済み/);
  assert.match(await item(page, '2-③').innerText(), /はい[\s\S]*受領済み/);
  await context.close();
});

test('disabling the idle account turns 不要なアカウント into はい; clinical staff cannot open 自己点検', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/compliance`);
  await page.getByRole('button', { name: '点検を始める' }).click();
  await page.getByRole('heading', { name: /医療機関確認用/ }).first().waitFor();
  const url = page.url();
  // The technician and the engineer of the set-up work have not signed in for months.
  assert.match(await item(page, '2-⑤').innerText(), /いいえ[\s\S]*mt\.ito、se\.yoshida/);
  for (const login of ['mt.ito', 'se.yoshida']) {
    await page.goto(`${base}/admin/accounts`);
    await page.getByRole('link', { name: login }).click();
    await page.getByRole('button', { name: '無効にする' }).click();
    await page.goto(url);
    const text = await item(page, '2-⑤').innerText();
    assert.doesNotMatch(text, new RegExp(login.replace('.', '\\.')));
  }
  assert.match(await item(page, '2-⑤').innerText(), /はい[\s\S]*観測/);
  await context.close();

  const nurse = await demo.signIn('ns.sato');
  assert.equal(await nurse.page.getByRole('link', { name: '自己点検' }).count(), 0);
  const r = await nurse.page.goto(`${base}/compliance`);
  assert.equal(r.status(), 403);
  await nurse.context.close();
});

test('the registers: a training session with its attendees, a take-out refused with its reason, then kept', async () => {
  const { context, page } = await demo.signIn('audit.kato');
  await page.goto(`${base}/compliance`);
  await page.getByRole('link', { name: '破棄・持ち出し・研修・外部保存' }).click();
  await page.getByRole('link', { name: '教育・訓練' }).click();
  await page.getByRole('heading', { name: '教育・訓練', level: 1 }).waitFor();
  assert.match(await page.locator('main').innerText(), /まだ記録がありません/);
  await page.getByLabel('実施日').fill(today);
  await page.getByLabel('研修・訓練の名称').fill('情報セキュリティ研修（標的型メール）');
  await page.getByLabel('種類').selectOption({ label: '定期研修' });
  await page.getByLabel('内容', { exact: false }).first().fill('不審メールの見分け方、USB メモリの扱い');
  await page.getByRole('checkbox', { name: /audit\.kato/ }).check();
  await page.getByRole('checkbox', { name: /dr\.tanaka/ }).check();
  await page.getByRole('button', { name: '保存' }).click();
  const row = page.locator('#register tbody tr').first();
  assert.match(await row.innerText(), /情報セキュリティ研修[\s\S]*定期研修[\s\S]*2/);
  await shot(page, 'compliance-register-training');

  await page.getByRole('link', { name: '持ち出し台帳' }).click();
  await page.getByLabel('持ち出した日').fill('2026-11-20');
  await page.getByLabel('持ち出したもの').fill('検査結果の写し');
  await page.getByLabel('媒体').selectOption({ label: 'USB メモリ・外付けディスク' });
  await page.getByLabel('暗号化・パスワード設定').selectOption({ label: 'はい' });
  await page.getByLabel('目的').fill('学会発表（匿名化済み）');
  await page.getByLabel('持ち出した人').fill('田中 一郎');
  await page.getByLabel('承認者').fill('院長');
  await page.getByLabel('返却・消去した日').fill('2026-11-19');
  await page.getByRole('button', { name: '保存' }).click();
  assert.match(await page.getByRole('alert').innerText(), /返却・消去した日が持ち出した日より前です/);
  assert.equal(await page.getByLabel('持ち出したもの').inputValue(), '検査結果の写し');
  await page.getByLabel('返却・消去した日').fill('2026-11-21');
  await page.getByRole('button', { name: '保存' }).click();
  assert.match(await page.locator('#register').innerText(), /検査結果の写し[\s\S]*USB メモリ/);
  await shot(page, 'compliance-register-take-out');
  await context.close();
});
