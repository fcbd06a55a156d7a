// Metrics explorer (Grafana Explore for Prometheus): a PromQL box with
// metric-name and function completion, range and step, a uPlot chart with
// legend and hover, a table of the instant result, and RED panels per
// service from the span metrics (rate, errors, p50/p95/p99).
import {api, prom, isAbort} from '../api.js';
import {h, clear, notice, fmtNumber, RANGES, parseSeconds} from '../util.js';
import {lineChart, seriesName} from '../chart.js';

const FUNCS = ['rate', 'irate', 'increase', 'sum', 'avg', 'min', 'max', 'count', 'topk', 'bottomk',
               'histogram_quantile', 'avg_over_time', 'sum_over_time', 'max_over_time', 'min_over_time',
               'count_over_time', 'abs', 'by', 'without', 'scalar', 'vector'];
const CALLS = 'traces_span_metrics_calls_total';
const BUCKETS = 'traces_span_metrics_duration_seconds_bucket';

export async function render(root, route, {signal, navigate}) {
    const q = route.query;
    const charts = [];
    const expr = h('textarea', {id: 'm-expr', rows: 2, spellcheck: 'false', 'aria-label': 'PromQL expression',
                                'aria-autocomplete': 'list', 'aria-controls': 'm-suggest',
                                placeholder: 'e.g. sum(rate(traces_span_metrics_calls_total[5m])) by (service_name)'});
    expr.value = q.get('q') || '';
    const suggest = h('ul.suggest', {id: 'm-suggest', role: 'listbox', hidden: true});
    const range = h('select', {id: 'm-range', 'aria-label': 'Range'}, RANGES.map(([k]) => h('option', {value: k}, `Last ${k}`)));
    range.value = q.get('range') || '1h';
    const step = h('input', {id: 'm-step', size: 5, placeholder: 'auto', value: q.get('step') || '', 'aria-label': 'Step'});
    const run = h('button.primary', {type: 'submit'}, 'Run query');
    const tabBar = h('div.tabs', {role: 'tablist'});
    const out = h('div.metrics-out', {'aria-live': 'polite'});
    const redSvc = h('select', {id: 'm-red-service', 'aria-label': 'Service for RED panels'});
    const red = h('div.red-panels');
    const form = h('form.promql', {'aria-label': 'PromQL query'},
        h('div.expr-box', expr, suggest),
        h('div.row', h('label', {for: 'm-range'}, 'Range'), range, h('label', {for: 'm-step'}, 'Step'), step, run,
          h('span.hint', 'Ctrl+Enter runs')));
    clear(root, h('div.metrics-page', h('h1', 'Metrics'), form, tabBar, out,
        h('section.red', h('h2', 'Service RED metrics ', h('small', '(from span metrics)')),
          h('label', {for: 'm-red-service'}, 'Service '), redSvc, red)));
    let tab = q.get('tab') || 'graph';

    // Names for completion.
    let names = [];
    prom('/api/v1/label/__name__/values', {}, {signal}).then(d => { names = d || []; }).catch(() => {});

    let sel = -1, items = [];
    const word = () => {
        const pos = expr.selectionStart;
        const m = /[a-zA-Z_:][a-zA-Z0-9_:]*$/.exec(expr.value.slice(0, pos));
        return m ? {text: m[0], start: pos - m[0].length, end: pos} : null;
    };
    const updateSuggest = () => {
        const w = word();
        items = w && w.text.length >= 1 ? [...names, ...FUNCS].filter(n => n.startsWith(w.text) && n !== w.text).slice(0, 12) : [];
        sel = items.length ? 0 : -1;
        drawSuggest();
    };
    const drawSuggest = () => {
        suggest.hidden = !items.length;
        expr.setAttribute('aria-expanded', String(!!items.length));
        clear(suggest, items.map((n, i) => h('li', {role: 'option', 'aria-selected': String(i === sel),
            onmousedown: e => { e.preventDefault(); accept(n); }}, n, FUNCS.includes(n) ? h('small', ' function') : null)));
    };
    const accept = n => {
        const w = word();
        if (!w) return;
        expr.setRangeText(n, w.start, w.end, 'end');
        items = [];
        drawSuggest();
    };
    expr.addEventListener('input', updateSuggest);
    expr.addEventListener('blur', () => { items = []; drawSuggest(); });
    expr.addEventListener('keydown', e => {
        if (items.length && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
            e.preventDefault();
            sel = (sel + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
            drawSuggest();
        } else if (items.length && (e.key === 'Tab' || (e.key === 'Enter' && !e.ctrlKey))) {
            e.preventDefault();
            accept(items[sel]);
        } else if (e.key === 'Escape') {
            items = []; drawSuggest();
        } else if (e.key === 'Enter' && (e.ctrlKey || e.metaKey || !e.shiftKey)) {
            e.preventDefault();
            form.requestSubmit();
        }
    });

    const drawTabs = () => clear(tabBar, [['graph', 'Graph'], ['table', 'Table']].map(([k, l]) =>
        h('button', {type: 'button', role: 'tab', 'aria-selected': String(tab === k), 'data-tab': k,
                     onclick: () => { tab = k; drawTabs(); if (expr.value.trim()) execute(); }}, l)));
    drawTabs();

    const destroyCharts = () => { while (charts.length) charts.pop().destroy(); };

    async function execute() {
        const e = expr.value.trim();
        const p = new URLSearchParams({q: e, range: range.value});
        if (step.value.trim()) p.set('step', step.value.trim());
        if (tab !== 'graph') p.set('tab', tab);
        if (q.get('service')) p.set('service', redSvc.value || q.get('service'));
        navigate(`/graph?${p}`, {replace: true, rerender: false});
        if (!e) { clear(out, notice('empty', 'Type a PromQL expression')); return; }
        const end = Date.now() / 1000, start = end - parseSeconds(range.value);
        const st = step.value.trim() ? parseSeconds(step.value) : Math.max(1, Math.round((end - start) / 250));
        if (!(st > 0)) { clear(out, notice('error', 'The step is not a duration', 'Use e.g. 15s, 1m')); return; }
        clear(out, notice('loading', 'Querying…'));
        destroyCharts();
        try {
            if (tab === 'table') {
                const d = await prom('/api/v1/query', {query: e, time: end}, {signal, method: 'POST'});
                clear(out, resultTable(d));
            } else {
                const d = await prom('/api/v1/query_range', {query: e, start, end, step: st}, {signal, method: 'POST'});
                if (d.resultType !== 'matrix') { clear(out, resultTable(d)); return; }
                if (!d.result.length) {
                    clear(out, notice('empty', 'The query returned no series',
                        names.length ? 'Check the metric name and labels, or widen the range.'
                                     : 'This server holds no metrics yet: send OTLP metrics or spans (span metrics) first.'));
                    return;
                }
                const box = h('div.chart', {'data-series': d.result.length});
                clear(out, box);
                charts.push(lineChart(box, d.result, {range: [start, end]}));
            }
        } catch (err) {
            if (!isAbort(err)) clear(out, notice('error', err.status === 400 || err.status === 422 ? 'The query is not valid' : 'Query failed', err.message));
        }
    }
    form.addEventListener('submit', e => { e.preventDefault(); items = []; drawSuggest(); execute(); });

    // RED panels: services from the span metrics' label values, falling back
    // to the services that sent traces.
    async function loadServices() {
        let svcs = [], failure = null;
        try { svcs = await prom('/api/v1/label/service_name/values', {}, {signal}) || []; } catch (e) { if (isAbort(e)) return; failure = e; }
        if (!svcs.length) {
            try {
                svcs = (await api('/api/services', {}, {signal})).data || [];
                failure = null;
            } catch (e) { if (isAbort(e)) return; failure = failure || e; }
        }
        if (failure) {
            clear(redSvc, h('option', {value: ''}, '—'));
            clear(red, notice('error', 'Could not load the services', failure.message));
            return;
        }
        svcs = [...new Set(svcs)].sort();
        clear(redSvc, svcs.length ? svcs.map(s => h('option', {value: s}, s)) : h('option', {value: ''}, 'No services'));
        if (q.get('service') && svcs.includes(q.get('service'))) redSvc.value = q.get('service');
        drawRed();
    }
    async function drawRed() {
        destroyRed();
        const s = redSvc.value;
        if (!s) { clear(red, notice('empty', 'No services have sent data yet')); return; }
        const sel = `service_name="${s.replace(/["\\]/g, '\\$&')}"`;
        const panels = [
            ['Rate (calls/s)', `sum(rate(${CALLS}{${sel}}[5m]))`, ''],
            // "or 0 * calls": a service that has calls but no errors draws a
            // zero line rather than "no data".
            ['Errors (calls/s)', `sum(rate(${CALLS}{${sel},status_code="STATUS_CODE_ERROR"}[5m])) or 0 * sum(rate(${CALLS}{${sel}}[5m]))`, ''],
            ['Duration p50 / p95 / p99 (s)', [0.5, 0.95, 0.99].map(x => `histogram_quantile(${x}, sum by (le) (rate(${BUCKETS}{${sel}}[5m])))`), 's'],
        ];
        clear(red, panels.map(([title]) => h('div.panel', h('h3', title), h('div.chart.small', notice('loading', 'Loading…')))));
        const end = Date.now() / 1000, start = end - 3600, st = 15;
        await Promise.all(panels.map(async ([title, exprs, unit], i) => {
            const box = red.children[i].querySelector('.chart');
            try {
                const list = Array.isArray(exprs) ? exprs : [exprs];
                const rs = await Promise.all(list.map(e => prom('/api/v1/query_range', {query: e, start, end, step: st}, {signal, method: 'POST'})));
                const matrix = rs.flatMap((d, k) => d.result.map(r => ({metric: {__name__: list.length > 1 ? ['p50', 'p95', 'p99'][k] : title.split(' ')[0].toLowerCase()}, values: r.values})));
                if (!matrix.length) {
                    clear(box, notice('empty', 'No data', `No span metrics for ${s} in the last hour.`));
                    return;
                }
                clear(box);
                redCharts.push(lineChart(box, matrix, {height: 160, unit, range: [start, end]}));
            } catch (e) { if (!isAbort(e)) clear(box, notice('error', 'Query failed', e.message)); }
        }));
    }
    const redCharts = [];
    const destroyRed = () => { while (redCharts.length) redCharts.pop().destroy(); };
    redSvc.addEventListener('change', drawRed);
    loadServices();

    if (expr.value.trim()) execute();
    else clear(out, notice('empty', 'Type a PromQL expression', 'Metric names complete as you type.'));
    return () => { destroyCharts(); destroyRed(); };
}

function resultTable(d) {
    if (!d) return notice('empty', 'No result');
    if (d.resultType === 'scalar' || d.resultType === 'string') {
        return h('table.result', h('tbody', h('tr', h('th', d.resultType), h('td', String(d.result[1])))));
    }
    if (!d.result.length) return notice('empty', 'The query returned no series');
    return h('table.result', h('thead', h('tr', h('th', 'Series'), h('th', 'Value'))),
        h('tbody', d.result.map(r => h('tr', h('td', h('code', seriesName(r.metric))),
            h('td.num', r.value ? fmtNumber(parseFloat(r.value[1])) : `${r.values.length} samples`)))));
}
