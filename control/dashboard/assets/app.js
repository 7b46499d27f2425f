// weft dashboard: a single-page application over the control plane's JSON
// API (docs/observability.md). Plain JavaScript, no framework, nothing
// loaded from elsewhere. Views are hash routes:
//
//   #/                         topology of workloads and gateways
//   #/workloads/<ns>/<name>    golden metrics, edges, proxies of a workload
//   #/traces?service=&minDuration=   recent traces
//   #/traces/<id>              one trace as a waterfall
//   #/logs?q=&workload=&trace=&kind=  access and application logs
//   #/proxies                  connected proxies and their config state
//   #/alerts                   AlertRule states and recent events
//
// Every view builds its frame once (mount) and fills it on every refresh
// (every 5 s while auto-refresh is on). Text from the API is only ever set
// with textContent, never parsed as HTML.
'use strict';

(function () {
  const REFRESH_MS = 5000;
  const SVGNS = 'http://www.w3.org/2000/svg';

  // ---- DOM helpers -------------------------------------------------------

  function append(el, kids) {
    for (const k of kids) {
      if (k === null || k === undefined || k === false) continue;
      if (Array.isArray(k)) append(el, k);
      else if (k instanceof Node) el.appendChild(k);
      else el.appendChild(document.createTextNode(String(k)));
    }
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = String(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    return el;
  }

  // h builds an HTML element: h('a', {href: '#/'}, 'text', child, [more]).
  function h(tag, attrs, ...kids) {
    return append(setAttrs(document.createElement(tag), attrs), kids);
  }

  // s builds an SVG element.
  function s(tag, attrs, ...kids) {
    return append(setAttrs(document.createElementNS(SVGNS, tag), attrs), kids);
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  // table builds a table; a header ending in '#' heads a number column.
  function table(testid, headers, rows, empty) {
    const body = h('tbody', null, rows);
    if (rows.length === 0) {
      body.appendChild(h('tr', {class: 'empty'}, h('td', {colspan: headers.length, 'data-testid': testid + '-empty'}, empty || 'nothing yet')));
    }
    return h('table', {'data-testid': testid, id: testid},
      h('thead', null, h('tr', null, headers.map((x) => x.endsWith('#') ? h('th', {class: 'num'}, x.slice(0, -1)) : h('th', null, x)))), body);
  }

  // ---- formatting --------------------------------------------------------

  function num(v) { return typeof v === 'number' && isFinite(v); }

  function fmtRPS(v) {
    if (!num(v)) return '–';
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' rps';
  }

  function fmtPct(v) {
    if (!num(v)) return '–';
    const p = v * 100;
    return (p === 100 ? '100' : p.toFixed(p >= 99.9 ? 2 : 1)) + ' %';
  }

  function fmtMs(v) {
    if (!num(v)) return '–';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
  }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }

  function fmtTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
  }

  function fmtClock(d) { return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()); }

  // health classes an edge, node or value by its success rate.
  function health(sr) {
    if (!num(sr)) return 'idle';
    if (sr >= 0.99) return 'ok';
    if (sr >= 0.95) return 'warn';
    return 'bad';
  }

  function workloadHref(ns, name) { return '#/workloads/' + encodeURIComponent(ns) + '/' + encodeURIComponent(name); }

  function hashWith(base, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    const qs = q.toString();
    return base + (qs ? '?' + qs : '');
  }

  // ---- API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(path, status, msg) { super(path + ': ' + status + ' ' + msg); this.status = status; }
  }

  async function api(path) {
    const r = await fetch(path, {headers: {Accept: 'application/json'}, cache: 'no-store'});
    const text = await r.text();
    if (!r.ok) {
      let msg = text.trim();
      try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON */ }
      throw new APIError(path, r.status, msg);
    }
    return JSON.parse(text);
  }

  // ---- charts ------------------------------------------------------------

  // chart draws lines ([{label, cls, values: [number|null]}]) over times
  // (ms since the epoch) as SVG polylines; a null value breaks the line.
  function chart(testid, title, times, lines, fmt, domain) {
    const W = 560, H = 150, L = 64, R = 10, T = 10, B = 22;
    const svg = s('svg', {viewBox: '0 0 ' + W + ' ' + H, class: 'chart', 'data-testid': testid, role: 'img', 'aria-label': title});
    const vals = [];
    for (const l of lines) for (const v of l.values) if (num(v)) vals.push(v);
    const box = h('figure', {class: 'chart-box'}, h('figcaption', null, title,
      lines.map((l) => h('span', {class: 'legend ' + l.cls}, l.label))), svg);
    if (vals.length === 0 || times.length === 0) {
      svg.appendChild(s('text', {x: W / 2, y: H / 2, class: 'chart-empty', 'text-anchor': 'middle', 'data-testid': testid + '-empty'}, 'no requests yet'));
      return box;
    }
    let lo = domain && num(domain[0]) ? Math.min(domain[0], ...vals) : Math.min(...vals);
    let hi = domain && num(domain[1]) ? Math.max(domain[1], ...vals) : Math.max(...vals);
    if (!domain) lo = Math.min(0, lo);
    if (hi <= lo) hi = lo + 1;
    const t0 = times[0], t1 = times[times.length - 1] > t0 ? times[times.length - 1] : t0 + 1;
    const x = (t) => L + (W - L - R) * (t - t0) / (t1 - t0);
    const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
    svg.appendChild(s('line', {x1: L, y1: T, x2: L, y2: H - B, class: 'axis'}));
    svg.appendChild(s('line', {x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis'}));
    svg.appendChild(s('line', {x1: L, y1: y((lo + hi) / 2), x2: W - R, y2: y((lo + hi) / 2), class: 'grid'}));
    svg.appendChild(s('text', {x: L - 4, y: T + 8, 'text-anchor': 'end', class: 'tick'}, fmt(hi)));
    svg.appendChild(s('text', {x: L - 4, y: H - B, 'text-anchor': 'end', class: 'tick'}, fmt(lo)));
    svg.appendChild(s('text', {x: L, y: H - 6, class: 'tick'}, fmtClock(new Date(t0))));
    svg.appendChild(s('text', {x: W - R, y: H - 6, 'text-anchor': 'end', class: 'tick'}, fmtClock(new Date(t1))));
    for (const l of lines) {
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          const [px, py] = run[0].split(',');
          svg.appendChild(s('circle', {cx: px, cy: py, r: 2, class: 'dot ' + l.cls}));
        } else if (run.length > 1) {
          svg.appendChild(s('polyline', {points: run.join(' '), class: 'line ' + l.cls, 'data-testid': testid + '-line'}));
        }
        run = [];
      };
      l.values.forEach((v, i) => {
        if (num(v)) run.push(x(times[i]).toFixed(1) + ',' + y(v).toFixed(1));
        else flush();
      });
      flush();
    }
    return box;
  }

  // ---- topology layout ---------------------------------------------------

  // layout places nodes in layers: longest path from the nodes nothing
  // calls (gateways first), cycles cut by a bound; nodes without edges go
  // to a last column. Within a layer nodes are ordered by the mean
  // position of their callers.
  function layout(nodes, edges) {
    const layer = new Map(nodes.map((n) => [n.id, 0]));
    const linked = new Set();
    for (const e of edges) {
      if (e.source === e.target) continue;
      linked.add(e.source); linked.add(e.target);
    }
    for (let i = 0; i < nodes.length; i++) {
      let changed = false;
      for (const e of edges) {
        if (e.source === e.target || !layer.has(e.source) || !layer.has(e.target)) continue;
        const want = layer.get(e.source) + 1;
        if (layer.get(e.target) < want && want < nodes.length) { layer.set(e.target, want); changed = true; }
      }
      if (!changed) break;
    }
    let maxLayer = 0;
    for (const n of nodes) if (linked.has(n.id)) maxLayer = Math.max(maxLayer, layer.get(n.id));
    for (const n of nodes) {
      if (linked.has(n.id)) continue;
      if (linked.size === 0) layer.set(n.id, n.kind === 'gateway' ? 0 : 1);
      else layer.set(n.id, n.kind === 'gateway' ? 0 : maxLayer + 1);
    }
    const used = [...new Set(layer.values())].sort((a, b) => a - b);
    const cols = used.map(() => []);
    for (const n of nodes) cols[used.indexOf(layer.get(n.id))].push(n);
    const pos = new Map();
    const NW = 160, NH = 48, CW = 290, RH = 84;
    const tallest = Math.max(...cols.map((c) => c.length));
    cols.forEach((col, ci) => {
      const key = (n) => {
        const ys = edges.filter((e) => e.target === n.id && pos.has(e.source)).map((e) => pos.get(e.source).y);
        return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
      };
      col.sort((a, b) => (key(a) - key(b)) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const off = (tallest - col.length) * RH / 2;
      col.forEach((n, i) => pos.set(n.id, {x: 30 + ci * CW, y: 40 + off + i * RH, w: NW, h: NH, col: ci}));
    });
    return {pos, width: 30 + cols.length * CW - (CW - NW) + 30, height: 40 + tallest * RH + 10};
  }

  function drawTopology(topo) {
    const nodes = topo.nodes || [], edges = topo.edges || [];
    const {pos, width, height} = layout(nodes, edges);
    const svg = s('svg', {viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, class: 'topology', 'data-testid': 'topology-graph'});
    const defs = s('defs');
    for (const c of ['ok', 'warn', 'bad', 'idle']) {
      defs.appendChild(s('marker', {id: 'arrow-' + c, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', class: 'arrow ' + c},
        s('path', {d: 'M0,0 L10,5 L0,10 z'})));
    }
    svg.appendChild(defs);
    const edgeLayer = s('g', {class: 'edges'});
    const labelLayer = s('g', {class: 'edge-labels'});
    svg.appendChild(edgeLayer);
    // Forward edges leave a node's right side and enter the left side at
    // ports spread over its height, ordered by the other end's height, so
    // that fanned-out edges do not share a point.
    const forward = edges.filter((e) => pos.has(e.source) && pos.has(e.target) && pos.get(e.target).col > pos.get(e.source).col);
    const ports = new Map(); // edge -> {y0, y3}
    const spread = (key, other, end) => {
      const groups = new Map();
      for (const e of forward) {
        if (!groups.has(e[key])) groups.set(e[key], []);
        groups.get(e[key]).push(e);
      }
      for (const [id, list] of groups) {
        const p = pos.get(id);
        list.sort((x, y) => pos.get(x[other]).y - pos.get(y[other]).y);
        list.forEach((e, i) => {
          const pt = ports.get(e) || {};
          pt[end] = p.y + p.h * (i + 1) / (list.length + 1);
          ports.set(e, pt);
        });
      }
    };
    spread('source', 'target', 'y0');
    spread('target', 'source', 'y3');
    for (const e of edges) {
      const a = pos.get(e.source), b = pos.get(e.target);
      if (!a || !b) continue;
      const cls = health(e.successRate);
      let d, mx, my;
      if (e.source === e.target) {
        const x0 = a.x + a.w, y0 = a.y + 12;
        d = 'M' + x0 + ',' + y0 + ' C' + (x0 + 50) + ',' + (y0 - 40) + ' ' + (x0 + 50) + ',' + (y0 + 60) + ' ' + x0 + ',' + (a.y + a.h - 8);
        mx = x0 + 40; my = y0 + 10;
      } else if (b.col > a.col) {
        const {y0, y3} = ports.get(e);
        const x0 = a.x + a.w, x3 = b.x, dx = (x3 - x0) / 2;
        d = 'M' + x0 + ',' + y0 + ' C' + (x0 + dx) + ',' + y0 + ' ' + (x3 - dx) + ',' + y3 + ' ' + x3 + ',' + y3;
        // The label sits in the gap before the target's column, where the
        // curve is at x = x3 - gap/2 (x grows with t: bisect).
        const bez = (p0, p1, p2, p3, t) => (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2 + t ** 3 * p3;
        const want = x3 - Math.min(65, (x3 - x0) / 2);
        let lo = 0, hi = 1;
        for (let i = 0; i < 30; i++) {
          const mid = (lo + hi) / 2;
          if (bez(x0, x0 + dx, x3 - dx, x3, mid) < want) lo = mid; else hi = mid;
        }
        mx = want; my = bez(y0, y0, y3, y3, lo);
      } else { // same or earlier column: bend below
        const x0 = a.x + a.w / 2, y0 = a.y + a.h, x3 = b.x + b.w / 2, y3 = b.y + b.h, dip = 50 + Math.abs(x3 - x0) / 6;
        d = 'M' + x0 + ',' + y0 + ' C' + x0 + ',' + (y0 + dip) + ' ' + x3 + ',' + (y3 + dip) + ' ' + x3 + ',' + y3;
        mx = (x0 + x3) / 2; my = (y0 + y3) / 2 + dip * 0.75;
      }
      const label = fmtRPS(e.rps) + (num(e.successRate) ? ' · ' + fmtPct(e.successRate) : '');
      const g = s('g', {class: 'edge ' + cls, 'data-testid': 'topo-edge', 'data-source': e.source, 'data-target': e.target, 'data-service': e.service, 'data-health': cls},
        s('title', null, e.source + ' → ' + e.service + ' (' + e.target + '): ' + label + ', p99 ' + fmtMs(e.p99Ms)),
        s('path', {d: d, 'marker-end': 'url(#arrow-' + cls + ')'}));
      edgeLayer.appendChild(g);
      labelLayer.appendChild(s('text', {x: mx, y: my - 4, 'text-anchor': 'middle', class: 'edge-label ' + cls, 'data-testid': 'edge-label', 'data-source': e.source, 'data-target': e.target}, label));
    }
    const nodeLayer = s('g', {class: 'nodes'});
    for (const n of nodes) {
      const p = pos.get(n.id);
      const cls = health(n.successRate);
      const sub = n.kind === 'gateway' ? 'gateway · ' + n.proxies + ' proxy' : fmtRPS(n.rps) + (num(n.successRate) ? ' · ' + fmtPct(n.successRate) : '');
      const a = s('a', {href: workloadHref(n.namespace, n.workload), class: 'node ' + n.kind + ' ' + cls, 'data-testid': 'topo-node', 'data-id': n.id, 'data-kind': n.kind, 'data-health': cls},
        s('title', null, n.id + ' (' + n.kind + ', ' + n.proxies + ' proxies)'),
        s('rect', {x: p.x, y: p.y, width: p.w, height: p.h, rx: n.kind === 'gateway' ? 2 : 8}),
        s('text', {x: p.x + 10, y: p.y + 19, class: 'node-name'}, n.workload),
        s('text', {x: p.x + 10, y: p.y + 37, class: 'node-sub'}, sub));
      nodeLayer.appendChild(a);
    }
    svg.appendChild(nodeLayer);
    svg.appendChild(labelLayer);
    return svg;
  }

  // ---- views -------------------------------------------------------------

  // Each view: mount(root, route) builds the frame and returns refresh, an
  // async function that fetches and fills it.

  function overviewView(root) {
    const graph = h('div', {id: 'topology', class: 'graph', 'data-testid': 'topology'});
    const nodesBox = h('div');
    const edgesBox = h('div');
    const stamp = h('span', {class: 'muted', 'data-testid': 'topology-time'});
    append(root, [
      h('h1', null, 'Topology ', stamp),
      h('p', {class: 'legend-row'}, 'Edges by success rate: ',
        h('span', {class: 'swatch ok'}, '≥ 99 %'), h('span', {class: 'swatch warn'}, '≥ 95 %'),
        h('span', {class: 'swatch bad'}, '< 95 %'), h('span', {class: 'swatch idle'}, 'no requests'), ' · labels: requests per second'),
      graph,
      h('h2', null, 'Workloads'), nodesBox,
      h('h2', null, 'Edges'), edgesBox,
    ]);
    return async function refresh() {
      const topo = await api('/api/v1/topology');
      const nodes = topo.nodes || [], edges = topo.edges || [];
      stamp.textContent = topo.time ? 'as of ' + fmtTime(topo.time) : '(waiting for the second scrape)';
      clear(graph);
      if (nodes.length === 0) graph.appendChild(h('p', {class: 'muted', 'data-testid': 'topology-empty'}, 'No proxy is connected yet.'));
      else graph.appendChild(drawTopology(topo));
      clear(nodesBox).appendChild(table('workloads-table', ['workload', 'kind', 'proxies#', 'rate#', 'success#', 'p50#', 'p99#'],
        nodes.map((n) => h('tr', {'data-testid': 'workload-row', 'data-id': n.id},
          h('td', null, h('a', {href: workloadHref(n.namespace, n.workload)}, n.id)), h('td', null, n.kind), h('td', {class: 'num'}, n.proxies),
          h('td', {class: 'num'}, fmtRPS(n.rps)), h('td', {class: 'num ' + health(n.successRate)}, fmtPct(n.successRate)),
          h('td', {class: 'num'}, fmtMs(n.p50Ms)), h('td', {class: 'num'}, fmtMs(n.p99Ms)))),
        'No proxy is connected yet.'));
      clear(edgesBox).appendChild(edgeTable('edges-table', edges));
    };
  }

  function edgeTable(testid, edges) {
    return table(testid, ['source', 'service', 'destination', 'rate#', 'success#', 'p50#', 'p99#'],
      edges.map((e) => h('tr', {'data-testid': 'edge-row', 'data-source': e.source, 'data-target': e.target},
        h('td', null, nodeLink(e.source)), h('td', null, e.service), h('td', null, nodeLink(e.target)),
        h('td', {class: 'num'}, fmtRPS(e.rps)), h('td', {class: 'num ' + health(e.successRate)}, fmtPct(e.successRate)),
        h('td', {class: 'num'}, fmtMs(e.p50Ms)), h('td', {class: 'num'}, fmtMs(e.p99Ms)))),
      'No traffic in the last interval.');
  }

  function nodeLink(id) {
    const i = id.indexOf('/');
    return i < 0 ? id : h('a', {href: workloadHref(id.slice(0, i), id.slice(i + 1))}, id);
  }

  function workloadView(root, route) {
    const [ns, name] = route.parts.slice(1);
    const id = ns + '/' + name;
    const cards = h('div', {class: 'cards'});
    const charts = h('div', {class: 'charts', 'data-testid': 'charts'});
    const edgesBox = h('div'), proxiesBox = h('div');
    append(root, [
      h('h1', {'data-testid': 'workload-title'}, 'Workload ', h('span', {class: 'ident'}, id)),
      h('p', {class: 'links'},
        h('a', {href: hashWith('#/traces', {service: name + '.' + ns}), 'data-testid': 'workload-traces-link'}, 'traces'), ' · ',
        h('a', {href: hashWith('#/logs', {workload: name + '.' + ns}), 'data-testid': 'workload-logs-link'}, 'logs')),
      cards, charts,
      h('h2', null, 'Edges'), edgesBox,
      h('h2', null, 'Proxies'), proxiesBox,
    ]);
    return async function refresh() {
      const [metrics, topo, proxies] = await Promise.all([
        api('/api/v1/metrics?' + new URLSearchParams({workload: name + '.' + ns, since: '30m'})),
        api('/api/v1/topology'),
        api('/api/v1/proxies').catch(() => ({items: []})),
      ]);
      const series = (metrics.series || []).find((x) => x.kind === 'workload' && x.workload === name && (!x.namespace || x.namespace === ns));
      const points = series ? series.points || [] : [];
      const node = (topo.nodes || []).find((n) => n.id === id) || {};
      const card = (testid, label, value, cls) => h('div', {class: 'card ' + (cls || ''), 'data-testid': testid}, h('div', {class: 'card-label'}, label), h('div', {class: 'card-value'}, value));
      clear(cards);
      append(cards, [
        card('golden-rps', 'requests', fmtRPS(node.rps)),
        card('golden-success', 'success', fmtPct(node.successRate), health(node.successRate)),
        card('golden-p50', 'p50', fmtMs(node.p50Ms)),
        card('golden-p99', 'p99', fmtMs(node.p99Ms)),
        card('golden-proxies', 'proxies', node.proxies === undefined ? '–' : String(node.proxies)),
      ]);
      const times = points.map((p) => Date.parse(p.time));
      clear(charts);
      append(charts, [
        chart('chart-rps', 'Requests per second (interval ' + (metrics.interval || '?') + ')', times,
          [{label: 'rps', cls: 's1', values: points.map((p) => p.rps)}], fmtRPS),
        chart('chart-success', 'Success rate', times,
          [{label: 'success', cls: 's2', values: points.map((p) => p.successRate)}], fmtPct, [0.9, 1]),
        chart('chart-latency', 'Latency', times,
          [{label: 'p50', cls: 's1', values: points.map((p) => p.p50Ms)}, {label: 'p99', cls: 's3', values: points.map((p) => p.p99Ms)}], fmtMs),
      ]);
      clear(edgesBox).appendChild(edgeTable('workload-edges', (topo.edges || []).filter((e) => e.source === id || e.target === id)));
      const mine = (proxies.items || []).filter((p) => p.namespace === ns && p.workload === name);
      clear(proxiesBox).appendChild(proxyTable('workload-proxies', mine));
    };
  }

  function proxyTable(testid, items) {
    return table(testid, ['proxy', 'role', 'address', 'xDS', 'config#', 'state', 'last ACK', 'last NACK / error'],
      items.map((p) => {
        const nack = p.lastNack || p.translateError || '';
        const state = p.synced ? 'synced' : (nack ? 'NACK' : 'pending');
        const acked = (p.types || []).filter((t) => t.sentVersion && t.sentVersion === t.ackedVersion).length;
        return h('tr', {'data-testid': 'proxy-row', 'data-id': p.id, 'data-synced': String(!!p.synced), class: p.synced ? '' : 'bad-row'},
          h('td', {class: 'ident'}, p.id), h('td', null, p.role),
          h('td', null, p.address || '–', p.adminAddr ? h('div', {class: 'muted'}, 'admin ' + p.adminAddr) : null),
          h('td', null, p.protocol + (p.streams > 1 ? ' (' + p.streams + ' streams)' : '')),
          h('td', {class: 'num'}, 'v' + p.configVersion, h('div', {class: 'muted'}, acked + '/' + (p.types || []).length + ' types acked')),
          h('td', null, h('span', {class: 'badge ' + (p.synced ? 'ok' : nack ? 'bad' : 'warn'), 'data-testid': 'proxy-state'}, state)),
          h('td', null, fmtTime(p.lastAck)),
          h('td', {class: 'reason', 'data-testid': 'proxy-nack'}, nack || '–'));
      }), 'No proxy is connected.');
  }

  function tracesView(root, route) {
    const service = route.q.get('service') || '', minDuration = route.q.get('minDuration') || '';
    const svcInput = h('input', {id: 'trace-service', name: 'service', value: service, placeholder: 'service (workload)', list: 'trace-services', 'data-testid': 'trace-service'});
    const minInput = h('input', {id: 'trace-min', name: 'minDuration', value: minDuration, placeholder: 'min duration (10ms)', 'data-testid': 'trace-min', size: 14});
    const datalist = h('datalist', {id: 'trace-services'});
    const list = h('div');
    const form = h('form', {class: 'filters', 'data-testid': 'trace-filters', onsubmit: (ev) => {
      ev.preventDefault();
      location.hash = hashWith('#/traces', {service: svcInput.value.trim(), minDuration: minInput.value.trim()});
    }}, svcInput, datalist, minInput, h('button', {type: 'submit', 'data-testid': 'trace-apply'}, 'Apply'));
    append(root, [h('h1', null, 'Traces'), form, list]);
    let services = null;
    return async function refresh() {
      const q = {limit: '100'};
      if (service) q.service = service;
      if (minDuration) q.minDuration = minDuration;
      const res = await api('/api/v1/traces?' + new URLSearchParams(q));
      const traces = res.traces || [];
      const longest = Math.max(1e-9, ...traces.map((t) => t.durationMs || 0));
      clear(list).appendChild(table('traces-table', ['trace', 'root span', 'service', 'start', 'duration#', 'spans#', 'errors#', 'services'],
        traces.map((t) => h('tr', {'data-testid': 'trace-row', 'data-trace': t.traceId, class: t.errors ? 'bad-row' : ''},
          h('td', {class: 'ident'}, h('a', {href: '#/traces/' + encodeURIComponent(t.traceId), 'data-testid': 'trace-link'}, t.traceId.slice(0, 16) + '…')),
          h('td', null, t.root), h('td', null, t.rootService), h('td', null, fmtTime(t.start)),
          h('td', {class: 'num'}, durBar(t.durationMs / longest), fmtMs(t.durationMs)),
          h('td', {class: 'num'}, t.spans), h('td', {class: 'num' + (t.errors ? ' bad' : '')}, t.errors),
          h('td', null, (t.services || []).join(', ')))),
        'No trace matches.'));
      if (services === null) {
        services = [];
        api('/api/v1/topology').then((topo) => {
          clear(datalist);
          for (const n of topo.nodes || []) datalist.appendChild(h('option', {value: n.workload}));
        }).catch(() => {});
      }
    };
  }

  function durBar(frac) {
    const bar = h('span', {class: 'dur-bar'});
    bar.style.width = Math.max(2, Math.round(frac * 80)) + 'px';
    return bar;
  }

  function traceView(root, route) {
    const id = route.parts[1];
    const summary = h('p', {class: 'muted', 'data-testid': 'trace-summary'});
    const wf = h('div', {id: 'waterfall', class: 'waterfall', 'data-testid': 'waterfall'});
    const details = h('div', {id: 'span-details', class: 'details', 'data-testid': 'span-details', hidden: true});
    append(root, [
      h('h1', null, 'Trace ', h('span', {class: 'ident', 'data-testid': 'trace-id'}, id)),
      h('p', {class: 'links'}, h('a', {href: '#/traces'}, '← traces'), ' · ',
        h('a', {href: hashWith('#/logs', {trace: id}), 'data-testid': 'trace-logs-link'}, 'logs of this trace')),
      summary, wf, details,
    ]);
    let selected = null;
    let spans = [];
    const showDetails = (sp) => {
      selected = sp.spanId;
      for (const row of wf.querySelectorAll('.span-row')) row.classList.toggle('selected', row.dataset.spanId === selected);
      details.hidden = false;
      const attrs = Object.entries(sp.attributes || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
      const field = (k, v) => h('tr', {'data-key': k}, h('th', null, k), h('td', null, v === undefined || v === '' ? '–' : typeof v === 'object' ? JSON.stringify(v) : String(v)));
      clear(details);
      append(details, [
        h('h2', null, sp.service + ': ' + sp.name),
        h('table', {class: 'kv', 'data-testid': 'span-fields'}, h('tbody', null,
          field('span id', sp.spanId), field('parent', sp.parentSpanId), field('kind', sp.kind),
          field('status', sp.status + (sp.statusMessage ? ' (' + sp.statusMessage + ')' : '')),
          field('service', (sp.namespace ? sp.namespace + '/' : '') + sp.service), field('instance', sp.instance),
          field('start', fmtTime(sp.start)), field('duration', fmtMs(sp.durationMs)))),
        h('h3', null, 'Attributes'),
        h('table', {class: 'kv', 'data-testid': 'span-attributes'}, h('tbody', null, attrs.map(([k, v]) => field(k, v)))),
      ]);
    };
    return async function refresh() {
      let tr;
      try {
        tr = await api('/api/v1/traces/' + encodeURIComponent(id));
      } catch (e) {
        if (e.status === 404 || e.status === 400) {
          summary.textContent = e.message;
          summary.setAttribute('data-testid', 'trace-missing');
          return;
        }
        throw e;
      }
      spans = tr.spans || [];
      const t0 = Math.min(...spans.map((x) => Date.parse(x.start)));
      const t1 = Math.max(...spans.map((x) => Date.parse(x.start) + (x.durationMs || 0)));
      const total = Math.max(t1 - t0, 0.001);
      const services = [...new Set(spans.map((x) => x.service))];
      summary.textContent = spans.length + ' spans · ' + services.length + ' services (' + services.join(', ') + ') · ' + fmtMs(total) + ' · started ' + fmtTime(new Date(t0).toISOString());
      // Depth-first by parent, children by start.
      const byId = new Map(spans.map((x) => [x.spanId, x]));
      const kids = new Map();
      const roots = [];
      for (const x of spans) {
        if (x.parentSpanId && byId.has(x.parentSpanId) && x.parentSpanId !== x.spanId) {
          if (!kids.has(x.parentSpanId)) kids.set(x.parentSpanId, []);
          kids.get(x.parentSpanId).push(x);
        } else roots.push(x);
      }
      const byStart = (a, b) => Date.parse(a.start) - Date.parse(b.start);
      const ordered = [];
      const seen = new Set();
      const walk = (x, depth) => {
        if (seen.has(x.spanId)) return;
        seen.add(x.spanId);
        ordered.push([x, depth]);
        for (const c of (kids.get(x.spanId) || []).sort(byStart)) walk(c, depth + 1);
      };
      for (const r of roots.sort(byStart)) walk(r, 0);
      clear(wf);
      const ticks = h('div', {class: 'wf-ticks'});
      for (let i = 0; i <= 4; i++) {
        const t = h('span', {class: 'wf-tick'}, fmtMs(total * i / 4));
        t.style.left = (i * 25) + '%';
        ticks.appendChild(t);
      }
      wf.appendChild(h('div', {class: 'wf-head'}, h('div', {class: 'wf-label'}, 'service: span'), h('div', {class: 'wf-track'}, ticks)));
      for (const [x, depth] of ordered) {
        const start = Date.parse(x.start) - t0;
        const bar = h('div', {class: 'span-bar ' + (x.status === 'ERROR' ? 'bad' : x.kind === 'CLIENT' ? 'client' : 'server'), 'data-testid': 'span-bar'},
          h('span', {class: 'span-dur'}, fmtMs(x.durationMs)));
        bar.style.left = (100 * start / total).toFixed(3) + '%';
        bar.style.width = Math.max(0.3, 100 * (x.durationMs || 0) / total).toFixed(3) + '%';
        const label = h('div', {class: 'wf-label'}, h('span', {class: 'svc'}, x.service), ' ', x.name);
        label.style.paddingLeft = (6 + depth * 14) + 'px';
        const row = h('div', {class: 'span-row' + (x.spanId === selected ? ' selected' : ''), 'data-testid': 'span-row', 'data-span-id': x.spanId, tabindex: 0, role: 'button',
          onclick: () => showDetails(x), onkeydown: (ev) => { if (ev.key === 'Enter') showDetails(x); }},
        label, h('div', {class: 'wf-track'}, bar));
        wf.appendChild(row);
      }
      if (selected && byId.has(selected)) showDetails(byId.get(selected));
    };
  }

  // accessSummary renders an access record's JSON body in one line.
  function accessSummary(body) {
    let r;
    try { r = JSON.parse(body); } catch (e) { return null; }
    if (!r || typeof r !== 'object') return null;
    const flow = (r.source_workload || '?') + ' → ' + (r.destination_workload && r.destination_workload !== 'unknown' ? r.destination_workload : (r.destination_service || '?'));
    if (r.kind === 'tcp') {
      return {text: 'TCP ' + flow + ' ' + (r.bytes_in || 0) + 'B in, ' + (r.bytes_out || 0) + 'B out, ' + fmtMs(r.duration_ms), status: 0, rec: r};
    }
    const flags = r.flags && r.flags !== '-' ? ' ' + r.flags : '';
    return {text: (r.method || '') + ' ' + (r.authority || '') + (r.path || '') + ' → ' + r.status + flags + ' ' + fmtMs(r.duration_ms) +
      '  [' + (r.reporter || '') + ' ' + flow + ']', status: r.status, rec: r};
  }

  function logsView(root, route) {
    const v = (k) => route.q.get(k) || '';
    const qInput = h('input', {id: 'logs-q', type: 'search', name: 'q', value: v('q'), placeholder: 'search', title: 'Enter asks the server; typing filters the records shown', 'data-testid': 'logs-search', size: 44});
    const wlInput = h('input', {id: 'logs-workload', name: 'workload', value: v('workload'), placeholder: 'workload[.namespace]', 'data-testid': 'logs-workload'});
    const trInput = h('input', {id: 'logs-trace', name: 'trace', value: v('trace'), placeholder: 'trace id', 'data-testid': 'logs-trace', size: 34});
    const kindSel = h('select', {id: 'logs-kind', name: 'kind', 'data-testid': 'logs-kind'},
      ['', 'access', 'app'].map((k) => h('option', {value: k, selected: k === v('kind')}, k || 'all kinds')));
    const count = h('span', {class: 'muted', 'data-testid': 'logs-count'});
    const list = h('div');
    const go = () => {
      location.hash = hashWith('#/logs', {q: qInput.value.trim(), workload: wlInput.value.trim(), trace: trInput.value.trim(), kind: kindSel.value});
    };
    const form = h('form', {class: 'filters', 'data-testid': 'logs-filters', onsubmit: (ev) => { ev.preventDefault(); go(); }},
      qInput, wlInput, trInput, kindSel, h('button', {type: 'submit', 'data-testid': 'logs-apply'}, 'Search'), count);
    append(root, [h('h1', null, 'Logs'), form, list]);
    let rows = [];
    // filter hides the rows that do not contain the search box's text
    // (the server filtered with the text in the URL; this follows typing).
    const filter = () => {
      const needle = qInput.value.trim().toLowerCase();
      const kind = kindSel.value;
      let shown = 0;
      for (const [tr, hay, k] of rows) {
        const ok = (!needle || hay.includes(needle)) && (!kind || k === kind);
        tr.hidden = !ok;
        if (ok) shown++;
      }
      count.textContent = shown + ' of ' + rows.length + ' records shown';
      list.dataset.shown = String(shown);
    };
    qInput.addEventListener('input', filter);
    kindSel.addEventListener('change', filter);
    return async function refresh() {
      const q = {limit: '500'};
      for (const k of ['q', 'workload', 'trace']) if (v(k)) q[k] = v(k);
      const res = await api('/api/v1/logs?' + new URLSearchParams(q));
      // Newest first: proxies export in batches, so arrival (seq) order
      // is not time order.
      const recs = (res.records || []).slice().sort((a, b) => (Date.parse(b.time) - Date.parse(a.time)) || (b.seq - a.seq));
      rows = recs.map((r) => {
        const acc = r.kind === 'access' ? accessSummary(r.body) : null;
        const msg = acc ? acc.text : r.body;
        const cls = (acc && acc.status >= 500) || r.stream === 'stderr' || /^(error|fatal)/i.test(r.severity || '') ? 'bad-row' : acc && acc.status >= 400 ? 'warn-row' : '';
        const tr = h('tr', {'data-testid': 'log-row', 'data-kind': r.kind, 'data-seq': r.seq, 'data-trace': r.traceId || '', class: cls},
          h('td', {class: 'nowrap'}, fmtTime(r.time)),
          h('td', null, r.workload ? h('a', {href: hashWith('#/logs', {workload: r.workload + (r.namespace ? '.' + r.namespace : '')})}, r.workload) : '–',
            r.instance ? h('div', {class: 'muted'}, r.instance) : null),
          h('td', null, h('span', {class: 'badge ' + (r.kind === 'access' ? 'kind-access' : 'kind-app')}, r.kind), r.stream ? h('div', {class: 'muted'}, r.stream) : null),
          h('td', {class: 'msg', 'data-testid': 'log-message', title: acc ? r.body : null}, msg),
          h('td', {class: 'ident'}, r.traceId ? h('a', {href: '#/traces/' + encodeURIComponent(r.traceId), 'data-testid': 'log-trace-link'}, r.traceId.slice(0, 12) + '…') : ''));
        return [tr, (msg + ' ' + r.body + ' ' + (r.workload || '') + ' ' + (r.traceId || '')).toLowerCase(), r.kind];
      });
      clear(list).appendChild(table('logs-table', ['time', 'workload', 'kind', 'message', 'trace'], rows.map((x) => x[0]), 'No log record matches.'));
      filter();
    };
  }

  function proxiesView(root) {
    const summary = h('p', {class: 'muted', 'data-testid': 'proxies-summary'});
    const box = h('div');
    append(root, [h('h1', null, 'Proxies'), summary, box]);
    return async function refresh() {
      const res = await api('/api/v1/proxies');
      const items = res.items || [];
      const synced = items.filter((p) => p.synced).length;
      const nacked = items.filter((p) => p.lastNack || p.translateError).length;
      summary.textContent = items.length + ' connected · ' + synced + ' synced · ' + nacked + ' with a NACK or translation error';
      clear(box).appendChild(proxyTable('proxies-table', items));
    };
  }

  function alertsView(root) {
    const box = h('div'), events = h('div');
    append(root, [h('h1', null, 'Alerts'), box, h('h2', null, 'Recent events'), events]);
    return async function refresh() {
      const res = await api('/api/v1/alerts');
      const alerts = res.alerts || [];
      clear(box).appendChild(table('alerts-table', ['rule', 'target', 'condition', 'value#', 'requests#', 'severity', 'state', 'since'],
        alerts.map((a) => h('tr', {'data-testid': 'alert-row', 'data-id': a.namespace + '/' + a.name, 'data-state': a.state, class: a.state === 'firing' ? 'bad-row' : ''},
          h('td', {class: 'ident'}, a.namespace + '/' + a.name, a.summary ? h('div', {class: 'muted'}, a.summary) : null),
          h('td', null, a.target), h('td', null, a.metric + ' ' + a.op + ' ' + fmtValue(a.metric, a.threshold)),
          h('td', {class: 'num'}, fmtValue(a.metric, a.value)), h('td', {class: 'num'}, Math.round(a.requests || 0)),
          h('td', null, a.severity || '–'),
          h('td', null, h('span', {class: 'badge ' + stateClass(a.state), 'data-testid': 'alert-state'}, a.state)),
          h('td', null, fmtTime(a.since)))),
        'No AlertRule is defined.'));
      const evs = (res.events || []).slice().reverse();
      clear(events).appendChild(table('alert-events', ['time', 'event', 'rule', 'value#'],
        evs.map((e) => h('tr', {'data-testid': 'alert-event', class: e.kind === 'firing' ? 'bad-row' : ''},
          h('td', null, fmtTime(e.kind === 'firing' ? e.alert.firedAt : e.alert.resolvedAt)),
          h('td', null, h('span', {class: 'badge ' + (e.kind === 'firing' ? 'bad' : 'ok')}, e.kind)),
          h('td', {class: 'ident'}, e.alert.namespace + '/' + e.alert.name),
          h('td', {class: 'num'}, fmtValue(e.alert.metric, e.alert.value)))),
        'No alert fired or resolved yet.'));
    };
  }

  function stateClass(st) {
    return st === 'firing' ? 'bad' : st === 'pending' || st === 'resolving' ? 'warn' : 'ok';
  }

  function fmtValue(metric, v) {
    if (!num(v)) return '–';
    if (/success/i.test(metric)) return fmtPct(v);
    if (/latency|p\d\d/i.test(metric)) return fmtMs(v);
    if (/rate/i.test(metric)) return fmtRPS(v);
    return String(+v.toFixed(3));
  }

  function notFoundView(root, route) {
    root.appendChild(h('p', {'data-testid': 'not-found'}, 'No view at #/' + route.parts.join('/') + '. ', h('a', {href: '#/'}, 'Overview')));
    return async function refresh() {};
  }

  // ---- router and refresh loop ------------------------------------------

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const i = raw.indexOf('?');
    const path = i < 0 ? raw : raw.slice(0, i);
    const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    return {parts, q: new URLSearchParams(i < 0 ? '' : raw.slice(i + 1))};
  }

  function pick(route) {
    const p = route.parts;
    if (p.length === 0) return ['overview', overviewView];
    if (p[0] === 'workloads' && p.length === 3) return ['workloads', workloadView];
    if (p[0] === 'traces' && p.length === 1) return ['traces', tracesView];
    if (p[0] === 'traces' && p.length === 2) return ['traces', traceView];
    if (p[0] === 'logs' && p.length === 1) return ['logs', logsView];
    if (p[0] === 'proxies' && p.length === 1) return ['proxies', proxiesView];
    if (p[0] === 'alerts' && p.length === 1) return ['alerts', alertsView];
    return ['', notFoundView];
  }

  const viewEl = document.getElementById('view');
  const errEl = document.getElementById('error');
  const bannerEl = document.getElementById('alert-banner');
  const stampEl = document.getElementById('last-refresh');
  const autoEl = document.getElementById('auto-refresh');
  let current = null; // {refresh, gen, running}
  let gen = 0;

  function mount() {
    const route = parseHash();
    const [name, view] = pick(route);
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.route === name);
    gen++;
    const root = clear(viewEl);
    root.dataset.view = name || 'none';
    root.dataset.state = 'loading';
    root.dataset.refreshes = '0';
    current = {refresh: view(root, route), gen: gen, running: null};
    refresh();
  }

  // refresh runs the current view's refresh and the alert banner's; a
  // refresh still running is not started again.
  function refresh() {
    const mine = current;
    if (mine.running) return mine.running;
    mine.running = Promise.all([mine.refresh().then(() => null, (e) => e), refreshBanner()]).then(([err]) => {
      if (mine.gen !== gen) return; // the view changed meanwhile
      if (err) {
        errEl.hidden = false;
        errEl.textContent = 'Could not refresh: ' + err.message;
        viewEl.dataset.state = 'error';
      } else {
        errEl.hidden = true;
        viewEl.dataset.state = 'ready';
      }
      viewEl.dataset.refreshes = String(Number(viewEl.dataset.refreshes || 0) + 1);
      stampEl.textContent = 'updated ' + fmtClock(new Date());
    }).finally(() => { mine.running = null; });
    return mine.running;
  }

  async function refreshBanner() {
    let res;
    try { res = await api('/api/v1/alerts'); } catch (e) { bannerEl.hidden = true; return; }
    const firing = (res.alerts || []).filter((a) => a.state === 'firing' || a.state === 'resolving');
    clear(bannerEl);
    bannerEl.hidden = firing.length === 0;
    if (firing.length === 0) return;
    append(bannerEl, [
      h('strong', null, firing.length === 1 ? '1 alert firing: ' : firing.length + ' alerts firing: '),
      firing.map((a, i) => [i ? ', ' : '', h('span', {'data-testid': 'banner-alert', 'data-id': a.namespace + '/' + a.name},
        a.namespace + '/' + a.name + ' (' + a.target + ' ' + a.metric + ' ' + fmtValue(a.metric, a.value) + ', ' + a.op + ' ' + fmtValue(a.metric, a.threshold) + ')')]),
      ' ', h('a', {href: '#/alerts'}, 'details'),
    ]);
  }

  window.addEventListener('hashchange', mount);
  setInterval(() => {
    if (autoEl.checked && !document.hidden) refresh();
  }, REFRESH_MS);
  mount();
})();
