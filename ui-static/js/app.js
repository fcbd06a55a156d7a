// The single-page app: routes paths to pages, keeps the tenant and token
// settings, and shows a busy indicator while API calls are slow.
import {settings, onBusy} from './api.js';

const PAGES = {
    search: () => import('./pages/search.js'),
    trace: () => import('./pages/trace.js'),
    logs: () => import('./pages/logs.js'),
    graph: () => import('./pages/metrics.js'),
    map: () => import('./pages/map.js'),
    health: () => import('./pages/health.js'),
    alerts: () => import('./pages/alerts.js'),
};

let current = null; // {ctl: AbortController, cleanup}

function parseRoute(loc) {
    const parts = loc.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const name = parts[0] && PAGES[parts[0]] ? parts[0] : 'search';
    return {name, args: parts.slice(1), query: new URLSearchParams(loc.search)};
}

let shown = ''; // path and query of the page drawn

async function render() {
    const route = parseRoute(location);
    shown = location.pathname + location.search;
    if (current) {
        current.ctl.abort();
        if (current.cleanup) current.cleanup();
    }
    const ctl = new AbortController();
    current = {ctl, cleanup: null};
    for (const a of document.querySelectorAll('header nav a')) {
        const on = a.dataset.page === route.name || (route.name === 'trace' && a.dataset.page === 'search');
        if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const main = document.getElementById('main');
    main.replaceChildren();
    main.dataset.page = route.name;
    // aria-busy: true until the page has drawn what its first answers gave.
    main.setAttribute('aria-busy', 'true');
    const mod = await PAGES[route.name]();
    if (ctl.signal.aborted) return;
    const cleanup = await mod.render(main, route, {signal: ctl.signal, navigate});
    if (ctl.signal.aborted) { if (cleanup) cleanup(); return; }
    current.cleanup = cleanup || null;
    main.setAttribute('aria-busy', 'false');
}

// Goes to url inside the app (replace: no new history entry, for state
// that only refines the current page such as a search's parameters).
export function navigate(url, {replace = false, rerender = true} = {}) {
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    if (!rerender) shown = location.pathname + location.search;
    if (rerender) render();
}

document.addEventListener('click', e => {
    const a = e.target.closest && e.target.closest('a[data-nav]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(a.getAttribute('href'));
});
// Back and forward re-render; a fragment change (the "Skip to content" link)
// does not.
window.addEventListener('popstate', () => { if (location.pathname + location.search !== shown) render(); });

document.getElementById('traceid-form').addEventListener('submit', e => {
    e.preventDefault();
    const id = e.target.id.value.trim().toLowerCase();
    if (id) navigate(`/trace/${encodeURIComponent(id)}`);
});

// Settings: tenant and token, kept in localStorage.
const panel = document.getElementById('settings');
const btn = document.getElementById('settings-btn');
function showSettings(open) {
    panel.hidden = !open;
    btn.setAttribute('aria-expanded', String(open));
    if (open) {
        document.getElementById('tenant').value = settings.tenant;
        document.getElementById('token').value = settings.token;
        document.getElementById('tenant').focus();
    }
}
btn.addEventListener('click', () => showSettings(panel.hidden));
panel.addEventListener('keydown', e => { if (e.key === 'Escape') { showSettings(false); btn.focus(); } });
function saveSettings() {
    settings.tenant = document.getElementById('tenant').value.trim();
    settings.token = document.getElementById('token').value.trim();
    const known = JSON.parse(localStorage.getItem('sightline.tenants') || '["default"]');
    if (!known.includes(settings.tenant)) known.push(settings.tenant);
    localStorage.setItem('sightline.tenants', JSON.stringify(known.slice(-20)));
    showSettings(false);
    updateTenant();
    render();
}
document.getElementById('settings-save').addEventListener('click', saveSettings);
panel.addEventListener('keydown', e => { if (e.key === 'Enter') { e.preventDefault(); saveSettings(); } });
function updateTenant() {
    document.getElementById('tenant-label').textContent = settings.tenant + (settings.token ? ' 🔑' : '');
    const dl = document.getElementById('tenants');
    dl.replaceChildren(...JSON.parse(localStorage.getItem('sightline.tenants') || '["default"]')
        .map(t => Object.assign(document.createElement('option'), {value: t})));
}
updateTenant();

// A busy indicator that appears only when a call takes longer than 300 ms.
let busyTimer = 0, busySince = 0;
onBusy(n => {
    const el = document.getElementById('busy');
    el.dataset.inflight = String(n);
    clearInterval(busyTimer);
    if (n === 0) { el.textContent = ''; el.classList.remove('on'); return; }
    if (!busySince) busySince = Date.now();
    busyTimer = setInterval(() => {
        const s = (Date.now() - busySince) / 1000;
        if (s > 0.3) { el.classList.add('on'); el.textContent = `Loading… ${s.toFixed(1)} s`; }
    }, 100);
});
onBusy(n => { if (n === 0) busySince = 0; });

render();
