// The SQL editor: a statement, run through POST /v1/sql; the answer as an
// HTML table; a time-travel picker that writes VERSION AS OF / TIMESTAMP AS
// OF into the statement; downloads of the same statement as CSV, Parquet,
// NDJSON or Arrow IPC (formats /v1/sql answers in).

import {getJson, request} from './api.js';
import {announce, errorBox, fill, h} from './dom.js';

export const id = 'sql';
export const label = 'SQL';
export const role = 'reader';

/** Rows shown in the page; downloads carry the whole answer. */
const SHOWN_ROWS = 1000;

const DOWNLOADS = [
  {label: 'CSV', accept: 'text/csv', extension: 'csv'},
  {label: 'Parquet', accept: 'application/vnd.apache.parquet', extension: 'parquet'},
  {label: 'NDJSON', accept: 'application/x-ndjson', extension: 'ndjson'},
  {label: 'Arrow IPC', accept: 'application/vnd.apache.arrow.stream', extension: 'arrows'},
];

let editor;
let output;
let tableSelect;
let kindSelect;
let valueInput;
let pickerError;
let running = false;

/** A table name as a SQL identifier (quoted unless plain). */
export function quoteIdent(name) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `sql` with every `FROM table` / `JOIN table` of `table` given `clause`
 * ("VERSION AS OF 3", "TIMESTAMP AS OF '…'", or "" for the latest version),
 * replacing a clause already there. Null when the statement names no such
 * table.
 */
export function withTimeTravel(sql, table, clause) {
  const names = [escapeRegex(table), escapeRegex(`"${table.replaceAll('"', '""')}"`)].join('|');
  const pattern = new RegExp(
    `(\\b(?:FROM|JOIN)\\s+)(${names})(\\s+(?:VERSION\\s+AS\\s+OF\\s+\\d+|TIMESTAMP\\s+AS\\s+OF\\s+'[^']*'))?(?![A-Za-z0-9_"])`, 'gi');
  let found = false;
  const out = sql.replace(pattern, (_, lead, name) => {
    found = true;
    return `${lead}${name}${clause ? ` ${clause}` : ''}`;
  });
  return found ? out : null;
}

/** Opens the editor with `sql` (and the picker set to `travel`), from another page. */
export function openInEditor(context, sql, travel) {
  context.navigate('#sql', {sql, travel});
}

export function mount(panel) {
  editor = h('textarea', {id: 'sql-text', rows: 8, spellcheck: 'false', 'aria-describedby': 'sql-help'},
    'SELECT 1 AS one');
  editor.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });
  tableSelect = h('select', {id: 'tt-table'});
  kindSelect = h('select', {id: 'tt-kind', onchange: syncPicker},
    h('option', {value: 'latest'}, 'latest version'),
    h('option', {value: 'version'}, 'version'),
    h('option', {value: 'timestamp'}, 'timestamp'));
  valueInput = h('input', {id: 'tt-value', type: 'text', inputmode: 'numeric', 'aria-describedby': 'tt-help', disabled: true});
  pickerError = h('p', {class: 'error', role: 'alert'});
  output = h('div', {id: 'sql-output', class: 'sql-output', 'aria-live': 'polite'});
  fill(panel,
    h('h1', {}, 'SQL'),
    h('form', {id: 'sql-form', onsubmit: (event) => { event.preventDefault(); run(); }},
      h('label', {for: 'sql-text'}, 'SQL statement'),
      editor,
      h('p', {id: 'sql-help', class: 'help'}, 'One statement. Ctrl+Enter runs it. A reader token may run SELECT, EXPLAIN, SHOW and DESCRIBE HISTORY.'),
      h('fieldset', {class: 'time-travel'},
        h('legend', {}, 'Time travel'),
        h('label', {for: 'tt-table'}, 'Table'), tableSelect,
        h('label', {for: 'tt-kind'}, 'As of'), kindSelect,
        h('label', {for: 'tt-value'}, 'Version or timestamp'), valueInput,
        h('button', {type: 'button', id: 'tt-apply', class: 'secondary', onclick: applyPicker}, 'Apply to statement'),
        h('p', {id: 'tt-help', class: 'help'}, 'A version number, or a timestamp such as 2026-11-25T10:00:00Z (commit time, UTC).'),
        pickerError),
      h('div', {class: 'actions'},
        h('button', {type: 'submit', id: 'sql-run'}, 'Run'),
        DOWNLOADS.map((d) => h('button', {type: 'button', class: 'secondary', 'data-format': d.extension, onclick: () => download(d)}, `Download ${d.label}`)))),
    h('p', {class: 'help'}, 'Downloads run the statement again and save the whole answer (up to the server\'s row cap).'),
    output);
}

function syncPicker() {
  const kind = kindSelect.value;
  valueInput.disabled = kind === 'latest';
  valueInput.setAttribute('inputmode', kind === 'version' ? 'numeric' : 'text');
  valueInput.placeholder = kind === 'version' ? '0' : kind === 'timestamp' ? '2026-11-25T10:00:00Z' : '';
}

function applyPicker() {
  pickerError.textContent = '';
  const table = tableSelect.value;
  if (!table) {
    pickerError.textContent = 'There is no table to travel in.';
    return;
  }
  let clause = '';
  const value = valueInput.value.trim();
  if (kindSelect.value === 'version') {
    if (!/^\d{1,19}$/.test(value)) {
      pickerError.textContent = 'A version is a whole number, 0 or more.';
      valueInput.focus();
      return;
    }
    clause = `VERSION AS OF ${value}`;
  } else if (kindSelect.value === 'timestamp') {
    const time = Date.parse(value);
    if (!Number.isFinite(time)) {
      pickerError.textContent = 'Not a timestamp: write it as 2026-11-25T10:00:00Z.';
      valueInput.focus();
      return;
    }
    clause = `TIMESTAMP AS OF '${new Date(time).toISOString()}'`;
  }
  const changed = withTimeTravel(editor.value, table, clause);
  editor.value = changed ?? `SELECT * FROM ${quoteIdent(table)}${clause ? ` ${clause}` : ''} LIMIT 100`;
  announce('time travel applied to the statement');
  editor.focus();
}

async function loadTables(selected) {
  try {
    const answer = await getJson('/v1/tables');
    const keep = selected || tableSelect.value;
    fill(tableSelect, answer.tables.map((name) => h('option', {value: name, selected: name === keep}, name)));
  } catch {
    // The picker stays empty; running statements still works.
  }
}

export async function show(_arg, state) {
  if (state && state.sql) editor.value = state.sql;
  await loadTables(state && state.travel ? state.travel.table : undefined);
  if (state && state.travel) {
    kindSelect.value = 'version';
    valueInput.value = String(state.travel.version);
    syncPicker();
  }
  if (state && state.sql) editor.focus();
}

function statement() {
  return {sql: editor.value};
}

async function run() {
  if (running) return;
  running = true;
  fill(output, h('p', {}, 'Running…'));
  const started = performance.now();
  try {
    const answer = await (await request('/v1/sql', {method: 'POST', body: statement()})).json();
    const ms = Math.round(performance.now() - started);
    render(answer, ms);
  } catch (error) {
    fill(output, errorBox(error));
    announce('the statement failed');
  } finally {
    running = false;
  }
}

function cell(value) {
  if (value === null || value === undefined) return h('td', {class: 'null'}, 'NULL');
  if (typeof value === 'object') return h('td', {}, JSON.stringify(value));
  return h('td', {class: typeof value === 'number' ? 'num' : undefined}, String(value));
}

function render(answer, ms) {
  const rows = answer.rows || [];
  const shown = rows.slice(0, SHOWN_ROWS);
  const summary = `${rows.length} row${rows.length === 1 ? '' : 's'} in ${ms} ms`
    + (answer.truncated ? ' (cut at the row cap)' : '')
    + (rows.length > shown.length ? `; the first ${shown.length} shown, download for all` : '');
  fill(output,
    h('p', {id: 'sql-summary'}, summary),
    h('div', {class: 'scroll'},
      h('table', {id: 'sql-result', class: 'result'},
        h('caption', {class: 'sr-only'}, 'Result'),
        h('thead', {}, h('tr', {}, answer.columns.map((c) => h('th', {scope: 'col', title: c.type}, c.name)))),
        h('tbody', {}, shown.map((row) => h('tr', {}, row.map(cell)))))));
  announce(summary);
}

async function download(format) {
  try {
    const response = await request('/v1/sql', {method: 'POST', body: statement(), accept: format.accept});
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = h('a', {href: url, download: `result.${format.extension}`, hidden: true});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    announce(`downloaded result.${format.extension}`);
  } catch (error) {
    fill(output, errorBox(error));
  }
}
