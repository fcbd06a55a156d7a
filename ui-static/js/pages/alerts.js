// Alerts: active alerts from /api/v1/alerts and rule groups from
// /api/v1/rules (Prometheus's shapes). A 404 means the server runs without
// the alerting module and is shown as "not available".
import {prom, isAbort} from '../api.js';
import {h, clear, notice, fmtTimeMs} from '../util.js';

export async function render(root, route, {signal}) {
    const alertsBox = h('section.alerts', notice('loading', 'Loading alerts…'));
    const rulesBox = h('section.rules', notice('loading', 'Loading rules…'));
    clear(root, h('div.alerts-page', h('h1', 'Alerts'), alertsBox, h('h2', 'Rules'), rulesBox));
    const na = e => e.status === 404
        ? notice('na', 'Alerting is not available on this server', 'Rules and alerts come with the alerting module (/api/v1/rules, /api/v1/alerts).')
        : notice('error', 'Could not load', e.message);
    const [a, r] = await Promise.allSettled([prom('/api/v1/alerts', {}, {signal}), prom('/api/v1/rules', {}, {signal})]);
    if ([a, r].some(x => x.status === 'rejected' && isAbort(x.reason))) return;
    if (a.status === 'rejected') clear(alertsBox, na(a.reason));
    else {
        const alerts = (a.value && a.value.alerts) || [];
        const rank = {firing: 0, pending: 1};
        alerts.sort((x, y) => (rank[x.state] ?? 2) - (rank[y.state] ?? 2));
        clear(alertsBox, alerts.length ? h('table.result.alert-table', h('thead', h('tr', ['State', 'Alert', 'Labels', 'Active since', 'Value', 'Summary'].map(t => h('th', t)))),
            h('tbody', alerts.map(x => h(`tr.st-${x.state}`, h('td', h(`span.pill.st-${x.state}`, x.state)),
                h('td', (x.labels || {}).alertname || ''),
                h('td', Object.entries(x.labels || {}).filter(([k]) => k !== 'alertname').map(([k, v]) => h('code.label', `${k}=${v}`))),
                h('td', x.activeAt ? fmtTimeMs(Date.parse(x.activeAt)) : ''), h('td.num', x.value ?? ''),
                h('td', (x.annotations || {}).summary || (x.annotations || {}).description || '')))))
            : notice('empty', 'No alerts are pending or firing'));
    }
    if (r.status === 'rejected') clear(rulesBox, na(r.reason));
    else {
        const groups = (r.value && r.value.groups) || [];
        clear(rulesBox, groups.length ? groups.map(g => h('details.rule-group', {open: true},
            h('summary', g.name, g.file ? h('small', ` ${g.file}`) : null, g.interval ? h('small', ` every ${g.interval}s`) : null),
            h('table.result', h('thead', h('tr', ['Rule', 'Type', 'State', 'Expression', 'For', 'Health'].map(t => h('th', t)))),
                h('tbody', (g.rules || []).map(x => h('tr', h('td', x.name), h('td', x.type || ''), h('td', x.state ? h(`span.pill.st-${x.state}`, x.state) : ''),
                    h('td', h('code', x.query)), h('td', x.duration ? `${x.duration}s` : ''),
                    h('td' + (x.health === 'err' ? '.errors' : ''), x.health || '', x.lastError ? `: ${x.lastError}` : '')))))))
            : notice('empty', 'No rules are loaded'));
    }
}
