// Coffer console: a single-page application over /console/api/.
// Every value from the server is put into the page as text (textContent,
// attribute values), never parsed as markup.
'use strict';
(() => {
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const signoutBtn = document.getElementById('signout');
  const state = { me: null, csrf: '', timer: null, selection: new Set(), selectionRP: '' };

  // el builds an element: attrs are attributes (on: event listeners),
  // children are nodes or strings (text).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'on') {
        for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
      } else if (v === true) {
        e.setAttribute(k, '');
      } else if (v !== false && v !== null && v !== undefined) {
        e.setAttribute(k, String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: {} };
    if (method !== 'GET') {
      opts.headers['Content-Type'] = 'application/json';
      opts.headers['X-CSRF-Token'] = state.csrf;
      opts.body = JSON.stringify(body || {});
    }
    const resp = await fetch('api/' + path, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) || ('HTTP ' + resp.status);
      if (resp.status === 401 && path !== 'signin') {
        state.me = null;
        showSignIn(msg);
      }
      throw new APIError(resp.status, msg);
    }
    return data;
  }

  const q = (params) => new URLSearchParams(params).toString();

  function route() {
    const h = location.hash || '#/dashboard';
    const [path, query] = h.slice(1).split('?');
    return { path, params: new URLSearchParams(query || '') };
  }

  function stopTimer() {
    if (state.timer) { clearTimeout(state.timer); state.timer = null; }
  }

  function page(title, ...children) {
    main.replaceChildren(el('h1', {}, title), ...children);
    document.title = title + ' · Coffer';
  }

  function errorLine(err) {
    return el('p', { class: 'error', role: 'alert' }, err.message || String(err));
  }

  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    const u = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return n.toFixed(1) + ' ' + u[i];
  }

  function fmtTime(s) { return s ? s.replace('T', ' ').replace('Z', ' UTC') : ''; }

  function stateCell(s) { return el('td', { class: 'state-' + s }, s); }

  function table(headers, rows, label) {
    return el('table', { 'aria-label': label },
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: headers.length, class: 'muted' }, 'None'))));
  }

  // --- sign-in ---------------------------------------------------------

  function showSignIn(message) {
    stopTimer();
    nav.hidden = true; signoutBtn.hidden = true; who.textContent = '';
    const akid = el('input', { type: 'text', name: 'akid', autocomplete: 'username', required: true, spellcheck: 'false' });
    const secret = el('input', { type: 'password', name: 'secret', autocomplete: 'current-password', required: true });
    const msg = el('p', { class: 'error', role: 'alert' }, message && message !== 'not signed in' ? message : '');
    const form = el('form', {
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          msg.textContent = '';
          try {
            const me = await api('POST', 'signin', { accessKeyId: akid.value.trim(), secretAccessKey: secret.value });
            signedIn(me);
            if (!location.hash || location.hash === '#/signin') location.hash = '#/dashboard';
            render();
          } catch (err) {
            msg.textContent = err.message;
          }
        },
      },
    },
    el('label', {}, 'Access key ID', akid),
    el('label', {}, 'Secret access key', secret),
    el('button', { type: 'submit' }, 'Sign in'),
    msg);
    main.replaceChildren(el('section', { class: 'signin card' }, el('h1', {}, 'Sign in to Coffer'), form));
    document.title = 'Sign in · Coffer';
    akid.focus();
  }

  function signedIn(me) {
    state.me = me;
    state.csrf = me.csrfToken || state.csrf;
    nav.hidden = false; signoutBtn.hidden = false;
    who.textContent = 'Account ' + me.accountId + (me.management ? ' (management)' : '') + ' · ' + me.region;
  }

  signoutBtn.addEventListener('click', async () => {
    try { await api('POST', 'signout'); } catch (e) { /* signed out anyway */ }
    state.me = null; state.csrf = '';
    location.hash = '#/signin';
    showSignIn('');
  });

  // --- pages -----------------------------------------------------------

  function jobRow(j) {
    const pct = parseFloat(j.percentDone || '0');
    return el('tr', {},
      el('td', {}, j.kind),
      el('td', {}, el('a', { href: '#/job?' + q({ kind: j.kind, id: j.id }), class: 'mono' }, j.id)),
      stateCell(j.state),
      el('td', {}, j.state === 'RUNNING' ? el('progress', { max: 100, value: pct, 'aria-label': 'Progress ' + pct + '%' }) : '', ' ', (j.percentDone || '') + '%'),
      el('td', { class: 'mono' }, j.resourceArn || ''),
      el('td', {}, fmtTime(j.created)),
      el('td', {}, j.statusMessage || ''));
  }
  const jobHeaders = ['Type', 'Job ID', 'State', 'Progress', 'Resource', 'Created', 'Message'];

  async function dashboard() {
    const [vaults, resources] = await Promise.all([api('GET', 'vaults'), api('GET', 'resources')]);
    const vaultSel = el('select', { name: 'vault' }, vaults.map((v) => el('option', { value: v.name }, v.name)));
    const resSel = el('select', { name: 'resource' }, resources.map((r) => el('option', { value: r.arn }, r.type + ' ' + r.id)));
    const msg = el('div', { role: 'status' });
    const tables = el('div');
    const form = el('form', {
      class: 'inline',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          try {
            const j = await api('POST', 'backup', { vaultName: vaultSel.value, resourceArn: resSel.value });
            msg.replaceChildren('Backup job ', el('a', { href: '#/job?' + q({ kind: 'backup', id: j.id }), class: 'mono' }, j.id), ' started.');
            await refreshTables();
          } catch (err) { msg.replaceChildren(errorLine(err)); }
        },
      },
    }, el('label', {}, 'Vault', vaultSel), el('label', {}, 'Resource', resSel), el('button', { type: 'submit' }, 'Start backup'));
    // Only the tables refresh (every 2 s): the form keeps what is typed.
    async function refreshTables() {
      const d = await api('GET', 'dashboard?' + q({ all: state.me.management ? '1' : '' }));
      const summary = Object.entries(d.summary).sort().map(([k, n]) => {
        const [kind, st] = k.split(' ');
        return el('tr', {}, el('td', {}, kind), stateCell(st), el('td', { class: 'num' }, n));
      });
      tables.replaceChildren(
        el('h2', {}, 'Running jobs'), table(jobHeaders, d.running.map(jobRow), 'Running jobs'),
        el('h2', {}, 'Failures in the last 24 hours'), table(jobHeaders, d.failures.map(jobRow), 'Failures'),
        el('h2', {}, 'Jobs in the last 24 hours'), table(['Type', 'State', 'Count'], summary, 'Job summary'));
    }
    await refreshTables();
    page('Dashboard', el('section', { class: 'card' }, el('h2', {}, 'Start a backup'), form, msg), tables);
    const tick = async () => {
      if (!main.contains(tables)) return;
      try { await refreshTables(); } catch (err) { if (!(err instanceof APIError && err.status === 401)) tables.append(errorLine(err)); return; }
      state.timer = setTimeout(tick, 2000);
    };
    state.timer = setTimeout(tick, 2000);
  }

  async function vaultsPage() {
    const vaults = await api('GET', 'vaults');
    const name = el('input', { type: 'text', name: 'vaultName', required: true, pattern: '[A-Za-z0-9_\\-]{2,50}' });
    const msg = el('div', { role: 'status' });
    const form = el('form', {
      class: 'inline',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          try {
            await api('POST', 'vaults', { name: name.value.trim() });
            render();
          } catch (err) { msg.replaceChildren(errorLine(err)); }
        },
      },
    }, el('label', {}, 'Vault name', name), el('button', { type: 'submit' }, 'Create vault'));
    const rows = vaults.map((v) => el('tr', {},
      el('td', {}, el('a', { href: '#/recovery-points?' + q({ vault: v.name }) }, v.name)),
      el('td', { class: 'num' }, v.recoveryPoints),
      el('td', {}, v.locked ? 'Locked' + (v.minRetentionDays ? ', min ' + v.minRetentionDays + ' d' : '') + (v.maxRetentionDays ? ', max ' + v.maxRetentionDays + ' d' : '') : 'Not locked'),
      el('td', {}, v.policy ? el('details', {}, el('summary', {}, 'Access policy'), el('pre', { class: 'mono' }, v.policy)) : 'None'),
      el('td', {}, fmtTime(v.created)),
      el('td', {}, el('button', {
        type: 'button', class: 'danger', 'aria-label': 'Delete vault ' + v.name,
        on: {
          click: async () => {
            if (!confirm('Delete vault ' + v.name + '?')) return;
            try { await api('POST', 'vaults/delete', { name: v.name }); render(); } catch (err) { msg.replaceChildren(errorLine(err)); }
          },
        },
      }, 'Delete'))));
    page('Vaults', el('section', { class: 'card' }, el('h2', {}, 'Create a vault'), form, msg),
      table(['Name', 'Recovery points', 'Lock', 'Access policy', 'Created', ''], rows, 'Vaults'));
  }

  async function recoveryPointsPage(params) {
    const vault = params.get('vault') || '';
    const resource = params.get('resource') || '';
    const [vaults, rps] = await Promise.all([api('GET', 'vaults'), api('GET', 'recovery-points?' + q({ vault, resource }))]);
    const sel = el('select', { name: 'vault', on: { change: () => { location.hash = '#/recovery-points?' + q({ vault: sel.value }); } } },
      el('option', { value: '' }, 'All vaults'), vaults.map((v) => el('option', { value: v.name, selected: v.name === vault }, v.name)));
    const rows = rps.map((rp) => el('tr', {},
      el('td', {}, fmtTime(rp.created)),
      el('td', {}, rp.vaultName),
      el('td', { class: 'mono' }, el('a', { href: '#/recovery-points?' + q({ resource: rp.resourceArn }) }, rp.resourceArn)),
      stateCell(rp.status),
      el('td', { class: 'num' }, fmtBytes(rp.size)),
      el('td', {},
        el('a', { href: '#/browse?' + q({ rp: rp.arn }), 'aria-label': 'Browse recovery point of ' + rp.created }, 'Browse'), ' · ',
        el('a', { href: '#/restore?' + q({ rp: rp.arn }), 'aria-label': 'Restore recovery point of ' + rp.created }, 'Restore'))));
    page('Recovery points', el('form', { class: 'inline' }, el('label', {}, 'Vault', sel)),
      resource ? el('p', {}, 'Resource ', el('code', {}, resource)) : '',
      table(['Created', 'Vault', 'Resource', 'Status', 'Size', ''], rows, 'Recovery points'));
  }

  async function browsePage(params) {
    const rp = params.get('rp') || '';
    const path = params.get('path') || '';
    const glob = params.get('glob') || '';
    const rpInfo = (await api('GET', 'recovery-points')).find((r) => r.arn === rp);
    const isFS = !rpInfo || rpInfo.resourceType === 'EFS';
    const base = path || (isFS ? '/' : '');
    if (state.selectionRP !== rp) { state.selection = new Set(); state.selectionRP = rp; }
    const tbody = el('tbody');
    const more = el('button', { type: 'button', class: 'secondary', hidden: true }, 'Load more');
    const count = el('span', { class: 'muted', role: 'status' });
    const updateCount = () => { count.textContent = state.selection.size + ' selected'; };
    let next = '';
    const open = (p) => { location.hash = '#/browse?' + q({ rp, path: p }); };
    async function load() {
      const page = await api('GET', 'browse?' + q({ rp, path: base, glob, next }));
      for (const e of page.entries) {
        const box = el('input', { type: 'checkbox', 'aria-label': 'Select ' + e.path, checked: state.selection.has(e.path) });
        box.addEventListener('change', () => { if (box.checked) state.selection.add(e.path); else state.selection.delete(e.path); updateCount(); });
        const container = e.type === 'DIRECTORY' || e.type === 'PREFIX';
        tbody.append(el('tr', {},
          el('td', {}, box),
          el('td', { class: 'mono' }, container ? el('a', { href: '#/browse?' + q({ rp, path: e.path }) }, glob ? e.path : e.name) : (glob ? e.path : e.name),
            e.target ? ' → ' + e.target : ''),
          el('td', {}, e.type), el('td', { class: 'num' }, container ? '' : fmtBytes(e.size)), el('td', { class: 'mono' }, e.mode || ''),
          el('td', {}, fmtTime(e.modified))));
      }
      if (!tbody.children.length) tbody.append(el('tr', {}, el('td', { colspan: 6, class: 'muted' }, 'Empty')));
      next = page.next || '';
      more.hidden = !next;
    }
    more.addEventListener('click', () => load().catch((err) => main.append(errorLine(err))));
    // Breadcrumbs of the level shown.
    const crumbs = el('div', { class: 'crumbs', 'aria-label': 'Path' });
    if (isFS) {
      crumbs.append(el('button', { type: 'button', class: 'secondary', on: { click: () => open('/') } }, '/'));
      let acc = '';
      for (const part of base.split('/').filter(Boolean)) {
        acc += '/' + part;
        const p = acc;
        crumbs.append(el('button', { type: 'button', class: 'secondary', on: { click: () => open(p) } }, part));
      }
    } else {
      crumbs.append(el('button', { type: 'button', class: 'secondary', on: { click: () => open('') } }, '(bucket)'));
      let acc = '';
      for (const part of base.split('/').filter(Boolean)) {
        acc += part + '/';
        const p = acc;
        crumbs.append(el('button', { type: 'button', class: 'secondary', on: { click: () => open(p) } }, part + '/'));
      }
    }
    const globIn = el('input', { type: 'text', name: 'glob', value: glob, placeholder: isFS ? '**/*.jpg' : '*.jpg' });
    const search = el('form', { class: 'inline', on: { submit: (ev) => { ev.preventDefault(); location.hash = '#/browse?' + q({ rp, path: base, glob: globIn.value }); } } },
      el('label', {}, 'Search (glob)', globIn), el('button', { type: 'submit' }, 'Search'));
    const restoreSel = el('button', {
      type: 'button',
      on: { click: () => { location.hash = '#/restore?' + q({ rp, items: JSON.stringify([...state.selection]) }); } },
    }, 'Restore selected');
    updateCount();
    page('Browse recovery point', el('p', {}, el('code', {}, rp)), crumbs, search,
      el('table', { 'aria-label': 'Contents' },
        el('thead', {}, el('tr', {}, ['', 'Name', 'Type', 'Size', 'Mode', 'Modified'].map((h) => el('th', { scope: 'col' }, h)))), tbody),
      el('p', {}, more, ' ', restoreSel, ' ', count));
    await load();
  }

  function lines(s) { return s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean); }

  // restoreForm returns the type's structured fields and the function that
  // builds the restore metadata from them; base is the recovery point's
  // own restore metadata (GetRecoveryPointRestoreMetadata).
  function restoreForm(info, base, items) {
    const policySel = (first) => el('select', { name: 'conflictPolicy' }, el('option', { value: '' }, first),
      ['SKIP_EXISTING', 'OVERWRITE_EXISTING', 'OVERWRITE_IF_NEWER'].map((p) => el('option', { value: p }, p)));
    const itemsBox = (list) => el('textarea', { rows: 4, cols: 70, name: 'items' }, list.join('\n'));
    const incl = el('input', { type: 'text', name: 'include', placeholder: '**/*.jpg' });
    const excl = el('input', { type: 'text', name: 'exclude', placeholder: '*.tmp' });
    const globs = (md) => {
      if (lines(incl.value).length) md.Include = JSON.stringify(lines(incl.value));
      if (lines(excl.value).length) md.Exclude = JSON.stringify(lines(excl.value));
    };
    const sourceID = info.resourceArn.split(/[/:]/).pop();
    if (info.resourceType === 'EFS') {
      const newFS = el('input', { type: 'radio', name: 'target', value: 'new', checked: true });
      const oldFS = el('input', { type: 'radio', name: 'target', value: 'existing' });
      const fsID = el('input', { type: 'text', name: 'fsid', placeholder: 'fs-…' });
      const tpath = el('input', { type: 'text', name: 'targetPath', placeholder: '/restored' });
      const policy = policySel('(new directory only)');
      const box = itemsBox(items);
      return {
        fields: [
          el('fieldset', {}, el('legend', {}, 'Target'),
            el('label', { class: 'check' }, newFS, 'New file system'),
            el('label', { class: 'check' }, oldFS, 'Existing file system'),
            el('label', {}, 'File system ID', fsID), el('label', {}, 'Target path', tpath), el('label', {}, 'Conflict policy', policy)),
          el('label', {}, 'Items (one per line; empty: everything)', box),
          el('label', {}, 'Include globs', incl), el('label', {}, 'Exclude globs', excl),
        ],
        metadata() {
          const md = {};
          if (newFS.checked) {
            md['file-system-id'] = sourceID; md.newFileSystem = 'true';
          } else {
            md['file-system-id'] = fsID.value.trim(); md.newFileSystem = 'false';
            if (tpath.value.trim()) md.TargetPath = tpath.value.trim();
            if (policy.value) md.ConflictPolicy = policy.value;
          }
          const it = lines(box.value);
          if (it.length) md.ItemsToRestore = JSON.stringify(it);
          globs(md);
          return md;
        },
      };
    }
    if (info.resourceType === 'S3') {
      // Items chosen in the browser are keys and prefixes of the source
      // bucket; ItemsToRestore names them as s3://bucket/key.
      const source = base.DestinationBucketName || sourceID;
      const newB = el('input', { type: 'radio', name: 'target', value: 'new', checked: true });
      const oldB = el('input', { type: 'radio', name: 'target', value: 'existing' });
      const bucket = el('input', { type: 'text', name: 'bucket', required: true, value: source + '-restored', spellcheck: 'false' });
      newB.addEventListener('change', () => { if (bucket.value === source) bucket.value = source + '-restored'; });
      oldB.addEventListener('change', () => { if (bucket.value === source + '-restored') bucket.value = source; });
      const prefix = el('input', { type: 'text', name: 'destinationPrefix', placeholder: 'restored/' });
      const policy = policySel('(default: skip existing keys)');
      const enc = el('select', { name: 'encryption' }, el('option', { value: '' }, 'As in the backup'), el('option', { value: 'SSE-S3' }, 'SSE-S3'));
      const box = itemsBox(items.map((k) => 's3://' + source + '/' + k));
      return {
        fields: [
          el('fieldset', {}, el('legend', {}, 'Target'),
            el('label', { class: 'check' }, newB, 'New bucket'),
            el('label', { class: 'check' }, oldB, 'Existing bucket'),
            el('label', {}, 'Destination bucket', bucket), el('label', {}, 'Destination prefix', prefix),
            el('label', {}, 'Conflict policy', policy), el('label', {}, 'Encryption', enc)),
          el('label', {}, 'Items (s3://bucket/key or prefix, one per line, at most 5; empty: everything)', box),
        ],
        metadata() {
          const md = { DestinationBucketName: bucket.value.trim(), NewBucket: newB.checked ? 'true' : 'false' };
          if (prefix.value.trim()) md.DestinationPrefix = prefix.value.trim();
          if (policy.value) md.ConflictPolicy = policy.value;
          if (enc.value) { md.Encrypted = 'true'; md.EncryptionType = enc.value; }
          const it = lines(box.value);
          if (it.length) md.ItemsToRestore = JSON.stringify(it);
          return md;
        },
      };
    }
    if (info.resourceType === 'RDS') {
      const ident = el('input', { type: 'text', name: 'dbInstanceIdentifier', required: true, spellcheck: 'false',
        value: (base.DBInstanceIdentifier || sourceID) + '-restored' });
      const server = el('input', { type: 'text', name: 'targetServer', placeholder: '(the source\'s server)' });
      return {
        noPreview: true,
        fields: [
          el('fieldset', {}, el('legend', {}, 'New database'),
            el('label', {}, 'New database identifier', ident),
            el('label', {}, 'Target server', server),
            el('p', { class: 'muted' }, 'A restore always creates a new database; an identifier in use is refused.')),
        ],
        metadata() {
          const md = Object.assign({}, base, { DBInstanceIdentifier: ident.value.trim() });
          if (server.value.trim()) md.TargetServer = server.value.trim();
          return md;
        },
      };
    }
    const mdBox = el('textarea', { rows: 6, cols: 70, name: 'metadata' }, JSON.stringify(base, null, 1));
    return { fields: [el('label', {}, 'Restore metadata (JSON)', mdBox)], metadata: () => JSON.parse(mdBox.value) };
  }

  async function restorePage(params) {
    const rp = params.get('rp') || '';
    let items = [];
    try { items = JSON.parse(params.get('items') || '[]'); } catch (e) { items = []; }
    const info = (await api('GET', 'recovery-points')).find((r) => r.arn === rp);
    if (!info) throw new Error('Recovery point not found');
    const base = (await api('GET', 'restore-metadata?' + q({ vault: info.vaultName, rp }))).metadata;
    const out = el('section', { class: 'card', 'aria-live': 'polite', hidden: true });
    const show = (...nodes) => { out.hidden = false; out.replaceChildren(...nodes); };
    const form = restoreForm(info, base, items);
    const targetName = { EFS: 'a new file system', S3: 'a new bucket', RDS: 'a new database' }[info.resourceType] || 'a new resource';
    async function preview() {
      show(el('p', { class: 'muted' }, 'Previewing…'));
      try {
        const p = await api('POST', 'restore/preview', { recoveryPointArn: rp, metadata: form.metadata() });
        const list = (title, paths, n) => (n ? el('div', {}, el('h3', {}, title + ' (' + n + ')'),
          el('ul', {}, paths.map((x) => el('li', { class: 'mono' }, x)), n > paths.length ? el('li', { class: 'muted' }, '… and ' + (n - paths.length) + ' more') : '')) : '');
        show(el('h2', {}, 'Preview'),
          el('p', { role: 'status' }, 'Create ' + p.create + ', overwrite ' + p.overwrite + ', skip ' + p.skip + '; ' + fmtBytes(p.bytes) + ' to write into ' +
            (p.targetArn || targetName) + ' at ' + p.location + '. Nothing was written.'),
          list('Create', p.createPaths, p.create), list('Overwrite', p.overwritePaths, p.overwrite), list('Skip', p.skipPaths, p.skip),
          p.problems.length ? el('ul', {}, p.problems.map((x) => el('li', { class: 'error' }, x))) : '');
      } catch (err) { show(errorLine(err)); }
    }
    async function start() {
      try {
        const j = await api('POST', 'restore', { recoveryPointArn: rp, metadata: form.metadata() });
        location.hash = '#/job?' + q({ kind: 'restore', id: j.id });
      } catch (err) { show(errorLine(err)); }
    }
    page('Restore', el('p', {}, 'From ', el('code', {}, rp), ' of ', el('code', {}, info.resourceArn)),
      el('form', { class: 'card', on: { submit: (ev) => { ev.preventDefault(); } } }, form.fields,
        el('p', {}, form.noPreview ? '' : [el('button', { type: 'button', class: 'secondary', on: { click: preview } }, 'Preview'), ' '],
          el('button', { type: 'button', on: { click: start } }, 'Start restore'))),
      out);
  }

  // Schedules offered by the plan form (the expression field is the truth).
  const schedulePresets = [
    ['Daily at 05:00', 'cron(0 5 ? * * *)'], ['Every hour', 'cron(0 * ? * * *)'], ['Every 12 hours', 'rate(12 hours)'],
    ['Weekly, Sunday 05:00', 'cron(0 5 ? * 1 *)'], ['Monthly, 1st 05:00', 'cron(0 5 1 * ? *)'],
  ];

  async function plansPage(params) {
    const editID = params.get('edit') || '';
    const [plans, vaults, resources] = await Promise.all([api('GET', 'plans'), api('GET', 'vaults'), api('GET', 'resources')]);
    const editing = editID ? plans.find((p) => p.id === editID && p.simple) : null;
    const rule = editing ? editing.rules[0] : null;
    const chosen = new Set(editing && editing.selections.length ? editing.selections[0].resources : []);
    const name = el('input', { type: 'text', name: 'planName', required: true, pattern: '[A-Za-z0-9_.\\-]{1,200}', value: editing ? editing.name : '' });
    const ruleName = el('input', { type: 'text', name: 'ruleName', required: true, pattern: '[A-Za-z0-9_.\\-]{1,50}', value: rule ? rule.name : 'DailyBackups' });
    const expr = el('input', { type: 'text', name: 'schedule', required: true, class: 'mono', value: rule ? rule.schedule : schedulePresets[0][1] });
    const preset = el('select', { name: 'preset', on: { change: () => { if (preset.value) expr.value = preset.value; } } },
      el('option', { value: '' }, 'Custom'), schedulePresets.map(([label, e]) => el('option', { value: e, selected: e === expr.value }, label)));
    const tz = el('input', { type: 'text', name: 'timezone', value: rule ? rule.timezone : 'Etc/UTC' });
    const vault = el('select', { name: 'vault', required: true },
      vaults.map((v) => el('option', { value: v.name, selected: rule ? v.name === rule.vaultName : v.name === 'Default' }, v.name)));
    const del = el('input', { type: 'number', name: 'deleteAfterDays', min: 0, max: 36500, value: rule && rule.deleteAfterDays ? rule.deleteAfterDays : 35 });
    const cold = el('input', { type: 'number', name: 'coldAfterDays', min: 0, max: 36500, value: rule && rule.coldAfterDays ? rule.coldAfterDays : 0 });
    const boxes = [['*', 'All resources (*)'], ...resources.map((r) => [r.arn, r.type + ' ' + r.id])].map(([arn, label]) => {
      const box = el('input', { type: 'checkbox', value: arn, checked: chosen.has(arn) });
      return { arn, box, label: el('label', { class: 'check' }, box, label) };
    });
    const msg = el('div', { role: 'status' });
    const form = el('form', {
      class: 'card',
      on: {
        submit: async (ev) => {
          ev.preventDefault();
          const body = {
            name: name.value.trim(), ruleName: ruleName.value.trim(), schedule: expr.value.trim(), timezone: tz.value.trim(), vaultName: vault.value,
            deleteAfterDays: parseInt(del.value || '0', 10), coldAfterDays: parseInt(cold.value || '0', 10),
            resources: boxes.filter((b) => b.box.checked).map((b) => b.arn),
          };
          try {
            if (editing) {
              await api('POST', 'plans/update', Object.assign(body, { id: editing.id, versionId: editing.versionId }));
              location.hash = '#/plans';
            } else {
              await api('POST', 'plans', body);
              render();
            }
          } catch (err) { msg.replaceChildren(errorLine(err)); }
        },
      },
    },
    el('h2', {}, editing ? 'Edit plan ' + editing.name : 'Create a backup plan'),
    el('label', {}, 'Plan name', name),
    el('fieldset', {}, el('legend', {}, 'Rule'),
      el('label', {}, 'Rule name', ruleName),
      el('label', {}, 'Schedule', preset), el('label', {}, 'Schedule expression', expr), el('label', {}, 'Timezone', tz),
      el('label', {}, 'Target vault', vault),
      el('label', {}, 'Delete after (days, 0: never)', del), el('label', {}, 'Move to cold storage after (days, 0: never)', cold)),
    el('fieldset', { class: 'choices' }, el('legend', {}, 'Resources'), boxes.map((b) => b.label)),
    el('p', {}, el('button', { type: 'submit' }, editing ? 'Save plan' : 'Create plan'),
      editing ? [' ', el('a', { href: '#/plans' }, 'Cancel')] : ''),
    msg);
    const cards = plans.map((p) => {
      const rules = p.rules.map((r) => el('tr', {},
        el('td', {}, r.name), el('td', { class: 'mono' }, r.schedule + (r.timezone && r.timezone !== 'Etc/UTC' ? ' ' + r.timezone : '')),
        el('td', {}, r.vaultName),
        el('td', {}, (r.coldAfterDays ? 'cold after ' + r.coldAfterDays + ' d, ' : '') + (r.deleteAfterDays ? 'delete after ' + r.deleteAfterDays + ' d' : 'kept forever')),
        el('td', { class: 'num' }, r.startWindowMinutes + ' / ' + r.completionWindowMinutes + ' min'),
        el('td', { class: 'num' }, r.copyActions || '')));
      const sels = p.selections.map((s) => el('tr', {},
        el('td', {}, s.name),
        el('td', { class: 'mono' }, s.resources.join(', ') || (s.byTags ? '(by tags)' : '')),
        el('td', { class: 'mono' }, s.notResources.join(', '))));
      const next = p.nextRuns.map((r) => el('li', {}, fmtTime(r.time) + ' (' + r.rule + ')'));
      const actions = el('p', {},
        p.simple ? el('a', { href: '#/plans?' + q({ edit: p.id }), 'aria-label': 'Edit plan ' + p.name }, 'Edit')
          : el('span', { class: 'muted' }, 'Several rules or selections, copies or tag selections: edit through the API.'),
        ' ',
        el('button', {
          type: 'button', class: 'danger', 'aria-label': 'Delete plan ' + p.name,
          on: {
            click: async () => {
              if (!confirm('Delete plan ' + p.name + ' and its resource assignments?')) return;
              try { await api('POST', 'plans/delete', { id: p.id }); render(); } catch (err) { msg.replaceChildren(errorLine(err)); }
            },
          },
        }, 'Delete'));
      return el('section', { class: 'card plan', 'aria-label': 'Plan ' + p.name },
        el('h2', {}, p.name), el('p', { class: 'mono muted' }, p.arn),
        table(['Rule', 'Schedule', 'Vault', 'Lifecycle', 'Start / completion window', 'Copies'], rules, 'Rules of ' + p.name),
        table(['Selection', 'Resources', 'Except'], sels, 'Resources of ' + p.name),
        el('h3', {}, 'Next runs'), next.length ? el('ul', { 'aria-label': 'Next runs of ' + p.name }, next) : el('p', { class: 'muted' }, 'None'),
        el('h3', {}, 'Last runs'), table(jobHeaders, p.lastRuns.map(jobRow), 'Last runs of ' + p.name),
        actions);
    });
    page('Backup plans', form, ...(cards.length ? cards : [el('p', { class: 'muted' }, 'No backup plans yet.')]));
  }

  async function jobsPage(params) {
    const kind = params.get('kind') || '';
    const st = params.get('state') || '';
    const all = params.get('all') || '';
    const go = (k, s, a) => { location.hash = '#/jobs?' + q({ kind: k, state: s, all: a }); };
    const kindSel = el('select', { name: 'kind', on: { change: () => go(kindSel.value, st, all) } },
      ['', 'backup', 'restore', 'copy'].map((k) => el('option', { value: k, selected: k === kind }, k || 'All types')));
    const stateSel = el('select', { name: 'state', on: { change: () => go(kind, stateSel.value, all) } },
      ['', 'CREATED', 'PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'ABORTED', 'EXPIRED'].map((s) => el('option', { value: s, selected: s === st }, s || 'All states')));
    const filters = el('form', { class: 'inline' }, el('label', {}, 'Type', kindSel), el('label', {}, 'State', stateSel));
    if (state.me.management) {
      const box = el('input', { type: 'checkbox', checked: all === '1', on: { change: () => go(kind, st, box.checked ? '1' : '') } });
      filters.append(el('label', { class: 'check' }, box, 'All accounts of the organization'));
    }
    const holder = el('div');
    async function refreshTable() {
      const js = await api('GET', 'jobs?' + q({ kind, state: st, all }));
      js.sort((a, b) => (a.created < b.created ? 1 : -1));
      holder.replaceChildren(table(jobHeaders, js.map(jobRow), 'Jobs'));
    }
    await refreshTable();
    page('Jobs', filters, holder);
    const tick = async () => {
      if (!main.contains(holder)) return;
      try { await refreshTable(); } catch (err) { return; }
      state.timer = setTimeout(tick, 2000);
    };
    state.timer = setTimeout(tick, 2000);
  }

  async function jobPage(params) {
    const j = await api('GET', 'job?' + q({ kind: params.get('kind') || '', id: params.get('id') || '' }));
    const row = (k, v) => [el('dt', {}, k), el('dd', {}, v)];
    page('Job ' + j.id, el('dl', { class: 'kv' },
      row('Type', j.kind), row('State', el('span', { class: 'state-' + j.state }, j.state)),
      row('Progress', (j.percentDone || '0') + '%'), row('Message', j.statusMessage || ''),
      row('Vault', j.vaultName || ''), row('Resource', el('code', {}, j.resourceArn || '')),
      row('Recovery point', el('code', {}, j.recoveryPointArn || '')),
      j.createdResourceArn ? row('Created resource', el('code', {}, j.createdResourceArn)) : [],
      row('Bytes', fmtBytes(j.bytesTransferred || 0)), row('Created', fmtTime(j.created)), row('Completed', fmtTime(j.completed)),
      row('Account', j.accountId)));
    if (!['COMPLETED', 'FAILED', 'ABORTED', 'EXPIRED'].includes(j.state)) {
      state.timer = setTimeout(() => refresh(() => jobPage(params)), 1000);
    }
  }

  // refresh re-renders the current page in place if it is still shown.
  async function refresh(fn) {
    state.timer = null;
    try { await fn(); } catch (err) { if (!(err instanceof APIError && err.status === 401)) main.append(errorLine(err)); }
  }

  const pages = {
    '/dashboard': dashboard, '/vaults': vaultsPage, '/recovery-points': recoveryPointsPage, '/browse': browsePage,
    '/restore': restorePage, '/jobs': jobsPage, '/job': jobPage, '/plans': plansPage,
  };

  async function render() {
    stopTimer();
    if (!state.me) {
      try { signedIn(await api('GET', 'me')); } catch (err) { if (!(err instanceof APIError && err.status === 401)) showSignIn(err.message); return; }
    }
    const r = route();
    const fn = pages[r.path] || dashboard;
    for (const a of nav.querySelectorAll('a')) {
      if (a.getAttribute('href') === '#' + (pages[r.path] ? r.path : '/dashboard')) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    try {
      await fn(r.params);
    } catch (err) {
      if (err instanceof APIError && err.status === 401) return;
      page('Error', errorLine(err));
    }
  }

  window.addEventListener('hashchange', render);
  render();
})();
