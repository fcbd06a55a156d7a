// One trace (Jaeger's trace view): a waterfall with a collapsible span tree,
// service colours, a time ruler and the critical path; span details with
// attributes, events, status, resource and the span's logs; a flame graph;
// the trace's logs in a tab. Deep links: /trace/{id}?span={spanID}&tab=...
import {api, isAbort} from '../api.js';
import {h, clear, notice, fmtDurationUs, fmtTimeMs, colorOf, link} from '../util.js';
import {buildTree, tagValue} from '../trace_model.js';
import {severityClass, bodyText, recordDetails, recordMs} from '../logrow.js';

export async function render(root, route, {signal, navigate}) {
    const id = (route.args[0] || '').toLowerCase();
    if (!id) { clear(root, notice('error', 'No trace id in the address')); return; }
    clear(root, notice('loading', `Loading trace ${id}…`));
    let trace, logs = [], logsError = null;
    try {
        const [tj, lj] = await Promise.allSettled([
            api(`/api/traces/${encodeURIComponent(id)}`, {}, {signal}),
            api(`/api/traces/${encodeURIComponent(id)}/logs`, {}, {signal})]);
        if (tj.status === 'rejected') throw tj.reason;
        trace = (tj.value.data || [])[0];
        if (lj.status === 'fulfilled') logs = lj.value.data || [];
        else logsError = lj.reason.message;
    } catch (e) {
        if (isAbort(e)) return;
        clear(root, notice('error', e.status === 404 ? `Trace ${id} was not found` : 'Could not load the trace',
                           e.status === 404 ? 'It may be outside retention, in another tenant, or the id is wrong.' : e.message));
        return;
    }
    if (!trace || !(trace.spans || []).length) {
        clear(root, notice('empty', `Trace ${id} has no spans`));
        return;
    }
    const m = buildTree(trace);
    const logsBySpan = new Map();
    for (const r of logs) {
        if (!r.span_id) continue;
        if (!logsBySpan.has(r.span_id)) logsBySpan.set(r.span_id, []);
        logsBySpan.get(r.span_id).push(r);
    }
    const rootSpan = m.roots[0];
    const services = [...new Set(m.spans.map(s => s.service))];
    const state = {tab: route.query.get('tab') || 'timeline', selected: route.query.get('span') || null,
                   collapsed: new Set()};
    const setUrl = () => {
        const p = new URLSearchParams();
        if (state.tab !== 'timeline') p.set('tab', state.tab);
        if (state.selected) p.set('span', state.selected);
        navigate(`/trace/${id}${[...p].length ? '?' + p : ''}`, {replace: true, rerender: false});
    };

    const tabs = [['timeline', 'Timeline'], ['flame', 'Flame graph'], ['logs', `Logs (${logs.length})`]];
    const tabBar = h('div.tabs', {role: 'tablist'});
    const body = h('div.tab-body', {role: 'tabpanel'});
    const drawTabs = () => {
        clear(tabBar, tabs.map(([k, label]) => h('button', {role: 'tab', type: 'button', 'aria-selected': String(state.tab === k),
            'data-tab': k, onclick: () => { state.tab = k; setUrl(); drawTabs(); drawBody(); }}, label)));
    };
    const drawBody = () => {
        if (state.tab === 'flame') clear(body, flame(m, state, drawBody, setUrl, logsBySpan));
        else if (state.tab === 'logs') clear(body, logsTab(logs, logsError));
        else clear(body, waterfall(m, state, drawBody, setUrl, logsBySpan));
        const sel = state.selected && body.querySelector(`[data-span-id="${state.selected}"]`);
        if (sel && route.query.get('span') === state.selected && !body.dataset.scrolled) {
            body.dataset.scrolled = '1';
            sel.scrollIntoView({block: 'center'});
        }
    };
    const errors = m.spans.filter(s => s.error).length;
    clear(root, h('div.trace-page',
        h('header.trace-head',
            h('h1', h('span.svc', {style: {color: colorOf(rootSpan.service)}}, rootSpan.service), ': ', rootSpan.operationName,
              ' ', h('code.tid', trace.traceID)),
            h('dl.facts',
                h('dt', 'Start'), h('dd', fmtTimeMs(m.start / 1000)),
                h('dt', 'Duration'), h('dd', fmtDurationUs(m.end - m.start)),
                h('dt', 'Services'), h('dd', services.length),
                h('dt', 'Depth'), h('dd', Math.max(...m.spans.map(s => s.depth)) + 1),
                h('dt', 'Spans'), h('dd.span-count', m.spans.length),
                errors ? [h('dt', 'Errors'), h('dd.errors', errors)] : null),
            h('div.legend', services.map(s => h('span.chip', {style: {borderColor: colorOf(s)}}, s)),
              h('span.chip.crit-legend', 'critical path'))),
        tabBar, body));
    drawTabs();
    drawBody();
}

function ticks(m) {
    const span = Math.max(1, m.end - m.start);
    return [0, 0.25, 0.5, 0.75, 1].map(f => ({f, label: fmtDurationUs(span * f)}));
}

function waterfall(m, state, redraw, setUrl, logsBySpan) {
    const span = Math.max(1, m.end - m.start);
    const pct = v => `${((v - m.start) / span * 100).toFixed(4)}%`;
    const wid = d => `${Math.max(0.15, d / span * 100).toFixed(4)}%`;
    const rows = [];
    rows.push(h('div.wf-row.wf-ruler', h('div.wf-name', 'Service & operation',
        h('span.wf-tools',
            h('button.link', {type: 'button', onclick: () => { state.collapsed.clear(); redraw(); }}, 'Expand all'), ' · ',
            h('button.link', {type: 'button', onclick: () => { m.spans.forEach(s => s.children.length && state.collapsed.add(s.spanID)); redraw(); }}, 'Collapse all'))),
        h('div.wf-track', ticks(m).map(t => h('span.tick', {style: {left: `${t.f * 100}%`}}, t.label)))));
    const hidden = new Set();
    for (const s of m.spans) {
        if (s.parent && (hidden.has(s.parent.spanID) || state.collapsed.has(s.parent.spanID))) { hidden.add(s.spanID); continue; }
        const sel = state.selected === s.spanID;
        const nLogs = (logsBySpan.get(s.spanID) || []).length;
        const toggle = s.children.length
            ? h('button.toggle', {type: 'button', 'aria-expanded': String(!state.collapsed.has(s.spanID)),
                  'aria-label': `${state.collapsed.has(s.spanID) ? 'Expand' : 'Collapse'} ${s.operationName}`,
                  onclick: e => { e.stopPropagation(); state.collapsed.has(s.spanID) ? state.collapsed.delete(s.spanID) : state.collapsed.add(s.spanID); redraw(); }},
                  state.collapsed.has(s.spanID) ? '▸' : '▾')
            : h('span.toggle-pad');
        const bar = h('div.bar' + (s.error ? '.err' : ''), {style: {left: pct(s.startTime), width: wid(s.duration), background: colorOf(s.service)}},
            s.critical.map(([a, b]) => h('span.crit', {style: {left: `${(a - s.startTime) / Math.max(1, s.duration) * 100}%`,
                                                                 width: `${Math.max(0.5, (b - a) / Math.max(1, s.duration) * 100)}%`}})));
        const label = h('span.bar-label', {style: {left: pct(s.startTime + s.duration)}}, fmtDurationUs(s.duration));
        const row = h('div.wf-row.span-row' + (sel ? '.selected' : '') + (s.error ? '.err' : '') + (s.onCritical ? '.on-crit' : ''), {
                'data-span-id': s.spanID, 'data-depth': s.depth, role: 'button', tabindex: 0, 'aria-expanded': String(sel),
                onclick: () => { state.selected = sel ? null : s.spanID; setUrl(); redraw(); },
                onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.currentTarget.click(); } }},
            h('div.wf-name', {style: {paddingLeft: `${s.depth * 14 + 4}px`}},
                toggle, h('span.svc-mark', {style: {background: colorOf(s.service)}}),
                h('span.svc', s.service), ' ', h('span.op', s.operationName),
                s.error ? h('span.err-badge', {title: 'error'}, '!') : null,
                nLogs ? h('span.log-badge', {title: `${nLogs} log record(s)`}, `${nLogs} log${nLogs > 1 ? 's' : ''}`) : null),
            h('div.wf-track', bar, label));
        rows.push(row);
        if (sel) rows.push(details(s, m, logsBySpan.get(s.spanID) || []));
    }
    return h('div.waterfall', rows);
}

function kvTable(tags) {
    if (!tags || !tags.length) return h('p.muted', 'none');
    return h('table.kv', h('tbody', tags.map(t => h('tr', h('th', t.key),
        h('td', typeof t.value === 'object' ? JSON.stringify(t.value) : String(t.value))))));
}

function details(s, m, logs) {
    const status = tagValue(s.tags, 'otel.status_code') || 'UNSET';
    const statusMsg = tagValue(s.tags, 'otel.status_description');
    const q = `sum(rate(traces_span_metrics_calls_total{service_name="${s.service}"}[5m])) by (span_name)`;
    return h('div.span-details', {'data-details-for': s.spanID},
        h('div.links',
            link(`/logs?trace_id=${s.traceID}&span_id=${s.spanID}&range=7d`, 'Logs for this span'),
            link(`/graph?service=${encodeURIComponent(s.service)}&q=${encodeURIComponent(q)}`, `Metrics of ${s.service}`),
            link(`/search?service=${encodeURIComponent(s.service)}&operation=${encodeURIComponent(s.operationName)}`, 'Similar traces')),
        h('dl.facts',
            h('dt', 'Service'), h('dd', s.service), h('dt', 'Operation'), h('dd', s.operationName),
            h('dt', 'Kind'), h('dd', tagValue(s.tags, 'span.kind') || 'internal'),
            h('dt', 'Status'), h('dd' + (s.error ? '.errors' : ''), status + (statusMsg ? `: ${statusMsg}` : '')),
            h('dt', 'Start'), h('dd', `+${fmtDurationUs(s.startTime - m.start)}`),
            h('dt', 'Duration'), h('dd', fmtDurationUs(s.duration)),
            h('dt', 'Span ID'), h('dd', h('code', s.spanID)),
            h('dt', 'Critical path'), h('dd', s.onCritical ? `yes, ${fmtDurationUs(s.critical.reduce((a, [x, y]) => a + y - x, 0))} self` : 'no')),
        h('details', {open: true}, h('summary', `Attributes (${(s.tags || []).length})`), kvTable(s.tags)),
        h('details', h('summary', `Resource (${(s.process.tags || []).length + 1})`),
            kvTable([{key: 'service.name', value: s.service}, ...(s.process.tags || [])])),
        h('details', {open: (s.logs || []).length > 0}, h('summary', `Events (${(s.logs || []).length})`),
            (s.logs || []).length ? h('ul.events', s.logs.map(ev => h('li',
                h('span.when', `+${fmtDurationUs(ev.timestamp - m.start)}`), ' ',
                h('strong', tagValue(ev.fields, 'event') || 'event'), kvTable(ev.fields.filter(f => f.key !== 'event')))))
                : h('p.muted', 'none')),
        h('details', {open: logs.length > 0}, h('summary', `Logs (${logs.length})`),
            logs.length ? logList(logs) : h('p.muted', 'No log records carry this span id.')),
        (s.references || []).length > 1 || (s.references || []).some(r => r.refType === 'FOLLOWS_FROM')
            ? h('details', h('summary', 'Links'), h('ul', s.references.map(r => h('li', `${r.refType} `,
                link(`/trace/${r.traceID}?span=${r.spanID}`, `${r.traceID.slice(0, 8)}…/${r.spanID}`))))) : null);
}

function logList(logs) {
    return h('ul.trace-logs', logs.map(r => h('li.sev-' + severityClass(r.severity_number),
        h('details', h('summary', h('span.when', fmtTimeMs(recordMs(r), false)), ' ',
            h('span.sev', r.severity_text || severityClass(r.severity_number)), ' ', h('span.svc', r.service), ' ',
            h('span.body', bodyText(r.body))), recordDetails(r)))));
}

function logsTab(logs, err) {
    if (err) return notice('error', 'Could not load the trace\'s logs', err);
    if (!logs.length) return notice('empty', 'No log records carry this trace id');
    return logList(logs);
}

// Rows of the icicle chart: a span sits below its parent, on the first row
// where it overlaps no span already placed, so that concurrent siblings
// (parallel calls) get rows of their own instead of drawing over each
// other. Spans come in depth-first order. Very large traces keep one row
// per depth (the search is quadratic in the worst case).
function flameRows(m) {
    const row = new Map();
    if (m.spans.length > 3000) { for (const s of m.spans) row.set(s, s.depth); return row; }
    const busy = []; // per row: [start, end) intervals placed
    for (const s of m.spans) {
        const a = s.startTime, b = s.startTime + Math.max(1, s.duration);
        let r = s.parent && row.has(s.parent) ? row.get(s.parent) + 1 : 0;
        while ((busy[r] || []).some(([x, y]) => a < y && x < b)) r++;
        (busy[r] = busy[r] || []).push([a, b]);
        row.set(s, r);
    }
    return row;
}

// An icicle chart: x is time within the trace, y is depth (concurrent
// siblings on rows of their own); click selects.
function flame(m, state, redraw, setUrl, logsBySpan) {
    const span = Math.max(1, m.end - m.start);
    const rowH = 22, W = 1000;
    const rows = flameRows(m);
    const depth = Math.max(...rows.values()) + 1;
    const svg = h('svg.flame', {viewBox: `0 0 ${W} ${depth * rowH}`, role: 'img', 'aria-label': 'Flame graph',
                                preserveAspectRatio: 'none', style: {height: `${depth * rowH}px`}});
    for (const s of m.spans) {
        const x = (s.startTime - m.start) / span * W, w = Math.max(0.5, s.duration / span * W);
        const g = h('g.fl' + (state.selected === s.spanID ? '.selected' : '') + (s.error ? '.err' : ''), {'data-span-id': s.spanID},
            h('rect', {x, y: rows.get(s) * rowH, width: w, height: rowH - 2, fill: colorOf(s.service)}),
            h('title', `${s.service}: ${s.operationName} — ${fmtDurationUs(s.duration)}`));
        g.addEventListener('click', () => { state.selected = s.spanID; setUrl(); redraw(); });
        svg.append(g);
    }
    // Labels are HTML so that the SVG may stretch without distorting text.
    const labels = h('div.flame-labels', {style: {height: `${depth * rowH}px`}}, m.spans.map(s => {
        const w = s.duration / span * 100;
        return w < 4 ? null : h('span', {style: {left: `${(s.startTime - m.start) / span * 100}%`, width: `${w}%`, top: `${rows.get(s) * rowH}px`}},
            `${s.operationName} (${fmtDurationUs(s.duration)})`);
    }));
    const sel = state.selected && m.byId.get(state.selected);
    return h('div.flame-box', h('div.flame-wrap', svg, labels), sel ? details(sel, m, logsBySpan.get(sel.spanID) || []) : h('p.muted', 'Click a span for its details.'));
}
