// RED panels with known values: service red-api sends two identical
// requests of 10 server spans, the second after the first one's span metrics
// were cut (so every series has two samples and rate() has something to
// work with). Each request: 6 spans of 3 ms and 4 of 30 ms; 4 of the 10
// (one short, three long) fail. So, at every point of the charts:
// - rate and errors are Prometheus's extrapolated rate of the stored
//   samples (computed here from the raw samples the API returns), and
//   errors / rate = 0.4;
// - p50 = 0.002 + 0.002 * 5/6 s (rank 5 of 10, in the (2 ms, 4 ms] bucket
//   holding 6), p95 = 0.01 + 0.04 * 3.5/4 s and p99 = 0.01 + 0.04 * 3.9/4 s
//   (in the (10 ms, 50 ms] bucket holding 4): every bucket grows in the same
//   proportion, so extrapolation cancels out.
import {check, until, waitCut, post, promQuery, resourceSpans, nsOf, hex, T} from './harness.mjs';

const SERVICE = 'red-api';
const SEL = `service_name="${SERVICE}"`;
export const RED_P = [0.002 + 0.002 * 5 / 6, 0.01 + 0.04 * 3.5 / 4, 0.01 + 0.04 * 3.9 / 4];

function batch(k) {
    const now = Date.now();
    const spans = [];
    for (let i = 0; i < 10; i++) {
        const dur = i < 6 ? 3 : 30;
        const fail = i === 0 || i >= 6 && i <= 8;
        spans.push({traceId: hex(0xed0000 + k * 100 + i, 32), spanId: hex(0xed00 + k * 100 + i, 16), name: 'GET /items', kind: 2,
                    startTimeUnixNano: nsOf(now - 100 - dur), endTimeUnixNano: nsOf(now - 100),
                    status: fail ? {code: 2, message: 'boom'} : {}});
    }
    return {resourceSpans: [resourceSpans(SERVICE, spans)]};
}

const samples = async s => {
    const r = await promQuery(s, `count_over_time(traces_span_metrics_calls_total{${SEL},status_code="STATUS_CODE_ERROR"}[1h])`);
    return r && r.length ? +r[0].value[1] : 0;
};

export async function seedRed(s) {
    await post(s, 'traces', batch(0));
    check(await waitCut(s), 'red-api: the first request\'s span metrics were cut');
    await post(s, 'traces', batch(1));
    check(await until(async () => await samples(s) === 2, 10000), 'red-api: two samples per series');
}

// Prometheus's extrapolated rate over [t - range, t] (both ends inclusive)
// of one counter's samples [[t_s, v], ...], or null with fewer than two.
export function extrapolatedRate(samples, t, range) {
    const s = samples.filter(([ts]) => ts >= t - range - 1e-9 && ts <= t + 1e-9);
    if (s.length < 2) return null;
    const first = s[0], last = s[s.length - 1];
    let result = last[1] - first[1];
    const sampled = last[0] - first[0], avg = sampled / (s.length - 1);
    let toStart = first[0] - (t - range);
    const toEnd = t - last[0];
    if (result > 0 && first[1] >= 0) toStart = Math.min(toStart, sampled * (first[1] / result));
    const threshold = avg * 1.1;
    const interval = sampled + (toStart < threshold ? toStart : avg / 2) + (toEnd < threshold ? toEnd : avg / 2);
    return result * (interval / sampled) / range;
}

const near = (a, b) => a != null && b != null && Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

export async function checkRed(page, s) {
    T.step = 'red';
    await page.goto(`${s.ui}/graph?service=${SERVICE}`);
    await page.waitForSelector(`#m-red-service option[value="${SERVICE}"]`, {state: 'attached'});
    check(await page.inputValue('#m-red-service') === SERVICE, 'the RED service comes from the address');
    await page.waitForFunction(() => document.querySelectorAll('.red-panels .panel').length === 3 &&
                                     !document.querySelector('.red-panels .notice.loading'));
    const charts = await page.$$eval('.red-panels .panel .chart', els => els.map(el => el.uplot ? {
        labels: el.uplot.series.slice(1).map(x => x.label), data: el.uplot.data} : el.textContent));
    if (!check(charts.every(c => typeof c === 'object'), `every RED panel draws a chart: ${JSON.stringify(charts)}`)) return;
    const [rate, errors, lat] = charts;
    check(JSON.stringify(lat.labels) === '["p50","p95","p99"]', `latency panel series: ${lat.labels}`);

    // The raw samples, to compute what rate() must give at each point.
    const raw = {};
    for (const r of await promQuery(s, `traces_span_metrics_calls_total{${SEL}}[1h]`) || []) {
        raw[r.metric.status_code] = r.values.map(([t, v]) => [+t, +v]);
    }
    check(Object.keys(raw).sort().join() === 'STATUS_CODE_ERROR,STATUS_CODE_UNSET', `red-api series: ${Object.keys(raw)}`);
    let points = 0;
    const xs = rate.data[0];
    for (let i = 0; i < xs.length; i++) {
        const t = xs[i];
        const e = extrapolatedRate(raw.STATUS_CODE_ERROR || [], t, 300), u = extrapolatedRate(raw.STATUS_CODE_UNSET || [], t, 300);
        const want = e == null && u == null ? null : (e || 0) + (u || 0);
        const got = rate.data[1][i];
        if (want == null) { check(got == null, `rate at ${t}: ${got}, want no point`); continue; }
        points++;
        check(near(got, want), `rate at ${t}: ${got}, want ${want}`);
    }
    check(points > 0, 'the rate panel has points');
    for (let i = 0; i < errors.data[0].length; i++) {
        const t = errors.data[0][i], got = errors.data[1][i];
        const want = extrapolatedRate(raw.STATUS_CODE_ERROR || [], t, 300);
        if (want == null) continue;
        check(near(got, want), `errors at ${t}: ${got}, want ${want}`);
        const r = rate.data[1][rate.data[0].indexOf(t)];
        check(near(got / r, 0.4), `errors / rate at ${t}: ${got / r}`);
    }
    let latPoints = 0;
    for (let k = 0; k < 3; k++) {
        for (const v of lat.data[k + 1]) {
            if (v == null) continue;
            latPoints++;
            check(near(v, RED_P[k]), `${lat.labels[k]} point ${v}, want ${RED_P[k]}`);
        }
    }
    check(latPoints >= 3, 'the latency panel has points');

    // Hovering the newest point shows the quantiles in the legend, as a person reads them.
    const over = page.locator('.red-panels .panel:nth-child(3) .u-over');
    const box = await over.boundingBox();
    await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2);
    const legend = await page.$$eval('.red-panels .panel:nth-child(3) .u-legend .u-series', rows => rows.map(r => r.textContent.trim()));
    check(legend.some(x => x.includes('p50') && x.includes('0.0037s')) && legend.some(x => x.includes('p95') && x.includes('0.045s')) &&
          legend.some(x => x.includes('p99') && x.includes('0.049s')), `latency legend on hover: ${legend}`);
}
