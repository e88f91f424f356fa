// bozor API reference: renders /openapi.json (OpenAPI 3.1) in the browser, offline, with no
// dependencies. Operations are grouped by tag, schemas resolved from #/components.
'use strict';

(function () {
  const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  const MAX_DEPTH = 8; // nested schemas deeper than this are linked, not expanded
  const $ = (id) => document.getElementById(id);

  let doc = null;
  const ops = []; // { node, toc, group, text }

  // ---------- helpers ----------

  /** Creates an element: attrs may hold class, text and plain attributes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    });
    return add(node, children);
  }

  /** Appends children, flattening arrays and skipping null, undefined and false. */
  function add(node, ...children) {
    children.flat(Infinity).forEach((c) => {
      if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
    });
    return node;
  }

  function say(text, kind) {
    const s = $('status');
    s.textContent = text || '';
    s.className = `status ${kind || 'info'}`;
  }

  const slug = (s) => String(s).replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '');
  const json = (v) => JSON.stringify(v);

  /** Minimal prose: paragraphs, `- ` lists, `code`, **bold** and [links](url). Never HTML. */
  function prose(text) {
    if (!text) return null;
    const box = el('div', { class: 'prose' });
    String(text).split(/\n\s*\n/).forEach((block) => {
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*[-*]\s+/.test(l))) {
        box.append(el('ul', {}, lines.map((l) => el('li', {}, inline(l.replace(/^\s*[-*]\s+/, ''))))));
      } else if (/^#{1,6}\s/.test(block)) {
        box.append(el('p', { class: 'strong' }, inline(block.replace(/^#+\s*/, ''))));
      } else {
        box.append(el('p', {}, inline(block)));
      }
    });
    return box;
  }

  function inline(text) {
    const out = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      out.push(text.slice(last, m.index));
      if (m[1] !== undefined) out.push(el('code', { text: m[1] }));
      else if (m[2] !== undefined) out.push(el('strong', { text: m[2] }));
      else if (/^(https?:|#|\/)/.test(m[4])) out.push(el('a', { href: m[4], rel: 'noopener noreferrer', text: m[3] }));
      else out.push(m[0]);
      last = re.lastIndex;
    }
    out.push(text.slice(last));
    return out;
  }

  // ---------- references ----------

  const unescapePointer = (p) => decodeURIComponent(p).replace(/~1/g, '/').replace(/~0/g, '~');

  /** The node a local `$ref` (`#/components/...`) points at, or null. */
  function resolve(ref) {
    if (typeof ref !== 'string' || !ref.startsWith('#/')) return null;
    let node = doc;
    for (const part of ref.slice(2).split('/')) {
      const key = unescapePointer(part);
      if (!node || typeof node !== 'object' || !(key in node)) return null;
      node = node[key];
    }
    return node;
  }

  /** Follows `$ref`s of parameters, bodies and responses to the object itself. */
  function deref(obj) {
    let node = obj;
    for (let i = 0; node && node.$ref && i < 10; i += 1) {
      const target = resolve(node.$ref);
      if (!target) break;
      node = target;
    }
    return node || {};
  }

  const refName = (ref) => unescapePointer(String(ref).split('/').pop());
  const isSchemaRef = (ref) => typeof ref === 'string' && ref.startsWith('#/components/schemas/');
  const schemaAnchor = (ref) => `schema-${slug(refName(ref))}`;

  function refLink(ref) {
    if (isSchemaRef(ref) && resolve(ref)) return el('a', { href: `#${schemaAnchor(ref)}`, class: 'ref', text: refName(ref) });
    return el('span', { class: 'ref', text: refName(ref) });
  }

  // ---------- schemas ----------

  const isNull = (s) => Boolean(s) && (s.type === 'null' || (Array.isArray(s.type) && s.type.length === 1 && s.type[0] === 'null'));

  /**
   * Folds the shapes generators use for optional values into `nullable`: `oneOf`/`anyOf` of a
   * schema and `{"type": "null"}`, and `allOf` of a single schema (a `$ref` with siblings).
   */
  function simplify(schema) {
    if (!schema || typeof schema !== 'object') return {};
    let s = schema;
    ['oneOf', 'anyOf'].forEach((key) => {
      const list = s[key];
      if (Array.isArray(list) && list.length === 2 && list.filter(isNull).length === 1) {
        const rest = Object.assign({}, s);
        delete rest[key];
        s = Object.assign({}, list.find((x) => !isNull(x)), rest, { nullable: true });
      }
    });
    if (Array.isArray(s.allOf) && s.allOf.length === 1 && !s.properties) {
      const rest = Object.assign({}, s);
      delete rest.allOf;
      s = Object.assign({}, s.allOf[0], rest);
    }
    return s;
  }

  function isNullable(s) {
    return s.nullable === true || (Array.isArray(s.type) && s.type.includes('null') && s.type.length > 1);
  }

  /** A short type: `string (uuid)`, `array of Listing`, `map of integer`, `Listing | null`. */
  function typeLabel(schema) {
    const s = simplify(schema);
    const span = el('span', { class: 'type' });
    if (s.$ref) span.append(refLink(s.$ref));
    else span.append(...typeParts(s));
    if (isNullable(s)) span.append(' | null');
    return span;
  }

  function typeParts(s) {
    if (s.const !== undefined) return [`const ${json(s.const)}`];
    if (Array.isArray(s.oneOf)) return [`one of ${s.oneOf.length}`];
    if (Array.isArray(s.anyOf)) return [`any of ${s.anyOf.length}`];
    if (Array.isArray(s.allOf)) return [`all of ${s.allOf.length}`];
    let types = Array.isArray(s.type) ? s.type : (s.type ? [s.type] : []);
    if (types.length === 1 && types[0] === 'null') return ['null'];
    types = types.filter((t) => t !== 'null');
    if (!types.length) {
      if (s.properties) types = ['object'];
      else if (s.items || s.prefixItems) types = ['array'];
      else if (Array.isArray(s.enum)) return ['enum'];
      else return ['any'];
    }
    const parts = [];
    types.forEach((t, i) => {
      if (i) parts.push(' | ');
      if (t === 'array' && s.items && typeof s.items === 'object') parts.push('array of ', typeLabel(s.items));
      else if (t === 'object' && !s.properties && s.additionalProperties && typeof s.additionalProperties === 'object') {
        parts.push('map of ', typeLabel(s.additionalProperties));
      } else parts.push(s.format ? `${t} (${s.format})` : t);
    });
    return parts;
  }

  /** Small notes on a schema: enum values, default, bounds, examples, flags. */
  function facts(s) {
    const out = [];
    const fact = (label, value) => out.push(el('span', { class: 'fact' }, label, value === undefined ? null : el('code', { text: value })));
    if (Array.isArray(s.enum)) {
      out.push(el('span', { class: 'fact enum' }, 'one of: ',
        s.enum.map((v, i) => [i ? ', ' : null, el('code', { text: typeof v === 'string' ? v : json(v) })])));
    }
    if (s.default !== undefined) fact('default ', json(s.default));
    [['minimum', '≥ '], ['exclusiveMinimum', '> '], ['maximum', '≤ '], ['exclusiveMaximum', '< ']].forEach(([k, sign]) => {
      if (typeof s[k] === 'number') fact(sign, String(s[k]));
    });
    if (s.minLength !== undefined || s.maxLength !== undefined) fact('length ', `${s.minLength || 0}..${s.maxLength === undefined ? '' : s.maxLength}`);
    if (s.minItems !== undefined || s.maxItems !== undefined) fact('items ', `${s.minItems || 0}..${s.maxItems === undefined ? '' : s.maxItems}`);
    if (s.uniqueItems) fact('unique items');
    if (s.pattern) fact('pattern ', s.pattern);
    if (s.readOnly) fact('read-only');
    if (s.writeOnly) fact('write-only');
    if (s.deprecated) out.push(el('span', { class: 'fact deprecated', text: 'deprecated' }));
    const example = s.example !== undefined ? s.example : (Array.isArray(s.examples) ? s.examples[0] : undefined);
    if (example !== undefined) fact('e.g. ', typeof example === 'string' ? example : json(example));
    return out;
  }

  /** A schema: its type, notes, description and structure. */
  function schemaView(schema, ctx) {
    const s = simplify(schema);
    const head = el('div', { class: 'schema-head' }, typeLabel(s), facts(s));
    return el('div', { class: 'schema' }, head, prose(s.description), schemaBody(s, ctx));
  }

  /** What a schema holds: fields, items, variants, or the expansion of a `$ref`. */
  function schemaBody(schema, ctx) {
    const s = simplify(schema);
    if (s.$ref) {
      const target = resolve(s.$ref);
      if (!target || ctx.stack.includes(s.$ref) || ctx.depth >= MAX_DEPTH) return null;
      const inner = { stack: ctx.stack.concat(s.$ref), depth: ctx.depth + 1, open: false };
      const t = simplify(target);
      const content = [el('div', { class: 'schema-head' }, typeLabel(t), facts(t)), prose(t.description), schemaBody(t, inner)];
      return el('details', { class: 'expand', open: ctx.open }, el('summary', {}, refName(s.$ref)), content);
    }
    const parts = [];
    const deeper = { stack: ctx.stack, depth: ctx.depth + 1, open: false };
    const kind = ['oneOf', 'anyOf', 'allOf'].find((k) => Array.isArray(s[k]));
    if (kind) {
      const label = { oneOf: 'One of', anyOf: 'Any of', allOf: 'All of' }[kind];
      const note = s.discriminator && s.discriminator.propertyName
        ? [' (by ', el('code', { text: s.discriminator.propertyName }), ')'] : null;
      parts.push(el('div', { class: 'variants' }, el('div', { class: 'label' }, `${label}`, note, ':'),
        el('ol', {}, s[kind].map((v) => el('li', {}, schemaView(v, deeper))))));
    }
    if (s.properties && typeof s.properties === 'object') {
      const required = Array.isArray(s.required) ? s.required : [];
      parts.push(el('ul', { class: 'fields' },
        Object.entries(s.properties).map(([name, p]) => fieldRow(name, p, required.includes(name), deeper))));
    }
    if (s.properties && s.additionalProperties && typeof s.additionalProperties === 'object') {
      parts.push(el('ul', { class: 'fields' }, fieldRow('*', s.additionalProperties, false, deeper)));
    } else if (!s.properties && s.additionalProperties && typeof s.additionalProperties === 'object') {
      const body = schemaBody(s.additionalProperties, ctx);
      if (body) parts.push(body);
    }
    if (Array.isArray(s.prefixItems)) {
      parts.push(el('div', { class: 'variants' }, el('div', { class: 'label', text: 'Items in order:' }),
        el('ol', {}, s.prefixItems.map((v) => el('li', {}, schemaView(v, deeper))))));
    }
    if (s.items && typeof s.items === 'object') {
      const body = schemaBody(s.items, ctx);
      if (body) parts.push(body);
    }
    return parts.length ? el('div', { class: 'schema-body' }, parts) : null;
  }

  function fieldRow(name, schema, required, ctx) {
    const s = simplify(schema);
    return el('li', { class: 'field' },
      el('div', { class: 'field-head' },
        el('code', { class: 'fname', text: name }),
        required ? el('span', { class: 'req', text: 'required' }) : el('span', { class: 'opt', text: 'optional' }),
        typeLabel(s), facts(s)),
      prose(s.description),
      schemaBody(s, ctx));
  }

  /** The schemas of a body or response, one per media type, with examples. */
  function contentView(content) {
    if (!content || typeof content !== 'object') return null;
    return Object.entries(content).map(([type, media]) => {
      const m = media || {};
      const examples = [];
      if (m.example !== undefined) examples.push(m.example);
      Object.values(m.examples || {}).forEach((x) => {
        const ex = deref(x);
        if (ex.value !== undefined) examples.push(ex.value);
      });
      return el('div', { class: 'media' },
        el('div', { class: 'media-type', text: type }),
        m.schema ? schemaView(m.schema, { stack: [], depth: 0, open: true }) : null,
        examples.map((ex) => el('pre', { class: 'example' }, el('code', { text: JSON.stringify(ex, null, 2) }))));
    });
  }

  // ---------- document parts ----------

  function renderIntro() {
    const info = doc.info || {};
    const title = info.title || 'API reference';
    $('title').textContent = title;
    document.title = `${title} · API reference`;
    $('version').textContent = info.version ? `v${info.version}` : '';
    const meta = [];
    if (doc.openapi) meta.push(`OpenAPI ${doc.openapi}`);
    if (info.license && info.license.name) meta.push(`License: ${info.license.name}`);
    const servers = (doc.servers || []).map((s) => el('li', {}, el('code', { text: s.url }), s.description ? ` — ${s.description}` : null));
    add($('intro'), 
      el('h2', { text: title }),
      meta.length ? el('p', { class: 'muted', text: meta.join(' · ') }) : null,
      prose(info.description),
      servers.length ? [el('h3', { text: 'Servers' }), el('ul', {}, servers)] : null,
    );
  }

  function schemeText(s) {
    if (s.type === 'http') return `HTTP ${s.scheme || ''}${s.bearerFormat ? ` (${s.bearerFormat})` : ''}`.trim();
    if (s.type === 'apiKey') return `API key in ${s.in} "${s.name}"`;
    if (s.type === 'openIdConnect') return `OpenID Connect: ${s.openIdConnectUrl}`;
    return s.type || 'unknown';
  }

  function renderAuth() {
    const schemes = (doc.components && doc.components.securitySchemes) || {};
    const names = Object.keys(schemes);
    if (!names.length) return;
    const rows = names.map((name) => {
      const s = deref(schemes[name]);
      const header = s.type === 'http' && String(s.scheme).toLowerCase() === 'bearer'
        ? el('p', {}, 'Send ', el('code', { text: 'Authorization: Bearer <token>' })) : null;
      return el('div', { class: 'scheme', id: `auth-${slug(name)}` },
        el('div', { class: 'schema-head' }, el('code', { class: 'fname', text: name }), el('span', { class: 'type', text: schemeText(s) })),
        header, prose(s.description));
    });
    add($('auth'), el('h2', { text: 'Authentication' }), rows);
  }

  /** Who may call an operation: its own `security`, or the document's. */
  function authBadge(op) {
    const req = op.security !== undefined ? op.security : doc.security;
    if (!Array.isArray(req)) return null;
    if (!req.length) return el('span', { class: 'badge public', text: 'public' });
    const optional = req.some((r) => r && !Object.keys(r).length);
    const names = req.flatMap((r) => Object.keys(r || {}));
    return el('span', { class: 'badge auth', text: `${optional ? 'optional ' : ''}auth: ${Array.from(new Set(names)).join(', ')}` });
  }

  function pathView(path) {
    return el('code', { class: 'path' }, path.split(/(\{[^}]+\})/).map((part) =>
      (/^\{.*\}$/.test(part) ? el('span', { class: 'param', text: part }) : part)));
  }

  function parametersView(params) {
    if (!params.length) return null;
    return [el('h4', { text: 'Parameters' }), el('table', { class: 'params' },
      el('thead', {}, el('tr', {}, ['Name', 'In', 'Type', 'Description'].map((h) => el('th', { text: h })))),
      el('tbody', {}, params.map((p) => {
        const schema = p.schema || (p.content && Object.values(p.content)[0] && Object.values(p.content)[0].schema) || {};
        const s = simplify(schema);
        return el('tr', { 'data-param': p.name },
          el('td', {}, el('code', { class: 'fname', text: p.name }), p.required ? el('span', { class: 'req', text: 'required' }) : null,
            p.deprecated ? el('span', { class: 'fact deprecated', text: 'deprecated' }) : null),
          el('td', { text: p.in }),
          el('td', {}, typeLabel(s)),
          el('td', {}, prose(p.description || s.description), el('div', {}, facts(s)), schemaBody(s, { stack: [], depth: 1, open: false })));
      })))];
  }

  function requestView(body) {
    if (!body) return null;
    const b = deref(body);
    return [el('h4', {}, 'Request body', b.required ? el('span', { class: 'req', text: 'required' }) : null),
      prose(b.description), contentView(b.content)];
  }

  function responsesView(responses) {
    const entries = Object.entries(responses || {});
    if (!entries.length) return null;
    return [el('h4', { text: 'Responses' }), entries.map(([status, raw]) => {
      const r = deref(raw);
      const headers = Object.entries(r.headers || {}).map(([name, h]) => {
        const header = deref(h);
        return el('li', {}, el('code', { text: name }), ' ', header.schema ? typeLabel(header.schema) : null,
          header.description ? ` — ${header.description}` : null);
      });
      return el('div', { class: 'response', 'data-status': status },
        el('div', { class: 'response-head' },
          el('span', { class: `status-code s${String(status)[0]}`, text: status }), prose(r.description)),
        headers.length ? el('ul', { class: 'headers' }, headers) : null,
        contentView(r.content));
    })];
  }

  /** Path-level parameters merged with the operation's own (which win by name and place). */
  function mergedParams(item, op) {
    const byKey = new Map();
    (item.parameters || []).concat(op.parameters || []).forEach((raw) => {
      const p = deref(raw);
      byKey.set(`${p.in}:${p.name}`, p);
    });
    return Array.from(byKey.values());
  }

  /** The group of an operation: its first tag, else the first path segment after /v1. */
  function groupOf(path, op) {
    if (Array.isArray(op.tags) && op.tags.length) return op.tags[0];
    const segments = path.split('/').filter(Boolean);
    const first = segments[0] === 'v1' ? segments[1] : segments[0];
    return first ? first.replace(/\{.*\}/, '') || 'other' : 'root';
  }

  function renderOperations() {
    const groups = new Map();
    // Declared tags first, in their order; the others as they come.
    (doc.tags || []).forEach((t) => groups.set(t.name, { tag: t, items: [] }));
    Object.entries(doc.paths || {}).forEach(([path, rawItem]) => {
      const item = deref(rawItem);
      METHODS.forEach((method) => {
        const op = item[method];
        if (!op) return;
        const group = groupOf(path, op);
        if (!groups.has(group)) groups.set(group, { tag: { name: group }, items: [] });
        groups.get(group).items.push({ path, method, op, params: mergedParams(item, op) });
      });
    });

    const used = new Set();
    const tocList = el('ul', {});
    groups.forEach(({ tag, items }, name) => {
      if (!items.length) return;
      const groupId = `tag-${slug(name)}`;
      const section = el('section', { class: 'group', id: groupId, 'data-group': name },
        el('h2', {}, el('a', { href: `#${groupId}`, class: 'anchor-title', text: name })), prose(tag.description));
      const tocItems = el('ul', {});
      tocList.append(el('li', { class: 'toc-group' }, el('a', { href: `#${groupId}`, text: name }), tocItems));
      items.forEach((o) => {
        let id = `op-${slug(o.op.operationId || `${o.method}-${o.path}`)}`;
        while (used.has(id)) id += '_';
        used.add(id);
        const method = o.method.toUpperCase();
        const node = el('article', { class: 'op', id, 'data-operation': `${method} ${o.path}` },
          el('header', { class: 'op-head' },
            el('span', { class: `method m-${o.method}`, text: method }), pathView(o.path),
            o.op.deprecated ? el('span', { class: 'badge deprecated', text: 'deprecated' }) : null,
            authBadge(o.op),
            el('a', { class: 'anchor', href: `#${id}`, title: 'Link to this operation', 'aria-label': 'Link to this operation', text: '#' })),
          o.op.summary ? el('p', { class: 'summary', text: o.op.summary }) : null,
          prose(o.op.description),
          o.op.operationId ? el('p', { class: 'muted small' }, 'operationId ', el('code', { text: o.op.operationId })) : null,
          parametersView(o.params),
          requestView(o.op.requestBody),
          responsesView(o.op.responses));
        section.append(node);
        const toc = el('li', {}, el('a', { href: `#${id}` }, el('span', { class: `method m-${o.method}`, text: method }), ` ${o.path}`));
        tocItems.append(toc);
        const text = [method, o.path, o.op.summary, o.op.description, o.op.operationId, (o.op.tags || []).join(' '), name]
          .filter(Boolean).join(' ').toLowerCase();
        ops.push({ node, toc, group: section, text });
      });
      $('operations').append(section);
    });

    const extra = [];
    if (errorCodes().length) extra.push(el('li', {}, el('a', { href: '#errors', text: 'Error codes' })));
    if (Object.keys(schemasOf()).length) extra.push(el('li', {}, el('a', { href: '#schemas', text: 'Schemas' })));
    add($('toc'), el('ul', {}, el('li', {}, el('a', { href: '#intro', text: 'Overview' })),
      doc.components && doc.components.securitySchemes ? el('li', {}, el('a', { href: '#auth', text: 'Authentication' })) : null),
    tocList, extra.length ? el('ul', {}, extra) : null);
  }

  function errorCodes() {
    const list = doc['x-error-codes'] || (doc.info && doc.info['x-error-codes']);
    return Array.isArray(list) ? list : [];
  }

  function renderErrorCodes() {
    const list = errorCodes();
    if (!list.length) return;
    add($('errors'), 
      el('h2', { text: 'Error codes' }),
      el('p', {}, 'Every error answers ', el('code', { text: '{"error": {"code", "message", "details"}}' }), ' with one of these codes.'),
      el('table', { id: 'error-codes', class: 'params' },
        el('thead', {}, el('tr', {}, ['Code', 'Status', 'Description'].map((h) => el('th', { text: h })))),
        el('tbody', {}, list.map((e) => el('tr', { id: `error-${slug(e.code)}`, 'data-code': e.code },
          el('td', {}, el('code', { text: e.code })),
          el('td', {}, el('span', { class: `status-code s${String(e.status)[0]}`, text: e.status })),
          el('td', { text: e.description || '' }))))));
  }

  function schemasOf() {
    return (doc.components && doc.components.schemas) || {};
  }

  function renderSchemas() {
    const names = Object.keys(schemasOf());
    if (!names.length) return;
    add($('schemas'), el('h2', { text: 'Schemas' }), names.sort().map((name) => {
      const ref = `#/components/schemas/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      return el('section', { class: 'schema-def', id: schemaAnchor(ref) },
        el('h3', {}, el('a', { href: `#${schemaAnchor(ref)}`, class: 'anchor-title', text: name })),
        schemaView(schemasOf()[name], { stack: [ref], depth: 0, open: false }));
    }));
  }

  // ---------- filter and anchors ----------

  function applyFilter() {
    const terms = $('filter').value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const visibleGroups = new Set();
    let shown = 0;
    ops.forEach((o) => {
      const match = terms.every((t) => o.text.includes(t));
      o.node.hidden = !match;
      o.toc.hidden = !match;
      if (match) {
        shown += 1;
        visibleGroups.add(o.group);
      }
    });
    ops.forEach((o) => {
      o.group.hidden = !visibleGroups.has(o.group);
      o.toc.parentElement.parentElement.hidden = o.group.hidden;
    });
    $('count').textContent = terms.length ? `${shown} of ${ops.length} operations` : `${ops.length} operations`;
  }

  /** Scrolls to the element the URL names (the page was empty when the browser looked). */
  function jumpToHash() {
    if (location.hash.length < 2) return;
    let target = null;
    try {
      target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    } catch (_) {
      return;
    }
    if (!target) return;
    for (let p = target.parentElement; p; p = p.parentElement) {
      if (p.tagName === 'DETAILS') p.open = true;
    }
    target.scrollIntoView();
  }

  async function start() {
    $('filter').addEventListener('input', applyFilter);
    try {
      const res = await fetch('/openapi.json', { headers: { Accept: 'application/json' }, cache: 'no-cache' });
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      doc = await res.json();
    } catch (err) {
      say(`Cannot load /openapi.json: ${err.message}`, 'error');
      return;
    }
    try {
      renderIntro();
      renderAuth();
      renderOperations();
      renderErrorCodes();
      renderSchemas();
      say('', 'info');
    } catch (err) {
      say(`Cannot render /openapi.json: ${err.message}`, 'error');
    }
    applyFilter();
    jumpToHash();
  }

  start();
}());
