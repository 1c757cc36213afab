// Shared by the browser tests: starts `mamori demo` on 127.0.0.1 (a fresh instance per test
// file) and Debian's Chromium, signs people in, and saves screenshots to e2e/artifacts/.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac } from 'node:crypto';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.MAMORI_BIN || join(here, '..', '..', 'target', 'debug', 'mamori');
const artifacts = join(here, '..', 'artifacts');
mkdirSync(artifacts, { recursive: true });
export const PW = 'mamori-demo-2026';

/** Starts a demo instance; `env` adds configuration overrides (MAMORI_SECTION_KEY). */
export async function startDemo(env = {}) {
  const data = mkdtempSync(join(tmpdir(), 'mamori-e2e-'));
  const server = spawn(bin, ['demo', '--data', join(data, 'demo'), '--listen', '127.0.0.1:0'], {
    env: { ...process.env, MAMORI_SERVER_SECURE_COOKIES: 'true', MAMORI_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`mamori did not start: ${out}`)), 120_000);
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/起動しました: (http:\/\/127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    server.on('exit', (code) => reject(new Error(`mamori exited ${code}: ${out}`)));
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  return {
    base,
    browser,
    async signIn(login, viewport = { width: 1366, height: 768 }, password = PW) {
      const context = await browser.newContext({ viewport, locale: 'ja-JP', acceptDownloads: true });
      const page = await context.newPage();
      await page.goto(`${base}/login`);
      await page.getByLabel('ログインID').fill(login);
      await page.getByLabel('パスワード', { exact: true }).fill(password);
      await page.getByRole('button', { name: 'ログイン' }).click();
      return { context, page };
    },
    async stop() {
      await browser.close();
      server.kill('SIGTERM');
    },
  };
}

export const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });

/** RFC 6238 code (HMAC-SHA1, 6 digits, 30 s) for a base32 secret, `stepOffset` steps from now. */
export function totp(secretB32, stepOffset = 0, now = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secretB32.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 30_000) + stepOffset));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[19] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1_000_000;
  return n.toString().padStart(6, '0');
}

/// A small well-formed one-page PDF (classic cross-reference table with exact offsets), as a
/// scanner or an EHR uploads it.
export function onePagePdf(text) {
  const stream = `BT /F1 18 Tf 72 720 Td (${text}) Tj ET`;
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
  ];
  let out = '%PDF-1.7\n';
  const offsets = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f\r\n`;
  for (const at of offsets) out += `${String(at).padStart(10, '0')} 00000 n\r\n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}
