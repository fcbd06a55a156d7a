// The logs explorer with 100,000 records (tenant "bulk", sent in four
// OTLP/JSON requests of 25,000): the list pages in by scrolling to the end,
// the DOM holds a bounded number of rows all along, and the oldest record
// expands to show its fields.
import {T, check, post, setTenant, attr, nsOf, hex} from './harness.mjs';

export const BULK = 100000;
const TENANT = 'bulk';
const SERVICES = ['api', 'worker', 'db-proxy', 'mailer'];
const SEV = [[9, 'INFO'], [9, 'INFO'], [13, 'WARN'], [5, 'DEBUG'], [17, 'ERROR']];
let t0 = 0;
// Records 98,980 to 99,019 share one nanosecond: the first page (the newest
// 1,000) ends among them, so the next page must neither lose nor repeat one.
const TIE = [BULK - 1020, BULK - 980];
const timeIndex = i => i >= TIE[0] && i < TIE[1] ? TIE[0] : i;

export async function seedBulkLogs(s) {
    // One record every 30 ms over the last 50 minutes, oldest first.
    t0 = Date.now() - BULK * 30 - 5000;
    const started = Date.now();
    await Promise.all([0, 1, 2, 3].map(async part => {
        const by = new Map(SERVICES.map(x => [x, []]));
        for (let i = part * BULK / 4; i < (part + 1) * BULK / 4; i++) {
            const [n, text] = SEV[i % SEV.length];
            by.get(SERVICES[i % SERVICES.length]).push({timeUnixNano: nsOf(t0 + timeIndex(i) * 30), severityNumber: n, severityText: text,
                body: {stringValue: `bulk record ${i} handled order ${(i * 7919) % 100000}`},
                traceId: i % 10 === 0 ? hex(0xb0000000 + i, 32) : '', spanId: i % 10 === 0 ? hex(0xb000 + i, 16) : '',
                attributes: [attr('record.index', i), attr('customer', `c-${i % 977}`)]});
        }
        await post(s, 'logs', {resourceLogs: [...by].map(([svc, logRecords]) => ({resource: {attributes: [attr('service.name', svc), attr('host.name', `host-${svc}`)]},
            scopeLogs: [{scope: {name: 'bulk-test'}, logRecords}]}))}, {'X-Scope-OrgID': TENANT});
    }));
    console.log(`note: 100,000 log records sent in 4 OTLP/JSON requests in ${Date.now() - started} ms`);
}

export async function checkBulkLogs(page, s) {
    T.step = 'logs-100k';
    await setTenant(page, [s], TENANT);
    await page.goto(`${s.ui}/logs?range=1h`);
    await page.waitForFunction(() => /^1,000 records/.test((document.querySelector('.log-status') || {textContent: ''}).textContent.trim()));
    const started = Date.now();
    let maxDom = 0, loads = 0, last = 1000;
    // Scroll to the end until the list stops growing; each growth is a page
    // fetched by the infinite scroll.
    for (let i = 0; i < 60 && last < BULK; i++) {
        await page.$eval('.loglist', el => { el.scrollTop = el.scrollHeight; });
        const n = await page.waitForFunction(prev => {
            const m = /^([\d,]+) records/.exec(document.querySelector('.log-status').textContent.trim());
            const n = m ? +m[1].replace(/,/g, '') : 0;
            return n > prev ? n : 0;
        }, last, {timeout: 15000}).then(h => h.jsonValue()).catch(() => 0);
        if (!n) break;
        last = n;
        loads++;
        maxDom = Math.max(maxDom, await page.locator('.log-row').count());
    }
    const ms = Date.now() - started;
    // Around the end of the first page: each of the records sharing one
    // nanosecond shown exactly once.
    const around = new Map();
    for (const top of [960, 990, 1020]) {
        await page.$eval('.loglist', (el, y) => { el.scrollTop = y; }, 24 * top);
        await page.waitForSelector(`.log-row[data-index="${top + 10}"]`, {state: 'attached'});
        for (const [i, rec] of await page.$$eval('.log-row', rs => rs.map(r => [+r.dataset.index, +/bulk record (\d+)/.exec(r.textContent)[1]]))) {
            if (i >= 960 && i < 1040) around.set(i, rec);
        }
    }
    const want = [];
    for (let i = BULK - 961; i > BULK - 1041; i--) want.push(i);
    const got = [...around.values()].sort((a, b) => b - a);
    check(around.size === 80 && JSON.stringify(got) === JSON.stringify(want),
          `records at the first page's boundary, each once: ${got.slice(10, 70)}`);
    check(last === BULK, `scrolling to the end loads all ${BULK} records (got ${last} after ${loads} pages)`);
    console.log(`note: 100,000 records paged in by scrolling in ${ms} ms (${loads} pages, at most ${maxDom} rows in the DOM)`);
    await page.$eval('.loglist', el => { el.scrollTop = el.scrollHeight; });
    await page.waitForSelector(`.log-row[data-index="${BULK - 1}"]`);
    const dom = await page.locator('.log-row').count();
    maxDom = Math.max(maxDom, dom);
    check(maxDom > 5 && maxDom < 150, `the DOM holds a bounded number of rows (at most ${maxDom} of ${BULK})`);
    check(await page.locator('.logs-page > button:has-text("Load older")').isHidden(), 'no more pages to load');
    const lastLine = await page.textContent(`.log-row[data-index="${BULK - 1}"] .log-line`);
    check(lastLine.includes('bulk record 0 handled'), `the last row is the oldest record: ${lastLine}`);
    // Expanding the oldest record shows its fields.
    await page.click(`.log-row[data-index="${BULK - 1}"] .log-line`);
    await page.waitForSelector(`.log-row[data-index="${BULK - 1}"] .log-details`);
    const kv = await page.$$eval(`.log-row[data-index="${BULK - 1}"] .log-details tr`, trs => Object.fromEntries(trs.map(tr =>
        [tr.querySelector('th').textContent, tr.querySelector('td').textContent])));
    check(kv['record.index'] === '0' && kv.customer === 'c-0' && kv.service === 'api' && kv['resource.host.name'] === 'host-api' &&
          kv.trace_id === hex(0xb0000000, 32) && /^INFO/.test(kv.severity), `the expanded record's fields: ${JSON.stringify(kv)}`);
    await page.$eval('.loglist', el => { el.scrollTop = el.scrollHeight; });
    const bottom = await page.$eval('.loglist', el => {
        const b = el.getBoundingClientRect(), r = el.querySelector(`.log-row:last-child`).getBoundingClientRect();
        return {gap: b.bottom - r.bottom, scrolledToEnd: Math.abs(el.scrollTop + el.clientHeight - el.scrollHeight) < 2};
    });
    check(bottom.scrolledToEnd && bottom.gap > -2, `the expanded last record is fully visible at the end: ${JSON.stringify(bottom)}`);
    // A figure, not a check: the time from setting the list's scroll position
    // to the second frame after it (rows drawn), at 40 places across 100k rows.
    const frames = await page.$eval('.loglist', async el => {
        const two = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        const ms = [];
        for (let i = 0; i < 40; i++) {
            const t = performance.now();
            el.scrollTop = ((i * 7919) % 40) / 40 * (el.scrollHeight - el.clientHeight);
            await two();
            ms.push(performance.now() - t);
        }
        ms.sort((a, b) => a - b);
        return {median: ms[20], max: ms[39], rows: el.querySelectorAll('.log-row').length};
    });
    console.log(`note: 100k-row list: a jump to a new scroll position is on screen ${frames.median.toFixed(1)} ms later (median of 40, two frames at 60 Hz are 33.3 ms; max ${frames.max.toFixed(1)} ms; ${frames.rows} rows in the DOM)`);
    // Scrolling back to the top is instant and shows the newest record.
    await page.$eval('.loglist', el => { el.scrollTop = 0; });
    await page.waitForSelector('.log-row[data-index="0"]');
    check((await page.textContent('.log-row[data-index="0"] .log-line')).includes(`bulk record ${BULK - 1} handled`), 'the first row is the newest record');
    check(await page.locator('.histogram rect.hb').count() >= 50, 'the histogram spans the 50 minutes');
    await setTenant(page, [s], null);
}
