// Time-series charts on uPlot (loaded from the npm package's ES module).
import uPlot from '/node_modules/uplot/dist/uPlot.esm.js';
import {fmtNumber} from './util.js';

const COLORS = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#76b7b2', '#edc948',
                '#ff9da7', '#9c755f', '#6a9fd8'];

export function seriesName(metric) {
    const m = Object.assign({}, metric);
    const name = m.__name__ || '';
    delete m.__name__;
    const labels = Object.entries(m).map(([k, v]) => `${k}="${v}"`).join(', ');
    return labels ? `${name}{${labels}}` : name || '{}';
}

// Draws a Prometheus matrix result into el; returns the uPlot instance
// (destroy() it when the page goes away), also kept as el.uplot so that its
// data can be read from the console (and by the browser tests). range, the
// query's [start, end] in seconds, fixes the time axis to what was asked
// for, as Grafana does: without it uPlot fits the axis to the data, and a
// single timestamp (data that began a moment ago) stretched it over years.
export function lineChart(el, matrix, {height = 300, unit = '', range = null} = {}) {
    const ts = new Set();
    for (const s of matrix) for (const [t] of s.values) ts.add(+t);
    const xs = [...ts].sort((a, b) => a - b);
    const idx = new Map(xs.map((t, i) => [t, i]));
    const data = [xs];
    for (const s of matrix) {
        const ys = new Array(xs.length).fill(null);
        for (const [t, v] of s.values) ys[idx.get(+t)] = parseFloat(v);
        data.push(ys);
    }
    const dark = matchMedia('(prefers-color-scheme: dark)').matches;
    const axis = {stroke: dark ? '#bbb' : '#444', grid: {stroke: dark ? '#333' : '#e5e5e5'}, ticks: {stroke: dark ? '#333' : '#ddd'}};
    const opts = {
        width: Math.max(280, el.clientWidth || 800), height,
        series: [{}, ...matrix.map((s, i) => ({label: seriesName(s.metric), stroke: COLORS[i % COLORS.length], width: 1.5,
                                               value: (u, v) => v == null ? '—' : fmtNumber(v) + unit, spanGaps: false}))],
        axes: [axis, Object.assign({values: (u, vals) => vals.map(v => fmtNumber(v) + unit), size: 60}, axis)],
        scales: range ? {x: {time: true, auto: false, range: () => [range[0], range[1]]}} : {},
        cursor: {focus: {prox: 16}},
        legend: {live: true},
    };
    const u = new uPlot(opts, data, el);
    el.uplot = u;
    const ro = new ResizeObserver(() => u.setSize({width: Math.max(280, el.clientWidth), height}));
    ro.observe(el);
    const destroy = u.destroy.bind(u);
    u.destroy = () => { ro.disconnect(); destroy(); };
    return u;
}
