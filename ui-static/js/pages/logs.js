// Logs explorer (Grafana Explore for logs): filters, a histogram of counts
// over time, a virtualised list that stays smooth with 100k rows (only the
// rows in view exist in the DOM), expandable records, trace links, and live
// tail by polling for records newer than the newest one shown.
import {api, isAbort} from '../api.js';
import {h, clear, notice, fmtTimeMs, timePicker, link, toLocalInput} from '../util.js';
import {SEVERITIES, severityClass, bodyText, recordDetails, recordMs} from '../logrow.js';

const PAGE = 1000;
const OLDER_PAGE = 5000; // the API's largest page
const MAX_ROWS = 100000;
const ROW_H = 24;

export async function render(root, route, {signal, navigate}) {
    const q = route.query;
    const service = h('select', {id: 'l-service', name: 'service'}, h('option', {value: ''}, 'All services'));
    const severity = h('select', {id: 'l-severity', name: 'severity'}, SEVERITIES.map(([v, l]) => h('option', {value: v}, l)));
    severity.value = q.get('severity') || '';
    const text = h('input', {id: 'l-q', name: 'q', type: 'search', placeholder: 'words or "a phrase"', value: q.get('q') || ''});
    const traceId = h('input', {id: 'l-trace', name: 'trace_id', placeholder: 'trace id', size: 20, value: q.get('trace_id') || ''});
    const tp = timePicker({range: q.get('range') || '1h', start: q.get('start') ? toLocalInput(+q.get('start')) : '',
                           end: q.get('end') ? toLocalInput(+q.get('end')) : ''});
    const live = h('button', {type: 'button', 'aria-pressed': 'false', id: 'l-live'}, 'Live tail');
    const form = h('form.filters', {'aria-label': 'Filter logs'},
        h('label', {for: 'l-service'}, 'Service'), service,
        h('label', {for: 'l-severity'}, 'Min severity'), severity,
        h('label', {for: 'l-q'}, 'Text'), text,
        h('label', {for: 'l-trace'}, 'Trace'), traceId,
        tp.el, h('button.primary', {type: 'submit'}, 'Run'), live);
    const status = h('div.log-status', {role: 'status', 'aria-live': 'polite'});
    const histo = h('div.histogram');
    const listBox = h('div.loglist', {tabindex: 0, role: 'list', 'aria-label': 'Log records'});
    const more = h('button', {type: 'button', hidden: true}, 'Load older');
    clear(root, h('div.logs-page', h('h1', 'Logs'), form, histo, status, listBox, more));

    api('/api/services', {}, {signal}).then(j => {
        for (const s of (j.data || []).slice().sort()) service.append(h('option', {value: s}, s));
        service.value = q.get('service') || '';
    }).catch(() => {});

    const spanFilter = q.get('span_id') || '';
    let rows = [], expanded = new Set(), range = null, tailTimer = 0, gen = 0;
    const vlist = virtualList(listBox, () => rows, expanded);

    const params = extra => ({service: service.value, severity: severity.value, q: text.value.trim(),
                              trace_id: traceId.value.trim().toLowerCase(), span_id: spanFilter, limit: PAGE, ...extra});
    const keep = r => !spanFilter || r.span_id === spanFilter;

    async function run() {
        stopTail();
        try { range = tp.get(); } catch (e) { clear(status, notice('error', e.message)); return; }
        const p = new URLSearchParams();
        for (const [k, v] of Object.entries({service: service.value, severity: severity.value, q: text.value.trim(),
                                             trace_id: traceId.value.trim(), span_id: spanFilter})) if (v) p.set(k, v);
        const st = tp.state();
        p.set('range', st.range);
        if (st.range === 'custom') { p.set('start', range.startMs); p.set('end', range.endMs); }
        navigate(`/logs?${p}`, {replace: true, rerender: false});
        const my = ++gen;
        clear(status, notice('loading', 'Searching logs…'));
        rows = []; expanded.clear();
        try {
            const j = await api('/api/logs', params({start: `${range.startMs}000000`, end: `${range.endMs}000000`, direction: 'backward'}), {signal});
            if (my !== gen) return;
            rows = (j.data || []).filter(keep);
            more.hidden = (j.data || []).length < PAGE;
            showStatus();
        } catch (e) {
            if (isAbort(e)) return;
            clear(status, notice('error', 'Log search failed', e.message));
            more.hidden = true;
        }
        vlist.refresh();
        drawHisto();
    }

    function showStatus() {
        if (!rows.length) {
            clear(status, notice('empty', 'No log records match', 'Widen the time range or loosen the filters.'));
        } else {
            clear(status, h('span.count', `${rows.length.toLocaleString()} record${rows.length === 1 ? '' : 's'}`,
                spanFilter ? ` of span ${spanFilter}` : '', rows.length >= MAX_ROWS ? ' (the list holds at most 100,000: narrow the time range for older records)' : ''));
        }
    }

    // Older records: the button, or scrolling near the end of the list
    // (infinite scroll), fetch the next page ending at the oldest time shown,
    // inclusive: records sharing that nanosecond with the last row may not all
    // have fit in the page before. The ones already shown come first (the
    // server's order is stable) and are skipped. After a failure, only the
    // button retries (no request per scrolled frame).
    let loadingOlder = false, autoOlder = true;
    async function loadOlder() {
        if (!rows.length || loadingOlder || more.hidden) return;
        const oldest = rows[rows.length - 1].timestamp;
        let shown = 0;
        for (let i = rows.length - 1; i >= 0 && rows[i].timestamp === oldest; i--) shown++;
        const my = gen;
        loadingOlder = true;
        more.disabled = true;
        more.textContent = 'Loading older…';
        try {
            const page = end => api('/api/logs', params({start: `${range.startMs}000000`, end, direction: 'backward', limit: OLDER_PAGE}), {signal});
            let got = (await page(oldest)).data || [];
            let skip = 0;
            while (skip < got.length && skip < shown && got[skip].timestamp === oldest) skip++;
            if (skip === got.length && got.length >= OLDER_PAGE) {
                // A whole page at one nanosecond: go on before it.
                got = (await page((BigInt(oldest) - 1n).toString())).data || [];
                skip = 0;
            }
            if (my !== gen) return;
            rows = rows.concat(got.slice(skip).filter(keep)).slice(0, MAX_ROWS);
            more.hidden = got.length < OLDER_PAGE || rows.length >= MAX_ROWS;
            autoOlder = true;
            showStatus();
            vlist.refresh();
            drawHisto();
        } catch (e) {
            if (!isAbort(e)) {
                autoOlder = false;
                clear(status, notice('error', 'Could not load older records', e.message));
            }
        } finally {
            loadingOlder = false;
            more.disabled = false;
            more.textContent = 'Load older';
        }
    }
    more.addEventListener('click', loadOlder);
    vlist.onNearEnd(() => { if (!more.hidden && autoOlder) loadOlder(); });

    function drawHisto() {
        if (!range) return;
        const N = 60, w = (range.endMs - range.startMs) / N;
        const total = new Array(N).fill(0), errs = new Array(N).fill(0);
        for (const r of rows) {
            const i = Math.floor((recordMs(r) - range.startMs) / w);
            if (i < 0 || i >= N) continue;
            total[i]++;
            if (r.severity_number >= 17) errs[i]++;
        }
        const max = Math.max(1, ...total), W = 600, H = 60;
        clear(histo, h('svg', {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img',
                               'aria-label': 'Log records over time'},
            total.map((c, i) => c ? h('rect.hb', {x: i * W / N + 0.5, width: W / N - 1, y: H - c / max * H, height: c / max * H},
                                      h('title', `${c} records from ${fmtTimeMs(range.startMs + i * w)}`)) : null),
            errs.map((c, i) => c ? h('rect.hb-err', {x: i * W / N + 0.5, width: W / N - 1, y: H - c / max * H, height: c / max * H}) : null)),
            h('div.histo-axis', h('span', fmtTimeMs(range.startMs, false)), h('span', `max ${max} per ${Math.round(w / 1000)} s`),
              h('span', fmtTimeMs(range.endMs, false))));
    }

    function stopTail() {
        clearTimeout(tailTimer);
        tailTimer = 0;
        live.setAttribute('aria-pressed', 'false');
        live.textContent = 'Live tail';
    }
    async function tail() {
        const newest = rows.length ? (BigInt(rows[0].timestamp) + 1n).toString() : `${Date.now() - 60000}000000`;
        try {
            const j = await api('/api/logs', params({start: newest, end: `${Date.now() + 1000}000000`, direction: 'forward'}), {signal});
            const fresh = (j.data || []).filter(keep).reverse();
            if (fresh.length) {
                rows = fresh.concat(rows).slice(0, MAX_ROWS);
                range = {startMs: range ? range.startMs : Date.now() - 3600e3, endMs: Date.now()};
                showStatus();
                vlist.refresh(fresh.length);
                drawHisto();
            }
        } catch (e) {
            if (isAbort(e)) return;
            clear(status, notice('error', 'Live tail stopped', e.message));
            stopTail();
            return;
        }
        if (tailTimer) tailTimer = setTimeout(tail, 2000);
    }
    live.addEventListener('click', () => {
        if (tailTimer) { stopTail(); return; }
        live.setAttribute('aria-pressed', 'true');
        live.textContent = 'Stop tail';
        tailTimer = setTimeout(tail, 0);
    });

    form.addEventListener('submit', e => { e.preventDefault(); run(); });
    await run();
    return () => { stopTail(); vlist.destroy(); };
}

// Renders only the rows inside the viewport (plus a margin). Rows have a
// fixed height, expanded ones their measured height; offsets are prefix sums
// recomputed when something expands, and the first visible row is found by
// binary search, so scrolling costs the same with 100 or 100,000 rows.
function virtualList(box, getRows, expanded) {
    const spacer = h('div.vl-spacer');
    const win = h('div.vl-window');
    box.append(spacer, win);
    let offsets = new Float64Array(1), heights = new Map(), raf = 0, nearEnd = null;
    const recompute = () => {
        const rows = getRows();
        offsets = new Float64Array(rows.length + 1);
        for (let i = 0; i < rows.length; i++) {
            offsets[i + 1] = offsets[i] + (expanded.has(rows[i]) ? heights.get(rows[i]) || ROW_H * 8 : ROW_H);
        }
        spacer.style.height = `${offsets[rows.length]}px`;
    };
    const first = y => {
        let lo = 0, hi = offsets.length - 1;
        while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (offsets[mid] <= y) lo = mid; else hi = mid - 1; }
        return lo;
    };
    const draw = () => {
        raf = 0;
        const rows = getRows();
        const top = box.scrollTop, bottom = top + box.clientHeight + 200;
        let i = Math.max(0, first(Math.max(0, top - 200)));
        const els = [];
        for (; i < rows.length && offsets[i] < bottom; i++) els.push(rowEl(rows[i], i));
        win.style.transform = `translateY(${els.length ? offsets[+els[0].dataset.index] : 0}px)`;
        win.replaceChildren(...els);
        let changed = false;
        for (const el of els) {
            const r = rows[+el.dataset.index];
            if (expanded.has(r) && heights.get(r) !== el.offsetHeight) { heights.set(r, el.offsetHeight); changed = true; }
        }
        if (changed) { recompute(); }
        if (nearEnd && rows.length && offsets[rows.length] - bottom < box.clientHeight * 2) nearEnd();
    };
    const rowEl = (r, i) => {
        const open = expanded.has(r);
        const sev = severityClass(r.severity_number);
        return h('div.log-row.sev-' + sev + (open ? '.open' : ''), {'data-index': i, role: 'listitem'},
            h('div.log-line', {tabindex: 0, role: 'button', 'aria-expanded': String(open),
                onclick: () => { open ? expanded.delete(r) : expanded.add(r); recompute(); draw(); },
                onkeydown: e => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); e.currentTarget.click(); } }},
                h('span.when', fmtTimeMs(recordMs(r))),
                h('span.sev', (r.severity_text || sev).toUpperCase()),
                h('span.svc', r.service),
                h('span.body', bodyText(r.body)),
                r.trace_id ? link(`/trace/${r.trace_id}${r.span_id ? `?span=${r.span_id}` : ''}`, 'trace') : null),
            open ? recordDetails(r) : null);
    };
    const onScroll = () => { if (!raf) raf = requestAnimationFrame(draw); };
    box.addEventListener('scroll', onScroll);
    return {
        refresh(prepended = 0) {
            const keepPos = prepended && box.scrollTop > 0;
            recompute();
            if (keepPos) box.scrollTop += prepended * ROW_H;
            draw();
        },
        // fn runs when the view comes within two screens of the last row.
        onNearEnd(fn) { nearEnd = fn; },
        destroy() { box.removeEventListener('scroll', onScroll); if (raf) cancelAnimationFrame(raf); },
    };
}
