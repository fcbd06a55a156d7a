// Trace search (Jaeger's Search page): service/operation pickers, tags,
// duration bounds, time range, limit; results as a duration-vs-time scatter
// and a list. The form's state lives in the URL so that searches are links.
import {api, isAbort} from '../api.js';
import {h, clear, notice, fmtDurationUs, fmtTimeMs, colorOf, timePicker, link, toLocalInput} from '../util.js';
import {summarize} from '../trace_model.js';

export async function render(root, route, {signal, navigate}) {
    const q = route.query;
    const service = h('select', {name: 'service', id: 's-service'}, h('option', {value: ''}, 'Loading…'));
    const operation = h('select', {name: 'operation', id: 's-operation'}, h('option', {value: ''}, 'All'));
    const tags = h('input', {name: 'tags', id: 's-tags', value: q.get('tags') || '',
                             placeholder: 'http.status_code=500 error=true'});
    const minD = h('input', {name: 'minDuration', id: 's-min', size: 6, value: q.get('minDuration') || '', placeholder: 'e.g. 1.2s, 100ms'});
    const maxD = h('input', {name: 'maxDuration', id: 's-max', size: 6, value: q.get('maxDuration') || '', placeholder: 'e.g. 1.2s'});
    const limit = h('input', {name: 'limit', id: 's-limit', type: 'number', min: 1, max: 1500, value: q.get('limit') || '20'});
    const tp = timePicker({range: q.get('range') || '1h',
                           start: q.get('start') ? toLocalInput(+q.get('start')) : '',
                           end: q.get('end') ? toLocalInput(+q.get('end')) : ''});
    const form = h('form.search-form', {'aria-label': 'Search traces'},
        h('label', {for: 's-service'}, 'Service'), service,
        h('label', {for: 's-operation'}, 'Operation'), operation,
        h('label', {for: 's-tags'}, 'Tags'), tags,
        h('label', 'Lookback'), tp.el,
        h('label', {for: 's-min'}, 'Min duration'), minD,
        h('label', {for: 's-max'}, 'Max duration'), maxD,
        h('label', {for: 's-limit'}, 'Limit'), limit,
        h('span'), h('button.primary', {type: 'submit'}, 'Find traces'));
    const results = h('section.results', {'aria-label': 'Search results', 'aria-live': 'polite'});
    clear(root, h('div.search-page', h('aside.side', h('h1', 'Search traces'), form), results));

    const loadOps = async () => {
        clear(operation, h('option', {value: ''}, 'All'));
        if (!service.value) return;
        try {
            const j = await api('/api/operations', {service: service.value}, {signal});
            const names = [...new Set((j.data || []).map(o => o.name))].sort();
            for (const n of names) operation.append(h('option', {value: n}, n));
            operation.value = q.get('operation') || '';
        } catch (e) { if (!isAbort(e)) operation.append(h('option', {value: ''}, `(${e.message})`)); }
    };
    service.addEventListener('change', () => { q.delete('operation'); loadOps(); });

    clear(results, notice('loading', 'Loading services…'));
    try {
        const j = await api('/api/services', {}, {signal});
        const list = (j.data || []).slice().sort();
        clear(service, list.length ? null : h('option', {value: ''}, 'No services yet'),
              list.map(s => h('option', {value: s}, s)));
        if (q.get('service') && list.includes(q.get('service'))) service.value = q.get('service');
        await loadOps();
    } catch (e) {
        if (isAbort(e)) return;
        clear(service, h('option', {value: ''}, '—'));
        clear(results, notice('error', 'Could not load services', e.message));
        return;
    }

    form.addEventListener('submit', e => {
        e.preventDefault();
        const p = new URLSearchParams();
        let range;
        try { range = tp.get(); } catch (err) { clear(results, notice('error', err.message)); return; }
        const st = tp.state();
        p.set('service', service.value);
        if (operation.value) p.set('operation', operation.value);
        if (tags.value.trim()) p.set('tags', tags.value.trim());
        if (minD.value.trim()) p.set('minDuration', minD.value.trim());
        if (maxD.value.trim()) p.set('maxDuration', maxD.value.trim());
        p.set('limit', limit.value || '20');
        p.set('range', st.range);
        if (st.range === 'custom') { p.set('start', range.startMs); p.set('end', range.endMs); }
        navigate(`/search?${p}`, {replace: !!q.get('service'), rerender: false});
        runSearch(p, range);
    });

    async function runSearch(p, range) {
        let tagJson;
        try { tagJson = parseTags(p.get('tags') || ''); } catch (err) {
            clear(results, notice('error', 'Tags are not valid', err.message));
            return;
        }
        clear(results, notice('loading', 'Searching…'));
        try {
            const j = await api('/api/traces', {
                service: p.get('service'), operation: p.get('operation'),
                tags: tagJson, minDuration: p.get('minDuration'), maxDuration: p.get('maxDuration'),
                limit: p.get('limit'), start: Math.floor(range.startMs * 1000), end: Math.ceil(range.endMs * 1000),
            }, {signal});
            showResults(results, (j.data || []).map(summarize), navigate);
        } catch (e) {
            if (!isAbort(e)) clear(results, notice('error', 'Search failed', e.message));
        }
    }

    if (q.get('service') && service.value) {
        let range;
        try { range = tp.get(); } catch { range = null; }
        if (range) runSearch(q, range);
    } else if (!service.value) {
        clear(results, notice('empty', 'No traces have arrived yet',
            'Send OTLP traces to :4318/v1/traces or :4317 and pick a service.'));
    } else {
        clear(results, notice('empty', 'Pick a service and press Find traces'));
    }
}

// "k=v k2="v w"" (logfmt, as in Jaeger's search box) -> the JSON the API takes.
export function parseTags(s) {
    const out = {};
    const re = /\s*([^\s=]+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))/y;
    let m, pos = 0;
    s = s.trim();
    while (pos < s.length) {
        re.lastIndex = pos;
        m = re.exec(s);
        if (!m) throw new Error(`expected key=value at "${s.slice(pos, pos + 20)}"`);
        out[m[1]] = m[2] != null ? m[2].replace(/\\(.)/g, '$1') : m[3];
        pos = re.lastIndex;
        while (s[pos] === ' ') pos++;
    }
    return Object.keys(out).length ? JSON.stringify(out) : '';
}

function showResults(root, traces, navigate) {
    if (!traces.length) {
        clear(root, notice('empty', 'No traces match', 'Widen the time range or loosen the filters.'));
        return;
    }
    const sort = h('select', {'aria-label': 'Sort'},
        h('option', {value: 'recent'}, 'Most recent'), h('option', {value: 'longest'}, 'Longest first'),
        h('option', {value: 'shortest'}, 'Shortest first'), h('option', {value: 'spans'}, 'Most spans'));
    const list = h('ol.trace-list');
    const draw = () => {
        const by = {recent: (a, b) => b.start - a.start, longest: (a, b) => b.duration - a.duration,
                    shortest: (a, b) => a.duration - b.duration, spans: (a, b) => b.spanCount - a.spanCount}[sort.value];
        clear(list, traces.slice().sort(by).map(t => traceItem(t)));
    };
    sort.addEventListener('change', draw);
    draw();
    clear(root,
        scatter(traces, t => navigate(`/trace/${t.traceID}`)),
        h('div.results-head', h('span.count', `${traces.length} trace${traces.length === 1 ? '' : 's'}`), sort),
        list);
}

function traceItem(t) {
    return h('li.trace-item' + (t.errors ? '.has-error' : ''), {'data-trace-id': t.traceID},
        h('div.title',
            link(`/trace/${t.traceID}`, h('span.svc', {style: {color: colorOf(t.rootService)}}, t.rootService), ': ', t.rootName),
            h('span.dur', fmtDurationUs(t.duration))),
        h('div.meta',
            h('span.spans', `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
            t.errors ? h('span.errors', `${t.errors} error${t.errors === 1 ? '' : 's'}`) : null,
            [...t.services].map(([s, n]) => h('span.chip', {style: {borderColor: colorOf(s)}}, `${s} (${n})`)),
            h('span.when', fmtTimeMs(t.start / 1000)),
            h('code.tid', t.traceID.slice(0, 8))));
}

// Duration vs start time, one dot per trace; errors in red.
function scatter(traces, onPick) {
    const W = 800, H = 160, P = {l: 56, r: 10, t: 10, b: 22};
    const xs = traces.map(t => t.start), ys = traces.map(t => t.duration);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    if (x0 === x1) { x0 -= 1e6; x1 += 1e6; }
    const y1 = Math.max(...ys) * 1.1 || 1;
    const X = v => P.l + (v - x0) / (x1 - x0) * (W - P.l - P.r);
    const Y = v => H - P.b - v / y1 * (H - P.t - P.b);
    const svg = h('svg.scatter', {viewBox: `0 0 ${W} ${H}`, role: 'img',
                                  'aria-label': 'Trace durations over time', preserveAspectRatio: 'none'});
    for (let i = 0; i <= 3; i++) {
        const v = y1 * i / 3;
        svg.append(h('line.grid', {x1: P.l, x2: W - P.r, y1: Y(v), y2: Y(v)}),
                   h('text.axis', {x: P.l - 4, y: Y(v) + 4, 'text-anchor': 'end'}, fmtDurationUs(v)));
    }
    for (let i = 0; i <= 4; i++) {
        const v = x0 + (x1 - x0) * i / 4;
        svg.append(h('text.axis', {x: X(v), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle'},
                     fmtTimeMs(v / 1000, false)));
    }
    for (const t of traces) {
        const c = h('circle.dot' + (t.errors ? '.err' : ''), {cx: X(t.start), cy: Y(t.duration),
            r: Math.min(9, 3 + Math.sqrt(t.spanCount))},
            h('title', `${t.rootService}: ${t.rootName} — ${fmtDurationUs(t.duration)}, ${t.spanCount} spans`));
        c.addEventListener('click', () => onPick(t));
        svg.append(c);
    }
    return h('figure.scatter-box', svg);
}
