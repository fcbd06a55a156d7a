// Shared rendering of log records (logs explorer and a trace's logs).
import {h, fmtTimeMs, link} from './util.js';

export const SEVERITIES = [['', 'Any'], ['trace', 'Trace'], ['debug', 'Debug'], ['info', 'Info'],
                           ['warn', 'Warn'], ['error', 'Error'], ['fatal', 'Fatal']];

// OTLP severity numbers: 1-4 trace, 5-8 debug, 9-12 info, 13-16 warn, 17-20 error, 21-24 fatal.
export function severityClass(n) {
    if (!n) return 'unset';
    return ['trace', 'debug', 'info', 'warn', 'error', 'fatal'][Math.min(5, Math.floor((n - 1) / 4))];
}

export function bodyText(b) {
    if (b == null) return '';
    return typeof b === 'string' ? b : JSON.stringify(b);
}

export function recordMs(r) {
    return Number(BigInt(r.timestamp || r.observed_timestamp || '0') / 1000000n);
}

// The full record as a key/value table with a link to its trace.
export function recordDetails(r) {
    const rows = [['time', fmtTimeMs(recordMs(r)) + ` (${r.timestamp} ns)`],
                  ['severity', `${r.severity_text || ''} (${r.severity_number})`],
                  ['service', r.service]];
    if (r.trace_id) rows.push(['trace_id', link(`/trace/${r.trace_id}`, r.trace_id)]);
    if (r.span_id) rows.push(['span_id', r.span_id]);
    if (r.event_name) rows.push(['event_name', r.event_name]);
    for (const [k, v] of Object.entries(r.attributes || {})) rows.push([k, bodyText(v)]);
    for (const [k, v] of Object.entries(r.resource || {})) rows.push([`resource.${k}`, bodyText(v)]);
    if (r.scope && r.scope.name) rows.push(['scope', `${r.scope.name} ${r.scope.version || ''}`]);
    return h('div.log-details',
        h('pre.body', bodyText(r.body)),
        h('table.kv', h('tbody', rows.map(([k, v]) => h('tr', h('th', k), h('td', v))))));
}
