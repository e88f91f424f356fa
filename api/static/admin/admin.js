// bozor admin console: plain JavaScript, no dependencies. Every call goes to /v1 on this origin
// with the access token kept in sessionStorage. Errors land in #status; the page stays usable.
'use strict';

(function () {
  const TOKEN_KEY = 'bozor.admin.access_token';
  const REFRESH_KEY = 'bozor.admin.refresh_token';
  const ROLES = ['buyer', 'seller', 'courier', 'support', 'admin', 'auditor'];
  const GRANTABLE = ROLES.filter((r) => r !== 'buyer');
  const PLANS = ['free', 'premium', 'pro'];
  const DISTRICTS = [
    'bektemir', 'chilonzor', 'mirzo_ulugbek', 'mirobod', 'olmazor', 'sergeli', 'shayxontohur',
    'uchtepa', 'yakkasaroy', 'yangihayot', 'yashnobod', 'yunusobod', 'tashkent_region',
  ];
  const PAGE = 50;
  const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (id) => document.getElementById(id);

  const state = {
    token: null,
    refresh: null,
    refreshing: null, // the refresh call in flight, shared by every caller
    tab: null,
    timer: null,
    projectionsLoading: false,
    queue: [],
    queueCursor: null,
    decided: new Set(), // listings approved or rejected here, hidden until the read model agrees
    users: [],
    usersCursor: null,
    usersMode: 'list', // 'list' (by role) or 'one' (found by id)
  };

  // ---------- small helpers ----------

  /** Creates an element: attrs may hold class, text, on<event> handlers and plain attributes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    });
    children.flat(Infinity).forEach((c) => {
      if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    });
    return node;
  }

  function clear(node) {
    node.textContent = '';
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** A random UUID for Idempotency-Key (crypto.randomUUID where the browser has it). */
  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** `?a=1&b=2` from the parameters that have a value, or ''. */
  function qs(params) {
    const q = new URLSearchParams();
    Object.entries(params).forEach(([k, v]) => {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    });
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  /** Digits grouped by thousands; accepts numbers and digit strings (big values). */
  function grouped(n) {
    if (n === null || n === undefined) return '—';
    const s = typeof n === 'number' ? (Number.isInteger(n) ? n.toFixed(0) : String(n)) : String(n);
    const m = /^(-?)(\d+)(\.\d+)?$/.exec(s);
    if (!m) return s;
    return m[1] + m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (m[3] || '');
  }

  /** Tiyin (integer, or a digit string for values past 2^53) as sums: `1,234.50 sum`. */
  function sums(tiyin) {
    if (tiyin === null || tiyin === undefined) return '—';
    const raw = typeof tiyin === 'number' ? tiyin.toFixed(0) : String(tiyin);
    const m = /^(-?)(\d+)$/.exec(raw);
    if (!m) return raw;
    const digits = m[2].padStart(3, '0');
    const whole = digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    const sign = m[1] && /[1-9]/.test(digits) ? '-' : '';
    return `${sign}${whole}.${digits.slice(-2)} sum`;
  }

  function isZero(v) {
    return /^-?0+$/.test(String(v));
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  /** Parses JSON; `bigInts` keeps integers of 16+ digits as strings so no tiyin is rounded. */
  function parseJson(text, bigInts) {
    if (!text) return null;
    const safe = bigInts
      ? text.replace(/"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{16,}(?![\w.])/g, (m) => (m[0] === '"' ? m : `"${m}"`))
      : text;
    try {
      return JSON.parse(safe);
    } catch (_) {
      return null;
    }
  }

  /** Reads a JWT's claims without checking it (the server checks it on every call). */
  function claimsOf(token) {
    const parts = String(token || '').split('.');
    if (parts.length !== 3) return null;
    try {
      const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      const bytes = Uint8Array.from(atob(b64 + '==='.slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
      const claims = JSON.parse(new TextDecoder().decode(bytes));
      return claims && typeof claims === 'object' ? claims : null;
    } catch (_) {
      return null;
    }
  }

  // ---------- status line ----------

  class ApiError extends Error {
    constructor(code, message, status, details) {
      super(message);
      this.code = code;
      this.status = status;
      this.details = details;
    }
  }

  function describe(err) {
    if (err instanceof ApiError) {
      let text = `${err.status ? `${err.status} ` : ''}${err.code}: ${err.message}`;
      const details = err.details && Object.keys(err.details).length ? JSON.stringify(err.details) : '';
      if (details && details.length < 200) text += ` ${details}`;
      return text;
    }
    return String((err && err.message) || err);
  }

  function say(text, kind) {
    const s = $('status');
    s.textContent = text || '';
    s.className = `status ${kind || 'info'}`;
  }

  function fail(err) {
    say(describe(err), 'error');
  }

  // ---------- the API ----------

  /**
   * Calls the API. POSTs send a JSON body (`{}` by default); commands also an Idempotency-Key,
   * the same one for a retry after the access token was refreshed. Resolves to the parsed body,
   * rejects with an ApiError carrying the server's code and message.
   */
  async function api(method, path, options) {
    const opts = options || {};
    const isPost = method === 'POST';
    const key = isPost && !opts.auth ? uuid() : null;
    for (let attempt = 0; ; attempt += 1) {
      const used = state.token;
      const headers = { Accept: 'application/json' };
      if (used && !opts.auth) headers.Authorization = `Bearer ${used}`;
      if (key) headers['Idempotency-Key'] = key;
      if (isPost) headers['Content-Type'] = 'application/json';
      let res;
      try {
        res = await fetch(path, {
          method,
          headers,
          body: isPost ? JSON.stringify(opts.body || {}) : undefined,
          cache: 'no-store',
          credentials: 'omit',
        });
      } catch (e) {
        throw new ApiError('network_error', 'the server cannot be reached', 0);
      }
      const data = parseJson(await res.text(), opts.bigInts);
      if (res.ok) return data;
      const e = (data && data.error) || {};
      const err = new ApiError(e.code || `http_${res.status}`, e.message || res.statusText || 'request failed',
        res.status, e.details);
      // An expired access token: refresh it once (or use the one another call just got).
      if (attempt === 0 && err.code === 'token_expired' && !opts.auth) {
        if (state.token && state.token !== used) continue;
        if (state.refresh && (await refreshSession())) continue;
      }
      // The token is refused for good: back to the sign-in form, with the reason shown.
      if (err.status === 401 && !opts.auth && state.token && state.token === used) {
        saveSession(null, null);
        showSignedOut();
      }
      throw err;
    }
  }

  /** Trades the refresh token for new tokens; one call at a time (a spent token revokes all). */
  function refreshSession() {
    if (!state.refreshing) {
      state.refreshing = api('POST', '/v1/auth/refresh', { auth: true, body: { refresh_token: state.refresh } })
        .then((s) => {
          saveSession(s.access_token, s.refresh_token);
          return true;
        })
        .catch(() => false)
        .finally(() => {
          state.refreshing = null;
        });
    }
    return state.refreshing;
  }

  /** Runs `load(min_position)` until the read model has caught up with a command's position. */
  async function readAfter(load, position) {
    if (position === null || position === undefined) return load(undefined);
    for (let i = 0; i < 5; i += 1) {
      try {
        return await load(position);
      } catch (err) {
        if (err.code !== 'projection_behind') throw err;
        await sleep(300);
      }
    }
    return load(undefined);
  }

  /** Disables `button` while `work` runs; an error goes to the status line. */
  async function busy(button, work) {
    if (button) button.disabled = true;
    try {
      return await work();
    } catch (err) {
      fail(err);
      return undefined;
    } finally {
      if (button) button.disabled = false;
    }
  }

  /**
   * Brings a table body's keyed rows in line with `items`, reusing rows by key (so a row and
   * its buttons survive a refresh) and moving only rows that are out of place.
   */
  function syncRows(tbody, items, attr, keyOf, build, fill) {
    const existing = new Map();
    tbody.querySelectorAll(`tr[${attr}]`).forEach((tr) => existing.set(tr.getAttribute(attr), tr));
    let prev = null;
    items.forEach((item) => {
      const key = String(keyOf(item));
      let tr = existing.get(key);
      if (tr) existing.delete(key);
      else tr = build(item);
      fill(tr, item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (tr !== want) tbody.insertBefore(tr, want);
      prev = tr;
    });
    existing.forEach((tr) => tr.remove());
  }

  // ---------- session ----------

  function store(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value);
      else sessionStorage.removeItem(key);
    } catch (_) {
      // Storage may be off: the session then lasts as long as the page.
    }
  }

  function saveSession(access, refresh) {
    state.token = access || null;
    state.refresh = refresh || null;
    store(TOKEN_KEY, state.token);
    store(REFRESH_KEY, state.refresh);
  }

  function showSignedOut() {
    stopTimer();
    $('whoami').textContent = 'Not signed in';
    $('signout').hidden = true;
    $('signin').hidden = false;
    $('console').hidden = true;
    ['queue', 'projections', 'users'].forEach((id) => clear($(id)));
    clear($('audit-result'));
    state.queue = [];
    state.queueCursor = null;
    state.users = [];
    state.usersCursor = null;
  }

  /**
   * Finds out who the token speaks for (GET /v1/users/me, after `minPosition` for a first
   * login) and opens the console to admins. A token of a user without a profile (e.g. one
   * minted by `bozor token`) is described from its own claims.
   */
  async function establish(minPosition) {
    const claims = claimsOf(state.token);
    let profile = null;
    try {
      profile = await api('GET', `/v1/users/me${qs({ min_position: minPosition })}`);
    } catch (err) {
      if (err.status === 401 || !claims) {
        saveSession(null, null);
        showSignedOut();
        throw err;
      }
      if (err.code !== 'user_not_found' && err.code !== 'projection_behind') fail(err);
    }
    const id = profile ? profile.id : claims.sub;
    // The token's roles are the ones the API acts on; the profile may be newer.
    let roles = [];
    if (claims && Array.isArray(claims.roles)) roles = claims.roles;
    else if (profile && Array.isArray(profile.roles)) roles = profile.roles;
    let who = `${id} · ${roles.length ? roles.join(', ') : 'no roles'}`;
    const sorted = (list) => list.slice().sort().join();
    if (profile && Array.isArray(profile.roles) && sorted(profile.roles) !== sorted(roles)) {
      who += ` (profile: ${profile.roles.join(', ')}; sign in again to use them)`;
    }
    $('whoami').textContent = who;
    $('whoami').setAttribute('data-user-id', id);
    $('whoami').setAttribute('data-roles', roles.join(' '));
    $('signout').hidden = false;
    $('signin').hidden = true;
    if (!roles.includes('admin')) {
      $('console').hidden = true;
      say(`This console is for admins. You are signed in with the roles: ${roles.join(', ') || 'none'}.`,
        'error');
      return;
    }
    $('console').hidden = false;
    say(`Signed in as ${profile && profile.phone ? profile.phone : id}.`, 'ok');
    showTab(state.tab || 'moderation');
  }

  async function requestCode() {
    const phone = $('phone-input').value.trim();
    if (!phone) {
      say('Enter a phone number (+998 and nine digits).', 'error');
      return;
    }
    await busy($('code-request'), async () => {
      const issued = await api('POST', '/v1/auth/otp/request', { auth: true, body: { phone } });
      const minutes = issued && issued.expires_in ? Math.round(issued.expires_in / 60) : 5;
      say(`A code was sent to ${phone}; it is valid for ${minutes} min.`, 'ok');
      $('code-input').focus();
    });
  }

  async function verifyCode() {
    const phone = $('phone-input').value.trim();
    const code = $('code-input').value.trim();
    if (!phone || !/^\d{6}$/.test(code)) {
      say('Enter the phone number and the six-digit code.', 'error');
      return;
    }
    await busy($('code-verify'), async () => {
      const session = await api('POST', '/v1/auth/otp/verify', { auth: true, body: { phone, code } });
      saveSession(session.access_token, session.refresh_token);
      $('code-input').value = '';
      await establish(session.position);
    });
  }

  async function tokenSignIn() {
    const token = $('token-input').value.trim().replace(/^Bearer\s+/i, '');
    if (!token) {
      say('Paste an access token first.', 'error');
      return;
    }
    await busy($('token-signin'), async () => {
      saveSession(token, null);
      await establish();
      $('token-input').value = '';
    });
  }

  async function signOut() {
    const refresh = state.refresh;
    saveSession(null, null);
    showSignedOut();
    say('Signed out.', 'info');
    if (refresh) {
      // Best effort: ends the refresh token's family on the server.
      api('POST', '/v1/auth/logout', { auth: true, body: { refresh_token: refresh } }).catch(() => {});
    }
  }

  // ---------- tabs ----------

  const TABS = {
    moderation: { button: 'tab-moderation', panel: 'moderation', show: () => loadQueue(false) },
    projections: { button: 'tab-projections', panel: 'projections-panel', show: () => loadProjections() },
    users: { button: 'tab-users', panel: 'users-panel', show: () => (state.users.length ? null : loadUsers(false)) },
    audit: { button: 'tab-audit', panel: 'audit-panel', show: () => null },
  };

  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  function showTab(name) {
    state.tab = name;
    stopTimer();
    Object.entries(TABS).forEach(([n, t]) => {
      const on = n === name;
      $(t.button).classList.toggle('active', on);
      $(t.button).setAttribute('aria-selected', String(on));
      $(t.panel).hidden = !on;
    });
    Promise.resolve()
      .then(TABS[name].show)
      .catch(fail);
    if (name === 'projections') {
      // Live view: every 2 s while the tab is shown and the page visible.
      state.timer = setInterval(() => {
        if (!document.hidden) loadProjections(true);
      }, 2000);
    }
  }

  // ---------- moderation ----------

  /** Loads the pending listings, oldest submission first; `more` appends the next page. */
  async function loadQueue(more, minPosition) {
    const page = await api('GET', `/v1/listings${qs({
      status: 'pending',
      sort: 'submitted',
      limit: PAGE,
      cursor: more ? state.queueCursor : undefined,
      min_position: minPosition,
    })}`);
    const items = page.items || [];
    if (!more) {
      // Forget decisions the read model now shows.
      const ids = new Set(items.map((l) => l.id));
      state.decided.forEach((id) => {
        if (!ids.has(id)) state.decided.delete(id);
      });
    }
    state.queue = more ? state.queue.concat(items) : items;
    state.queueCursor = page.next_cursor || null;
    $('queue-more').hidden = !state.queueCursor;
    renderQueue();
  }

  function renderQueue() {
    const tbody = $('queue');
    const shown = state.queue.filter((l) => !state.decided.has(l.id));
    syncRows(tbody, shown, 'data-listing-id', (l) => l.id, buildQueueRow, fillQueueRow);
    updateQueueEmpty();
  }

  function updateQueueEmpty() {
    const tbody = $('queue');
    const empty = $('queue-empty');
    const hasRows = tbody.querySelector('tr[data-listing-id]') !== null;
    if (hasRows && empty) empty.remove();
    if (!hasRows && !empty) {
      tbody.append(el('tr', { id: 'queue-empty' },
        el('td', { colspan: 5, class: 'empty', text: 'No listings are waiting for moderation.' })));
    }
  }

  function buildQueueRow(listing) {
    const row = el('tr', { 'data-listing-id': listing.id });
    const reason = el('input', {
      class: 'reason', type: 'text', maxlength: 500, placeholder: 'Reason to reject', 'aria-label': 'Reason to reject',
    });
    reason.addEventListener('input', () => reason.classList.remove('invalid'));
    reason.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') decide(row, 'reject');
    });
    row.append(
      el('td', { class: 'title' }),
      el('td', { class: 'seller' }),
      el('td', { class: 'price num' }),
      el('td', { class: 'created' }),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'approve', text: 'Approve', onclick: () => decide(row, 'approve') }),
        reason,
        el('button', { type: 'button', class: 'reject danger', text: 'Reject', onclick: () => decide(row, 'reject') })),
    );
    return row;
  }

  function fillQueueRow(row, l) {
    row.dataset.title = l.title;
    clear(row.cells[0]).append(
      el('div', { class: 'strong', text: l.title }),
      el('div', { class: 'muted small', text: [l.kind, l.category, l.game].filter(Boolean).join(' · ') }),
      el('code', { class: 'small', text: l.id }),
    );
    clear(row.cells[1]).append(el('code', { class: 'small', text: l.seller_id }));
    row.cells[2].textContent = sums(l.price);
    row.cells[3].textContent = fmtTime(l.created_at);
    row.cells[3].title = l.created_at || '';
  }

  /** Approves or rejects a listing, then reads the queue again once the read model has it. */
  async function decide(row, action) {
    const id = row.getAttribute('data-listing-id');
    const title = row.dataset.title || id;
    let body = {};
    if (action === 'reject') {
      const input = row.querySelector('input.reason');
      const reason = input.value.trim();
      if (!reason) {
        input.classList.add('invalid');
        input.focus();
        say('Give a reason to reject the listing.', 'error');
        return;
      }
      body = { reason };
    }
    const buttons = row.querySelectorAll('button');
    buttons.forEach((b) => {
      b.disabled = true;
    });
    let outcome;
    try {
      outcome = await api('POST', `/v1/listings/${encodeURIComponent(id)}/${action}`, { body });
    } catch (err) {
      fail(err);
      buttons.forEach((b) => {
        b.disabled = false;
      });
      return;
    }
    state.decided.add(id);
    row.remove();
    updateQueueEmpty();
    say(`“${title}” ${action === 'approve' ? 'approved' : 'rejected'}.`, 'ok');
    try {
      await readAfter((p) => loadQueue(false, p), outcome && outcome.position);
    } catch (err) {
      say(`“${title}” ${action === 'approve' ? 'approved' : 'rejected'}, but the queue could not be reloaded: ${describe(err)}`,
        'error');
    }
  }

  // ---------- projections ----------

  async function loadProjections(quiet) {
    if (state.projectionsLoading) return;
    state.projectionsLoading = true;
    try {
      const data = await api('GET', '/v1/admin/projections');
      syncRows($('projections'), (data && data.items) || [], 'data-projection', (p) => p.name,
        buildProjectionRow, fillProjectionRow);
    } catch (err) {
      fail(err);
      if (!quiet) throw err;
    } finally {
      state.projectionsLoading = false;
    }
  }

  function buildProjectionRow(p) {
    const row = el('tr', { 'data-projection': p.name });
    const cells = ['name', 'feed', 'version num', 'state', 'position num', 'events num', 'lag num', 'last-error'];
    cells.forEach((c) => row.append(el('td', { class: c })));
    row.append(el('td', {},
      el('button', { type: 'button', class: 'rebuild secondary', text: 'Rebuild', onclick: () => rebuild(row) })));
    return row;
  }

  function fillProjectionRow(row, p) {
    const c = row.cells;
    c[0].textContent = p.name;
    c[1].textContent = p.feed || '';
    c[2].textContent = p.version;
    c[3].textContent = p.state;
    c[3].className = `state state-${String(p.state).replace(/[^a-z_-]/gi, '')}`;
    c[4].textContent = grouped(p.position);
    c[5].textContent = grouped(p.events);
    const lagEvents = p.lag_events >= 100000 ? '≥ 100,000' : grouped(p.lag_events);
    const lagSeconds = typeof p.lag_seconds === 'number' ? p.lag_seconds.toFixed(1) : '—';
    c[6].textContent = `${lagEvents} ev · ${lagSeconds} s`;
    c[7].textContent = p.last_error || '—';
    c[7].classList.toggle('error-text', Boolean(p.last_error));
    row.querySelector('button.rebuild').disabled = p.state === 'rebuilding';
  }

  async function rebuild(row) {
    const name = row.getAttribute('data-projection');
    await busy(row.querySelector('button.rebuild'), async () => {
      await api('POST', `/v1/admin/projections/${encodeURIComponent(name)}/rebuild`);
      say(`Rebuild of ${name} started: the old read model serves until the new one is swapped in.`, 'ok');
    });
    await loadProjections(true);
  }

  // ---------- users ----------

  async function loadUsers(more, minPosition) {
    const district = $('users-district').value;
    const data = await api('GET', `/v1/users${qs({
      role: $('users-role').value,
      district: district || undefined,
      limit: PAGE,
      cursor: more ? state.usersCursor : undefined,
      min_position: minPosition,
    })}`);
    const items = (data && data.items) || [];
    state.usersMode = 'list';
    state.users = more ? state.users.concat(items) : items;
    state.usersCursor = data.next_cursor || null;
    $('users-more').hidden = !state.usersCursor;
    renderUsers();
  }

  /** Finds one user by id, or by phone number (`GET /v1/users?phone=`). */
  async function findUser(minPosition) {
    const given = $('user-id-input').value.trim();
    let found;
    if (UUID_RE.test(given)) {
      found = [await api('GET', `/v1/users/${encodeURIComponent(given)}${qs({ min_position: minPosition })}`)];
    } else if (/^\+?[\d\s()-]{9,20}$/.test(given)) {
      const page = await api('GET', `/v1/users${qs({ phone: given, min_position: minPosition })}`);
      found = page.items || [];
      if (!found.length) say(`No user has the number ${given}.`, 'error');
    } else {
      say('Give a user id (a UUID) or a phone number.', 'error');
      return;
    }
    state.usersMode = 'one';
    state.users = found;
    state.usersCursor = null;
    $('users-more').hidden = true;
    renderUsers();
  }


  function reloadUsers(position) {
    return readAfter((p) => (state.usersMode === 'one' ? findUser(p) : loadUsers(false, p)), position);
  }

  function renderUsers() {
    const tbody = $('users');
    const empty = $('users-empty');
    if (empty) empty.remove();
    syncRows(tbody, state.users, 'data-user-id', (u) => u.id, buildUserRow, fillUserRow);
    if (!state.users.length) {
      tbody.append(el('tr', { id: 'users-empty' }, el('td', { colspan: 7, class: 'empty', text: 'No users found.' })));
    }
  }

  function options(values, blank) {
    return (blank ? [el('option', { value: '', text: blank })] : [])
      .concat(values.map((v) => el('option', { value: v, text: v })));
  }

  function buildUserRow(u) {
    const row = el('tr', { 'data-user-id': u.id });
    const role = el('select', { class: 'grant-role', 'aria-label': 'Role to grant' }, options(GRANTABLE));
    const plan = el('select', { class: 'grant-plan', 'aria-label': 'Plan' }, options(PLANS));
    const district = el('select', { class: 'grant-district', 'aria-label': 'District' }, options(DISTRICTS));
    const terms = () => {
      plan.hidden = role.value !== 'seller';
      district.hidden = role.value !== 'courier';
    };
    role.addEventListener('change', terms);
    terms();
    row.append(
      el('td', {}, el('code', { class: 'small', text: u.id })),
      el('td', { class: 'phone' }),
      el('td', { class: 'roles' }),
      el('td', { class: 'plan' }),
      el('td', { class: 'district' }),
      el('td', { class: 'registered' }),
      el('td', { class: 'grant-cell' }, role, plan, district,
        el('button', { type: 'button', class: 'grant', text: 'Grant', onclick: () => grant(row) })),
    );
    return row;
  }

  function fillUserRow(row, u) {
    const c = row.cells;
    c[1].textContent = u.phone || '—';
    clear(c[2]).append(...(u.roles || []).map((r) => el('span', { class: 'chip', 'data-role': r }, r,
      r === 'buyer' ? null : el('button', {
        type: 'button', class: 'revoke', 'data-role': r, title: `Revoke ${r}`, 'aria-label': `Revoke ${r}`, text: '×',
        onclick: (e) => revoke(row, r, e.currentTarget),
      }))));
    c[3].textContent = u.plan || '—';
    c[4].textContent = u.district || '—';
    c[5].textContent = fmtTime(u.registered_at);
  }

  async function grant(row) {
    const id = row.getAttribute('data-user-id');
    const role = row.querySelector('select.grant-role').value;
    const body = { role };
    if (role === 'seller') body.plan = row.querySelector('select.grant-plan').value;
    if (role === 'courier') body.district = row.querySelector('select.grant-district').value;
    await busy(row.querySelector('button.grant'), async () => {
      const out = await api('POST', `/v1/users/${encodeURIComponent(id)}/roles`, { body });
      const terms = body.plan || body.district;
      say(`Granted ${role}${terms ? ` (${terms})` : ''} to ${id}; their next token carries it.`, 'ok');
      await reloadUsers(out && out.position);
    });
  }

  async function revoke(row, role, button) {
    const id = row.getAttribute('data-user-id');
    await busy(button, async () => {
      const out = await api('POST', `/v1/users/${encodeURIComponent(id)}/roles/${encodeURIComponent(role)}/revoke`);
      say(`Revoked ${role} from ${id}; their current token keeps it until it expires (15 min at most).`, 'ok');
      await reloadUsers(out && out.position);
    });
  }

  // ---------- ledger audit ----------

  const TRIAL_LINES = [
    ['users_available', 'Users: available', false],
    ['users_held', 'Users: held', false],
    ['held_by_escrows', 'of which by escrows', true],
    ['held_by_withdrawals', 'of which by withdrawals', true],
    ['platform_revenue', 'Platform revenue', false],
    ['provider_clearing', 'Provider clearing', false],
    ['payout_clearing', 'Payout clearing', false],
    ['total', 'Total (must be zero)', false],
  ];

  async function runAudit() {
    const out = $('audit-result');
    const asOf = $('audit-as-of').value.trim();
    await busy($('audit-run'), async () => {
      clear(out).append(el('p', { class: 'muted', text: 'Auditing… this reads the whole event log.' }));
      say('Running the ledger audit…', 'info');
      try {
        const report = await api('GET', `/v1/audit/ledger${qs({ as_of: asOf })}`, { bigInts: true });
        renderAudit(report);
        if (report.ok) say('Audit finished: the books are sound.', 'ok');
        else say(`Audit finished: ${discrepancies(report.discrepancies_total)} found.`, 'error');
      } catch (err) {
        clear(out).append(el('p', { class: 'error-text', text: describe(err) }));
        throw err;
      }
    });
  }

  const discrepancies = (n) => `${grouped(n)} ${String(n) === '1' ? 'discrepancy' : 'discrepancies'}`;

  function asOfText(a) {
    if (!a) return 'now';
    if (a.kind === 'position') return `position ${grouped(a.position)}`;
    if (a.kind === 'time') return fmtTime(a.time);
    return JSON.stringify(a);
  }

  function renderAudit(r) {
    const out = clear($('audit-result'));
    out.setAttribute('data-ok', String(Boolean(r.ok)));
    out.append(el('div', { class: `verdict ${r.ok ? 'ok' : 'bad'}` },
      r.ok ? 'OK — no discrepancies' : discrepancies(r.discrepancies_total)));

    const facts = [
      ['As of', asOfText(r.as_of)],
      ['Events', grouped(r.events)],
      ['Journals', grouped(r.journals)],
      ['Wallets', grouped(r.wallets)],
      ['Payments', grouped(r.payments)],
      ['Wallets not yet in the read model', grouped(r.read_model_behind)],
      ['Discrepancies', grouped(r.discrepancies_total)],
      ['Took', `${Number(r.seconds || 0).toFixed(2)} s (${grouped(Math.round(r.events_per_sec || 0))} events/s)`],
    ];
    out.append(el('dl', { class: 'facts' }, facts.map(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })])));

    const tb = r.trial_balance || {};
    out.append(el('h3', { text: 'Trial balance' }), el('table', { class: 'grid trial' },
      el('tbody', {}, TRIAL_LINES.map(([key, label, sub]) => el('tr', {
        'data-field': key,
        class: [sub ? 'sub' : '', key === 'total' ? 'total' : '', key === 'total' && !isZero(tb[key]) ? 'bad' : '']
          .filter(Boolean).join(' ') || null,
      }, el('th', { text: label }), el('td', { class: 'num', text: sums(tb[key]) }))))));

    const list = r.discrepancies || [];
    if (list.length) {
      const more = r.discrepancies_total > list.length ? ` (first ${list.length} of ${grouped(r.discrepancies_total)})` : '';
      out.append(el('h3', { text: `Discrepancies${more}` }), el('table', { class: 'grid discrepancies' },
        el('thead', {}, el('tr', {}, ['Kind', 'Stream', 'Version', 'Event', 'Position', 'Detail']
          .map((h) => el('th', { text: h })))),
        el('tbody', {}, list.map((d) => el('tr', { 'data-kind': d.kind },
          el('td', {}, el('code', { text: d.kind })),
          el('td', {}, el('code', { class: 'small', text: d.stream_id || '—' })),
          el('td', { class: 'num', text: d.version === null || d.version === undefined ? '—' : d.version }),
          el('td', {}, el('code', { class: 'small', text: d.event_id || '—' })),
          el('td', { class: 'num', text: d.global_position === null || d.global_position === undefined ? '—' : grouped(d.global_position) }),
          el('td', { text: d.detail }))))));
    }
  }

  // ---------- wiring ----------

  function onEnter(id, action) {
    $(id).addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (id !== 'token-input' || e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        action();
      }
    });
  }

  function start() {
    $('users-role').append(...options(ROLES));
    $('users-district').append(...options(DISTRICTS, 'any'));

    $('code-request').addEventListener('click', requestCode);
    $('code-verify').addEventListener('click', verifyCode);
    $('token-signin').addEventListener('click', tokenSignIn);
    $('signout').addEventListener('click', signOut);
    onEnter('phone-input', requestCode);
    onEnter('code-input', verifyCode);
    onEnter('token-input', tokenSignIn);

    Object.keys(TABS).forEach((name) => $(TABS[name].button).addEventListener('click', () => showTab(name)));

    $('queue-refresh').addEventListener('click', (e) => busy(e.currentTarget, () => loadQueue(false)));
    $('queue-more').addEventListener('click', (e) => busy(e.currentTarget, () => loadQueue(true)));
    $('projections-refresh').addEventListener('click', (e) => busy(e.currentTarget, () => loadProjections()));
    $('users-load').addEventListener('click', (e) => busy(e.currentTarget, () => loadUsers(false)));
    $('users-role').addEventListener('change', () => busy(null, () => loadUsers(false)));
    $('users-district').addEventListener('change', () => busy(null, () => loadUsers(false)));
    $('users-more').addEventListener('click', (e) => busy(e.currentTarget, () => loadUsers(true)));
    $('user-find').addEventListener('click', (e) => busy(e.currentTarget, () => findUser()));
    onEnter('user-id-input', () => busy($('user-find'), () => findUser()));
    $('audit-run').addEventListener('click', runAudit);

    // Whatever slips through still reaches the status line instead of breaking the page.
    window.addEventListener('unhandledrejection', (e) => fail(e.reason));
    window.addEventListener('error', (e) => say(`Script error: ${e.message}`, 'error'));

    let token = null;
    let refresh = null;
    try {
      token = sessionStorage.getItem(TOKEN_KEY);
      refresh = sessionStorage.getItem(REFRESH_KEY);
    } catch (_) {
      // No storage: start signed out.
    }
    if (token) {
      saveSession(token, refresh);
      establish().catch(fail);
    } else {
      showSignedOut();
    }
  }

  start();
}());
