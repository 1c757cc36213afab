// Idle timer (progressive enhancement: without it the server still ends idle sessions, and a
// form sent after that comes back through the login page with what was typed).
//
// While the person works (keys, pointer, typing) the session is kept alive. When nothing has
// happened for the session's idle limit, the page leaves patient data off the screen: a
// record form with unsaved typing is sent with action=timeout (the server ends the session
// and answers with the login page carrying the draft); any other page signs out.
(() => {
  'use strict';
  const idle = Number(document.body.dataset.idleSeconds || 0) * 1000;
  if (!idle) return;
  // The server counts idleness from the last time it recorded activity, which may be a
  // little before this page loaded; it tells the page how long is left.
  const left = Number(document.body.dataset.idleLeft || idle / 1000) * 1000;
  // `lock`: the screen locks (password to resume); `timeout`: the session ends.
  const action = document.body.dataset.idleAction === 'lock' ? 'lock' : 'timeout';
  const warnAhead = Math.min(60_000, idle / 4);
  // Act a little before the server would, so that the session is ended deliberately.
  const margin = Math.min(5_000, idle / 10);
  const pingEvery = Math.min(60_000, idle / 4);
  const warning = document.getElementById('idle-warning');
  const draft = document.querySelector('form[data-draft]');
  let deadline = Date.now() + left;
  let lastPing = Date.now();
  let dirty = false;
  let done = false;

  if (draft) draft.addEventListener('input', () => { dirty = true; });

  const ping = () => {
    const sent = Date.now();
    lastPing = sent;
    fetch('/session/ping', { method: 'POST', credentials: 'same-origin' })
      .then((r) => {
        if (r.status === 204) deadline = sent + idle;
        else if (r.status === 401) expire();
      })
      .catch(() => {});
  };

  const active = () => {
    if (done) return;
    if (warning) warning.hidden = true;
    if (Date.now() - lastPing >= pingEvery || deadline - Date.now() <= warnAhead) ping();
  };

  // Sends the unsaved record form with `what` (lock or timeout) instead of saving it: the
  // server answers with the unlock or login page that carries it.
  const sendDraft = (what) => {
    const a = document.createElement('input');
    a.type = 'hidden';
    a.name = 'action';
    a.value = what;
    draft.appendChild(a);
    // Files cannot be carried over; leave them out rather than upload them now.
    draft.querySelectorAll('input[type=file]').forEach((f) => { f.disabled = true; });
    draft.submit();
  };

  const expire = () => {
    if (done) return;
    done = true;
    if (draft && dirty) {
      sendDraft(action);
      return;
    }
    const lock = document.getElementById('lock-form');
    if (action === 'lock' && lock) {
      lock.submit();
      return;
    }
    const logout = document.getElementById('logout-form');
    if (logout) {
      const i = document.createElement('input');
      i.type = 'hidden';
      i.name = 'idle';
      i.value = '1';
      logout.appendChild(i);
      logout.submit();
    } else {
      window.location.assign('/login?expired=1');
    }
  };

  ['keydown', 'pointerdown', 'input', 'wheel'].forEach((e) =>
    document.addEventListener(e, active, { passive: true, capture: true }));
  // The lock button keeps an unsaved draft too.
  const lockForm = document.getElementById('lock-form');
  if (lockForm) {
    lockForm.addEventListener('submit', (e) => {
      if (draft && dirty && !done) {
        e.preventDefault();
        done = true;
        sendDraft('lock');
      }
    });
  }
  const cont = document.getElementById('idle-continue');
  if (cont) cont.addEventListener('click', () => { lastPing = 0; active(); });

  setInterval(() => {
    if (done) return;
    const remaining = deadline - Date.now();
    if (remaining <= margin) expire();
    else if (warning && remaining <= warnAhead) warning.hidden = false;
  }, 1000);
})();
