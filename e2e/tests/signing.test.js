// Browser tests of 電子署名 against `mamori demo`: a doctor's home page says two records await
// her signature; a wrong signing PIN is refused in Japanese; her PIN opens the window and signs
// them; she closes it; the page in English; a clerk has neither the menu entry nor the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startDemo, shot } from '../lib/harness.js';

let demo;

before(async () => {
  demo = await startDemo();
});

after(async () => {
  await demo?.stop();
});

test('a doctor opens her signing window with her PIN and signs what awaited her', async () => {
  const { context, page } = await demo.signIn('dr.tanaka');
  const notice = page.locator('#signing-home');
  assert.match(await notice.innerText(), /署名待ち: 2/);
  await shot(page, 'signing-home');
  await notice.getByRole('link').click();
  await page.getByRole('heading', { name: /電子署名/ }).first().waitFor();
  assert.equal(await page.locator('#signing-awaiting').innerText(), '2');
  assert.equal(await page.locator('#awaiting-list tbody tr').count(), 2);
  assert.match(await page.locator('#signing-window').innerText(), /閉じています/);

  // A wrong PIN: refused in Japanese, the field marked, nothing signed.
  const pin = page.getByLabel('署名用 PIN', { exact: true });
  await pin.fill('まちがい 0000');
  await page.getByRole('button', { name: '開いて署名する' }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /署名用 PIN が違います/);
  assert.equal(await page.getByLabel('署名用 PIN', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#signing-awaiting').innerText(), '2');
  await shot(page, 'signing-wrong-pin');

  // Her PIN: the window opens and both are signed.
  await page.getByLabel('署名用 PIN', { exact: true }).fill('mamori-sign-2026');
  await page.keyboard.press('Enter');
  assert.match(await page.locator('#signing-notice').innerText(), /署名ウィンドウを開き、2 件に署名しました/);
  assert.match(await page.locator('#signing-window').innerText(), /開いています/);
  assert.equal(await page.locator('#signing-awaiting').innerText(), '0');
  await shot(page, 'signing-open');
  await page.getByRole('button', { name: '署名ウィンドウを閉じる' }).click();
  assert.match(await page.locator('#signing-notice').innerText(), /閉じました/);
  assert.match(await page.locator('#signing-window').innerText(), /閉じています/);

  // In English.
  await page.goto(`${demo.base}/lang?to=en`);
  await page.goto(`${demo.base}/signing`);
  await page.getByRole('heading', { name: /Electronic signatures/ }).waitFor();
  assert.match(await page.locator('main').innerText(), /Signing window/);
  await context.close();
});

test('a dentist who forgot her PIN makes a new key with her password, and it signs', async () => {
  const { context, page } = await demo.signIn('dent.kobayashi');
  await page.goto(`${demo.base}/signing`);
  const form = page.locator('form[action="/signing/pin"]').filter({ has: page.locator('input[name="new_key"]') });
  await form.getByLabel('新しい署名用 PIN', { exact: true }).fill('あたらしい PIN 2580');
  await form.getByLabel('新しい署名用 PIN（確認）').fill('あたらしい PIN 2580');
  await form.getByLabel('ログインのパスワード（本人の確認）').fill('not my password');
  await form.getByRole('button', { name: '新しい署名鍵を作る' }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /パスワード/);
  const again = page.locator('form[action="/signing/pin"]').filter({ has: page.locator('input[name="new_key"]') });
  await again.getByLabel('新しい署名用 PIN', { exact: true }).fill('あたらしい PIN 2580');
  await again.getByLabel('新しい署名用 PIN（確認）').fill('あたらしい PIN 2580');
  await again.getByLabel('ログインのパスワード（本人の確認）').fill('mamori-demo-2026');
  await again.getByRole('button', { name: '新しい署名鍵を作る' }).click();
  assert.match(await page.locator('#signing-notice').innerText(), /署名鍵を作成し/);
  assert.match(await page.locator('#signing-qualification').innerText(), /歯科医師（施設CAによる・HPKIではない）/);
  // The old PIN no longer opens anything; the new one does.
  await page.getByLabel('署名用 PIN', { exact: true }).fill('mamori-sign-2026');
  await page.getByRole('button', { name: '開いて署名する' }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /署名用 PIN が違います/);
  await page.getByLabel('署名用 PIN', { exact: true }).fill('あたらしい PIN 2580');
  await page.getByRole('button', { name: '開いて署名する' }).click();
  assert.match(await page.locator('#signing-window').innerText(), /開いています/);
  await shot(page, 'signing-new-key');
  await context.close();
});

test('a clerk has no signing key, no menu entry and no page', async () => {
  const { context, page } = await demo.signIn('clerk.nakamura');
  assert.equal(await page.getByRole('link', { name: '電子署名' }).count(), 0);
  const r = await page.goto(`${demo.base}/signing`);
  assert.equal(r.status(), 403);
  assert.match(await page.locator('main').innerText(), /確定する職種だけ/);
  await context.close();
});

test('a referral letter comes as a PDF its author signed, from the record page', async () => {
  const { context, page } = await demo.signIn('dr.tanaka');
  await page.goto(`${demo.base}/patients/P01002`);
  await page.getByRole('link', { name: /診療情報提供書/ }).first().click();
  const link = page.getByRole('link', { name: 'PDF をダウンロード' });
  await link.waitFor();
  assert.match(await page.locator('main').innerText(), /署名付き PDF[\s\S]*PAdES-B-LTA/);
  await shot(page, 'record-signed-pdf');
  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  assert.match(download.suggestedFilename(), /^record-\d+-v\d+\.pdf$/);
  const bytes = readFileSync(await download.path());
  assert.equal(bytes.subarray(0, 5).toString(), '%PDF-');
  assert.match(bytes.toString('latin1'), /\/SubFilter \/ETSI\.CAdES\.detached/);
  assert.match(bytes.toString('latin1'), /\/Type \/DocTimeStamp/);
  await context.close();
});

test('the author makes a signed JP-CLINS referral document for a destination from the record page', async () => {
  const { context, page } = await demo.signIn('dr.tanaka');
  const openRecord = async () => {
    await page.goto(`${demo.base}/patients/P01001`);
    await page.getByRole('link', { name: /診療情報提供書/ }).first().click();
    await page.getByRole('heading', { name: '電子カルテ情報共有サービス（JP-CLINS）の診療情報提供書' }).waitFor();
  };
  const make = async (to) => {
    await page.getByText('紹介先を指定して診療情報提供書を作成する').click();
    await page.getByLabel('紹介先の医療機関名（必須）').fill(to);
    await page.getByLabel('紹介先の診療科').fill('消化器内科');
    await page.getByLabel('傷病名・主訴').fill('上腹部痛');
    await page.getByRole('button', { name: '作成して電子署名する' }).click();
  };
  // With her signing window closed: refused in Japanese, nothing made.
  await openRecord();
  await make('東京第一病院');
  assert.match(await page.getByRole('alert').first().innerText(), /署名ウィンドウが開いていません/);
  assert.doesNotMatch(await page.locator('section.clins').innerText(), /紹介先 東京第一病院/);

  // She opens it with her PIN, and the document is made and signed.
  await page.goto(`${demo.base}/signing`);
  await page.getByLabel('署名用 PIN', { exact: true }).fill('mamori-sign-2026');
  await page.getByRole('button', { name: '開いて署名する' }).click();
  await page.locator('#signing-notice').waitFor();
  assert.match(await page.locator('#signing-window').innerText(), /開いています/);
  await openRecord();
  await make('東京第一病院');
  const made = page.locator('section.clins li').filter({ hasText: '紹介先 東京第一病院' });
  await made.waitFor();
  await shot(page, 'record-jp-clins');
  const [download] = await Promise.all([page.waitForEvent('download'), made.getByRole('link').click()]);
  assert.match(download.suggestedFilename(), /^1311234567-\d+-\d+-1\.json$/);
  const bundle = JSON.parse(readFileSync(await download.path(), 'utf8'));
  assert.equal(bundle.resourceType, 'Bundle');
  assert.equal(bundle.type, 'document');
  assert.equal(bundle.entry[0].resource.title, '診療情報提供書');
  assert.equal(bundle.signature.sigFormat, 'application/pkcs7-signature');
  assert.ok(bundle.entry.some((e) => e.resource.resourceType === 'Binary' && e.resource.contentType === 'application/pdf'));
  await page.goto(`${demo.base}/signing`);
  await page.getByRole('button', { name: '署名ウィンドウを閉じる' }).click();
  await context.close();
});

test('another doctor sees the referral but no form to make its document', async () => {
  const { context, page } = await demo.signIn('dr.suzuki');
  await page.goto(`${demo.base}/patients/P01001`);
  await page.getByRole('link', { name: /診療情報提供書/ }).first().click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  assert.match(await page.locator('main').innerText(), /紹介先 東京第一病院/);
  assert.equal(await page.getByRole('button', { name: '作成して電子署名する' }).count(), 0);
  await context.close();
});
