// Passkeys (WebAuthn) for the second factor: registration on the account page and the
// second step of signing in. Same origin only (the CSP allows no other script); every call
// carries the session's CSRF token. Without WebAuthn in the browser the controls stay hidden.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const bin = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));

  async function post(path, csrf, body) {
    const r = await fetch('/api/v1' + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body || {}),
    });
    const data = r.status === 204 ? {} : await r.json();
    if (!r.ok) throw new Error((data.error && data.error.message) || r.statusText);
    return data;
  }

  function fail(e) {
    const el = document.getElementById('passkey-error');
    el.textContent = e.name === 'NotAllowedError'
      ? document.documentElement.lang === 'en' ? 'Cancelled or timed out.' : 'キャンセルされたか、時間切れになりました。'
      : e.message;
    el.hidden = false;
  }

  const reg = document.getElementById('passkey-register');
  if (reg) {
    reg.hidden = false;
    document.getElementById('passkey-register-button').addEventListener('click', async () => {
      const csrf = reg.dataset.csrf;
      try {
        const o = await post('/auth/passkeys/options', csrf);
        o.challenge = bin(o.challenge);
        o.user.id = bin(o.user.id);
        o.excludeCredentials = o.excludeCredentials.map((c) => ({ ...c, id: bin(c.id) }));
        const cred = await navigator.credentials.create({ publicKey: o });
        const out = await post('/auth/passkeys', csrf, {
          name: document.getElementById('passkey-name').value,
          client_data_json: b64(cred.response.clientDataJSON),
          attestation_object: b64(cred.response.attestationObject),
        });
        if (out.recovery_codes && out.recovery_codes.length) {
          const box = document.getElementById('passkey-codes');
          const ul = box.querySelector('ul');
          out.recovery_codes.forEach((c) => {
            const li = document.createElement('li');
            const code = document.createElement('code');
            code.textContent = c;
            li.appendChild(code);
            ul.appendChild(li);
          });
          box.hidden = false;
        } else {
          location.reload();
        }
      } catch (e) { fail(e); }
    });
  }

  const ver = document.getElementById('passkey-verify');
  if (ver) {
    ver.hidden = false;
    document.getElementById('passkey-verify-button').addEventListener('click', async () => {
      const csrf = ver.dataset.csrf;
      try {
        const o = await post('/auth/second-factor/passkey/options', csrf);
        o.challenge = bin(o.challenge);
        o.allowCredentials = o.allowCredentials.map((c) => ({ ...c, id: bin(c.id) }));
        const a = await navigator.credentials.get({ publicKey: o });
        await post('/auth/second-factor/passkey', csrf, {
          credential_id: b64(a.rawId),
          client_data_json: b64(a.response.clientDataJSON),
          authenticator_data: b64(a.response.authenticatorData),
          signature: b64(a.response.signature),
        });
        location.href = '/';
      } catch (e) { fail(e); }
    });
  }
})();
