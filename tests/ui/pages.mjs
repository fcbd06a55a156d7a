// Every page against the list: empty results, API errors and slow
// responses are visible; 1280 px and 420 px windows without sideways
// scrolling; every page's controls reachable with Tab; dark scheme without
// light patches.
import {T, check, setTenant} from './harness.mjs';
import {CHECKOUT_TRACE} from './otlp_data.mjs';

// [name, path on the main server, path on the fleet server or null]
const PAGES = [
    ['search', '/search?service=frontend', null],
    ['trace', `/trace/${CHECKOUT_TRACE}`, null],
    ['logs', '/logs', null],
    ['metrics', '/graph?q=sum(traces_span_metrics_calls_total)', null],
    ['map', '/map', '/map'],
    ['health', '/health', '/health'],
    ['alerts', '/alerts', '/alerts'],
];

// Settled: the page has drawn (main's aria-busy is false), no API call is
// in flight and nothing says it is loading.
const settle = page => page.waitForFunction(() => document.querySelector('main[aria-busy="false"]') &&
    (document.getElementById('busy').dataset.inflight || '0') === '0' && !document.querySelector('main .notice.loading'));

const notices = page => page.$$eval('main .notice', els => els.map(e => ({kind: [...e.classList].find(c => c !== 'notice'),
                                                                          role: e.getAttribute('role'), text: e.textContent})));

export async function checkEveryPage(page, s, fleet) {
    const base = (p, onFleet) => `${onFleet ? fleet.ui : s.ui}${p}`;

    // API errors: every call fails with 503 and the server's message.
    T.step = 'pages-errors';
    T.allowed = ['/api/'];
    await page.route(/\/api\//, route => route.fulfill({status: 503, contentType: 'application/json',
        body: '{"status":"error","errorType":"unavailable","error":"storage is unavailable","data":null,"errors":[{"code":503,"msg":"storage is unavailable"}]}'}));
    for (const [name, p] of PAGES) {
        await page.goto(base(p));
        await settle(page);
        const n = await notices(page);
        check(n.some(x => x.kind === 'error' && x.role === 'alert' && x.text.includes('storage is unavailable')),
              `${name}: a failing API shows the server's message: ${JSON.stringify(n)}`);
    }
    await page.unroute(/\/api\//);
    T.allowed = [];

    // Slow answers (900 ms each): the page says it is loading and the header's
    // indicator (shown after 300 ms) counts the seconds; once seen, later
    // calls go through at once and the data shows.
    T.step = 'pages-slow';
    // (A call still waiting when the route is removed goes on by itself.)
    const slow = async route => { await new Promise(r => setTimeout(r, 900)); await route.continue().catch(() => {}); };
    for (const [name, p, fp] of PAGES) {
        await page.route(/\/api\//, slow);
        await page.goto(base(fp || p, !!fp));
        const seen = await page.waitForFunction(() => document.querySelector('main .notice.loading') && document.querySelector('#busy.on'),
                                                null, {timeout: 5000}).then(() => true).catch(() => false);
        check(seen, `${name}: a slow answer shows a loading notice and the busy indicator`);
        await page.unroute(/\/api\//, slow);
        await settle(page);
        check(!(await notices(page)).some(x => x.kind === 'error'), `${name}: no error once the slow answer came`);
    }

    // Empty results: a tenant without data.
    T.step = 'pages-empty';
    T.allowed = ['/api/traces/'];
    await setTenant(page, [s, fleet], 'nobody');
    for (const [name, p, fp] of PAGES) {
        await page.goto(base(fp || p, !!fp));
        await settle(page);
        const n = await notices(page);
        const want = name === 'trace' ? x => x.text.includes('was not found') : x => x.kind === 'empty';
        check(n.some(want), `${name}: an empty tenant shows a notice: ${JSON.stringify(n)}`);
        check(name === 'trace' || !n.some(x => x.kind === 'error'), `${name}: empty is not an error: ${JSON.stringify(n)}`);
    }
    await setTenant(page, [s, fleet], null);
    T.allowed = [];

    // With data (the fleet server for the map, health and alerts): at 1280 px
    // in the dark scheme with the keyboard, then at 420 px in the light one.
    for (const [w, scheme] of [[1280, 'dark'], [420, 'light']]) {
        T.step = `pages-${w}px-${scheme}`;
        await page.setViewportSize({width: w, height: 860});
        await page.emulateMedia({colorScheme: scheme});
        for (const [name, p, fp] of PAGES) {
            await page.goto(base(fp || p, !!fp));
            await settle(page);
            const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
            check(over <= 1, `${name} fits a ${w}px window (overflow ${over}px)`);
            const hidden = await page.evaluate(() => [...document.querySelectorAll('main h1, main button, main select, main input')]
                .filter(e => e.offsetParent !== null).filter(e => { const r = e.getBoundingClientRect(); return r.right > innerWidth + 1 || r.left < -1; })
                .map(e => e.outerHTML.slice(0, 60)));
            check(hidden.length === 0, `${name} at ${w}px: every control is inside the window: ${hidden}`);
            if (scheme === 'dark') {
                await checkDark(page, name);
                await checkKeyboard(page, name);
            }
        }
    }
    await page.setViewportSize({width: 1280, height: 860});
    await page.emulateMedia({colorScheme: 'light'});
}

// Dark scheme: dark background, light text, and no element of the page
// painted with a light background.
async function checkDark(page, name) {
    const r = await page.evaluate(() => {
        const lum = c => { const m = /rgba?\(([\d.]+), ([\d.]+), ([\d.]+)(?:, ([\d.]+))?\)/.exec(c); if (!m || m[4] === '0') return null;
                           return (0.2126 * m[1] + 0.7152 * m[2] + 0.0722 * m[3]) / 255; };
        // Patches: boxes bigger than a marker, not painted with a data colour
        // (span bars); the critical path's bar is meant to stand out.
        const light = [...document.querySelectorAll('body *')].filter(e => e.offsetParent !== null && !e.classList.contains('crit'))
            .filter(e => { const b = e.getBoundingClientRect(); return b.width * b.height > 400; })
            .filter(e => !e.style.background && !e.style.backgroundColor)
            .filter(e => { const l = lum(getComputedStyle(e).backgroundColor); return l != null && l > 0.75; })
            .map(e => e.tagName + '.' + [...e.classList].join('.'));
        return {bg: lum(getComputedStyle(document.body).backgroundColor), fg: lum(getComputedStyle(document.querySelector('main')).color), light};
    });
    check(r.bg < 0.2 && r.fg > 0.7, `${name}: dark background and light text: ${JSON.stringify(r)}`);
    check(r.light.length === 0, `${name}: no light patches in the dark scheme: ${r.light.slice(0, 5)}`);
}

// Keyboard: from the top of the page, Tab reaches the skip link first, which
// moves the focus to the page; then Tab reaches the page's controls.
async function checkKeyboard(page, name) {
    await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
    await page.keyboard.press('Tab');
    check(await page.evaluate(() => document.activeElement.classList.contains('skip')), `${name}: the first Tab stop is "Skip to content"`);
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.activeElement.id === 'main' && document.querySelector('main[aria-busy="false"]') !== null),
          `${name}: "Skip to content" moves the focus to the page, which stays drawn`);
    const want = await page.evaluate(() => [...document.querySelectorAll('main :is(a[href], button:not([disabled]), input, select, textarea, [tabindex="0"])')]
        .filter(e => e.offsetParent !== null || e instanceof SVGElement).length);
    const goal = Math.min(want, 10);
    const reached = new Set();
    for (let i = 0; i < 40 && reached.size < goal; i++) {
        await page.keyboard.press('Tab');
        const id = await page.evaluate(() => {
            const a = document.activeElement;
            return a && a.closest('main') ? a.outerHTML.slice(0, 80) : null;
        });
        if (id) reached.add(id);
    }
    check(want > 0 && reached.size >= goal, `${name}: Tab reaches the page's controls (${reached.size} of ${want})`);
}
