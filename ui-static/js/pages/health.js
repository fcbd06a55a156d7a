// Fleet health: per-service status (healthy, degraded, down, unknown) from
// /api/fleet/health. Servers without the alerting module answer 404, which
// is shown as "not available" rather than as an error.
import {api, isAbort} from '../api.js';
import {h, clear, notice, colorOf, link, fmtTimeMs} from '../util.js';

const ORDER = {down: 0, degraded: 1, unknown: 2, healthy: 3};

export async function render(root, route, {signal}) {
    const box = h('div.health-box', notice('loading', 'Loading fleet health…'));
    clear(root, h('div.health-page', h('h1', 'Fleet health'), box));
    let j;
    try {
        j = await api('/api/fleet/health', {}, {signal});
    } catch (e) {
        if (isAbort(e)) return;
        clear(box, e.status === 404
            ? notice('na', 'Fleet health is not available on this server', 'It comes with the alerting and health module (GET /api/fleet/health).')
            : notice('error', 'Could not load fleet health', e.message));
        return;
    }
    const d = j && (j.data !== undefined ? j.data : j);
    const list = Array.isArray(d) ? d : (d && (d.services || Object.entries(d).map(([name, v]) => Object.assign({name}, v)))) || [];
    if (!list.length) { clear(box, notice('empty', 'No services known yet')); return; }
    const svcs = list.map(s => ({...s, name: s.name || s.service || s.service_name || '?', status: String(s.status || 'unknown').toLowerCase()}))
        .sort((a, b) => (ORDER[a.status] ?? 2) - (ORDER[b.status] ?? 2) || a.name.localeCompare(b.name));
    const counts = {};
    for (const s of svcs) counts[s.status] = (counts[s.status] || 0) + 1;
    clear(box,
        h('div.summary', Object.entries(counts).map(([k, n]) => h(`span.pill.st-${k}`, `${n} ${k}`))),
        h('ul.health-grid', svcs.map(s => h(`li.card.st-${s.status}`, {'data-service': s.name},
            h('h2', h('span.svc-mark', {style: {background: colorOf(s.name)}}), s.name),
            h('span.pill.st-' + s.status, s.status),
            h('dl.facts', Object.entries(s).filter(([k, v]) => !['name', 'service', 'service_name', 'status'].includes(k) && (typeof v !== 'object' || v === null))
                .map(([k, v]) => [h('dt', k.replace(/_/g, ' ')), h('dd', /last_seen|_at$|time/.test(k) && +v > 1e9 ? fmtTimeMs(+v > 1e14 ? +v / 1e6 : +v > 1e11 ? +v : +v * 1000) : String(v))])),
            s.reason || s.reasons ? h('p.reason', [].concat(s.reason || s.reasons).join('; ')) : null,
            h('div.links', link(`/search?service=${encodeURIComponent(s.name)}`, 'Traces'), link(`/logs?service=${encodeURIComponent(s.name)}`, 'Logs'),
              link(`/graph?service=${encodeURIComponent(s.name)}`, 'Metrics'))))));
}
