// Turns a Jaeger-format trace into a span tree with services, depths,
// errors and the critical path.

export function tagValue(tags, key) {
    const t = (tags || []).find(x => x.key === key);
    return t ? t.value : undefined;
}

export function isError(span) {
    return tagValue(span.tags, 'error') === true || tagValue(span.tags, 'otel.status_code') === 'ERROR';
}

// One line per trace for search results.
export function summarize(trace) {
    const m = buildTree(trace);
    const services = new Map();
    for (const s of m.spans) services.set(s.service, (services.get(s.service) || 0) + 1);
    const root = m.roots[0];
    return {
        traceID: trace.traceID, start: m.start, duration: m.end - m.start,
        spanCount: m.spans.length, errors: m.spans.filter(s => s.error).length, services,
        rootService: root ? root.service : '?', rootName: root ? root.operationName : '(no spans)',
    };
}

// Returns {spans (depth-first order), roots, byId, start, end (µs)}. Each span
// gains service, children, depth, parent, error. A span whose parent is not in
// the trace becomes a root (Jaeger shows these too).
export function buildTree(trace) {
    const procs = trace.processes || {};
    const byId = new Map();
    for (const s of trace.spans || []) {
        byId.set(s.spanID, Object.assign({}, s, {
            service: (procs[s.processID] || {}).serviceName || '?',
            process: procs[s.processID] || {serviceName: '?', tags: []},
            children: [], parent: null, depth: 0, error: isError(s), onCritical: false, critical: [],
        }));
    }
    const roots = [];
    for (const s of byId.values()) {
        const ref = (s.references || []).find(r => r.refType === 'CHILD_OF') || (s.references || [])[0];
        const p = ref && byId.get(ref.spanID);
        if (p && p !== s) { s.parent = p; p.children.push(s); } else roots.push(s);
    }
    const order = [];
    let start = Infinity, end = -Infinity;
    const byStart = (a, b) => a.startTime - b.startTime;
    roots.sort(byStart);
    const stack = roots.slice().reverse().map(s => [s, 0]);
    const seen = new Set();
    while (stack.length) {
        const [s, d] = stack.pop();
        if (seen.has(s)) continue;
        seen.add(s);
        s.depth = d;
        order.push(s);
        start = Math.min(start, s.startTime);
        end = Math.max(end, s.startTime + s.duration);
        s.children.sort(byStart);
        for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], d + 1]);
    }
    if (!order.length) { start = 0; end = 0; }
    const m = {spans: order, roots, byId, start, end};
    for (const r of roots) criticalPath(r, r.startTime + r.duration);
    return m;
}

// Marks the critical path below span up to time `until`: walking back from
// the end, the child that finished last is what the parent waited for; the
// parent's own time in between is on the path too. Segments go to
// span.critical as [start, end] in µs.
function criticalPath(root, until) {
    const work = [[root, until]];
    while (work.length) {
        const [span, end0] = work.pop();
        span.onCritical = true;
        let t = Math.min(end0, span.startTime + span.duration);
        const kids = span.children.slice().sort((a, b) => (b.startTime + b.duration) - (a.startTime + a.duration));
        for (const c of kids) {
            if (c.startTime >= t) continue;
            const cEnd = Math.min(c.startTime + c.duration, t);
            if (cEnd < t) span.critical.push([cEnd, t]);
            work.push([c, cEnd]);
            t = Math.max(c.startTime, span.startTime);
            if (t <= span.startTime) break;
        }
        if (t > span.startTime) span.critical.push([span.startTime, t]);
    }
}
