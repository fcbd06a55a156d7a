// End-to-end tests of the web UI in headless Chromium against the real
// binary: data goes in over OTLP/HTTP (JSON), then each page is driven like
// a person would. Any console error or uncaught exception fails the run
// (except the browser's own note about an expected 404/401 from an API the
// test provokes on purpose). With SIGHTLINE_SCREENSHOTS=dir, each page is
// also saved as a PNG there (scripts/screenshots.sh).
//
// Usage: node e2e.mjs <sightline binary> <ui dir>
import {createHash} from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {chromium} from 'playwright-core';
import {T, check, cleanup, serverLogs, startServer, post, watch, shot} from './harness.mjs';
import {CHECKOUT_TRACE, CHECKOUT_SPANS, traces, logs} from './otlp_data.mjs';
import {seedRed, checkRed} from './red.mjs';
import {startFleet, checkFleet} from './fleet.mjs';
import {seedBulkLogs, checkBulkLogs} from './logs_bulk.mjs';
import {checkEveryPage} from './pages.mjs';

[T.binary, T.uiDir] = process.argv.slice(2);
if (!T.binary || !T.uiDir) { console.error('usage: node e2e.mjs <sightline> <ui dir>'); process.exit(2); }
const NOISE_LOGS = 2500;
let browser = null;

// The whole run is bounded: a hung browser or server cannot stall CI.
const watchdog = setTimeout(() => {
    console.error('FAIL: the run took longer than 240 s');
    if (browser) browser.close().catch(() => {});
    cleanup();
    process.exit(1);
}, 240000);

async function run() {
    // Cuts every 200 ms: span metrics seeded in two requests get a sample
    // each, which rate() needs.
    const s = await startServer('main', ['--cut-interval', '200ms']);
    const fleetReady = startFleet(); // seeds itself meanwhile
    const t0 = Date.now() - 30000;
    await post(s, 'traces', traces(t0, 0));
    await new Promise(r => setTimeout(r, 1100));
    await post(s, 'traces', traces(t0, 1));
    await post(s, 'logs', logs(t0, NOISE_LOGS));
    await post(s, 'traces', {resourceSpans: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'acme-only'}}]},
        scopeSpans: [{spans: [{traceId: 'ac'.repeat(16), spanId: 'ac'.repeat(8), name: 'acme op', kind: 2,
            startTimeUnixNano: `${t0}000000`, endTimeUnixNano: `${t0 + 5}000000`}]}]}]}, {'X-Scope-OrgID': 'acme'});
    // A gauge over OTLP, for PromQL to draw.
    {
        const now = BigInt(Date.now()) * 1000000n;
        const points = [0, 1, 2, 3, 4].map(i => ({timeUnixNano: (now - BigInt(4 - i) * 15000000000n).toString(), asDouble: 10 + i}));
        const res = await fetch(`${s.otlp}/v1/metrics`, {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({resourceMetrics: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'checkout'}}]},
                scopeMetrics: [{metrics: [{name: 'queue_depth', gauge: {dataPoints: points}}]}]}]})});
        check(res.ok, `POST /v1/metrics: ${res.status}`);
    }

    await seedRed(s);
    await seedBulkLogs(s);
    const fleet = await fleetReady;

    browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
                                     args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking']});
    const ctx = await browser.newContext({viewport: {width: 1280, height: 860}, colorScheme: 'light'});
    ctx.setDefaultTimeout(15000);
    const page = await ctx.newPage();
    watch(page);
    T.allowed = ['/api/fleet/health', '/api/v1/rules', '/api/v1/alerts'];

    // Trace search finds the checkout trace.
    T.step = 'search';
    await page.goto(`${s.ui}/`);
    await page.waitForSelector('#s-service option[value="frontend"]', {state: 'attached'});
    await page.selectOption('#s-service', 'frontend');
    await page.click('.search-form button[type=submit]');
    await page.waitForSelector('.trace-item');
    check(await page.locator(`.trace-item[data-trace-id="${CHECKOUT_TRACE}"]`).count() === 1, 'search lists the checkout trace');
    check(await page.locator('.trace-item').count() === 7, 'search lists 7 frontend traces');
    check(await page.locator(`.trace-item[data-trace-id="${CHECKOUT_TRACE}"].has-error`).count() === 1, 'the checkout trace is marked as failed');
    check(await page.locator('svg.scatter circle.dot').count() === 7, 'the scatter has one dot per trace');
    check(new URL(page.url()).searchParams.get('service') === 'frontend', 'the search is in the address');
    await shot(page, 'search');

    // The waterfall: span count, nesting, critical path, details, logs.
    T.step = 'trace';
    await page.click(`.trace-item[data-trace-id="${CHECKOUT_TRACE}"] a`);
    await page.waitForSelector('.waterfall .span-row');
    check(page.url().endsWith(`/trace/${CHECKOUT_TRACE}`), `trace URL: ${page.url()}`);
    check(await page.locator('.span-row').count() === CHECKOUT_SPANS, 'waterfall shows every span');
    check(await page.textContent('.span-count') === String(CHECKOUT_SPANS), 'header counts every span');
    const depths = await page.$$eval('.span-row', rows => rows.map(r => `${r.dataset.spanId}:${r.dataset.depth}`));
    check(JSON.stringify(depths) === JSON.stringify(['a000000000000001:0', 'a000000000000002:1', 'b000000000000003:2',
        'b000000000000004:3', 'b000000000000008:3', 'b000000000000005:3', 'c000000000000006:4', 'a000000000000007:1']), `span nesting: ${depths}`);
    check(await page.locator('.span-row[data-span-id="c000000000000006"].on-crit').count() === 1, 'payments span is on the critical path');
    check(await page.locator('.span-row[data-span-id="b000000000000004"].on-crit').count() === 1, 'the DB call before it is on the critical path');
    check(await page.locator('.span-row[data-span-id="b000000000000008"].on-crit').count() === 0, 'the cache lookup in parallel with it is not');
    check(await page.locator('.span-row[data-span-id="c000000000000006"].err').count() === 1, 'the failed span is marked');
    await page.click('.span-row[data-span-id="c000000000000006"]');
    await page.waitForSelector('.span-details');
    const det = await page.textContent('.span-details');
    check(det.includes('card declined') && det.includes('payment.amount') && det.includes('host.name'), 'span details: status, attributes, resource');
    check(det.includes('payment failed: card declined'), 'span details show the span\'s log inline');
    check(new URL(page.url()).searchParams.get('span') === 'c000000000000006', 'the selected span is in the address');
    await shot(page, 'trace');
    // Collapsing the checkout server span hides its 4 descendants.
    await page.click('.span-row[data-span-id="b000000000000003"] .toggle');
    check(await page.locator('.span-row').count() === CHECKOUT_SPANS - 4, 'collapse hides the subtree');
    await page.click('.tabs button[data-tab="flame"]');
    check(await page.locator('svg.flame g.fl').count() === CHECKOUT_SPANS, 'flame graph has every span');
    {
        // Concurrent siblings (the SELECT and the cache lookup overlap in
        // time) take rows of their own: no two boxes of one row overlap.
        const boxes = await page.$$eval('svg.flame g.fl rect', rs => rs.map(r => [+r.getAttribute('x'), +r.getAttribute('width'), +r.getAttribute('y')]));
        const clash = boxes.some((p, i) => boxes.some((q, j) => j > i && p[2] === q[2] && p[0] < q[0] + q[1] - 1e-6 && q[0] < p[0] + p[1] - 1e-6));
        check(!clash, `flame graph boxes do not overlap: ${JSON.stringify(boxes)}`);
    }
    await shot(page, 'flamegraph');
    await page.click('.tabs button[data-tab="logs"]');
    check(await page.locator('.trace-logs li').count() === 3, 'the trace\'s logs tab lists 3 records');
    // A deep link reloads to the same state.
    await page.goto(`${s.ui}/trace/${CHECKOUT_TRACE}?span=b000000000000004`);
    await page.waitForSelector('.span-details[data-details-for="b000000000000004"]');

    // Logs: histogram, virtualised list, a log line links to its trace.
    T.step = 'logs';
    await page.goto(`${s.ui}/logs?range=1h`);
    await page.waitForSelector('.log-row');
    const status = await page.textContent('.log-status');
    check(status.includes('1,000 records'), `first page of logs: ${status}`);
    check(await page.locator('.histogram rect.hb').count() > 0, 'log histogram has bars');
    await page.click('.logs-page > button:has-text("Load older")');
    await page.waitForFunction(() => /2,503 records/.test(document.querySelector('.log-status').textContent));
    const inDom = await page.locator('.log-row').count();
    check(inDom > 5 && inDom < 120, `virtualised list keeps few rows in the DOM (${inDom} of 2503)`);
    await page.$eval('.loglist', el => { el.scrollTop = 24 * 1500; });
    await page.waitForFunction(() => [...document.querySelectorAll('.log-row')].some(r => +r.dataset.index >= 1500));
    await page.fill('#l-q', 'card declined');
    await page.click('.filters button[type=submit]');
    await page.waitForFunction(() => /^1 record/.test(document.querySelector('.log-status').textContent.trim()));
    await page.click('.log-row .log-line');
    check((await page.textContent('.log-details')).includes(CHECKOUT_TRACE), 'expanded record shows its trace id');
    await page.fill('#l-q', '');
    await page.click('.filters button[type=submit]');
    await page.waitForSelector('.log-row');
    await shot(page, 'logs');
    await page.click('#l-live');
    await post(s, 'logs', {resourceLogs: [{resource: {attributes: [{key: 'service.name', value: {stringValue: 'tailer'}}]},
        scopeLogs: [{logRecords: [{timeUnixNano: `${Date.now()}000000`, severityNumber: 9, body: {stringValue: 'fresh tail line'}}]}]}]});
    await page.waitForSelector('.log-row:has-text("fresh tail line")');
    check(await page.getAttribute('#l-live', 'aria-pressed') === 'true', 'live tail is on');
    await page.click('#l-live');
    await page.fill('#l-q', 'card declined');
    await page.click('.filters button[type=submit]');
    await page.waitForFunction(() => /^1 record/.test(document.querySelector('.log-status').textContent.trim()));
    await page.click('.log-row .log-line a');
    await page.waitForSelector('.waterfall .span-row');
    check(page.url().includes(`/trace/${CHECKOUT_TRACE}`), 'a log line links to its trace');
    check(await page.locator('.span-row.selected[data-span-id="c000000000000006"]').count() === 1, 'the linked span is selected');

    // Metrics: a PromQL query draws a chart; completion offers metric names.
    T.step = 'metrics';
    await page.goto(`${s.ui}/graph`);
    await page.fill('#m-expr', 'vector(1) + 1');
    await page.click('.promql button[type=submit]');
    await page.waitForSelector('.chart .uplot canvas');
    check(await page.locator('.metrics-out .u-legend').count() === 1, 'the chart has a legend');
    await page.click('.tabs button[data-tab="table"]');
    await page.waitForSelector('table.result');
    check((await page.textContent('table.result')).includes('2'), 'table view shows the value');
    await page.click('.tabs button[data-tab="graph"]');
    await page.fill('#m-expr', '');
    await page.type('#m-expr', 'histogram_q');
    await page.waitForSelector('#m-suggest li');
    await page.keyboard.press('Tab');
    check(await page.inputValue('#m-expr') === 'histogram_quantile', 'completion fills a function name');
    await page.fill('#m-expr', 'no_such_metric_xyz');
    await page.click('.promql button[type=submit]');
    await page.waitForSelector('.metrics-out .notice.empty');
    T.allowed.push('/api/v1/query_range');
    await page.fill('#m-expr', 'sum(rate(');
    await page.click('.promql button[type=submit]');
    await page.waitForSelector('.metrics-out .notice.error');
    check((await page.textContent('.metrics-out .notice.error')).includes('not valid'), 'a bad query says so');
    T.allowed.pop();
    {
        await page.fill('#m-expr', '');
        await page.type('#m-expr', 'queue_de');
        await page.waitForSelector('#m-suggest li');
        await page.keyboard.press('Tab');
        check(await page.inputValue('#m-expr') === 'queue_depth', 'completion fills the metric name');
        await page.click('.promql button[type=submit]');
        await page.waitForSelector('.metrics-out .chart .uplot canvas');
    }
    // RED panels from the span metrics derived at ingest.
    await page.selectOption('#m-red-service', 'frontend');
    await page.waitForFunction(() => !document.querySelector('.red-panels .notice.loading'));
    // frontend's spans came in two requests, cut apart: every panel draws.
    check(await page.locator('.red-panels .panel .uplot').count() === 3, `RED panels of frontend: ${await page.textContent('.red-panels')}`);
    await page.fill('#m-expr', 'sum by (service_name) (traces_span_metrics_calls_total)');
    await page.click('.promql button[type=submit]');
    await page.waitForSelector('.metrics-out .chart .uplot canvas');
    check(await page.getAttribute('.metrics-out .chart', 'data-series') === '4', 'one series per service');
    {
        // The time axis spans the chosen range (1 h ending now), whatever
        // the data covers (here: samples from a moment ago only).
        const x = await page.$eval('.metrics-out .chart', el => ({min: el.uplot.scales.x.min, max: el.uplot.scales.x.max}));
        const now = Date.now() / 1000;
        check(Math.abs(x.max - now) < 120 && Math.abs(x.max - x.min - 3600) < 1, `the time axis spans the last hour: ${JSON.stringify(x)}`);
        const red = await page.$$eval('.red-panels .panel .chart', els => els.map(el => el.uplot ? el.uplot.scales.x.max - el.uplot.scales.x.min : 0));
        check(red.every(w => Math.abs(w - 3600) < 1), `RED panels span the last hour: ${red}`);
    }
    await shot(page, 'metrics');

    // Service map: nodes and edges from the dependencies; a click shows health.
    T.step = 'map';
    await page.goto(`${s.ui}/map`);
    await page.waitForSelector('svg.map g.node');
    const nodes = await page.$$eval('svg.map g.node', g => g.map(x => x.dataset.service).sort());
    check(JSON.stringify(nodes) === JSON.stringify(['checkout', 'frontend', 'payments', 'red-api']), `map nodes: ${nodes}`);
    check(await page.locator('svg.map path.edge').count() === 2, 'map has the two call edges');
    await page.click('svg.map g.node[data-service="checkout"]');
    await page.waitForSelector('.node-info h2');
    check((await page.textContent('.node-info')).includes('payments'), 'node panel lists the callee');
    await shot(page, 'service-map');

    // Fleet health and alerts: data, or a clear "not available" on 404.
    T.step = 'health';
    await page.goto(`${s.ui}/health`);
    await page.waitForSelector('.health-box .notice.na, .health-grid, .health-box .notice.empty');
    check(await page.locator('.health-box .notice.error').count() === 0, 'fleet health is not an error');
    await shot(page, 'fleet-health');
    T.step = 'alerts';
    await page.goto(`${s.ui}/alerts`);
    await page.waitForSelector('.alerts > .notice:not(.loading), .alert-table');
    await page.waitForSelector('.rules > .notice:not(.loading), .rule-group');
    check(await page.locator('.alerts-page .notice.error').count() === 0, 'alerts page is not an error');
    await shot(page, 'alerts');

    // A slow answer shows the busy indicator; a failing one says so.
    T.step = 'slow-and-failing';
    await page.route('**/api/services', async route => { await new Promise(r => setTimeout(r, 1500)); await route.continue(); });
    await page.goto(`${s.ui}/search`);
    await page.waitForSelector('#busy.on');
    check((await page.textContent('#busy')).includes('Loading'), 'a slow call shows Loading…');
    await page.waitForSelector('#s-service option[value="frontend"]', {state: 'attached'});
    await page.unroute('**/api/services');
    T.allowed.push('/api/traces');
    await page.route('**/api/traces?*', route => route.fulfill({status: 503, contentType: 'application/json',
        body: '{"data":null,"errors":[{"code":503,"msg":"storage is unavailable"}]}'}));
    await page.click('.search-form button[type=submit]');
    await page.waitForSelector('.results .notice.error');
    check((await page.textContent('.results .notice.error')).includes('storage is unavailable'), 'a failing search shows the server\'s message');
    await page.unroute('**/api/traces?*');
    T.allowed.pop();

    // The tenant picker: another tenant sees only its own services.
    T.step = 'tenant';
    await page.goto(`${s.ui}/search`);
    await page.click('#settings-btn');
    await page.fill('#tenant', 'acme');
    await page.click('#settings-save');
    await page.waitForSelector('#s-service option[value="acme-only"]', {state: 'attached'});
    check(await page.locator('#s-service option[value="frontend"]').count() === 0, 'tenant acme does not see frontend');
    await page.evaluate(() => localStorage.clear());

    // A narrow window (every page is checked at 420 px in pages.mjs).
    T.step = 'narrow';
    if (T.shots) {
        await page.setViewportSize({width: 420, height: 860});
        await page.goto(`${s.ui}/trace/${CHECKOUT_TRACE}`);
        await page.waitForSelector('.span-row');
        await shot(page, 'narrow-trace');
        await page.setViewportSize({width: 1280, height: 860});
    }

    // Dark mode follows prefers-color-scheme.
    T.step = 'dark';
    await page.emulateMedia({colorScheme: 'dark'});
    await page.goto(`${s.ui}/trace/${CHECKOUT_TRACE}`);
    await page.waitForSelector('.span-row');
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(bg !== 'rgb(255, 255, 255)', `dark scheme background: ${bg}`);
    await shot(page, 'trace-dark');
    await page.emulateMedia({colorScheme: 'light'});

    // Keyboard: the search form and a result are reachable with Tab.
    T.step = 'keyboard';
    await page.goto(`${s.ui}/search?service=frontend`);
    await page.waitForSelector('.trace-item');
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => !!document.activeElement.closest('.trace-item'));
    }
    check(reached, 'a search result is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.waterfall');
    await page.focus('.span-row[data-span-id="b000000000000005"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('.span-details[data-details-for="b000000000000005"]');

    for (const [name, fn] of [['RED panels', () => checkRed(page, s)], ['fleet', () => checkFleet(page, fleet)],
                              ['100k logs', () => checkBulkLogs(page, s)], ['every page', () => checkEveryPage(page, s, fleet)]]) {
        const started = Date.now();
        await fn();
        console.log(`note: ${name} checked in ${Date.now() - started} ms`);
    }

    // With --auth-tokens: no token is a clear 401; the token field fixes it.
    T.step = 'auth';
    const token = 'ui-test-token';
    const tokFile = path.join(T.tmp, 'tokens');
    fs.writeFileSync(tokFile, `${createHash('sha256').update(token).digest('hex')} default query\n`);
    const a = await startServer('auth', ['--auth-tokens', tokFile]);
    T.allowed = ['/api/services'];
    await page.goto(`${a.ui}/search`);
    await page.waitForSelector('.results .notice.error');
    check((await page.textContent('.results .notice.error')).includes('Unauthorized'), 'a missing token shows Unauthorized');
    T.allowed = [];
    await page.click('#settings-btn');
    await page.fill('#token', token);
    await page.click('#settings-save');
    await page.waitForSelector('.results .notice.empty');
    check(await page.evaluate(() => localStorage.getItem('sightline.token')) === token, 'the token is kept in localStorage');
    await ctx.close();
}

try {
    await run();
} catch (e) {
    check(false, `[${T.step}] ${e.stack || e}`);
}
if (T.failures.length) serverLogs();
clearTimeout(watchdog);
if (browser) await browser.close().catch(() => {});
cleanup();
if (T.failures.length) { console.error(`${T.failures.length} check(s) failed`); process.exit(1); }
console.log('all UI checks passed');
