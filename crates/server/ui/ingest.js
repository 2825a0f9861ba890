// The Ingest page: per table, live sparklines of rows/s, mean commit
// latency, queued bytes and rejections, and a small panel of SQL statements
// by kind (counts, errors, mean latency, rows returned, running now), from
// GET /metrics polled every few seconds while the page is open.

import {request} from './api.js';
import {errorBox, fill, h} from './dom.js';
import {sparkline} from './charts.js';
import {parseMetrics, sumBy} from './prometheus.js';

export const id = 'ingest';
export const label = 'Ingest';
export const role = 'reader';

const POLL_MS = 3000;
/** Samples kept per series (a few minutes at POLL_MS). */
const KEEP = 60;

let body;
let queries;
let note;
let timer = null;
let previous = null; // {at, rows, commitSum, commitCount, rejections}
const series = new Map(); // table → {rows: [], latency: [], queue: [], rejections: []}

const SERIES = [
  {key: 'rows', title: 'Rows/s', unit: (v) => `${v.toFixed(1)} rows/s`},
  {key: 'latency', title: 'Commit latency', unit: (v) => (Number.isFinite(v) ? `${(v * 1000).toFixed(0)} ms` : 'no commits seen')},
  {key: 'queue', title: 'Queue', unit: (v) => `${v} bytes`},
  {key: 'rejections', title: 'Rejections/s', unit: (v) => `${v.toFixed(2)} /s`},
];

export function mount(panel) {
  note = h('p', {class: 'help'}, `Updated every ${POLL_MS / 1000} s from /metrics while this page is open.`);
  body = h('div', {'aria-live': 'off'});
  queries = h('div', {'aria-live': 'off'});
  fill(panel, h('h1', {}, 'Ingest'), note, body, h('h2', {}, 'Queries'), queries);
}

export function show() {
  if (timer === null) {
    poll();
    timer = setInterval(poll, POLL_MS);
  }
}

export function hide() {
  if (timer !== null) clearInterval(timer);
  timer = null;
}

function push(list, value) {
  list.push(value);
  if (list.length > KEEP) list.shift();
}

async function poll() {
  let samples;
  try {
    samples = parseMetrics(await (await request('/metrics', {accept: 'text/plain'})).text());
  } catch (error) {
    fill(body, errorBox(error));
    return;
  }
  const now = {
    at: performance.now(),
    rows: sumBy(samples, 'silt_ingest_rows_total', 'table'),
    commitSum: sumBy(samples, 'silt_ingest_commit_seconds_sum', 'table'),
    commitCount: sumBy(samples, 'silt_ingest_commit_seconds_count', 'table'),
    rejections: sumBy(samples, 'silt_ingest_rejections_total', 'table'),
    queue: sumBy(samples, 'silt_ingest_queue_bytes', 'table'),
  };
  const names = new Set([...Object.keys(now.rows), ...Object.keys(now.queue), ...Object.keys(now.rejections), ...Object.keys(now.commitCount)]);
  for (const name of names) {
    if (!series.has(name)) series.set(name, {rows: [], latency: [], queue: [], rejections: []});
    const s = series.get(name);
    push(s.queue, now.queue[name] || 0);
    if (previous) {
      const seconds = Math.max((now.at - previous.at) / 1000, 0.001);
      const delta = (field) => Math.max((now[field][name] || 0) - (previous[field][name] || 0), 0);
      push(s.rows, delta('rows') / seconds);
      push(s.rejections, delta('rejections') / seconds);
      const commits = delta('commitCount');
      push(s.latency, commits > 0 ? delta('commitSum') / commits : NaN);
    }
  }
  previous = now;
  render(now, [...names].sort());
  renderQueries(samples);
}

/** Statements by kind since the server started (silt_sql_* metrics). */
function renderQueries(samples) {
  const statements = sumBy(samples, 'silt_sql_statements_total', 'kind');
  const errors = {};
  for (const sample of samples) {
    if (sample.name !== 'silt_sql_statements_total') continue;
    const {kind, outcome} = sample.labels;
    if (outcome !== 'ok' && outcome !== 'cancelled') errors[kind] = (errors[kind] || 0) + sample.value;
  }
  const seconds = sumBy(samples, 'silt_sql_statement_seconds_sum', 'kind');
  const counted = sumBy(samples, 'silt_sql_statement_seconds_count', 'kind');
  const rows = sumBy(samples, 'silt_sql_rows_returned_total', 'kind');
  const active = Object.values(sumBy(samples, 'silt_sql_active_statements', 'protocol')).reduce((a, b) => a + b, 0);
  const kinds = Object.keys(statements).sort();
  if (!kinds.length) {
    fill(queries, h('p', {}, 'No SQL statements since the server started.'));
    return;
  }
  fill(queries,
    h('p', {'data-metric': 'active'}, `${active} running now`),
    h('table', {class: 'queries'},
      h('caption', {}, 'SQL statements by kind, over HTTP, Flight SQL and Postgres (since the server started)'),
      h('thead', {}, h('tr', {},
        ['Kind', 'Statements', 'Errors', 'Mean latency', 'Rows returned'].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, kinds.map((kind) => h('tr', {'data-kind': kind},
        h('th', {scope: 'row'}, kind),
        h('td', {class: 'num', 'data-metric': 'statements'}, String(statements[kind] || 0)),
        h('td', {class: 'num', 'data-metric': 'errors'}, String(errors[kind] || 0)),
        h('td', {class: 'num', 'data-metric': 'latency'},
          counted[kind] ? `${((seconds[kind] / counted[kind]) * 1000).toFixed(1)} ms` : '–'),
        h('td', {class: 'num', 'data-metric': 'rows-returned'}, String(rows[kind] || 0)))))));
}

function latest(list) {
  return list.length ? list[list.length - 1] : NaN;
}

/** The newest measured value (latency has none in an interval without commits). */
function latestMeasured(list) {
  const found = list.findLast(Number.isFinite);
  return found === undefined ? NaN : found;
}

function render(now, names) {
  if (!names.length) {
    fill(body, h('p', {}, 'No ingest since the server started.'));
    return;
  }
  fill(body, h('table', {class: 'ingest'},
    h('caption', {}, 'Ingest per table (since the server started: totals; charts: the last few minutes)'),
    h('thead', {}, h('tr', {},
      h('th', {scope: 'col'}, 'Table'),
      h('th', {scope: 'col'}, 'Rows committed'),
      h('th', {scope: 'col'}, 'Commits'),
      SERIES.map((d) => h('th', {scope: 'col'}, d.title)))),
    h('tbody', {}, names.map((name) => {
      const s = series.get(name);
      return h('tr', {'data-table': name},
        h('th', {scope: 'row'}, name),
        h('td', {class: 'num', 'data-metric': 'rows-total'}, String(now.rows[name] || 0)),
        h('td', {class: 'num', 'data-metric': 'commits-total'}, String(now.commitCount[name] || 0)),
        SERIES.map((d) => {
          const value = d.key === 'latency' ? latestMeasured(s[d.key]) : latest(s[d.key]);
          const text = Number.isFinite(value) || d.key === 'latency' ? d.unit(value) : 'measuring…';
          return h('td', {'data-metric': d.key}, sparkline(s[d.key], `${name} ${d.title}: ${text}`), h('span', {class: 'value'}, text));
        }));
    }))));
}
