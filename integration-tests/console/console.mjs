// Drives the web console (/ui) of a running `silt serve` in headless
// Chromium, as a reader and as an operator. Started by
// integration-tests/tests/it/console.rs, which creates the tables and the
// erasure request first and passes what to expect in SILT_CONSOLE (JSON).
// Prints one line per check; exits 1 at the first failure.
//
// playwright-core comes from scripts/setup-browser.sh (SILT_UI_TOOLS, default
// ~/.cache/silt-ui-tools) and drives Debian's /usr/bin/chromium: Playwright's
// own browser download is never used.

import {createRequire} from 'node:module';
import {readFileSync} from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const tools = process.env.SILT_UI_TOOLS || path.join(os.homedir(), '.cache/silt-ui-tools');
const require = createRequire(path.join(tools, 'node_modules', 'noop.js'));
const {chromium} = require('playwright-core');

const config = JSON.parse(process.env.SILT_CONSOLE);
const base = config.url;
const shots = config.screenshots;

function check(condition, what, detail) {
  if (!condition) {
    console.error(`FAIL ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
    throw new Error(`check failed: ${what}`);
  }
  console.log(`ok ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.SILT_CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

/** A fresh browser context (its own sessionStorage) with request and console logs. */
async function freshPage() {
  const context = await browser.newContext({acceptDownloads: true, viewport: {width: 1280, height: 900}});
  const page = await context.newPage();
  const requests = [];
  const problems = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return {context, page, requests, problems};
}

/** Console errors other than the browser's note on each refused API call (401/403/404 are part of the test). */
function unexpected(problems) {
  return problems.filter((p) => !/^Failed to load resource: the server responded with a status of 4\d\d/.test(p));
}

async function login(page, token) {
  await page.goto(`${base}/ui/`);
  await page.getByLabel('Bearer token').fill(token);
  await page.getByRole('button', {name: 'Log in'}).click();
  await page.locator('#whoami').filter({hasText: 'role:'}).waitFor();
}

async function resultCells(page) {
  await page.locator('#sql-result').waitFor();
  return page.$$eval('#sql-result tbody tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
}

try {
  // ---- reader ----
  const reader = await freshPage();
  let page = reader.page;
  await page.goto(`${base}/ui/`);
  check(await page.getByLabel('Bearer token').isVisible(), 'the console asks for a token first');
  await page.getByLabel('Bearer token').fill('not-a-token');
  await page.keyboard.press('Enter');
  await page.locator('#login-error').filter({hasText: 'not one this server knows'}).waitFor();
  check(true, 'an unknown token is refused at login');

  await login(page, config.reader_token);
  check((await page.locator('#whoami').textContent()).includes('reader'), 'logged in as reader');
  const tabs = await page.getByRole('tab').allTextContents();
  check(JSON.stringify(tabs) === JSON.stringify(['Tables', 'SQL', 'Ingest']), 'a reader sees no operator tab', tabs);

  // Tables: list, schema, properties, history.
  await page.getByRole('link', {name: config.table, exact: true}).click();
  await page.locator('#table-heading').filter({hasText: config.table}).waitFor();
  const schema = await page.$$eval('table.schema tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(JSON.stringify(schema) === JSON.stringify(config.schema), 'the table shows its schema', schema);
  check(await page.locator('dd[data-fact="version"]').textContent() === String(config.version), 'the table shows its version');
  check(Number(await page.locator('dd[data-fact="files"]').textContent()) >= 2, 'the table shows its files');
  const props = await page.$$eval('table.properties tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  check(props.some(([k, v]) => k === 'silt.ingest.linger_ms' && v === '0'), 'the table shows its properties', props);
  check(await page.locator('svg.versions circle').count() === config.version + 1, 'the history chart has one dot per commit');
  await page.screenshot({path: path.join(shots, 'console-tables.png'), fullPage: true});

  // History → pick an old version → the editor queries it.
  await page.getByRole('button', {name: 'Query version 1'}).click();
  await page.locator('#panel-sql').waitFor({state: 'visible'});
  check((await page.locator('#sql-text').inputValue()).includes('VERSION AS OF 1'), 'picking a version in the history opens it in the editor');
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  check((await resultCells(page)).length === config.rows_at_version_1, 'the old version has its old rows');

  // SQL: a query, its cells (values with markup stay text).
  await page.getByLabel('SQL statement').fill(config.query);
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  await page.locator('#sql-summary').filter({hasText: `${config.rows.length} rows`}).waitFor();
  const cells = await resultCells(page);
  check(JSON.stringify(cells) === JSON.stringify(config.rows), 'the query shows its rows', cells);
  check(await page.locator('#sql-result b, #sql-result script').count() === 0, 'values are rendered as text, never as markup');
  await page.screenshot({path: path.join(shots, 'console-sql.png'), fullPage: true});

  // Time travel with the picker: the count at an older version.
  await page.getByLabel('SQL statement').fill(`SELECT count(*) AS n FROM ${config.table}`);
  await page.getByLabel('Table', {exact: true}).selectOption(config.table);
  await page.getByLabel('As of').selectOption('version');
  await page.getByLabel('Version or timestamp').fill('1');
  await page.getByRole('button', {name: 'Apply to statement'}).click();
  check(await page.locator('#sql-text').inputValue() === `SELECT count(*) AS n FROM ${config.table} VERSION AS OF 1`, 'the picker writes VERSION AS OF into the statement');
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  await page.locator('#sql-summary').filter({hasText: '1 row'}).waitFor();
  check(JSON.stringify(await resultCells(page)) === JSON.stringify([[String(config.rows_at_version_1)]]), 'time travel counts the older version');
  await page.getByLabel('As of').selectOption('timestamp');
  await page.getByLabel('Version or timestamp').fill(config.version_1_timestamp);
  await page.getByRole('button', {name: 'Apply to statement'}).click();
  check((await page.locator('#sql-text').inputValue()).includes("TIMESTAMP AS OF '"), 'the picker writes TIMESTAMP AS OF');
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  await page.locator('#sql-summary').filter({hasText: '1 row'}).waitFor();
  check(JSON.stringify(await resultCells(page)) === JSON.stringify([[String(config.rows_at_version_1)]]), 'time travel by timestamp counts the older version');

  // An error shows the problem's detail.
  await page.getByLabel('SQL statement').fill('SELECT nope FROM nowhere_at_all');
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  const alert = page.locator('#sql-output [role="alert"]');
  await alert.waitFor();
  check((await alert.textContent()).includes('nowhere_at_all'), 'a failed statement shows the problem detail', await alert.textContent());
  await page.getByLabel('SQL statement').fill(`DELETE FROM ${config.table}`);
  await page.getByRole('button', {name: 'Run', exact: true}).click();
  await page.locator('#sql-output [role="alert"]').filter({hasText: 'reader'}).waitFor();
  check(true, 'a reader cannot run DML from the editor');

  // Download as CSV.
  await page.getByLabel('SQL statement').fill(config.query);
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', {name: 'Download CSV'}).click(),
  ]);
  check(download.suggestedFilename() === 'result.csv', 'the download is named result.csv');
  const csv = readFileSync(await download.path(), 'utf8');
  check(csv === config.csv, 'the CSV holds the result', csv);

  // Download as Parquet: saved for console.rs, which decodes it.
  const [parquet] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', {name: 'Download Parquet'}).click(),
  ]);
  check(parquet.suggestedFilename() === 'result.parquet', 'the download is named result.parquet');
  await parquet.saveAs(path.join(shots, 'result.parquet'));
  const magic = readFileSync(path.join(shots, 'result.parquet'));
  check(magic.subarray(0, 4).toString() === 'PAR1' && magic.subarray(-4).toString() === 'PAR1', 'the Parquet download is a Parquet file');

  // Ingest charts from /metrics.
  await page.getByRole('tab', {name: 'Ingest'}).click();
  const row = page.locator(`tr[data-table="${config.table}"]`);
  await row.waitFor();
  check(await row.locator('td[data-metric="rows-total"]').textContent() === String(config.rows.length), 'the ingest page counts the rows committed');
  check(await row.locator('svg.sparkline').count() === 4, 'the ingest page draws four sparklines per table');
  // Live: rows written now (by this script, as a writer, over HTTP) show up as rows/s and commits.
  const live = page.locator(`tr[data-table="${config.live_table}"]`);
  await live.waitFor();
  const commitsBefore = Number(await live.locator('td[data-metric="commits-total"]').textContent());
  const written = await fetch(`${base}/v1/tables/${config.live_table}/rows`, {
    method: 'POST',
    headers: {Authorization: `Bearer ${config.writer_token}`, 'Content-Type': 'application/x-ndjson'},
    body: config.live_rows,
  });
  check(written.status === 200, 'the live rows are committed', written.status);
  await page.waitForFunction(([table, before]) => {
    const cells = document.querySelector(`tr[data-table="${table}"]`);
    if (!cells) return false;
    const commits = Number(cells.querySelector('td[data-metric="commits-total"]').textContent);
    const rate = cells.querySelector('td[data-metric="rows"] .value').textContent;
    const latency = cells.querySelector('td[data-metric="latency"] .value').textContent;
    return commits > before && /^[1-9][0-9.]* rows\/s$|^0\.[0-9]*[1-9][0-9]* rows\/s$/.test(rate) && / ms$/.test(latency);
  }, [config.live_table, commitsBefore], {timeout: 20000});
  check(true, 'rows ingested while the page is open show as rows/s and commit latency');
  // The queries panel: the statements the SQL page ran, from silt_sql_* metrics.
  const queryRow = page.locator('table.queries tr[data-kind="query"]');
  await queryRow.waitFor();
  check(Number(await queryRow.locator('td[data-metric="statements"]').textContent()) > 0, 'the queries panel counts the queries run');
  check(Number(await queryRow.locator('td[data-metric="rows-returned"]').textContent()) > 0, 'the queries panel counts the rows returned');
  await page.waitForTimeout(3500); // one more poll, so the sparklines have a slope to show
  await page.screenshot({path: path.join(shots, 'console-ingest.png'), fullPage: true});

  // No erasure page for a reader, even by address.
  await page.goto(`${base}/ui/#erasures`);
  await page.locator('#whoami').filter({hasText: 'role: reader'}).waitFor();
  await page.locator('#panel-tables').waitFor({state: 'visible'});
  check(await page.locator('#panel-erasures').count() === 0, 'a reader has no erasure page, even at #erasures');
  check(!reader.requests.some((u) => u.includes('/v1/erasures')), 'the reader console never asked for erasures');
  check(!reader.requests.some((u) => u.includes(config.reader_token)) && !page.url().includes(config.reader_token), 'the token is in no URL');
  check(unexpected(reader.problems).length === 0, 'no script or CSP errors in the reader session', reader.problems);
  await reader.context.close();

  // ---- keyboard only: log in, move to the SQL tab, run a statement ----
  const keys = await freshPage();
  page = keys.page;
  await page.goto(`${base}/ui/`);
  await page.locator('#token:focus').waitFor();
  await page.keyboard.type(config.reader_token);
  await page.keyboard.press('Enter');
  await page.locator('[role="tab"][aria-selected="true"]:focus').waitFor();
  await page.keyboard.press('ArrowRight');
  await page.locator('#tab-sql[aria-selected="true"]:focus').waitFor();
  for (let i = 0; i < 6 && await page.evaluate(() => document.activeElement.id) !== 'sql-text'; i += 1) {
    await page.keyboard.press('Tab');
  }
  check(await page.evaluate(() => document.activeElement.id) === 'sql-text', 'Tab reaches the editor from the tabs');
  await page.keyboard.press('Control+A');
  await page.keyboard.type(config.query);
  await page.keyboard.press('Control+Enter');
  check(JSON.stringify(await resultCells(page)) === JSON.stringify(config.rows), 'keyboard only: log in, pick the SQL tab, run with Ctrl+Enter');
  await keys.context.close();

  // ---- operator ----
  const operator = await freshPage();
  page = operator.page;
  await login(page, config.operator_token);
  check(JSON.stringify(await page.getByRole('tab').allTextContents()) === JSON.stringify(['Tables', 'SQL', 'Ingest', 'Erasures']), 'an operator sees the erasure tab');
  await page.getByRole('tab', {name: 'Erasures'}).click();
  const listed = page.locator(`#erasure-list tr[data-id="${config.erasure_id}"]`);
  await listed.waitFor();
  check(await listed.locator('td[data-field="status"]').textContent() === 'done', 'the erasure is listed with its status');
  check((await listed.locator('td[data-field="deadline"]').textContent()).length > 0, 'the erasure is listed with its deadline');
  await listed.getByRole('link').click();
  await page.locator('#cert-heading').waitFor();
  check(await page.locator('dd[data-field="cert-status"]').textContent() === 'done', 'the certificate is rendered');
  const certRows = await page.$$eval('table.cert-tables tbody tr', (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));
  const mine = certRows.find((r) => r[0] === config.erasure_table);
  check(mine && mine[2] === String(config.erasure_rows_deleted) && mine[7].includes('0 occurrences found'), 'the certificate shows rows deleted and a clean verification', certRows);
  await page.getByLabel('Erasure secret').fill('a wrong secret');
  await page.getByRole('button', {name: 'Check signature'}).click();
  await page.locator('[data-check="signature"].bad').waitFor();
  check(true, 'a wrong secret does not verify the certificate');
  await page.getByLabel('Erasure secret').fill(config.erasure_secret);
  await page.getByLabel('Subject (optional)').fill(config.erasure_subject);
  await page.getByRole('button', {name: 'Check signature'}).click();
  await page.locator('[data-check="signature"].ok').waitFor();
  await page.locator('[data-check="subject"].ok').waitFor();
  check(true, 'the secret verifies the certificate in the browser, and the subject is among its hashes');
  await page.screenshot({path: path.join(shots, 'console-erasure.png'), fullPage: true});
  await page.getByRole('button', {name: 'Log out'}).click();
  await page.getByLabel('Bearer token').waitFor();
  check(await page.evaluate(() => sessionStorage.length) === 0, 'logging out forgets the token');
  check(unexpected(operator.problems).length === 0, 'no script or CSP errors in the operator session', operator.problems);
  await operator.context.close();
  console.log('console: all checks passed');
} catch (error) {
  console.error(String(error && error.stack ? error.stack : error));
  process.exitCode = 1;
} finally {
  await browser.close();
}
