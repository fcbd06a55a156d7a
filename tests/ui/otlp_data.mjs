// The test data set: traces and logs as OTLP/JSON, times relative to now.
// One checkout trace across three services (8 spans, 5 levels, one error)
// with logs on three of its spans; a few short traces for the scatter; and
// plenty of unrelated log lines for the virtualised list.

export const CHECKOUT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
export const CHECKOUT_SPANS = 8;

const hex = (n, len) => n.toString(16).padStart(len, '0');
const attr = (k, v) => ({key: k, value: typeof v === 'number' ? {intValue: String(v)} : typeof v === 'boolean' ? {boolValue: v} : {stringValue: v}});
const ns = ms => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

function span(traceId, id, parent, name, kind, startMs, endMs, attrs = [], extra = {}) {
    return Object.assign({traceId, spanId: id, parentSpanId: parent || '', name, kind,
                          startTimeUnixNano: ns(startMs), endTimeUnixNano: ns(endMs), attributes: attrs}, extra);
}

function resource(service, spans) {
    return {resource: {attributes: [attr('service.name', service), attr('host.name', 'test-host')]},
            scopeSpans: [{scope: {name: 'sightline-ui-test', version: '1.0'}, spans}]};
}

// part 0: the checkout trace and three short ones; part 1: three more short
// ones. Sent a moment apart, they give the span metrics two samples, which
// rate() needs.
export function traces(t0, part = 0) {
    const T = CHECKOUT_TRACE;
    const byService = {
        frontend: [
            span(T, 'a000000000000001', '', 'GET /checkout', 2, t0, t0 + 100, [attr('http.method', 'GET'), attr('http.status_code', 500)]),
            span(T, 'a000000000000002', 'a000000000000001', 'HTTP POST checkout', 3, t0 + 5, t0 + 90),
            span(T, 'a000000000000007', 'a000000000000001', 'render', 1, t0 + 91, t0 + 99),
        ],
        checkout: [
            span(T, 'b000000000000003', 'a000000000000002', 'POST /checkout', 2, t0 + 8, t0 + 88),
            span(T, 'b000000000000004', 'b000000000000003', 'SELECT orders', 3, t0 + 10, t0 + 30, [attr('db.system', 'sqlite')]),
            span(T, 'b000000000000008', 'b000000000000003', 'cache lookup', 1, t0 + 12, t0 + 20),
            span(T, 'b000000000000005', 'b000000000000003', 'HTTP POST payments', 3, t0 + 35, t0 + 85),
        ],
        payments: [
            span(T, 'c000000000000006', 'b000000000000005', 'POST /pay', 2, t0 + 38, t0 + 82, [attr('payment.amount', 42)],
                 {status: {code: 2, message: 'card declined'},
                  events: [{timeUnixNano: ns(t0 + 80), name: 'exception', attributes: [attr('exception.message', 'card declined')]}]}),
        ],
    };
    const home = [];
    for (let i = part * 3; i < part * 3 + 3; i++) {
        const id = hex(0x1000 + i, 32), s = t0 - 60000 + i * 7000;
        home.push(span(id, hex(0x100 + i, 16), '', 'GET /home', 2, s, s + 5 + i * 3));
    }
    if (part === 1) return {resourceSpans: [resource('frontend', home)]};
    byService.frontend.push(...home);
    return {resourceSpans: Object.entries(byService).map(([s, spans]) => resource(s, spans))};
}

function log(service, tMs, sev, sevText, body, traceId = '', spanId = '') {
    return {service, rec: {timeUnixNano: ns(tMs), observedTimeUnixNano: ns(tMs), severityNumber: sev, severityText: sevText,
                           body: {stringValue: body}, traceId, spanId, attributes: [attr('logger', 'test')]}};
}

export function logs(t0, noise) {
    const T = CHECKOUT_TRACE;
    const all = [
        log('frontend', t0 + 1, 9, 'INFO', 'checkout started for cart 17', T, 'a000000000000001'),
        log('checkout', t0 + 12, 9, 'INFO', 'loaded 3 order lines', T, 'b000000000000004'),
        log('payments', t0 + 81, 17, 'ERROR', 'payment failed: card declined', T, 'c000000000000006'),
    ];
    for (let i = 0; i < noise; i++) {
        all.push(log('loadgen', t0 - 120000 + i * 40, i % 50 === 0 ? 13 : 9, i % 50 === 0 ? 'WARN' : 'INFO',
                     `request ${i} served in ${(i * 7) % 300} ms`));
    }
    const by = new Map();
    for (const {service, rec} of all) { if (!by.has(service)) by.set(service, []); by.get(service).push(rec); }
    return {resourceLogs: [...by].map(([s, logRecords]) => ({resource: {attributes: [attr('service.name', s)]},
                                                             scopeLogs: [{scope: {name: 'sightline-ui-test'}, logRecords}]}))};
}
