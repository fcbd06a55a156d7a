// Service map: nodes and call edges from /api/dependencies (or the richer
// /api/service-map when the server has it), laid out in layers from callers
// to callees with crossings reduced by the barycentre heuristic; a click on
// a node shows its health (calls, errors, links to its traces, logs and
// RED metrics).
import {api, prom, isAbort} from '../api.js';
import {h, clear, notice, colorOf, RANGES, parseSeconds, link, fmtNumber} from '../util.js';

export async function render(root, route, {signal, navigate}) {
    const range = h('select', {id: 'map-range', 'aria-label': 'Lookback'}, RANGES.map(([k]) => h('option', {value: k}, `Last ${k}`)));
    range.value = route.query.get('range') || '1h';
    const box = h('div.map-box');
    const side = h('aside.node-info', {'aria-live': 'polite'});
    clear(root, h('div.map-page', h('h1', 'Service map'), h('div.row', h('label', {for: 'map-range'}, 'Lookback '), range), h('div.map-split', box, side)));
    range.addEventListener('change', () => navigate(`/map?range=${range.value}`, {replace: true}));
    clear(box, notice('loading', 'Loading dependencies…'));
    const lookbackMs = parseSeconds(range.value) * 1000;
    let edges;
    try {
        const j = await api('/api/dependencies', {endTs: Date.now(), lookback: lookbackMs}, {signal});
        edges = (j.data || []).map(d => ({parent: d.parent, child: d.child, calls: d.callCount || 0, errors: d.errorCount}));
    } catch (e) {
        if (!isAbort(e)) clear(box, notice('error', 'Could not load dependencies', e.message));
        return;
    }
    const nodes = new Map();
    const node = n => { if (!nodes.has(n)) nodes.set(n, {name: n, out: [], in: [], calls: 0}); return nodes.get(n); };
    for (const e of edges) { node(e.parent).out.push(e); node(e.child).in.push(e); node(e.child).calls += e.calls; }
    try {
        for (const s of (await api('/api/services', {}, {signal})).data || []) node(s);
    } catch { /* the map still shows what dependencies gave */ }
    if (!nodes.size) { clear(box, notice('empty', 'No services yet', 'Send traces: the map is built from parent/child spans across services.')); return; }

    // Error ratio per service from span metrics, when there are any.
    const errRatio = new Map();
    const win = `${Math.max(60, Math.round(lookbackMs / 1000))}s`;
    try {
        const d = await prom('/api/v1/query', {query: `sum by (service_name) (increase(traces_span_metrics_calls_total{status_code="STATUS_CODE_ERROR"}[${win}])) / sum by (service_name) (increase(traces_span_metrics_calls_total[${win}]))`}, {signal, method: 'POST'});
        for (const r of d.result || []) errRatio.set(r.metric.service_name, parseFloat(r.value[1]));
    } catch (e) { if (isAbort(e)) return; }

    const layout = layers([...nodes.values()]);
    const colW = 220, rowH = 70, W = Math.max(1, layout.length) * colW, H = Math.max(...layout.map(l => l.length)) * rowH + 20;
    for (const [ci, col] of layout.entries()) col.forEach((n, ri) => { n.x = ci * colW + 20; n.y = ri * rowH + 20 + (H - col.length * rowH) / 2; });
    const svg = h('svg.map', {viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': 'Service dependency graph'},
        h('defs', h('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
            h('path', {d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead'}))));
    const NW = 160, NH = 36;
    for (const e of edges) {
        const a = nodes.get(e.parent), b = nodes.get(e.child);
        let d;
        if (a === b) d = `M ${a.x + NW} ${a.y + 10} c 40 -30 40 40 0 16`;
        else {
            const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mx = (x1 + x2) / 2;
            d = b.x > a.x ? `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}` : `M ${a.x} ${y1} C ${a.x - 60} ${y1 - 40}, ${b.x + NW + 60} ${y2 - 40}, ${b.x + NW} ${y2}`;
        }
        const er = e.errors != null && e.calls ? e.errors / e.calls : null;
        svg.append(h('path.edge' + (er ? '.err' : ''), {d, 'marker-end': 'url(#arrow)', 'stroke-width': Math.min(6, 1 + Math.log10(1 + e.calls))},
                     h('title', `${e.parent} → ${e.child}: ${e.calls} calls${er != null ? `, ${(er * 100).toFixed(1)}% errors` : ''}`)));
        if (a !== b) {
            svg.append(h('text.edge-label', {x: (a.x + NW + b.x) / 2, y: (a.y + b.y) / 2 + NH / 2 - 4, 'text-anchor': 'middle'},
                         `${e.calls}${er ? ` · ${(er * 100).toFixed(0)}% err` : ''}`));
        }
    }
    for (const n of nodes.values()) {
        const er = errRatio.get(n.name);
        const g = h('g.node' + (er > 0.05 ? '.bad' : er > 0 ? '.warn' : ''), {tabindex: 0, role: 'button', 'data-service': n.name,
                'aria-label': `${n.name}${er != null ? `, ${(er * 100).toFixed(1)}% errors` : ''}`},
            h('rect', {x: n.x, y: n.y, width: NW, height: NH, rx: 8, style: `stroke:${colorOf(n.name)}`}),
            h('text', {x: n.x + NW / 2, y: n.y + 15, 'text-anchor': 'middle'}, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name),
            h('text.sub', {x: n.x + NW / 2, y: n.y + 29, 'text-anchor': 'middle'},
              `${n.calls ? `${n.calls} in · ` : ''}${er != null ? `${(er * 100).toFixed(1)}% err` : `${n.out.length} callee${n.out.length === 1 ? '' : 's'}`}`));
        const pick = () => { for (const x of svg.querySelectorAll('.node.selected')) x.classList.remove('selected'); g.classList.add('selected'); showNode(side, n, er, win, signal); };
        g.addEventListener('click', pick);
        g.addEventListener('keydown', e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
        svg.append(g);
    }
    clear(box, h('div.map-scroll', svg));
    clear(side, h('p.muted', 'Select a service for its health.'));
}

// Columns by longest path from the callers (cycles broken at back edges),
// then a few sweeps ordering each column by the mean position of neighbours.
function layers(nodes) {
    const level = new Map(), state = new Map();
    const visit = n => {
        if (state.get(n) === 2) return level.get(n);
        if (state.get(n) === 1) return -1; // back edge
        state.set(n, 1);
        let lv = 0;
        for (const e of n.in) {
            const p = nodes.find(x => x.name === e.parent);
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
    const pos = () => { const m = new Map(); cols.forEach(c => c && c.forEach((n, i) => m.set(n.name, i))); return m; };
    for (let sweep = 0; sweep < 4; sweep++) {
        const p = pos();
        for (const c of cols) {
            if (!c) continue;
            const bc = n => { const nb = [...n.in.map(e => e.parent), ...n.out.map(e => e.child)].filter(x => p.has(x));
                              return nb.length ? nb.reduce((a, x) => a + p.get(x), 0) / nb.length : p.get(n.name); };
            c.sort((a, b) => bc(a) - bc(b));
        }
    }
    return cols.filter(Boolean);
}

async function showNode(side, n, er, win, signal) {
    const s = n.name, sel = `service_name="${s.replace(/["\\]/g, '\\$&')}"`;
    clear(side, h('h2', {style: {color: colorOf(s)}}, s),
        h('dl.facts',
            h('dt', 'Calls in'), h('dd', n.in.reduce((a, e) => a + e.calls, 0)),
            h('dt', 'Calls out'), h('dd', n.out.reduce((a, e) => a + e.calls, 0)),
            h('dt', 'Error ratio'), h('dd' + (er > 0 ? '.errors' : ''), er != null ? `${(er * 100).toFixed(2)}%` : 'no span metrics'),
            h('dt', 'Rate'), h('dd.rate', '…'),
            h('dt', 'p95'), h('dd.p95', '…')),
        h('h3', 'Callers'), h('ul', n.in.length ? n.in.map(e => h('li', `${e.parent} (${e.calls})`)) : h('li.muted', 'none')),
        h('h3', 'Callees'), h('ul', n.out.length ? n.out.map(e => h('li', `${e.child} (${e.calls})`)) : h('li.muted', 'none')),
        h('div.links', link(`/search?service=${encodeURIComponent(s)}`, 'Traces'), link(`/logs?service=${encodeURIComponent(s)}`, 'Logs'),
          link(`/graph?service=${encodeURIComponent(s)}`, 'RED metrics')));
    const one = async (q, cls, fmt) => {
        try {
            const d = await prom('/api/v1/query', {query: q}, {signal, method: 'POST'});
            const r = (d.result || [])[0];
            side.querySelector(cls).textContent = r ? fmt(parseFloat(r.value[1])) : 'no data';
        } catch (e) { if (!isAbort(e)) side.querySelector(cls).textContent = e.message; }
    };
    one(`sum(rate(traces_span_metrics_calls_total{${sel}}[5m]))`, '.rate', v => `${fmtNumber(v)} calls/s`);
    one(`histogram_quantile(0.95, sum by (le) (rate(traces_span_metrics_duration_seconds_bucket{${sel}}[5m])))`, '.p95', v => `${fmtNumber(v)} s`);
}
