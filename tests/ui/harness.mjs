// Shared pieces of the browser tests: starting the real binary on ephemeral
// loopback ports, sending OTLP/JSON, recording failed checks, watching the
// console of every page, and optional screenshots (SIGHTLINE_SCREENSHOTS).
import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const T = {
    binary: '',
    uiDir: '',
    shots: process.env.SIGHTLINE_SCREENSHOTS || '',
    tmp: fs.mkdtempSync(path.join(os.tmpdir(), 'sightline-ui-')),
    servers: [],
    failures: [],
    // The step being run, for messages; URLs whose failed loads are expected.
    step: 'start',
    allowed: [],
};

export function check(cond, msg) {
    if (!cond) { T.failures.push(msg); console.error('FAIL:', msg); }
    return cond;
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));

// Polls fn until it returns a truthy value (returned) or timeoutMs passes (null).
export async function until(fn, timeoutMs = 15000, everyMs = 100) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) return null;
        await sleep(everyMs);
    }
}

export async function startServer(name, extra = []) {
    const dir = path.join(T.tmp, name);
    fs.mkdirSync(dir);
    const ports = path.join(dir, 'ports.json');
    const log = fs.openSync(path.join(dir, 'server.log'), 'a');
    const proc = spawn(T.binary, ['serve', '--host', '127.0.0.1', '--otlp-http-port', '0', '--otlp-grpc-port', '0',
                                  '--query-port', '0', '--data-dir', path.join(dir, 'data'), '--ports-file', ports,
                                  '--ui-dir', T.uiDir, '--log-level', 'warn', ...extra], {stdio: ['ignore', log, log]});
    const s = {proc, dir, name};
    T.servers.push(s);
    for (let i = 0; i < 400; i++) {
        if (proc.exitCode != null) throw new Error(`sightline exited: ${fs.readFileSync(path.join(dir, 'server.log'), 'utf8')}`);
        if (fs.existsSync(ports)) {
            try {
                const p = JSON.parse(fs.readFileSync(ports, 'utf8'));
                s.otlp = `http://127.0.0.1:${p.otlp_http}`;
                s.ui = `http://127.0.0.1:${p.query}`;
                return s;
            } catch { /* partly written */ }
        }
        await sleep(50);
    }
    throw new Error('sightline did not start');
}

export async function post(s, signal, body, headers = {}) {
    const res = await fetch(`${s.otlp}/v1/${signal}`, {method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body),
                                                      headers: {'Content-Type': 'application/json', ...headers}});
    if (!res.ok) throw new Error(`POST /v1/${signal}: ${res.status} ${await res.text()}`);
    return res.json();
}

// GET on the query API; resolves to {status, json}.
export async function getJson(s, pathAndQuery, headers = {}) {
    const res = await fetch(`${s.ui}${pathAndQuery}`, {headers});
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* not JSON */ }
    return {status: res.status, json};
}

// The result of a PromQL instant query (null on an error answer).
export async function promQuery(s, query, time) {
    const qs = new URLSearchParams({query});
    if (time != null) qs.set('time', String(time));
    const r = await getJson(s, `/api/v1/query?${qs}`);
    if (r.status !== 200) console.log(`note: ${query} on ${s.name}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.status === 200 ? r.json.data.result : null;
}

// Waits until every write-ahead log record of s was cut into blocks (its
// span metrics then have their own sample: deltas cut together merge).
export async function waitCut(s, timeoutMs = 10000) {
    return until(async () => {
        const text = await (await fetch(`${s.ui}/metrics`)).text();
        return /^sightline_storage_wal_records 0$/m.test(text);
    }, timeoutMs, 50);
}

export function watch(page) {
    page.on('console', msg => {
        if (msg.type() !== 'error') return;
        const url = (msg.location() && msg.location().url) || '';
        // The browser's own favicon request for a non-HTML page (setTenant).
        if (/Failed to load resource/.test(msg.text()) && (T.allowed.some(a => url.includes(a)) || url.endsWith('/favicon.ico'))) return;
        check(false, `[${T.step}] console error: ${msg.text()} (${url})`);
    });
    page.on('pageerror', err => check(false, `[${T.step}] uncaught exception: ${err.message}`));
}

// Sets (or with null removes) the UI's tenant on each server: localStorage
// is per origin, and every server has its own port.
export async function setTenant(page, servers, tenant) {
    for (const s of servers) {
        await page.goto(`${s.ui}/js/app.js`);
        await page.evaluate(t => t ? localStorage.setItem('sightline.tenant', t) : localStorage.removeItem('sightline.tenant'), tenant);
    }
}

export async function shot(page, name) {
    if (!T.shots) return;
    await page.waitForTimeout(300);
    await page.screenshot({path: path.join(T.shots, `${name}.png`), fullPage: false});
}

export function cleanup() {
    for (const s of T.servers) { try { s.proc.kill('SIGTERM'); } catch { /* gone */ } }
    T.servers = [];
    fs.rmSync(T.tmp, {recursive: true, force: true});
}
// Whatever way the run ends (a crash included), no server outlives it.
process.on('exit', cleanup);

export function serverLogs() {
    for (const s of T.servers) {
        try { console.error(`--- ${s.name} server log:\n` + fs.readFileSync(path.join(s.dir, 'server.log'), 'utf8').slice(-2000)); } catch { /* none */ }
    }
}

// OTLP/JSON helpers.
export const attr = (k, v) => ({key: k, value: typeof v === 'number' ? {intValue: String(v)} : typeof v === 'boolean' ? {boolValue: v} : {stringValue: v}});
export const nsOf = ms => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
export const hex = (n, len) => n.toString(16).padStart(len, '0');
export function resourceSpans(service, spans, extraAttrs = []) {
    return {resource: {attributes: [attr('service.name', service), ...extraAttrs]},
            scopeSpans: [{scope: {name: 'sightline-ui-test', version: '1.0'}, spans}]};
}
