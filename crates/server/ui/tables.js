// The Tables page: every table with its schema, properties, files and bytes,
// and its history (versions over time, drawn) with a way to query any
// version in the SQL editor.

import {getJson, segment} from './api.js';
import {bytes, dataTable, errorBox, fill, h} from './dom.js';
import {versionChart} from './charts.js';
import {openInEditor, quoteIdent} from './sql.js';

export const id = 'tables';
export const label = 'Tables';
export const role = 'reader';

let list;
let detail;
let context;

export function mount(panel, ctx) {
  context = ctx;
  list = h('ul', {class: 'table-list', 'aria-label': 'Tables'});
  detail = h('div', {class: 'table-detail', 'aria-live': 'polite'});
  fill(panel,
    h('h1', {}, 'Tables'),
    h('div', {class: 'split'},
      h('nav', {'aria-label': 'Table list'},
        h('button', {type: 'button', class: 'secondary', onclick: () => refreshList()}, 'Refresh'),
        list),
      detail));
}

export async function show(name) {
  await refreshList(name);
  if (name) await showTable(name);
  else if (!detail.firstChild) fill(detail, h('p', {class: 'help'}, 'Pick a table to see its schema, properties and history.'));
}

async function refreshList(selected) {
  try {
    const answer = await getJson('/v1/tables');
    if (!answer.tables.length) {
      fill(list, h('li', {class: 'help'}, 'No tables yet.'));
      return;
    }
    fill(list, answer.tables.map((name) => h('li', {},
      h('a', {href: `#tables/${segment(name)}`, 'aria-current': name === selected ? 'page' : undefined}, name))));
  } catch (error) {
    fill(list, h('li', {}, errorBox(error)));
  }
}

async function showTable(name) {
  fill(detail, h('p', {}, `Loading ${name}…`));
  let info;
  let history;
  try {
    [info, history] = await Promise.all([
      getJson(`/v1/tables/${segment(name)}`),
      getJson(`/v1/tables/${segment(name)}/history?limit=200`),
    ]);
  } catch (error) {
    fill(detail, errorBox(error));
    return;
  }
  const commits = history.history;
  fill(detail,
    h('h2', {id: 'table-heading'}, info.name),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Version'), h('dd', {'data-fact': 'version'}, String(info.version)),
      h('dt', {}, 'Files'), h('dd', {'data-fact': 'files'}, String(info.files)),
      h('dt', {}, 'Size'), h('dd', {'data-fact': 'bytes', title: `${info.bytes} bytes`}, bytes(info.bytes)),
      h('dt', {}, 'Partitioned by'), h('dd', {}, info.partition_columns.length ? info.partition_columns.join(', ') : 'not partitioned')),
    h('button', {type: 'button', onclick: () => openInEditor(context, `SELECT * FROM ${quoteIdent(info.name)} LIMIT 100`)}, 'Query in SQL editor'),
    h('h3', {}, 'Schema'),
    dataTable(`Columns of ${info.name}`, ['Column', 'Type', 'Nullable'],
      info.columns.map((c) => [c.name, c.type, c.nullable ? 'yes' : 'no']), {class: 'schema'}),
    h('h3', {}, 'Properties'),
    Object.keys(info.properties).length
      ? dataTable(`Properties of ${info.name}`, ['Property', 'Value'],
        Object.entries(info.properties).sort(([a], [b]) => a.localeCompare(b)), {class: 'properties'})
      : h('p', {class: 'help'}, 'No table properties.'),
    h('h3', {}, 'History'),
    versionChart(commits, `${info.name}: ${commits.length} commits, versions over time`),
    dataTable(`Commits of ${info.name}, newest first`, ['Version', 'Committed', 'Operation', 'Metrics', ''],
      commits.map((c) => [
        String(c.version),
        c.timestamp,
        c.operation || '',
        summarizeMetrics(c.operation_metrics),
        h('button', {type: 'button', class: 'secondary', 'data-version': String(c.version),
          onclick: () => openInEditor(context, `SELECT * FROM ${quoteIdent(info.name)} VERSION AS OF ${c.version} LIMIT 100`,
            {table: info.name, version: c.version})},
        `Query version ${c.version}`),
      ]), {class: 'history'}));
}

function summarizeMetrics(metrics) {
  if (!metrics || typeof metrics !== 'object') return '';
  const keys = ['num_added_rows', 'numOutputRows', 'num_deleted_rows', 'numDeletedRows', 'num_added_files', 'numAddedFiles', 'num_removed_files', 'numRemovedFiles'];
  return keys.filter((k) => k in metrics).map((k) => `${k}=${metrics[k]}`).join(', ');
}
