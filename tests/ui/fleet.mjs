// A fleet of 50 services on a server with alert rules and active health
// checks, for the fleet health, alerts and service map pages:
// - gateway calls 7 services, each of which calls its own 6 backends;
//   orders also calls payments and shipping, cart calls catalog and users;
// - payments fails every call that comes from orders (half of its requests):
//   degraded, and the HighErrorRatio alert fires for it;
// - search answers in 300 ms: degraded by its p95 (threshold 250 ms), and
//   SlowRequests is pending for it (for: 10m);
// - shipping-store's health endpoint (served here) answers 503: down;
//   gateway's answers 200.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import {T, check, until, waitCut, sleep, startServer, post, getJson, resourceSpans, nsOf, hex, shot} from './harness.mjs';

export const MIDS = ['orders', 'cart', 'users', 'search', 'catalog', 'payments', 'shipping'];
const LEAVES = ['db', 'cache', 'queue', 'index', 'audit', 'store'];
const CROSS = {orders: ['payments', 'shipping'], cart: ['catalog', 'users']};
export const GRAPH = {gateway: MIDS};
for (const m of MIDS) GRAPH[m] = [...LEAVES.map(l => `${m}-${l}`), ...(CROSS[m] || [])];
export const SERVICES = [...new Set(['gateway', ...Object.values(GRAPH).flat()])].sort();
// Calls per trace on each edge: a backend i of a service is called 1 + i % 3 times.
const repeat = (parent, child) => parent === 'gateway' || MIDS.includes(child) ? 1 : 1 + LEAVES.indexOf(child.split('-')[1]) % 3;

const RULES = `groups:
  - name: red
    interval: 1s
    rules:
      - alert: HighErrorRatio
        expr: >
          sum by (service_name) (rate(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}[5m]))
          / sum by (service_name) (rate(traces_span_metrics_calls_total{span_kind="SPAN_KIND_SERVER"}[5m])) > 0.2
        labels: {severity: page}
        annotations:
          summary: "{{ $labels.service_name }} fails {{ $value | humanizePercentage }} of its requests"
          runbook_url: "https://runbooks.example/high-error-ratio"
      - alert: SlowRequests
        expr: >
          histogram_quantile(0.95, sum by (service_name, le)
            (rate(traces_span_metrics_duration_seconds_bucket{span_kind="SPAN_KIND_SERVER"}[5m]))) > 0.25
        for: 10m
        labels: {severity: ticket}
        annotations: {summary: "{{ $labels.service_name }} p95 above 250ms"}
      - record: service:calls:rate5m
        expr: sum by (service_name) (rate(traces_span_metrics_calls_total[5m]))
`;

// One trace through the whole graph: a server span per visit, a client span
// per call.
function trace(batch, n) {
    const traceId = hex(0xf1ee70000 + batch * 1000 + n, 32);
    const by = new Map(SERVICES.map(s => [s, []]));
    let ids = 0;
    const now = Date.now();
    const visit = (svc, parentClient, via) => {
        const id = hex(0xa00000 + batch * 100000 + n * 10000 + ids++, 16);
        const dur = svc === 'search' ? 300 : 20;
        const fail = svc === 'payments' && via === 'orders';
        by.get(svc).push({traceId, spanId: id, parentSpanId: parentClient, name: `handle ${svc}`, kind: 2,
                          startTimeUnixNano: nsOf(now - 400), endTimeUnixNano: nsOf(now - 400 + dur),
                          status: fail ? {code: 2, message: 'card declined'} : {}});
        for (const child of GRAPH[svc] || []) {
            for (let r = 0; r < repeat(svc, child); r++) {
                const cid = hex(0xa00000 + batch * 100000 + n * 10000 + ids++, 16);
                by.get(svc).push({traceId, spanId: cid, parentSpanId: id, name: `call ${child}`, kind: 3,
                                  startTimeUnixNano: nsOf(now - 399), endTimeUnixNano: nsOf(now - 399 + dur)});
                visit(child, cid, svc);
            }
        }
    };
    visit('gateway', '', '');
    return by;
}

function batchBody(batch) {
    const all = new Map(SERVICES.map(s => [s, []]));
    for (let n = 0; n < 2; n++) for (const [s, spans] of trace(batch, n)) all.get(s).push(...spans);
    return {resourceSpans: [...all].map(([s, spans]) => resourceSpans(s, spans))};
}

export async function startFleet() {
    const dir = path.join(T.tmp, 'fleet-rules');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'red.yml'), RULES);
    const health = http.createServer((req, res) => {
        res.writeHead(req.url === '/ok' ? 200 : 503, {'Content-Type': 'text/plain'});
        res.end(req.url === '/ok' ? 'ok' : 'database unreachable');
    });
    await new Promise(r => health.listen(0, '127.0.0.1', r));
    const hp = `http://127.0.0.1:${health.address().port}`;
    const s = await startServer('fleet', ['--cut-interval', '200ms', '--rules-dir', dir,
        '--health-max-error-ratio', '0.2', '--health-max-p95', '250ms',
        '--health-checks', `gateway=${hp}/ok,shipping-store=${hp}/health`, '--health-check-interval', '200ms']);
    s.healthServer = health;
    s.checkUrl = `${hp}/health`;
    await post(s, 'traces', batchBody(0));
    // The second batch after the first one's span metrics were cut: rate()
    // in the rules needs two samples.
    check(await waitCut(s), 'fleet: first batch cut');
    await post(s, 'traces', batchBody(1));
    return s;
}

export async function checkFleet(page, s) {
    // Wait (on the API) until the rule fired and the check failed.
    const ready = await until(async () => {
        const r = await getJson(s, '/api/fleet/health');
        const svcs = r.status === 200 ? r.json.data.services : [];
        const st = Object.fromEntries(svcs.map(x => [x.service, x]));
        return st.payments && st.payments.firingAlerts.length && st['shipping-store'] && st['shipping-store'].status === 'down'
            && st.search && st.search.status === 'degraded' ? st : null;
    }, 20000, 200);
    check(ready, 'fleet: the alert fired and the failing check made shipping-store down');

    // Fleet health: status, reasons, firing alerts and links.
    T.step = 'fleet-health';
    await page.goto(`${s.ui}/health`);
    await page.waitForSelector('.health-grid .card');
    const cards = await page.$$eval('.health-grid .card', els => els.map(e => ({
        name: e.dataset.service, status: e.dataset.status, text: e.textContent,
        reasons: [...e.querySelectorAll('.reasons li')].map(x => x.textContent),
        alerts: [...e.querySelectorAll('.firing a')].map(a => [a.textContent, a.getAttribute('href')]),
        links: [...e.querySelectorAll('.links a')].map(a => a.getAttribute('href'))})));
    check(cards.length === SERVICES.length, `one card per service: ${cards.length}`);
    const by = Object.fromEntries(cards.map(c => [c.name, c]));
    check(cards[0].name === 'shipping-store' && cards[0].status === 'down', `down services come first: ${cards[0].name}`);
    check(JSON.stringify(cards.slice(1, 3).map(c => c.status)) === '["degraded","degraded"]', 'then the degraded ones');
    const ship = by['shipping-store'] || {reasons: []};
    check(ship.reasons.some(r => r.includes('active check') && r.includes(s.checkUrl)), `shipping-store's reason: ${ship.reasons}`);
    const pay = by.payments || {reasons: [], alerts: [], text: ''};
    check(pay.status === 'degraded', `payments is degraded: ${pay.status}`);
    check(pay.reasons.some(r => /^error ratio 0\.\d+ above 0\.2$/.test(r)) && pay.reasons.includes('1 firing alert(s)'), `payments' reasons: ${pay.reasons}`);
    check(JSON.stringify(pay.alerts) === '[["HighErrorRatio","/alerts?service=payments"]]', `payments' firing alerts: ${JSON.stringify(pay.alerts)}`);
    check(/error ratio\s*50(\.0)?%/i.test(pay.text), `payments shows its error ratio: ${pay.text}`);
    const search = by.search || {reasons: []};
    check(search.status === 'degraded' && search.reasons.some(r => r.startsWith('p95 latency 0.') && r.endsWith('above 0.25s')), `search: ${search.status} ${search.reasons}`);
    check(by.gateway && by.gateway.status === 'healthy' && by.gateway.reasons.length === 0, 'gateway is healthy');
    check(JSON.stringify((by.gateway || {}).links) === JSON.stringify(['/search?service=gateway', '/logs?service=gateway', '/graph?service=gateway', '/map?service=gateway']),
          `a card links to the service's traces, logs, metrics and map node: ${(by.gateway || {}).links}`);
    const summary = await page.textContent('.health-page .summary');
    check(summary.includes('1 down') && summary.includes('2 degraded') && summary.includes(`${SERVICES.length - 3} healthy`), `summary: ${summary}`);
    check((await page.textContent('.health-page .thresholds')).includes('0.25'), 'the thresholds are shown');
    await shot(page, 'fleet-health');
    // Only the services that need attention.
    await page.click('#h-problems');
    check(await page.locator('.health-grid .card').count() === 3, 'the problems filter keeps the 3 unhealthy services');
    check(new URL(page.url()).searchParams.get('only') === 'problems', 'the filter is in the address');
    // The firing alert links to the alerts page, filtered on its service.
    await page.click('.card[data-service="payments"] .firing a');
    await page.waitForSelector('.alert-table tbody tr');

    T.step = 'alerts';
    check(new URL(page.url()).searchParams.get('service') === 'payments', 'alerts filtered on payments');
    let rows = await page.$$eval('.alert-table tbody tr', trs => trs.map(tr => tr.textContent));
    check(rows.length === 1 && rows[0].includes('firing') && rows[0].includes('HighErrorRatio') && rows[0].includes('payments fails 50%'),
          `payments' alerts: ${rows}`);
    check(await page.getAttribute('.alert-table a.runbook', 'href') === 'https://runbooks.example/high-error-ratio', 'the runbook is a link');
    await page.click('.alerts-page .filter-note a');
    await page.waitForFunction(() => document.querySelectorAll('.alert-table tbody tr').length === 2);
    rows = await page.$$eval('.alert-table tbody tr', trs => trs.map(tr => [tr.dataset.state, tr.textContent]));
    check(rows[0][0] === 'firing' && rows[1][0] === 'pending' && rows[1][1].includes('SlowRequests') && rows[1][1].includes('search'),
          `firing before pending: ${JSON.stringify(rows)}`);
    const counts = await page.textContent('.alerts-page .summary');
    check(counts.includes('1 firing') && counts.includes('1 pending'), `alert counts: ${counts}`);
    const rules = await page.$$eval('.rule-group tbody tr', trs => trs.map(tr => ({name: tr.dataset.rule, text: tr.textContent,
        graph: (tr.querySelector('a.expr') || {}).href || ''})));
    check(rules.map(r => r.name).join() === 'HighErrorRatio,SlowRequests,service:calls:rate5m', `rules: ${rules.map(r => r.name)}`);
    check(rules[0] && rules[0].text.includes('firing') && rules[1].text.includes('pending') && rules[2].text.includes('recording'),
          `rule states: ${rules.map(r => r.text)}`);
    check(rules.every(r => r.text.includes('ok')), 'every rule evaluates without error');
    check(rules[0] && new URL(rules[0].graph).pathname === '/graph' && new URL(rules[0].graph).searchParams.get('q').includes('traces_span_metrics_calls_total'),
          'a rule\'s expression links to the metrics explorer');
    await shot(page, 'alerts');
    // A pending alert's service links to its health.
    await page.click('.alert-table tr[data-state="pending"] a.svc');
    await page.waitForSelector('.health-grid .card');
    check(new URL(page.url()).searchParams.get('service') === 'search', 'an alert links to its service\'s health');
    check(await page.locator('.health-grid .card').count() === 1, 'the health page shows that one service');

    await checkBigMap(page, s);
}

// The 50-service map: no overlapping nodes, every node reachable (in view or
// by scrolling the map), edges with call counts and error rates, a click on
// a node shows its health.
async function checkBigMap(page, s) {
    T.step = 'map-50';
    await page.goto(`${s.ui}/map`);
    await page.waitForSelector('svg.map g.node');
    const geo = await page.evaluate(() => {
        const scroller = document.querySelector('.map-scroll');
        const sb = scroller.getBoundingClientRect();
        const nodes = [...document.querySelectorAll('svg.map g.node')].map(g => {
            const r = g.querySelector('rect').getBoundingClientRect();
            return {name: g.dataset.service, x: r.left - sb.left + scroller.scrollLeft, y: r.top - sb.top + scroller.scrollTop, w: r.width, h: r.height};
        });
        const label = [...document.querySelectorAll('svg.map g.node text:first-of-type')].map(t => t.getBoundingClientRect().width);
        return {nodes, sw: scroller.scrollWidth, sh: scroller.scrollHeight, vw: innerWidth, fontPx: parseFloat(getComputedStyle(document.querySelector('svg.map g.node text')).fontSize),
                scale: document.querySelector('svg.map').getBoundingClientRect().width / document.querySelector('svg.map').viewBox.baseVal.width,
                label, pageOverflow: document.documentElement.scrollWidth - innerWidth};
    });
    check(geo.nodes.length === SERVICES.length, `50 nodes: ${geo.nodes.length}`);
    const overlaps = [];
    for (let i = 0; i < geo.nodes.length; i++) {
        for (let j = i + 1; j < geo.nodes.length; j++) {
            const a = geo.nodes[i], b = geo.nodes[j];
            if (a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) overlaps.push(`${a.name}/${b.name}`);
        }
    }
    check(overlaps.length === 0, `no overlapping nodes: ${overlaps.slice(0, 5)}`);
    const outside = geo.nodes.filter(n => n.x < -0.5 || n.y < -0.5 || n.x + n.w > geo.sw + 0.5 || n.y + n.h > geo.sh + 0.5);
    check(outside.length === 0, `every node is in the map's scrollable area: ${outside.map(n => n.name)}`);
    check(geo.pageOverflow <= 1, `the page itself does not scroll sideways (${geo.pageOverflow}px)`);
    check(geo.fontPx * geo.scale >= 10, `node names stay readable: ${(geo.fontPx * geo.scale).toFixed(1)}px`);
    const edges = await page.$$eval('svg.map g.edge-g', gs => gs.map(g => ({from: g.dataset.parent, to: g.dataset.child,
        title: g.querySelector('title').textContent, label: (g.querySelector('text') || {}).textContent || ''})));
    const want = Object.entries(GRAPH).reduce((n, [, c]) => n + c.length, 0);
    check(edges.length === want, `one edge per caller/callee pair: ${edges.length}, want ${want}`);
    const e = edges.find(x => x.from === 'orders' && x.to === 'payments');
    check(e && /4 calls/.test(e.title) && /100(\.0)?% errors/.test(e.title) && /4/.test(e.label) && /100% err/.test(e.label), `orders → payments: ${JSON.stringify(e)}`);
    const ok = edges.find(x => x.from === 'gateway' && x.to === 'payments');
    check(ok && /4 calls/.test(ok.title) && /0(\.0)?% errors/.test(ok.title), `gateway → payments: ${JSON.stringify(ok)}`);
    const rep = edges.find(x => x.from === 'search' && x.to === 'search-queue');
    check(rep && /12 calls/.test(rep.title), `search → search-queue is called 3 times per trace: ${JSON.stringify(rep)}`);
    // Clicking a node (scrolled into view first) shows its health.
    const node = page.locator('svg.map g.node[data-service="payments"]');
    await node.scrollIntoViewIfNeeded();
    await node.click();
    await page.waitForFunction(() => /degraded/.test((document.querySelector('.node-info .health-status') || {}).textContent || ''));
    const info = await page.textContent('.node-info');
    check(info.includes('HighErrorRatio') && /error ratio 0\.\d+ above 0\.2/.test(info), `payments' health in the side panel: ${info}`);
    check(new URL(page.url()).searchParams.get('service') === 'payments', 'the selected node is in the address');
    await page.goto(`${s.ui}/map?service=shipping-store`);
    await page.waitForFunction(() => /down/.test((document.querySelector('.node-info .health-status') || {}).textContent || ''));
    check(await page.locator('svg.map g.node.selected[data-service="shipping-store"]').count() === 1, 'a deep link selects its node');
    check(await page.locator('svg.map g.node.down[data-service="shipping-store"]').count() === 1, 'a down service is marked on the map');
    check(/Calls in\s*24\s*Calls out\s*0(?!\d)/.test(await page.textContent('.node-info')), `shipping-store's calls in and out: ${await page.textContent('.node-info dl')}`);
    await shot(page, 'service-map-50');
    s.healthServer.close();
    await sleep(0);
}
