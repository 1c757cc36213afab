// Browser tests of access security against `mamori demo`: two-factor enrolment and sign-in,
// the per-role requirement, and the administrator's reset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo, shot, PW, totp } from '../lib/harness.js';

let demo;
let base;

before(async () => {
  demo = await startDemo();
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
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
