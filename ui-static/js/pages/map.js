// Service map: nodes and call edges from /api/service-map (calls, errors
// and latency per edge and per service; /api/dependencies on servers
// without it), coloured by each service's status from /api/fleet/health.
// Layout: columns by longest path from the callers, ordered by the
// barycentre heuristic; a column of more than 30 services is split into
// sub-columns; the drawing scales down to the box's width but not below 80 %
// (names stay readable) and scrolls inside its box beyond that. A click on a
// node (or ?service=) shows its health: status, reasons, firing alerts,
// rates, callers and callees, links to its traces, logs and RED metrics.
import {api, prom, isAbort} from '../api.js';
import {h, clear, notice, colorOf, RANGES, parseSeconds, link, fmtNumber, fmtRate} from '../util.js';

const NW = 172, NH = 36, ROW = 46, LAYER_GAP = 110, SUB_GAP = 24, PAD = 20, MIN_SCALE = 0.8;

export async function render(root, route, {signal, navigate}) {
    const range = h('select', {id: 'map-range', 'aria-label': 'Lookback'}, RANGES.map(([k]) => h('option', {value: k}, `Last ${k}`)));
    range.value = route.query.get('range') || '1h';
    const box = h('div.map-box');
    const side = h('aside.node-info', {'aria-live': 'polite'});
    clear(root, h('div.map-page', h('h1', 'Service map'), h('div.row', h('label', {for: 'map-range'}, 'Lookback '), range), h('div.map-split', box, side)));
    const address = svc => {
        const p = new URLSearchParams();
        if (range.value !== '1h') p.set('range', range.value);
        if (svc) p.set('service', svc);
        navigate(`/map${[...p].length ? `?${p}` : ''}`, {replace: true, rerender: !svc});
    };
    range.addEventListener('change', () => address(''));
    clear(box, notice('loading', 'Loading dependencies…'));
    const lookbackMs = parseSeconds(range.value) * 1000;
    let graph;
    try {
        graph = await loadGraph(lookbackMs, signal);
    } catch (e) {
        if (!isAbort(e)) clear(box, notice('error', 'Could not load dependencies', e.message));
        return;
    }
    const {edges, stats, richer} = graph;
    const nodes = new Map();
    const node = n => { if (!nodes.has(n)) nodes.set(n, {name: n, out: [], in: []}); return nodes.get(n); };
    for (const e of edges) { node(e.parent).out.push(e); node(e.child).in.push(e); }
    for (const n of stats.keys()) node(n);
    try {
        for (const s of (await api('/api/services', {}, {signal})).data || []) node(s);
    } catch (e) { if (isAbort(e)) return; /* the map still shows what it has */ }
    if (!nodes.size) { clear(box, notice('empty', 'No services yet', 'Send traces: the map is built from parent/child spans across services.')); return; }

    // Status per service, when the server has the health API.
    const health = new Map();
    try {
        const j = await api('/api/fleet/health', {window: `${Math.round(Math.min(lookbackMs, 86400e3) / 1000)}s`}, {signal});
        for (const s of (j.data && j.data.services) || []) health.set(s.service, s);
    } catch (e) { if (isAbort(e)) return; }
    // Without /api/service-map, the error ratio per service comes from the span metrics.
    if (!richer) {
        const win = `${Math.max(60, Math.round(lookbackMs / 1000))}s`;
        try {
            const d = await prom('/api/v1/query', {query: `sum by (service_name) (increase(traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"}[${win}])) / sum by (service_name) (increase(traces_span_metrics_calls_total[${win}]))`}, {signal, method: 'POST'});
            for (const r of d.result || []) stats.set(r.metric.service_name, {errorRatio: parseFloat(r.value[1])});
        } catch (e) { if (isAbort(e)) return; }
    }

    const all = [...nodes.values()];
    // Columns stay whole up to 30 services (the box scrolls down); only a
    // wider fan-out is split, since edges into a second sub-column cross
    // the first one.
    const maxRows = 30;
    const {W, H} = place(layers(all), maxRows);
    const svg = h('svg.map', {viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-label': `Service dependency graph: ${nodes.size} services, ${edges.length} call edges`},
        h('defs', h('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
            h('path', {d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead'}))));
    // Labels of the edges into one callee end at the same point: spread
    // them apart vertically, in the order of their callers' rows.
    const dy = new Map();
    for (const n of all) {
        const ins = n.in.filter(e => nodes.get(e.parent).x < n.x).sort((p, q) => nodes.get(p.parent).y - nodes.get(q.parent).y);
        ins.forEach((e, k) => dy.set(e, (k - (ins.length - 1) / 2) * 12));
    }
    for (const e of edges) svg.append(edgeEl(nodes.get(e.parent), nodes.get(e.child), e, dy.get(e) || 0));
    const els = new Map();
    const pick = (n, push) => {
        for (const x of svg.querySelectorAll('.node.selected')) x.classList.remove('selected');
        els.get(n.name).classList.add('selected');
        showNode(side, n, stats.get(n.name), health.get(n.name));
        if (push) address(n.name);
    };
    for (const n of all) {
        const st = stats.get(n.name) || {}, hs = health.get(n.name);
        const er = st.errorRatio;
        const cls = [hs ? hs.status : '', er > 0.05 ? 'bad' : er > 0 ? 'warn' : ''].filter(Boolean).map(c => '.' + c).join('');
        const g = h('g.node' + cls, {tabindex: 0, role: 'button', 'data-service': n.name,
                'aria-label': `${n.name}${hs ? `, ${hs.status}` : ''}${er != null ? `, ${(er * 100).toFixed(1)}% errors` : ''}`},
            h('title', n.name),
            h('rect', {x: n.x, y: n.y, width: NW, height: NH, rx: 8, style: `stroke:${colorOf(n.name)}`}),
            h('text', {x: n.x + NW / 2, y: n.y + 15, 'text-anchor': 'middle'}, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name),
            h('text.sub', {x: n.x + NW / 2, y: n.y + 29, 'text-anchor': 'middle'},
              [hs && hs.status !== 'healthy' ? hs.status : '', st.requestRate != null ? fmtRate(st.requestRate) : '',
               er != null ? `${errPct(er)} err` : `${n.out.length} callee${n.out.length === 1 ? '' : 's'}`].filter(Boolean).join(' · ')));
        g.addEventListener('click', () => pick(n, true));
        g.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(n, true); } });
        els.set(n.name, g);
        svg.append(g);
    }
    const scroller = h('div.map-scroll', svg);
    clear(box, scroller);
    // Fit the box's width, down to MIN_SCALE; beyond that the box scrolls.
    const fit = () => {
        const s = Math.min(1, Math.max(MIN_SCALE, (scroller.clientWidth - 2) / W));
        svg.setAttribute('width', String(Math.floor(W * s)));
        svg.setAttribute('height', String(Math.floor(H * s)));
    };
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(scroller);
    const want = route.query.get('service');
    if (want && nodes.has(want)) {
        pick(nodes.get(want), false);
        els.get(want).scrollIntoView({block: 'nearest', inline: 'nearest'});
    } else {
        clear(side, h('p.muted', 'Select a service for its health.'));
    }
    return () => ro.disconnect();
}

// {edges: [{parent, child, calls, errors, errorRatio, p95}], stats: Map(service -> node stats), richer}
async function loadGraph(lookbackMs, signal) {
    const params = {endTs: Date.now(), lookback: lookbackMs};
    try {
        const j = await api('/api/service-map', params, {signal});
        const d = j.data || {};
        return {edges: (d.edges || []).map(e => ({...e, calls: e.callCount ?? e.calls ?? 0})),
                stats: new Map((d.nodes || []).map(n => [n.service, n])), richer: true};
    } catch (e) {
        if (e.status !== 404) throw e;
    }
    const j = await api('/api/dependencies', params, {signal});
    return {edges: (j.data || []).map(d => ({parent: d.parent, child: d.child, calls: d.callCount || 0, errors: d.errorCount,
                                             errorRatio: d.errorCount != null && d.callCount ? d.errorCount / d.callCount : undefined})),
            stats: new Map(), richer: false};
}

// An error ratio as a short percentage: "0.5%", "12%", "100%".
const errPct = r => `${+(r * 100).toFixed(r < 0.1 ? 1 : 0)}%`;

function edgeEl(a, b, e, dy) {
    let d, lx, ly, anchor = 'middle';
    if (a === b) {
        d = `M ${a.x + NW} ${a.y + 10} c 40 -30 40 40 0 16`;
        lx = a.x + NW + 34; ly = a.y + 4;
    } else if (b.x > a.x) {
        // A cubic from the caller's right side to the callee's left side; the
        // label ends just before the arrowhead, on the callee's row, where
        // labels of one caller's fan-out are spread apart by the callees'
        // rows and no label runs under a node.
        const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
        d = `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`;
        lx = x2 - 10; ly = y2 - 5 + dy; anchor = 'end';
    } else {
        const y1 = a.y + NH / 2, y2 = b.y + NH / 2;
        d = `M ${a.x} ${y1} C ${a.x - 60} ${y1 - 40}, ${b.x + NW + 60} ${y2 - 40}, ${b.x + NW} ${y2}`;
        lx = (a.x + b.x + NW) / 2; ly = Math.min(y1, y2) - 24;
    }
    const er = e.errorRatio != null ? e.errorRatio : e.errors != null && e.calls ? e.errors / e.calls : null;
    const title = `${e.parent} → ${e.child}: ${e.calls} calls${er != null ? `, ${(er * 100).toFixed(1)}% errors` : ''}${e.p95 != null ? `, p95 ${fmtNumber(e.p95 * 1000)} ms` : ''}`;
    return h('g.edge-g' + (er ? '.err' : ''), {'data-parent': e.parent, 'data-child': e.child},
        h('title', title),
        h('path.edge', {d, 'marker-end': 'url(#arrow)', 'stroke-width': Math.min(6, 1 + Math.log10(1 + e.calls))}),
        h('text.edge-label', {x: lx, y: ly, 'text-anchor': anchor}, `${e.calls}${er ? ` · ${errPct(er)} err` : ''}`));
}

// Columns by longest path from the callers (cycles broken at back edges),
// then a few sweeps ordering each column by the mean position of neighbours.
function layers(nodes) {
    const byName = new Map(nodes.map(n => [n.name, n]));
    const level = new Map(), state = new Map();
    const visit = n => {
        if (state.get(n) === 2) return level.get(n);
        if (state.get(n) === 1) return -1; // back edge
        state.set(n, 1);
        let lv = 0;
        for (const e of n.in) {
            const p = byName.get(e.parent);
            if (p && p !== n) { const l = visit(p); if (l >= 0) lv = Math.max(lv, l + 1); }
        }
        state.set(n, 2);
        level.set(n, lv);
        return lv;
    };
    nodes.forEach(visit);
    const cols = [];
    for (const n of nodes) (cols[level.get(n)] = cols[level.get(n)] || []).push(n);
    for (const c of cols) c && c.sort((a, b) => a.name.localeCompare(b.name));
    const pos = () => { const m = new Map(); cols.forEach(c => c && c.forEach((n, i) => m.set(n.name, i / c.length))); return m; };
    for (let sweep = 0; sweep < 4; sweep++) {
        const p = pos();
        for (const c of cols) {
            if (!c) continue;
            const bc = n => { const nb = [...n.in.map(e => e.parent), ...n.out.map(e => e.child)].filter(x => x !== n.name && p.has(x));
                              return nb.length ? nb.reduce((a, x) => a + p.get(x), 0) / nb.length : p.get(n.name); };
            const keyed = c.map(n => [bc(n), n]);
            keyed.sort((x, y) => x[0] - y[0] || x[1].name.localeCompare(y[1].name));
            c.splice(0, c.length, ...keyed.map(k => k[1]));
        }
    }
    return cols.filter(Boolean);
}

// Sets n.x, n.y: a column of more than maxRows nodes becomes sub-columns
// (filled column by column, so neighbours in the order stay close); columns
// are centred vertically. Returns the drawing's size.
function place(cols, maxRows) {
    let x = PAD, rowsMax = 1;
    const placed = [];
    for (const col of cols) {
        const subs = Math.ceil(col.length / maxRows), rows = Math.ceil(col.length / subs);
        rowsMax = Math.max(rowsMax, rows);
        placed.push({col, subs, rows, x});
        x += subs * NW + (subs - 1) * SUB_GAP + LAYER_GAP;
    }
    const H = rowsMax * ROW + 2 * PAD - (ROW - NH);
    for (const {col, rows, x: cx} of placed) {
        col.forEach((n, i) => {
            const sub = Math.floor(i / rows), r = i % rows, inSub = Math.min(rows, col.length - sub * rows);
            n.x = cx + sub * (NW + SUB_GAP);
            n.y = PAD + r * ROW + (rowsMax - inSub) * ROW / 2;
        });
    }
    return {W: x - LAYER_GAP + PAD, H};
}

function showNode(side, n, st, hs) {
    const s = n.name, enc = encodeURIComponent(s);
    const pct = v => v == null ? '—' : `${fmtNumber(v * 100)}%`;
    const ms = v => v == null ? '—' : `${fmtNumber(v * 1000)} ms`;
    const edgeLi = (e, other) => h('li', `${other} (${e.calls}${e.errors ? `, ${e.errors} errors` : ''})`);
    st = st || {};
    clear(side, h('h2', {style: {color: colorOf(s)}}, s),
        hs ? h('p.health-status', h(`span.pill.st-${hs.status}`, hs.status)) : h('p.health-status.muted', 'no health data'),
        hs && (hs.reasons || []).length ? h('ul.reasons', hs.reasons.map(r => h('li', r))) : null,
        hs && (hs.firingAlerts || []).length ? h('div.firing', h('span.muted', 'Firing: '),
            hs.firingAlerts.map(a => link(`/alerts?service=${enc}`, (a.labels || {}).alertname || 'alert'))) : null,
        h('dl.facts',
            h('dt', 'Requests'), h('dd', st.calls != null ? `${st.calls} (${fmtRate(st.requestRate || 0)})` : '—'),
            h('dt', 'Error ratio'), h('dd' + (st.errorRatio > 0 ? '.errors' : ''), pct(st.errorRatio)),
            h('dt', 'p50 / p95 / p99'), h('dd', `${ms(st.p50)} / ${ms(st.p95)} / ${ms(st.p99)}`),
            h('dt', 'Calls in'), h('dd', n.in.reduce((a, e) => a + e.calls, 0)),
            h('dt', 'Calls out'), h('dd', n.out.reduce((a, e) => a + e.calls, 0))),
        h('h3', 'Callers'), h('ul', n.in.length ? n.in.map(e => edgeLi(e, e.parent)) : h('li.muted', 'none')),
        h('h3', 'Callees'), h('ul', n.out.length ? n.out.map(e => edgeLi(e, e.child)) : h('li.muted', 'none')),
        h('div.links', link(`/search?service=${enc}`, 'Traces'), link(`/logs?service=${enc}`, 'Logs'),
          link(`/graph?service=${enc}`, 'RED metrics'), link(`/health?service=${enc}`, 'Health')));
}
