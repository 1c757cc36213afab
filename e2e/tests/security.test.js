// Browser tests of access security against `mamori demo`: two-factor enrolment and sign-in,
// the per-role requirement, and the administrator's reset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startDemo, shot, PW, totp } from '../lib/harness.js';

let demo;
let base;
let hook;
const announced = [];

before(async () => {
  // The security officers' webhook: records what mamori announces.
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { announced.push(JSON.parse(body)); res.writeHead(204).end(); });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${hook.address().port}/hook`;
  demo = await startDemo({ MAMORI_EMERGENCY_WEBHOOK_URL: url });
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
  hook?.close();
});

test('a doctor sets up an authenticator app and then signs in with a code', async () => {
  const { context, page } = await demo.signIn('dr.suzuki');
  await page.getByRole('link', { name: '2要素認証' }).click();
  await page.getByRole('button', { name: '登録を始める' }).click();
  assert.ok(await page.getByRole('img', { name: '認証アプリ登録用のQRコード' }).isVisible());
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  await shot(page, '30-totp-enrol');
  await page.getByLabel('確認コード').fill('000000');
  await page.getByRole('button', { name: '登録を確定する' }).click();
  assert.match(await page.getByRole('alert').innerText(), /確認コードが正しくありません/);
  await page.getByLabel('確認コード').fill(totp(secret));
  await page.getByRole('button', { name: '登録を確定する' }).click();
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  const recovery = (await page.locator('#recovery-codes li').first().innerText()).trim();
  await shot(page, '31-totp-recovery-codes');
  await context.close();

  // Password, then code. A wrong code is refused; the next step's code is accepted.
  const again = await demo.signIn('dr.suzuki');
  await again.page.waitForURL(/\/login\/second-factor/);
  const res = await again.page.goto(`${base}/patients/P01005`);
  assert.match(again.page.url(), /\/login\/second-factor/, 'nothing opens before the code');
  assert.equal(res.status(), 200);
  await again.page.getByLabel('確認コード').fill('123456');
  await again.page.getByRole('button', { name: '確認してログイン' }).click();
  assert.match(await again.page.getByRole('alert').innerText(), /確認コードが正しくありません/);
  await shot(again.page, '32-totp-code');
  await again.page.getByLabel('確認コード').fill(totp(secret, 1));
  await again.page.getByRole('button', { name: '確認してログイン' }).click();
  await again.page.waitForURL(`${base}/`);
  await again.context.close();

  // A recovery code works once.
  const third = await demo.signIn('dr.suzuki');
  await third.page.getByLabel('確認コード').fill(recovery);
  await third.page.getByRole('button', { name: '確認してログイン' }).click();
  await third.page.waitForURL(`${base}/`);
  await third.context.close();
  const fourth = await demo.signIn('dr.suzuki');
  await fourth.page.getByLabel('確認コード').fill(recovery);
  await fourth.page.getByRole('button', { name: '確認してログイン' }).click();
  assert.match(await fourth.page.getByRole('alert').innerText(), /確認コードが正しくありません/);
  await fourth.context.close();

  // The administrator resets it (lost phone); the doctor signs in with the password alone.
  const admin = await demo.signIn('admin');
  await admin.page.goto(`${base}/admin/accounts`);
  await admin.page.getByRole('link', { name: 'dr.suzuki' }).click();
  const form = admin.page.locator('form', { has: admin.page.getByRole('button', { name: 'リセットする' }) });
  await form.getByLabel('本人確認の方法').fill('職員証を対面で確認');
  await form.getByRole('button', { name: 'リセットする' }).click();
  assert.match(await admin.page.getByRole('status').innerText(), /変更しました/);
  await admin.context.close();
  const after = await demo.signIn('dr.suzuki');
  await after.page.waitForURL(`${base}/`);
  await after.context.close();
});

test('a role that requires two factors makes its members enrol before anything else', async () => {
  const admin = await demo.signIn('admin');
  await admin.page.goto(`${base}/admin/roles/clerk`);
  await admin.page.getByLabel('2要素認証を必須にする（推奨）').check();
  await admin.page.getByRole('button', { name: '保存' }).click();
  assert.match(await admin.page.getByRole('status').innerText(), /保存しました/);
  await admin.context.close();

  const { context, page } = await demo.signIn('clerk.nakamura');
  await page.waitForURL(/\/account\/second-factor/);
  assert.match(await page.getByRole('status').innerText(), /必須です/);
  await page.goto(`${base}/patients/P01005`);
  assert.match(page.url(), /\/login\/second-factor|\/account\/second-factor/);
  await page.goto(`${base}/account/second-factor`);
  await page.getByRole('button', { name: '登録を始める' }).click();
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  await page.getByLabel('確認コード').fill(totp(secret));
  await page.getByRole('button', { name: '登録を確定する' }).click();
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  // Required: it cannot be turned off.
  await page.getByRole('link', { name: '続ける' }).click();
  await page.waitForURL(`${base}/`);
  await page.goto(`${base}/account/second-factor`);
  assert.equal(await page.getByRole('button', { name: '解除する' }).count(), 0);
  assert.match(await page.locator('dl.facts').innerText(), /必須/);
  await context.close();
});

test('break-glass: a radiographer opens a patient beyond their rights with a reason; the officer reviews it', async () => {
  const { context, page } = await demo.signIn('rt.watanabe');
  await page.goto(`${base}/patients/P01005`);
  const before = await page.locator('main table').innerText().catch(() => '');
  assert.doesNotMatch(before, /看護記録/, 'nursing records are outside the role');
  await page.getByText('非常時アクセス（break-glass）').click();
  await page.getByLabel('理由').fill('急');
  await page.getByRole('button', { name: '非常時アクセスを開始する' }).click();
  assert.match(await page.locator('#bg-error').innerText(), /4〜500文字/);
  assert.equal(await page.getByLabel('理由').inputValue(), '急', 'what was typed is kept');
  await page.getByLabel('理由').fill('救急搬送、造影検査前にアレルギー歴を確認');
  await page.getByRole('button', { name: '非常時アクセスを開始する' }).click();
  const banner = page.locator('.emergency-banner');
  assert.match(await banner.innerText(), /非常時アクセス中/);
  assert.equal(await banner.evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(164, 0, 15)');
  assert.match(await page.locator('main table').innerText(), /看護記録/);
  await shot(page, '33-break-glass');
  // The banner stays on every page while the access lasts.
  await page.goto(`${base}/`);
  assert.equal(await page.locator('.emergency-banner').count(), 1);
  await context.close();

  // Announced at once on the webhook.
  for (let i = 0; i < 50 && announced.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(announced.length, 1);
  assert.equal(announced[0].patient_id, 'P01005');
  assert.equal(announced[0].login, 'rt.watanabe');
  assert.match(announced[0].reason, /アレルギー歴/);

  // The security officer sees it on the home page, reviews and closes it.
  const officer = await demo.signIn('audit.kato');
  await officer.page.getByRole('link', { name: /確認待ちの非常時アクセス/ }).click();
  const item = officer.page.locator('article', { hasText: 'rt.watanabe' });
  assert.match(await item.innerText(), /アレルギー歴/);
  await item.getByLabel('確認結果').fill('救急外来の受診記録と照合し、正当な利用と確認した');
  await shot(officer.page, '34-break-glass-review');
  await item.getByRole('button', { name: '確認を完了する' }).click();
  assert.match(await officer.page.locator('main').innerText(), /確認待ちの非常時アクセスはありません/);
  await officer.page.goto(`${base}/audit/emergency`);
  await officer.page.getByRole('link', { name: '確認済みも表示' }).click();
  assert.match(await officer.page.locator('article', { hasText: 'rt.watanabe' }).innerText(), /正当な利用と確認した（audit\.kato/);
  await officer.context.close();
});

test('break-glass review needs a comment; a clerk has no break-glass', async () => {
  const nurse = await demo.signIn('ns.sato');
  await nurse.page.goto(`${base}/patients/P01010`);
  await nurse.page.getByText('非常時アクセス（break-glass）').click();
  await nurse.page.getByLabel('理由').fill('夜間の急変対応のため');
  await nurse.page.getByRole('button', { name: '非常時アクセスを開始する' }).click();
  await nurse.page.getByRole('button', { name: '終了する' }).click();
  assert.equal(await nurse.page.locator('.emergency-banner').count(), 0, 'ended early');
  await nurse.context.close();

  const officer = await demo.signIn('audit.kato');
  await officer.page.goto(`${base}/audit/emergency`);
  const item = officer.page.locator('article', { hasText: 'ns.sato' });
  await item.getByLabel('確認結果').fill(' ');
  await item.getByRole('button', { name: '確認を完了する' }).click();
  assert.match(await officer.page.getByRole('alert').innerText(), /確認の結果/);
  await officer.context.close();

  const clerk = await demo.signIn('clerk.nakamura');
  await clerk.page.goto(`${base}/patients/P01010`);
  assert.equal(await clerk.page.getByText('非常時アクセス（break-glass）').count(), 0);
  await clerk.context.close();
});
