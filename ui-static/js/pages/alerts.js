// Alerts (Prometheus's Alerts and Rules pages in one): pending and firing
// alerts from /api/v1/alerts, firing first, with their labels (the service
// links to its health), value, summary and runbook; rule groups from
// /api/v1/rules with each rule's state, health, last error and expression
// (a link to the metrics explorer). ?service= keeps one service's alerts.
// A 404 means the server runs without rules: shown as "not available".
import {prom, isAbort} from '../api.js';
import {h, clear, notice, fmtTimeMs, link} from '../util.js';

const RANK = {firing: 0, pending: 1};

export async function render(root, route, {signal}) {
    const only = route.query.get('service') || '';
    const summary = h('div.summary');
    const alertsBox = h('section.alerts', {'aria-label': 'Active alerts'}, notice('loading', 'Loading alerts…'));
    const rulesBox = h('section.rules', {'aria-label': 'Rules'}, notice('loading', 'Loading rules…'));
    clear(root, h('div.alerts-page', h('h1', 'Alerts'),
        only ? h('p.filter-note', `Alerts of service ${only} · `, link('/alerts', 'Show all alerts')) : null,
        summary, alertsBox, h('h2', 'Rules'), rulesBox));
    const na = e => e.status === 404
        ? notice('na', 'Alerting is not available on this server', 'Start it with --rules-dir to evaluate Prometheus rule files (/api/v1/rules, /api/v1/alerts).')
        : notice('error', 'Could not load', e.message);
    const [a, r] = await Promise.allSettled([prom('/api/v1/alerts', {}, {signal}), prom('/api/v1/rules', {}, {signal})]);
    if ([a, r].some(x => x.status === 'rejected' && isAbort(x.reason))) return;

    if (a.status === 'rejected') clear(alertsBox, na(a.reason));
    else {
        let alerts = (a.value && a.value.alerts) || [];
        if (only) alerts = alerts.filter(x => (x.labels || {}).service_name === only);
        alerts.sort((x, y) => (RANK[x.state] ?? 2) - (RANK[y.state] ?? 2) ||
                              String((x.labels || {}).alertname).localeCompare(String((y.labels || {}).alertname)));
        const counts = {};
        for (const x of alerts) counts[x.state] = (counts[x.state] || 0) + 1;
        clear(summary, Object.entries(counts).map(([k, n]) => h(`span.pill.st-${k}`, `${n} ${k}`)));
        clear(alertsBox, alerts.length ? alertTable(alerts)
            : notice('empty', only ? `No alerts are pending or firing for ${only}` : 'No alerts are pending or firing'));
    }
    if (r.status === 'rejected') clear(rulesBox, na(r.reason));
    else {
        const groups = (r.value && r.value.groups) || [];
        clear(rulesBox, groups.length ? groups.map(ruleGroup) : notice('empty', 'No rules are loaded'));
    }
}

function alertTable(alerts) {
    return h('div.table-scroll', h('table.result.alert-table',
        h('thead', h('tr', ['State', 'Alert', 'Labels', 'Active since', 'Value', 'Summary'].map(t => h('th', t)))),
        h('tbody', alerts.map(x => {
            const labels = x.labels || {}, ann = x.annotations || {};
            return h(`tr.st-${x.state}`, {'data-state': x.state},
                h('td', h(`span.pill.st-${x.state}`, x.state)),
                h('td', labels.alertname || ''),
                h('td', Object.entries(labels).filter(([k]) => k !== 'alertname').map(([k, v]) => k === 'service_name'
                    ? h('code.label', `${k}=`, h('a.svc', {href: `/health?service=${encodeURIComponent(v)}`, 'data-nav': ''}, v))
                    : h('code.label', `${k}=${v}`))),
                h('td', x.activeAt ? fmtTimeMs(Date.parse(x.activeAt)) : ''),
                h('td.num', x.value ?? ''),
                h('td', ann.summary || '', ann.description ? h('div.muted', ann.description) : null,
                  /^https?:\/\//.test(ann.runbook_url || '') ? h('div', h('a.runbook', {href: ann.runbook_url, target: '_blank', rel: 'noopener'}, 'Runbook')) : null));
        }))));
}

// 600 -> "10m", 90 -> "1m30s", 1 -> "1s" (Prometheus's duration style).
function fmtSeconds(v) {
    let s = Math.round(v), out = '';
    for (const [u, n] of [['h', 3600], ['m', 60], ['s', 1]]) {
        if (s >= n) { out += `${Math.floor(s / n)}${u}`; s %= n; }
    }
    return out || '0s';
}

function ruleGroup(g) {
    return h('details.rule-group', {open: true},
        h('summary', g.name, g.file ? h('small', ` ${g.file}`) : null, g.interval ? h('small', ` every ${fmtSeconds(g.interval)}`) : null),
        h('div.table-scroll', h('table.result.rule-table',
            h('thead', h('tr', ['Rule', 'Type', 'State', 'Expression', 'For', 'Health', 'Last evaluation'].map(t => h('th', t)))),
            h('tbody', (g.rules || []).map(x => h('tr', {'data-rule': x.name},
                h('td', x.name), h('td', x.type || ''), h('td', x.state ? h(`span.pill.st-${x.state}`, x.state) : ''),
                h('td.expr-cell', h('a.expr', {href: `/graph?${new URLSearchParams({q: x.query, tab: 'table'})}`, 'data-nav': '',
                                     title: 'Open in the metrics explorer'}, h('code', x.query))),
                h('td', x.duration ? fmtSeconds(x.duration) : ''),
                h('td' + (x.health === 'err' ? '.errors' : ''), x.health || '', x.lastError ? `: ${x.lastError}` : ''),
                h('td', x.lastEvaluation && !x.lastEvaluation.startsWith('1970') ? fmtTimeMs(Date.parse(x.lastEvaluation), false) : '—')))))));
}
