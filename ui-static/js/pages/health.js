// Fleet health: every service's status (down, degraded, unknown, healthy)
// from /api/fleet/health, with the reasons the server gives, its firing
// alerts (links to the alerts page), request rate, error ratio, latency
// quantiles, instances and last span, and links to its traces, logs,
// metrics and map node. Refreshes every 15 s. A server answering 404 has no
// health API: shown as "not available" rather than as an error.
import {api, isAbort} from '../api.js';
import {h, clear, notice, colorOf, link, fmtNumber, fmtRate} from '../util.js';

const ORDER = {down: 0, degraded: 1, unknown: 2, healthy: 3};
const WINDOWS = ['5m', '15m', '1h', '6h'];
const REFRESH_MS = 15000;

export async function render(root, route, {signal, navigate}) {
    const q = route.query;
    const only = q.get('service') || '';
    const win = h('select', {id: 'h-window', 'aria-label': 'Window'}, WINDOWS.map(w => h('option', {value: w}, `Last ${w}`)));
    win.value = WINDOWS.includes(q.get('window')) ? q.get('window') : '5m';
    const problems = h('input', {type: 'checkbox', id: 'h-problems'});
    problems.checked = q.get('only') === 'problems';
    const refresh = h('button', {type: 'button', id: 'h-refresh'}, 'Refresh');
    const updated = h('span.muted.updated');
    const box = h('div.health-box', {'aria-live': 'polite'}, notice('loading', 'Loading fleet health…'));
    clear(root, h('div.health-page', h('h1', 'Fleet health'),
        h('div.row', h('label', {for: 'h-window'}, 'Window'), win,
          h('label', problems, ' Only services with problems'), refresh, updated),
        only ? h('p.filter-note', `Service ${only} · `, link('/health', 'Show all services')) : null,
        box));

    const address = () => {
        const p = new URLSearchParams();
        if (only) p.set('service', only);
        if (win.value !== '5m') p.set('window', win.value);
        if (problems.checked) p.set('only', 'problems');
        navigate(`/health${[...p].length ? `?${p}` : ''}`, {replace: true, rerender: false});
    };
    let doc = null, timer = 0;
    const draw = () => drawHealth(box, doc, {only, problems: problems.checked});
    async function load() {
        clearTimeout(timer);
        try {
            const j = await api('/api/fleet/health', {window: win.value}, {signal});
            doc = j && j.data;
            updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
            draw();
        } catch (e) {
            if (isAbort(e)) return;
            clear(box, e.status === 404
                ? notice('na', 'Fleet health is not available on this server', 'It needs a server with the health API (GET /api/fleet/health).')
                : notice('error', 'Could not load fleet health', e.message));
            if (e.status === 404) return;
        }
        timer = setTimeout(load, REFRESH_MS);
    }
    win.addEventListener('change', () => { address(); load(); });
    problems.addEventListener('change', () => { address(); if (doc) draw(); });
    refresh.addEventListener('click', load);
    await load();
    return () => clearTimeout(timer);
}

const pct = v => v == null ? '—' : `${fmtNumber(v * 100)}%`;
// "23.2 / 41 / 98.5 ms" (or in seconds when one of them is 1 s or more).
function quantiles(s) {
    const qs = [s.p50, s.p95, s.p99];
    if (qs.every(v => v == null)) return '—';
    const inMs = qs.every(v => v == null || v < 1);
    return `${qs.map(v => v == null ? '—' : fmtNumber(+(inMs ? v * 1000 : v).toPrecision(3))).join(' / ')} ${inMs ? 'ms' : 's'}`;
}

function ago(iso) {
    const ms = Date.parse(iso);
    if (isNaN(ms)) return '—';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

function drawHealth(box, d, {only, problems}) {
    const all = (d && d.services) || [];
    if (!all.length) {
        clear(box, notice('empty', 'No services in this window', 'Services appear here once they send spans.'));
        return;
    }
    let svcs = all.map(s => ({...s, status: String(s.status || 'unknown').toLowerCase()}))
        .sort((a, b) => (ORDER[a.status] ?? 2) - (ORDER[b.status] ?? 2) || a.service.localeCompare(b.service));
    const counts = {};
    for (const s of svcs) counts[s.status] = (counts[s.status] || 0) + 1;
    if (only) svcs = svcs.filter(s => s.service === only);
    if (problems) svcs = svcs.filter(s => s.status !== 'healthy');
    const t = d.thresholds || {};
    clear(box,
        h('div.summary', ['down', 'degraded', 'unknown', 'healthy'].filter(k => counts[k]).map(k => h(`span.pill.st-${k}`, `${counts[k]} ${k}`))),
        h('p.thresholds.muted', `Degraded above an error ratio of ${t.maxErrorRatio}, a p95 latency of ${t.maxP95Seconds} s or with a firing alert; `
          + `down after ${t.downAfterSeconds} s without spans or when an active check fails. Window: ${d.windowSeconds} s.`),
        svcs.length ? h('ul.health-grid', svcs.map(card))
            : notice('empty', only ? `No service ${only} in this window` : 'Every service is healthy'));
}

function card(s) {
    const name = s.service, enc = encodeURIComponent(name);
    const alerts = s.firingAlerts || [];
    return h(`li.card.st-${s.status}`, {'data-service': name, 'data-status': s.status},
        h('h2', h('span.svc-mark', {style: {background: colorOf(name)}}), name, h(`span.pill.st-${s.status}`, s.status)),
        (s.reasons || []).length ? h('ul.reasons', s.reasons.map(r => h('li', r))) : null,
        alerts.length ? h('div.firing', h('span.muted', 'Firing: '),
            alerts.map(a => link(`/alerts?service=${enc}`, (a.labels || {}).alertname || 'alert'))) : null,
        h('dl.facts',
            h('dt', 'Requests'), h('dd', `${s.calls ?? 0} (${fmtRate(s.requestRate ?? 0)})`),
            h('dt', 'Error ratio'), h('dd' + (s.errors ? '.errors' : ''), pct(s.errorRatio)),
            h('dt', 'p50 / p95 / p99'), h('dd', quantiles(s)),
            // 0: the spans carry no service.instance.id.
            h('dt', 'Instances'), h('dd', s.instances ? String(s.instances) : '—'),
            h('dt', 'Last span'), h('dd', {title: s.lastSeen || ''}, ago(s.lastSeen))),
        h('div.links', link(`/search?service=${enc}`, 'Traces'), link(`/logs?service=${enc}`, 'Logs'),
          link(`/graph?service=${enc}`, 'Metrics'), link(`/map?service=${enc}`, 'Map')));
}
