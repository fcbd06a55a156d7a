// Talks to the query server: every call carries the tenant (X-Scope-OrgID)
// and, when one is set, the bearer token. Errors become ApiError with the
// HTTP status and the server's message (Jaeger or Prometheus envelope).
// Slow calls show a spinner in the header; calls time out after 30 s.

export class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

export const settings = {
    get tenant() { return localStorage.getItem('sightline.tenant') || 'default'; },
    set tenant(v) { localStorage.setItem('sightline.tenant', v || 'default'); },
    get token() { return localStorage.getItem('sightline.token') || ''; },
    set token(v) {
        if (v) localStorage.setItem('sightline.token', v);
        else localStorage.removeItem('sightline.token');
    },
};

let inflight = 0;
const busyListeners = new Set();
export function onBusy(fn) { busyListeners.add(fn); }
function busy(d) { inflight += d; for (const f of busyListeners) f(inflight); }

const TIMEOUT_MS = 30000;

// GET (or POST form) path with params; resolves to the parsed JSON body.
export async function api(path, params = {}, {signal, method = 'GET'} = {}) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
        if (v == null || v === '') continue;
        if (Array.isArray(v)) v.forEach(x => qs.append(k, x));
        else qs.append(k, v);
    }
    const headers = {'X-Scope-OrgID': settings.tenant, 'Accept': 'application/json'};
    if (settings.token) headers['Authorization'] = `Bearer ${settings.token}`;
    let url = path, body;
    if (method === 'POST') {
        body = qs;
    } else if ([...qs].length) {
        url += '?' + qs;
    }
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new ApiError(0, `No answer after ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    if (signal) signal.addEventListener('abort', () => ctl.abort(signal.reason), {once: true});
    busy(1);
    try {
        let res;
        try {
            res = await fetch(url, {method, headers, body, signal: ctl.signal});
        } catch (e) {
            if (ctl.signal.reason instanceof ApiError) throw ctl.signal.reason;
            if (e.name === 'AbortError') throw e;
            throw new ApiError(0, `The server cannot be reached (${e.message})`);
        }
        const text = await res.text();
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        if (!res.ok) {
            let msg = json && (json.error || (json.errors && json.errors[0] && json.errors[0].msg));
            if (res.status === 401) {
                msg = `Unauthorized: ${msg || 'a valid bearer token is needed'}. Set the token in Settings.`;
            } else if (res.status === 403) {
                msg = `Forbidden: ${msg || 'the token may not read this tenant'}`;
            }
            throw new ApiError(res.status, msg || `${res.status} ${res.statusText}`);
        }
        if (json && json.status === 'error') throw new ApiError(res.status, json.error || 'error');
        return json;
    } finally {
        clearTimeout(timer);
        busy(-1);
    }
}

// The Prometheus API's data, or an ApiError.
export async function prom(path, params, opts) {
    const j = await api(path, params, opts);
    return j ? j.data : null;
}

export function isAbort(e) {
    return e && (e.name === 'AbortError' || (e instanceof DOMException && e.code === 20));
}
