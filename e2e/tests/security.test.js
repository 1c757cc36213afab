// Browser tests of access security against `mamori demo`: two-factor enrolment and sign-in,
// the per-role requirement, and the administrator's reset.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { startDemo, shot, PW, totp } from '../lib/harness.js';

let demo;
let base;
let hook;
let ntp;
const announced = [];

/** An SNTP server 5 s ahead of whoever asks (it answers relative to the request's time). */
async function fakeNtp(offsetMs) {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    if (msg.length < 48) return;
    const secs = msg.readUInt32BE(40);
    const frac = msg.readUInt32BE(44);
    const clientMs = (secs - 2_208_988_800) * 1000 + Math.floor((frac * 1000) / 2 ** 32);
    const stamp = (ms) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(Math.floor(ms / 1000) + 2_208_988_800, 0);
      b.writeUInt32BE(Math.floor(((ms % 1000) / 1000) * 2 ** 32), 4);
      return b;
    };
    const reply = Buffer.alloc(48);
    reply[0] = (4 << 3) | 4;
    reply[1] = 2;
    msg.copy(reply, 24, 40, 48);
    stamp(clientMs + offsetMs).copy(reply, 32);
    stamp(clientMs + offsetMs + 1).copy(reply, 40);
    sock.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  return sock;
}

before(async () => {
  // The security officers' webhook: records what mamori announces.
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { announced.push(JSON.parse(body)); res.writeHead(204).end(); });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${hook.address().port}/hook`;
  ntp = await fakeNtp(5000);
  demo = await startDemo({
    MAMORI_EMERGENCY_WEBHOOK_URL: url,
    MAMORI_TIME_NTP_SERVERS: `127.0.0.1:${ntp.address().port}`,
  });
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
  hook?.close();
  ntp?.close();
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

test('maintenance: an engineer signs in only inside an approved window; the report is acknowledged', async () => {
  // Outside any window the engineer cannot sign in.
  const se = await demo.signIn('se.yoshida');
  assert.match(await se.page.getByRole('alert').innerText(), /保守作業の時間外/);
  await se.context.close();

  // The administrator records the vendor's request and approves it.
  const admin = await demo.signIn('admin');
  await admin.page.goto(`${base}/admin/maintenance`);
  const local = (ms) => new Date(ms + 9 * 3_600_000).toISOString().slice(0, 16);
  await admin.page.getByLabel('保守要員').selectOption({ label: '吉田 大輔（se.yoshida）' });
  await admin.page.getByLabel('開始日時').fill(local(Date.now() - 60_000));
  await admin.page.getByLabel('終了日時').fill(local(Date.now() - 120_000));
  await admin.page.getByLabel('作業の目的・内容').fill('検査機器連携の設定変更');
  await admin.page.getByRole('button', { name: '申請を登録する' }).click();
  assert.match(await admin.page.getByRole('alert').innerText(), /終了日時/);
  assert.equal(await admin.page.getByLabel('作業の目的・内容').inputValue(), '検査機器連携の設定変更');
  await admin.page.getByLabel('終了日時').fill(local(Date.now() + 3_600_000));
  await admin.page.getByLabel('作業で患者の個人情報に触れる可能性がある').check();
  await admin.page.getByRole('button', { name: '申請を登録する' }).click();
  const row = admin.page.locator('tr', { hasText: '検査機器連携の設定変更' });
  assert.match(await row.innerText(), /承認待ち/);
  await row.getByRole('button', { name: '承認' }).click();
  assert.match(await admin.page.locator('tr', { hasText: '検査機器連携の設定変更' }).innerText(), /作業中/);
  await shot(admin.page, '35-maintenance');

  // Inside the window the engineer works; what they open is in the report.
  const inside = await demo.signIn('se.yoshida');
  await inside.page.waitForURL(`${base}/`);
  const res = await inside.page.goto(`${base}/patients/P01005`);
  assert.equal(res.status(), 403, 'the role itself grants no chart access');
  await inside.context.close();

  await admin.page.locator('tr', { hasText: '検査機器連携の設定変更' }).getByRole('link', { name: '作業報告' }).click();
  const report = await admin.page.locator('main').innerText();
  assert.match(report, /まだ確定していません/);
  assert.match(report, /ログイン/);
  assert.match(report, /P01005/);
  assert.match(report, /作業時間が終わると/);
  await shot(admin.page, '36-maintenance-report');

  // A short window (through the API, to the second) that has ended can be acknowledged.
  const api = await (await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login: 'admin', password: PW }),
  })).json();
  const users = await (await fetch(`${base}/api/v1/users`, { headers: { authorization: `Bearer ${api.token}` } })).json();
  const seId = users.find((u) => u.login === 'se.yoshida').id;
  const w = await (await fetch(`${base}/api/v1/maintenance`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token}` },
    body: JSON.stringify({ account_id: seId, starts_at: Date.now() - 1000, ends_at: Date.now() + 2000, purpose: '短時間の点検' }),
  })).json();
  await fetch(`${base}/api/v1/maintenance/${w.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${api.token}` } });
  await new Promise((r) => setTimeout(r, 2500));
  await admin.page.goto(`${base}/admin/maintenance/${w.id}`);
  await admin.page.getByLabel('確認結果').fill('作業内容を確認した');
  await admin.page.getByRole('button', { name: '確認を記録する' }).click();
  assert.match(await admin.page.getByRole('status').innerText(), /作業内容を確認した（admin/);
  await admin.context.close();
});

test('clock status: a server 5 s off is reported to the administrator and the auditor', async () => {
  const admin = await demo.signIn('admin');
  assert.match(await admin.page.getByRole('alert').first().innerText(), /時刻が信頼できません/);
  await admin.context.close();
  const officer = await demo.signIn('audit.kato');
  await officer.page.goto(`${base}/audit/ledger`);
  const card = officer.page.locator('section', { hasText: '時刻の同期' });
  assert.match(await card.innerText(), /信頼できません/);
  const offset = Number((await card.locator('dt:text-is("ずれ") + dd').innerText()).replace(/[^0-9-]/g, ''));
  assert.ok(Math.abs(offset - 5000) < 200, `offset ${offset}`);
  assert.match(await card.innerText(), /ntp 127\.0\.0\.1/);
  await shot(officer.page, '37-clock');
  await officer.context.close();
});

test('screen lock: the lock button keeps a draft; the password (not a new sign-in) unlocks it', async () => {
  const { context, page } = await demo.signIn('dr.tanaka');
  await page.goto(`${base}/patients/P01007/records/new`);
  await page.getByLabel('表題').fill('ロック前の下書き');
  await page.getByLabel('本文').fill('診察途中で席を離れる');
  await page.getByRole('button', { name: '画面ロック' }).click();
  await page.getByRole('heading', { name: '画面はロックされています' }).waitFor();
  assert.match(await page.locator('main').innerText(), /田中 一郎/);
  assert.doesNotMatch(await page.content(), /診察途中で席を離れる<\/textarea>/, 'the draft is not shown');
  await shot(page, '38-locked');
  // While locked nothing else opens.
  await page.goto(`${base}/patients/P01007`);
  assert.match(page.url(), /\/lock$/);
  // A wrong password is refused.
  await page.getByRole('heading', { name: '画面はロックされています' }).waitFor();
  await page.getByLabel('パスワード').fill('wrong password');
  await page.getByRole('button', { name: 'ロックを解除' }).click();
  assert.match(await page.getByRole('alert').innerText(), /正しくありません/);
  await context.close();

  // A plain lock and unlock returns to work.
  const again = await demo.signIn('dr.tanaka');
  await again.page.getByRole('button', { name: '画面ロック' }).click();
  await again.page.getByLabel('パスワード').fill(PW);
  await again.page.getByRole('button', { name: 'ロックを解除' }).click();
  await again.page.waitForURL(`${base}/`);
  // With a draft: the lock button sends it through the lock page and unlocking restores it.
  await again.page.goto(`${base}/patients/P01007/records/new`);
  await again.page.getByLabel('表題').fill('ロック前の下書き');
  await again.page.getByLabel('本文').fill('診察途中で席を離れる');
  await again.page.getByRole('button', { name: '画面ロック' }).click();
  assert.match(await again.page.getByRole('status').innerText(), /入力中の内容は保持されています/);
  await again.page.getByLabel('パスワード').fill(PW);
  await again.page.getByRole('button', { name: 'ロックを解除' }).click();
  assert.equal(await again.page.getByLabel('表題').inputValue(), 'ロック前の下書き');
  assert.equal(await again.page.getByLabel('本文').inputValue(), '診察途中で席を離れる');
  await again.context.close();
});

test('certificates: the administrator issues a device certificate (downloaded once) and revokes it', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/admin/certificates`);
  await page.getByLabel('端末名または職員のログインID').fill('受付PC');
  await page.getByLabel('証明書ファイルのパスワード').fill('p12 password 2026');
  await page.getByRole('button', { name: '発行してダウンロード' }).click();
  assert.match(await page.getByRole('alert').innerText(), /英数字/);
  assert.equal(await page.getByLabel('端末名または職員のログインID').inputValue(), '受付PC');
  await page.getByLabel('端末名または職員のログインID').fill('reception-pc-1');
  await page.getByLabel('端末の識別子（シリアル番号・MAC アドレスなど、任意）').fill('SN-0001');
  await page.getByLabel('証明書ファイルのパスワード').fill('p12 password 2026');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: '発行してダウンロード' }).click(),
  ]);
  assert.match(download.suggestedFilename(), /^mamori-reception-pc-1-[0-9a-f]{8}\.p12$/);
  const bytes = readFileSync(await download.path());
  assert.equal(bytes[0], 0x30, 'a DER PKCS#12 file');
  await page.goto(`${base}/admin/certificates`);
  const row = page.locator('tr', { hasText: 'reception-pc-1' });
  assert.match(await row.innerText(), /SN-0001/);
  await row.getByLabel('失効の理由').selectOption('key_compromise');
  await row.getByRole('button', { name: /失効させる/ }).click();
  assert.match(await page.locator('tr', { hasText: 'reception-pc-1' }).innerText(), /失効（.*鍵の漏えい/);
  await shot(page, '39-certificates');
  const crl = await (await fetch(`${base}/api/v1/ca/crl`)).text();
  assert.match(crl, /BEGIN X509 CRL/);
  await context.close();
});

test('HTTPS: the administrator issues the server certificate and sees how PCs install the CA, with its fingerprint', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/admin/certificates`);
  assert.match(await page.locator('main').innerText(), /サーバ証明書はまだありません/);
  await page.getByLabel('ホスト名・IPアドレス').fill('bad name/');
  await page.getByRole('button', { name: '発行する', exact: true }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /ホスト名でも IP アドレスでもありません/);
  await page.getByLabel('ホスト名・IPアドレス').fill('karte.demo.test\n127.0.0.1');
  await page.getByRole('button', { name: '発行する', exact: true }).click();
  assert.match(await page.getByRole('status').innerText(), /再起動すると新しい証明書/);
  const main = await page.locator('main').innerText();
  assert.match(main, /karte\.demo\.test, 127\.0\.0\.1/);
  await page.getByText('Windows（Edge・Chrome）').click();
  assert.match(await page.locator('main').innerText(), /信頼されたルート証明機関/);
  await shot(page, '41-https-ca-install');
  // The CA certificate PCs download is the one whose fingerprint the page shows.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: /認証局の証明書をダウンロード/ }).click(),
  ]);
  assert.equal(download.suggestedFilename(), 'mamori-ca.crt');
  const der = readFileSync(await download.path());
  const { createHash } = await import('node:crypto');
  const expected = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g).join(':');
  assert.equal(await page.locator('#ca-fingerprint').innerText(), expected);
  const row = page.locator('tr', { hasText: 'karte.demo.test' });
  assert.match(await row.innerText(), /サーバ（HTTPS）/);
  await context.close();
});

test('a sealed emergency account: one use, announced and queued; then refused until reset', async () => {
  const admin = await demo.signIn('admin');
  await admin.page.goto(`${base}/admin/accounts`);
  await admin.page.getByRole('link', { name: 'dent.kobayashi' }).click();
  await admin.page.getByRole('button', { name: '非常用アカウントに指定する' }).click();
  assert.match(await admin.page.locator('main').innerText(), /未使用・使用可能/);
  await admin.context.close();

  const before = announced.length;
  const used = await demo.signIn('dent.kobayashi');
  await used.page.waitForURL(`${base}/`);
  assert.match(await used.page.locator('.emergency-banner').innerText(), /非常用アカウントでログイン中/);
  await used.context.close();
  for (let i = 0; i < 50 && announced.length === before; i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(announced.at(-1).event, 'emergency_account');

  const again = await demo.signIn('dent.kobayashi');
  assert.match(await again.page.getByRole('alert').innerText(), /使用済み/);
  await again.context.close();

  const officer = await demo.signIn('audit.kato');
  await officer.page.goto(`${base}/audit/emergency`);
  assert.match(await officer.page.locator('article', { hasText: 'dent.kobayashi' }).innerText(), /非常用アカウントでのログイン/);
  await officer.context.close();
});

test('the old password alone does not change the password of an account with two factors', async () => {
  const { context, page } = await demo.signIn('ph.yamamoto');
  await page.getByRole('link', { name: '2要素認証' }).click();
  await page.getByRole('button', { name: '登録を始める' }).click();
  const secret = (await page.locator('#totp-secret').innerText()).trim();
  await page.getByLabel('確認コード').fill(totp(secret));
  await page.getByRole('button', { name: '登録を確定する' }).click();
  assert.equal(await page.locator('#recovery-codes li').count(), 10);
  await context.close();

  // Someone who knows only the password is refused, and told what else is needed.
  const ctx = await demo.browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${base}/password`);
  await p.getByLabel('ログインID').fill('ph.yamamoto');
  await p.getByLabel('現在のパスワード').fill(PW);
  await p.getByLabel('新しいパスワード', { exact: true }).fill('a stolen new passphrase 1');
  await p.getByLabel('新しいパスワード（確認）').fill('a stolen new passphrase 1');
  await p.getByRole('button', { name: '変更してログイン' }).click();
  assert.match(await p.getByRole('alert').innerText(), /確認コードまたは回復コード/);
  await shot(p, '33-password-needs-second-factor');
  // The owner, with the code from the app, changes it and is signed in.
  await p.getByLabel('現在のパスワード').fill(PW);
  await p.getByLabel('新しいパスワード', { exact: true }).fill('an owner new passphrase 2');
  await p.getByLabel('新しいパスワード（確認）').fill('an owner new passphrase 2');
  await p.getByLabel('確認コード（2要素認証を設定している場合）').fill(totp(secret, 1));
  await p.getByRole('button', { name: '変更してログイン' }).click();
  await p.waitForURL(`${base}/`);
  await ctx.close();
});
