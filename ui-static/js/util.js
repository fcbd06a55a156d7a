// Small DOM and formatting helpers shared by every page.

// h('div.cls#id', {attrs}, ...children): creates an element. Attributes
// starting with "on" become listeners; children may be strings, nodes,
// arrays or null.
export function h(sel, attrs, ...children) {
    const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(sel);
    const el = document.createElementNS(
        SVG_TAGS.has(m[1]) ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml',
        m[1] || 'div');
    for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
        if (part[0] === '.') el.classList.add(part.slice(1));
        else el.id = part.slice(1);
    }
    // A first child in place of the attributes (0 and '' included).
    if (attrs != null && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
        children.unshift(attrs);
        attrs = null;
    }
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v == null || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
        else if (k === 'value' && 'value' in el) el.value = v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
}

const SVG_TAGS = new Set(['svg', 'g', 'rect', 'line', 'circle', 'path', 'text', 'title',
                          'polyline', 'marker', 'defs']);

function append(el, c) {
    if (c == null || c === false) return;
    if (Array.isArray(c)) { for (const x of c) append(el, x); return; }
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
}

export function clear(el, ...children) {
    el.replaceChildren();
    append(el, children);
    return el;
}

// Durations arrive in microseconds (Jaeger API).
export function fmtDurationUs(us) {
    if (us == null || isNaN(us)) return '';
    if (us < 1000) return `${Math.round(us)}µs`;
    if (us < 1e6) return `${+(us / 1000).toFixed(us < 1e4 ? 2 : 1)}ms`;
    if (us < 6e7) return `${+(us / 1e6).toFixed(2)}s`;
    const m = Math.floor(us / 6e7);
    return `${m}m${Math.round((us - m * 6e7) / 1e6)}s`;
}

export function fmtTimeMs(ms, withDate = true) {
    const d = new Date(ms);
    const p = (n, w = 2) => String(n).padStart(w, '0');
    const t = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
    return withDate ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${t}` : t;
}

export function fmtNumber(v) {
    if (v == null || isNaN(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a < 0.001 || a >= 1e6)) return v.toExponential(3);
    return String(+v.toFixed(a < 1 ? 4 : 2));
}

// A rate per second, in the unit that reads best: "12/s", "0.25/s",
// "3.5/min", "2/h" (a service called twice in an hour is not "5.556e-4/s").
export function fmtRate(perSec) {
    if (perSec == null || isNaN(perSec)) return '—';
    const r = +perSec;
    const short = v => String(+v.toPrecision(v >= 100 ? 3 : 2));
    if (r === 0) return '0/s';
    if (r >= 0.1) return `${short(r)}/s`;
    if (r * 60 >= 0.1) return `${short(r * 60)}/min`;
    return `${short(r * 3600)}/h`;
}

// A stable colour per service name.
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7',
                 '#9c755f', '#6a9fd8', '#d37295', '#8cd17d', '#e0a84a', '#a0cbe8', '#86bcb6'];
export function colorOf(name) {
    let x = 2166136261;
    for (let i = 0; i < name.length; i++) x = Math.imul(x ^ name.charCodeAt(i), 16777619);
    return PALETTE[(x >>> 0) % PALETTE.length];
}

// Relative ranges offered by every time picker.
export const RANGES = [['5m', 300], ['15m', 900], ['1h', 3600], ['6h', 21600], ['24h', 86400],
                       ['2d', 172800], ['7d', 604800]];

export function parseSeconds(s) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)?$/.exec(String(s).trim());
    if (!m) return NaN;
    const mult = {ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800}[m[2] || 's'];
    return parseFloat(m[1]) * mult;
}

// A time-range picker: relative ranges plus absolute start/end. state holds
// {range, start, end} (start/end as datetime-local strings when range is
// "custom"). Returns {el, get(): {startMs, endMs}}.
export function timePicker(state, onChange) {
    const sel = h('select', {'aria-label': 'Time range', name: 'range'},
        RANGES.map(([k]) => h('option', {value: k}, `Last ${k}`)),
        h('option', {value: 'custom'}, 'Custom range'));
    sel.value = state.range || '1h';
    const start = h('input', {type: 'datetime-local', step: '1', 'aria-label': 'Start time',
                              value: state.start || ''});
    const end = h('input', {type: 'datetime-local', step: '1', 'aria-label': 'End time',
                            value: state.end || ''});
    const abs = h('span.abs', start, ' – ', end);
    const sync = () => {
        abs.hidden = sel.value !== 'custom';
        if (sel.value === 'custom' && !start.value) {
            const now = Date.now();
            start.value = toLocalInput(now - 3600e3);
            end.value = toLocalInput(now);
        }
    };
    sel.addEventListener('change', () => { sync(); onChange && onChange(); });
    sync();
    return {
        el: h('span.timepicker', sel, abs),
        get() {
            if (sel.value === 'custom') {
                const s = Date.parse(start.value), e = Date.parse(end.value);
                if (isNaN(s) || isNaN(e) || s >= e) throw new Error('The custom range needs a start before its end');
                return {startMs: s, endMs: e};
            }
            const secs = parseSeconds(sel.value);
            const now = Date.now();
            return {startMs: now - secs * 1000, endMs: now};
        },
        state() {
            return sel.value === 'custom' ? {range: 'custom', start: start.value, end: end.value}
                                          : {range: sel.value};
        },
    };
}

export function toLocalInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
}

// Shows a message in place of results: kind is "empty", "error", "loading" or "na".
export function notice(kind, text, detail) {
    return h(`div.notice.${kind}`, {role: kind === 'error' ? 'alert' : 'status'},
        h('strong', text), detail ? h('div.detail', detail) : null);
}

export function debounce(fn, ms) {
    let t = 0;
    return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

// A link that navigates inside the single-page app.
export function link(href, ...children) {
    return h('a', {href, 'data-nav': ''}, ...children);
}
