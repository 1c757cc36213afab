// Idle timeout without losing a draft, against `mamori demo` with a one-minute idle limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo, shot, PW } from '../lib/harness.js';

let demo;
let base;

before(async () => {
  demo = await startDemo({ MAMORI_SESSION_IDLE_MINUTES: '1' });
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
});

async function signInAgain(page, login) {
  await page.getByLabel('ログインID').fill(login);
  await page.getByLabel('パスワード', { exact: true }).fill(PW);
  await page.getByRole('button', { name: 'ログイン' }).click();
}

test('a form sent after the session ended comes back, as typed, after signing in again', async () => {
  const { context, page } = await demo.signIn('dr.suzuki');
  await page.goto(`${base}/patients/P01005/records/new`);
  await page.getByLabel('表題').fill('期限切れ後の診療録');
  await page.getByLabel('本文').fill('S: 頭痛\nP: 経過観察');
  await context.clearCookies(); // the session is gone (server restart, another tab signed out…)
  await page.getByRole('button', { name: '下書き保存' }).click();
  assert.match(await page.getByRole('alert').innerText(), /入力中の内容を復元します/);
  await signInAgain(page, 'dr.suzuki');
  assert.match(await page.getByRole('status').innerText(), /復元しました/);
  assert.equal(await page.getByLabel('表題').inputValue(), '期限切れ後の診療録');
  assert.equal(await page.getByLabel('本文').inputValue(), 'S: 頭痛\nP: 経過観察');
  await page.getByRole('button', { name: '下書き保存' }).click();
  assert.match(await page.locator('main').innerText(), /期限切れ後の診療録/);
  assert.match(await page.locator('.status').first().innerText(), /下書き/);
  await context.close();
});

test('an idle page returns to the login page; an unsaved draft survives; activity keeps a session', async () => {
  const writer = await demo.signIn('dr.tanaka');
  await writer.page.goto(`${base}/patients/P01006/records/new`);
  await writer.page.getByLabel('表題').fill('放置された下書き');
  await writer.page.getByLabel('本文').fill('途中まで書いた所見');

  const reader = await demo.signIn('ns.sato');
  await reader.page.goto(`${base}/patients/P01006`);

  const busy = await demo.signIn('dr.suzuki');
  await busy.page.goto(`${base}/patients/P01007/records/new`);

  // The busy doctor types every 10 s for 80 s, past the one-minute limit.
  const typing = (async () => {
    for (let i = 0; i < 8; i++) {
      await busy.page.getByLabel('本文').pressSequentially(`${i} `);
      await busy.page.waitForTimeout(10_000);
    }
  })();

  await writer.page.getByRole('alert').filter({ hasText: 'まもなく自動的にログアウト' }).waitFor({ timeout: 60_000 });
  await shot(writer.page, '20-idle-warning');
  await writer.page.waitForURL(/\/patients\/P01006\/records$/, { timeout: 30_000 });
  assert.match(await writer.page.getByRole('alert').innerText(), /入力中の内容を復元します/);
  assert.equal(await writer.page.getByLabel('ログインID').inputValue(), 'dr.tanaka');
  await shot(writer.page, '21-idle-login');
  await reader.page.waitForURL(/\/login\?expired=1/, { timeout: 30_000 });
  assert.match(await reader.page.getByRole('alert').innerText(), /一定時間操作がなかった/);
  assert.doesNotMatch(await reader.page.content(), /P01006/, 'no patient data left on screen');

  await signInAgain(writer.page, 'dr.tanaka');
  assert.equal(await writer.page.getByLabel('表題').inputValue(), '放置された下書き');
  assert.equal(await writer.page.getByLabel('本文').inputValue(), '途中まで書いた所見');
  await shot(writer.page, '22-idle-restored');

  await typing;
  assert.match(busy.page.url(), /\/patients\/P01007\/records\/new$/, 'still at work');
  assert.match(await busy.page.getByLabel('本文').inputValue(), /0 1 2 3 4 5 6 7/);
  await busy.page.getByLabel('表題').fill('続けて書いた記録');
  await busy.page.getByRole('button', { name: '下書き保存' }).click();
  assert.match(await busy.page.locator('.status').first().innerText(), /下書き/);
  await Promise.all([writer, reader, busy].map((s) => s.context.close()));
});
