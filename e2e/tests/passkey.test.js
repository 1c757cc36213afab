// Passkeys as the second factor in real Chromium, with its virtual authenticator (CDP
// WebAuthn domain): a doctor registers one (and gets recovery codes), signs out, and signs in
// again with the password and the passkey. Served at http://localhost (a relying-party ID
// cannot be an IP address).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDemo, shot, PW } from '../lib/harness.js';

let demo;
let base;

before(async () => {
  demo = await startDemo();
  base = demo.base.replace('127.0.0.1', 'localhost');
});

after(async () => {
  await demo?.stop();
});

async function signIn(page, login) {
  await page.goto(`${base}/login`);
  await page.getByLabel('ログインID').fill(login);
  await page.getByLabel('パスワード', { exact: true }).fill(PW);
  await page.getByRole('button', { name: 'ログイン' }).click();
}

test('a doctor registers a passkey and signs in with it as the second factor', async () => {
  const context = await demo.browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'ja-JP' });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  await signIn(page, 'dr.tanaka');
  await page.goto(`${base}/account/second-factor`);
  await page.getByLabel('パスキーの名前').fill('診察室1のPC');
  await page.getByRole('button', { name: 'パスキーを登録' }).click();
  const codes = page.locator('#passkey-codes li');
  await codes.first().waitFor();
  assert.equal(await codes.count(), 10);
  await page.goto(`${base}/account/second-factor`);
  assert.match(await page.locator('#passkey-list').innerText(), /診察室1のPC/);
  await shot(page, 'passkey-registered');

  // Sign out; the password alone now leads to the second step, where the passkey confirms.
  await page.getByRole('button', { name: 'ログアウト' }).click();
  await signIn(page, 'dr.tanaka');
  await page.getByRole('button', { name: 'パスキーで確認' }).waitFor();
  await shot(page, 'passkey-second-step');
  await page.getByRole('button', { name: 'パスキーで確認' }).click();
  await page.waitForURL(`${base}/`);
  assert.match(await page.locator('header').innerText(), /田中/);
  await context.close();
});
