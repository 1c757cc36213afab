// Browser tests of administration and audit against `mamori demo`: accounts, roles, record
// kinds, the audit trail, access counts, CSV export and ledger verification, with refusals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startDemo, shot, PW } from '../lib/harness.js';

let demo;
let base;

before(async () => {
  // No scheduled backup (the demo's starts two minutes after launch): the backup test below
  // starts from "never backed up" however long the earlier tests take.
  demo = await startDemo({ MAMORI_BACKUP_INTERVAL_HOURS: '0' });
  ({ base } = demo);
});

after(async () => {
  await demo?.stop();
});

const mainText = (page) => page.locator('main').innerText();

test('an administrator creates an account; the person must change the password at first login', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.getByRole('link', { name: '管理' }).click();
  await page.getByLabel('ログインID').fill('ns.takahashi');
  await page.getByLabel('氏名（表示名）').fill('高橋 直子');
  await page.getByLabel('職種').selectOption({ label: '看護師' });
  await page.getByLabel('初期パスワード').fill('短い');
  await page.getByRole('button', { name: '追加する' }).click();
  // Refused: the password is too short; what was typed is still there.
  assert.match(await page.getByRole('alert').innerText(), /文字/);
  assert.equal(await page.getByLabel('ログインID').inputValue(), 'ns.takahashi');
  assert.equal(await page.getByLabel('氏名（表示名）').inputValue(), '高橋 直子');
  await page.getByLabel('初期パスワード').fill('first-time-pass-2026');
  await page.getByRole('button', { name: '追加する' }).click();
  assert.match(await mainText(page), /高橋 直子/);
  assert.match(await mainText(page), /パスワード変更待ち/);
  await page.locator('nav.tabs').getByRole('link', { name: 'アカウント' }).click();
  await shot(page, '10-admin-accounts');
  await context.close();

  const first = await demo.signIn('ns.takahashi', undefined, 'first-time-pass-2026');
  await first.page.waitForURL(/\/password/);
  await first.page.getByLabel('現在のパスワード').fill('first-time-pass-2026');
  await first.page.getByLabel('新しいパスワード', { exact: true }).fill('my-own-passphrase-2026');
  await first.page.getByLabel('新しいパスワード（確認）').fill('my-own-passphrase-2026');
  await first.page.getByRole('button', { name: '変更してログイン' }).click();
  await first.page.waitForURL(`${base}/`);
  assert.match(await first.page.locator('header').innerText(), /高橋 直子/);
  await first.context.close();
});

test('an administrator disables, re-enables, unlocks and resets an account with an identity check', async () => {
  // Lock mt.ito with five wrong passwords.
  const ctx = await demo.browser.newContext();
  const p = await ctx.newPage();
  for (let i = 0; i < 5; i++) {
    await p.goto(`${base}/login`);
    await p.getByLabel('ログインID').fill('mt.ito');
    await p.getByLabel('パスワード').fill('wrong password');
    await p.getByRole('button', { name: 'ログイン' }).click();
  }
  assert.match(await p.getByRole('alert').innerText(), /一時的にロックされます.*システム管理者/);

  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/admin/accounts`);
  await page.getByRole('link', { name: 'mt.ito' }).click();
  assert.match(await mainText(page), /ロック中/);
  await page.getByRole('button', { name: 'ロックを解除する' }).click();
  assert.match(await page.getByRole('status').innerText(), /変更しました/);
  assert.doesNotMatch(await page.locator('dl.facts').innerText(), /ロック中/);

  await page.getByRole('button', { name: '無効にする' }).click();
  assert.match(await page.locator('dl.facts').innerText(), /無効/);
  await p.goto(`${base}/login`);
  await p.getByLabel('ログインID').fill('mt.ito');
  await p.getByLabel('パスワード').fill(PW);
  await p.getByRole('button', { name: 'ログイン' }).click();
  assert.match(await p.getByRole('alert').innerText(), /使用できません/);
  await page.getByRole('button', { name: '再び有効にする' }).click();
  assert.match(await page.locator('dl.facts').innerText(), /有効/);

  // A reset without saying how identity was checked is refused, and the note is kept.
  const reset = page.locator('form', { has: page.getByRole('button', { name: '再設定する' }) });
  await page.getByLabel('仮のパスワード').fill('temporary-pass-2026');
  await reset.getByLabel('本人確認の方法').fill('   ');
  await page.getByRole('button', { name: '再設定する' }).click();
  assert.match(await page.getByRole('alert').innerText(), /本人確認/);
  await page.getByLabel('仮のパスワード').fill('temporary-pass-2026');
  await reset.getByLabel('本人確認の方法').fill('職員証を対面で確認');
  await page.getByRole('button', { name: '再設定する' }).click();
  assert.match(await page.locator('dl.facts').innerText(), /パスワード変更待ち/);
  await shot(page, '11-admin-account');
  await context.close();

  await p.goto(`${base}/login`);
  await p.getByLabel('ログインID').fill('mt.ito');
  await p.getByLabel('パスワード').fill('temporary-pass-2026');
  await p.getByRole('button', { name: 'ログイン' }).click();
  await p.waitForURL(/\/password/);
  await ctx.close();
});

test('an administrator changes a role\'s rights per record kind, adds a kind, cannot shorten retention', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/admin/roles`);
  await page.getByRole('link', { name: '看護師' }).click();
  const box = page.getByRole('checkbox', { name: '印刷・出力（検査結果）' });
  assert.equal(await box.isChecked(), false);
  await box.check();
  await shot(page, '12-admin-role');
  await page.getByRole('button', { name: '保存' }).click();
  assert.match(await page.getByRole('status').innerText(), /保存しました/);
  assert.match(await page.locator('tr', { hasText: '看護師' }).innerText(), /印刷・出力：検査結果/);

  await page.getByRole('link', { name: '記録の種別と保存期間' }).click();
  const add = page.locator('form', { has: page.getByRole('button', { name: '追加する' }) });
  await add.getByLabel('コード').fill('rehab');
  await add.getByLabel('名称（日本語）').fill('リハビリテーション記録');
  await add.getByLabel('名称（英語）').fill('Rehabilitation record');
  await add.getByLabel('保存期間（年）').fill('5');
  await add.getByRole('button', { name: '追加する' }).click();
  assert.match(await page.getByRole('status').innerText(), /rehab/);
  await page.getByLabel('保存期間（年）（medical_record）').fill('3');
  await page.locator('#kind-medical_record button').click();
  assert.match(await page.getByRole('alert').innerText(), /短くすることはできません/);
  await shot(page, '13-admin-kinds');
  await context.close();
});

test('an auditor searches the trail by patient, sees off-hours marks, exports CSV and counts', async () => {
  // Something to find: a doctor opens P01005's chart.
  const dr = await demo.signIn('dr.tanaka');
  await dr.page.goto(`${base}/patients/P01005`);
  await dr.context.close();

  const { context, page } = await demo.signIn('audit.kato');
  await page.getByRole('link', { name: '監査' }).click();
  await page.getByLabel('患者ID').fill('P01005');
  await page.getByLabel('職員').selectOption({ label: '田中 一郎（dr.tanaka）' });
  await page.getByRole('button', { name: '検索' }).click();
  const rows = page.locator('table.events tbody tr');
  assert.ok(await rows.count() >= 1);
  assert.match(await rows.first().innerText(), /dr\.tanaka/);
  assert.match(await page.locator('table.events').innerText(), /患者情報の閲覧|記録一覧の閲覧/);
  await shot(page, '14-audit-search');

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'CSVで出力' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8');
  assert.ok(csv.startsWith('\ufeffledger_index,time_jst,off_hours'), csv.slice(0, 80));
  assert.match(csv, /dr\.tanaka/);
  assert.doesNotMatch(csv, /ns\.sato/, 'the CSV holds only what the search selected');

  // The off-hours filter shows only marked rows.
  await page.getByLabel(/時間外/).check();
  await page.getByRole('button', { name: '検索' }).click();
  const marked = await page.locator('table.events tbody tr').count();
  const tags = await page.locator('table.events tbody tr .tag').count();
  assert.equal(marked, tags);

  await page.getByRole('link', { name: '患者ごとの閲覧回数' }).click();
  await page.getByLabel(/患者ID/).fill('P01005');
  await page.getByRole('button', { name: '表示' }).click();
  assert.match(await page.locator('main table').innerText(), /P01005[\s\S]*田中 一郎/);
  await shot(page, '15-audit-counts');
  await context.close();
});

test('an auditor verifies the ledger and sees the latest signed checkpoint', async () => {
  const { context, page } = await demo.signIn('audit.kato');
  await page.goto(`${base}/audit/ledger`);
  await page.getByRole('button', { name: 'チェックポイントを作成する' }).click();
  assert.match(await page.locator('main').innerText(), /ルートハッシュ/);
  await page.getByRole('button', { name: '今すぐ検証する' }).click();
  assert.match(await page.getByRole('status').innerText(), /改ざんは見つかりませんでした/);
  assert.match(await page.locator('dl.facts').first().innerText(), /audit\.kato/);
  await shot(page, '16-audit-ledger');
  await context.close();
});

test('refusals: a nurse cannot read the audit trail, a clerk cannot administer', async () => {
  const nurse = await demo.signIn('ns.sato');
  assert.equal(await nurse.page.getByRole('link', { name: '監査' }).count(), 0);
  for (const path of ['/audit', '/audit/counts', '/audit/ledger', '/audit/export.csv']) {
    const res = await nurse.page.goto(`${base}${path}`);
    assert.equal(res.status(), 403, path);
    assert.match(await nurse.page.getByRole('alert').innerText(), /権限がありません/);
  }
  await shot(nurse.page, '17-nurse-refused-audit');
  await nurse.context.close();

  const clerk = await demo.signIn('clerk.nakamura');
  assert.equal(await clerk.page.getByRole('link', { name: '管理' }).count(), 0);
  for (const path of ['/admin/accounts', '/admin/roles', '/admin/kinds', '/admin/accounts/1', '/admin/roles/nurse']) {
    const res = await clerk.page.goto(`${base}${path}`);
    assert.equal(res.status(), 403, path);
  }
  await clerk.context.close();

  // The refusals are in the trail, for the auditor to see.
  const { context, page } = await demo.signIn('audit.kato');
  await page.goto(`${base}/audit?actor=&action=audit.`);
  assert.match(await page.locator('table.events').innerText(), /ns\.sato[\s\S]*拒否|拒否[\s\S]*ns\.sato/);
  await context.close();
});

test('signatures: the administrator sees the TSA in use, seals now; the officer reads it', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.getByRole('link', { name: '管理' }).click();
  await page.locator('nav.tabs').getByRole('link', { name: '電子署名' }).click();
  assert.match(await page.locator('#evidence-warnings').innerText(), /開発用のタイムスタンプ局/);
  assert.match(await page.locator('#evidence-status').innerText(), /開発用TSA/);
  await page.getByRole('button', { name: '今すぐ署名・封印・更新を実行' }).click();
  assert.match(await page.getByRole('status').first().innerText(), /実行しました/);
  await shot(page, '23-admin-evidence');
  await context.close();
  const auditor = await demo.signIn('audit.kato');
  await auditor.page.goto(`${base}/admin/evidence`);
  assert.match(await auditor.page.locator('#evidence-status').innerText(), /タイムスタンプ局/);
  assert.equal(await auditor.page.getByRole('button', { name: '今すぐ署名・封印・更新を実行' }).count(), 0);
  await auditor.context.close();
});

test('backups: the administrator sees what is missing, backs up, drills a restore and records an offline copy', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.getByRole('link', { name: '管理' }).click();
  await page.locator('nav.tabs').getByRole('link', { name: 'バックアップ' }).click();
  const warnings = page.locator('#backup-warnings');
  assert.match(await warnings.innerText(), /まだバックアップが成功していません/);
  assert.match(await warnings.innerText(), /復元訓練がまだ行われていません/);

  await page.getByRole('button', { name: '今すぐバックアップ' }).click();
  assert.match(await page.getByRole('status').first().innerText(), /バックアップを開始しました/);
  // The run happens in the background: the page shows it once done.
  const until = async (re) => {
    for (let i = 0; i < 120; i++) {
      await page.goto(`${base}/admin/backup`);
      const text = await mainText(page);
      if (re.test(text) && !/実行中です/.test(text)) return text;
      await page.waitForTimeout(500);
    }
    assert.fail(`never showed ${re}`);
  };
  await until(/\d{4}-\d{2}-\d{2}/);
  assert.equal(await page.locator('#backup-targets tbody tr').count(), 1);

  await page.getByRole('button', { name: '復元訓練を実行' }).click();
  const drilled = await until(/最後の復元訓練/);
  assert.match(drilled, /成功/);
  assert.match(drilled, /復旧時間/);

  await page.getByLabel('媒体の名前（ラベル）').fill('USB-2（月曜）');
  await page.getByLabel('メモ（保管場所など）').fill('事務室の金庫');
  await page.getByRole('button', { name: '記録する' }).click();
  assert.match(await page.locator('#last-offline').innerText(), /USB-2（月曜）/);
  assert.match(await page.locator('#backup-ok').innerText(), /期限内/);
  await shot(page, '16-admin-backup');
  await context.close();

  // The security officer sees the same, without the buttons.
  const auditor = await demo.signIn('audit.kato');
  await auditor.page.goto(`${base}/admin/backup`);
  assert.match(await auditor.page.locator('#last-offline').innerText(), /USB-2/);
  assert.equal(await auditor.page.getByRole('button', { name: '今すぐバックアップ' }).count(), 0);
  await auditor.context.close();
});

test('an administrator who widens their own role only proposes it: a second administrator must approve', async () => {
  const { context, page } = await demo.signIn('admin');
  await page.goto(`${base}/admin/roles`);
  await page.getByRole('link', { name: 'システム管理者' }).click();
  await page.getByRole('checkbox', { name: '閲覧（全種別）' }).check();
  await page.getByRole('button', { name: '保存' }).click();
  assert.match(await page.getByRole('status').innerText(), /別の管理者の承認を待っています/);
  const row = page.locator('table[aria-labelledby="proposals-h"] tbody tr').first();
  assert.match(await row.innerText(), /システム管理者（sysadmin）/);
  assert.match(await row.innerText(), /申請者自身の職種/);
  // Not in force, and the proposer may only withdraw it.
  const roleRow = page.locator('tr', { has: page.getByRole('link', { name: 'システム管理者' }) });
  assert.doesNotMatch(await roleRow.innerText(), /閲覧：全種別/);
  assert.equal(await row.getByRole('button', { name: '承認して反映' }).count(), 0);
  await shot(page, '30-role-proposal');
  await row.getByRole('button', { name: '取り下げ' }).click();
  assert.match(await page.locator('table[aria-labelledby="proposals-h"] tbody tr').first().innerText(), /却下・取り下げ/);
  await context.close();
});

test('an administrator registers an EHR key; the EHR signs its own JWT for a FHIR token; revoking ends it', async () => {
  const { generateKeyPairSync, sign, randomUUID } = await import('node:crypto');
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const jwk = publicKey.export({ format: 'jwk' });
  const { context, page } = await demo.signIn('admin');
  await page.getByRole('link', { name: '管理' }).click();
  await page.locator('nav.tabs').getByRole('link', { name: 'アカウント' }).click();
  await page.getByRole('link', { name: /ehr\.demo/ }).first().click();
  await page.getByRole('heading', { name: 'OAuth クライアント（SMART Backend Services）' }).waitFor();

  // A private key is refused in Japanese; nothing registered.
  const priv = privateKey.export({ format: 'jwk' });
  await page.getByLabel('名前（連携先）').fill('電子カルテ');
  await page.getByLabel('公開鍵（JWK、JSON のまま貼り付け）').fill(JSON.stringify(priv));
  await page.getByLabel('system/Patient.rs').check();
  await page.getByRole('button', { name: '登録する' }).click();
  assert.match(await page.getByRole('alert').first().innerText(), /秘密鍵/);

  await page.getByLabel('名前（連携先）').fill('電子カルテ');
  await page.getByLabel('公開鍵（JWK、JSON のまま貼り付け）').fill(JSON.stringify(jwk));
  await page.getByLabel('system/Patient.rs').check();
  await page.getByRole('button', { name: '登録する' }).click();
  const row = page.locator('tr').filter({ hasText: '電子カルテ' });
  await row.waitFor();
  const clientId = (await row.locator('code').first().innerText()).trim();
  assert.match(clientId, /^mamori-/);
  await shot(page, 'admin-oauth-client');

  // The EHR, written with Node's own crypto: an ES384 client assertion for a token.
  const tokenUrl = `${base}/fhir/r4/auth/token`;
  const b64 = (x) => Buffer.from(x).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64(JSON.stringify({ alg: 'ES384', typ: 'JWT' }))}.${b64(JSON.stringify({ iss: clientId, sub: clientId, aud: tokenUrl, exp: now + 120, jti: randomUUID() }))}`;
  const sig = sign('sha384', Buffer.from(signing), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: `${signing}.${b64(sig)}`,
      scope: 'system/Patient.rs',
    }),
  });
  const granted = await res.json();
  assert.equal(res.status, 200, JSON.stringify(granted));
  assert.equal(granted.scope, 'system/Patient.rs');
  const read = await fetch(`${base}/fhir/r4/Patient/P01001`, { headers: { authorization: `Bearer ${granted.access_token}` } });
  assert.equal(read.status, 200);

  // Revoked from the page: the token stops at once.
  await row.getByRole('button', { name: '失効させる' }).click();
  await page.locator('tr').filter({ hasText: clientId }).filter({ hasText: '失効' }).waitFor();
  const after = await fetch(`${base}/fhir/r4/Patient/P01001`, { headers: { authorization: `Bearer ${granted.access_token}` } });
  assert.equal(after.status, 401);
  await context.close();
});
