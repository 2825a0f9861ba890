// The Erasures page (operator role only; the app never builds it for other
// roles): every GDPR/CCPA request with status and deadline, and a request's
// signed certificate, rendered, with a signature check done in this browser.

import {getJson, segment} from './api.js';
import {announce, bytes, dataTable, errorBox, fill, h} from './dom.js';

export const id = 'erasures';
export const label = 'Erasures';
export const role = 'operator';

let listBox;
let detailBox;

export function mount(panel) {
  listBox = h('div', {id: 'erasure-list'});
  detailBox = h('div', {id: 'erasure-detail', 'aria-live': 'polite'});
  fill(panel,
    h('h1', {}, 'Erasure requests'),
    h('p', {class: 'help'}, 'Filed with POST /v1/erasures or silt erase. A request is due 30 days after it was received.'),
    h('button', {type: 'button', class: 'secondary', onclick: () => show(currentId)}, 'Refresh'),
    listBox,
    detailBox);
}

let currentId;

export async function show(requestId) {
  currentId = requestId;
  try {
    const answer = await getJson('/v1/erasures');
    renderList(answer.erasures, requestId);
  } catch (error) {
    fill(listBox, errorBox(error));
  }
  if (requestId) await showRequest(requestId);
  else fill(detailBox);
}

function statusBadge(erasure) {
  return h('span', {class: `badge status-${erasure.status}`}, erasure.status);
}

function renderList(erasures, selected) {
  if (!erasures.length) {
    fill(listBox, h('p', {}, 'No erasure requests.'));
    return;
  }
  const newestFirst = [...erasures].reverse();
  fill(listBox, h('table', {class: 'erasures'},
    h('caption', {}, `${erasures.length} request${erasures.length === 1 ? '' : 's'}, newest first`),
    h('thead', {}, h('tr', {}, ['Request', 'Status', 'Received', 'Deadline', 'Subjects', 'Tables', 'Purge'].map((name) => h('th', {scope: 'col'}, name)))),
    h('tbody', {}, newestFirst.map((e) => h('tr', {'data-id': e.id, class: e.id === selected ? 'selected' : undefined},
      h('td', {}, h('a', {href: `#erasures/${segment(e.id)}`, 'aria-current': e.id === selected ? 'true' : undefined}, e.id)),
      h('td', {'data-field': 'status'}, statusBadge(e)),
      h('td', {}, e.received_at),
      h('td', {'data-field': 'deadline'}, e.deadline, e.overdue ? [' ', h('span', {class: 'badge overdue'}, 'overdue')] : null),
      h('td', {class: 'num'}, String(e.subjects)),
      h('td', {}, e.tables ? e.tables.join(', ') : 'every table with subject columns'),
      h('td', {}, e.purge ? 'yes' : 'no'))))));
}

async function showRequest(requestId) {
  let erasure;
  try {
    erasure = await getJson(`/v1/erasures/${segment(requestId)}`);
  } catch (error) {
    fill(detailBox, errorBox(error));
    return;
  }
  const cert = erasure.certificate;
  fill(detailBox,
    h('h2', {id: 'erasure-heading'}, `Request ${erasure.id}`),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Status'), h('dd', {'data-field': 'status'}, statusBadge(erasure)),
      h('dt', {}, 'Received'), h('dd', {}, erasure.received_at),
      h('dt', {}, 'Last change'), h('dd', {}, erasure.updated_at),
      h('dt', {}, 'Deadline'), h('dd', {}, erasure.deadline, erasure.overdue ? ' (overdue)' : ''),
      h('dt', {}, 'Idempotency key'), h('dd', {}, erasure.request_id ?? 'none'),
      h('dt', {}, 'Subjects'), h('dd', {}, String(erasure.subjects)),
      h('dt', {}, 'Purge history'), h('dd', {}, erasure.purge ? 'yes' : 'no')),
    erasure.error ? h('p', {class: 'error-box', role: 'alert'}, h('strong', {}, 'Error: '), erasure.error) : null,
    cert ? certificate(cert) : h('p', {class: 'help'}, erasure.status === 'invalid'
      ? 'This ledger entry failed validation: it is never run and has no certificate (see docs/erasure.md).'
      : 'The certificate appears here once the request is finished.'));
}

function certificate(cert) {
  const tables = cert.tables || [];
  return h('section', {class: 'certificate', 'aria-labelledby': 'cert-heading'},
    h('h3', {id: 'cert-heading'}, 'Certificate'),
    h('p', {class: 'verified', id: 'cert-server-check'},
      'Signature checked by the server: this request is listed as ', h('strong', {}, cert.status),
      ' only because its certificate verifies with the server\'s [erasure] secret (an entry whose certificate does not verify is listed as invalid).'),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Certificate version'), h('dd', {}, String(cert.certificate_version)),
      h('dt', {}, 'Outcome'), h('dd', {'data-field': 'cert-status'}, cert.status),
      h('dt', {}, 'Started'), h('dd', {}, cert.started_at),
      h('dt', {}, 'Completed'), h('dd', {}, cert.completed_at),
      h('dt', {}, 'Batched with'), h('dd', {}, cert.batch && cert.batch.length ? cert.batch.join(', ') : 'no other request'),
      h('dt', {}, 'Subject hashes'), h('dd', {}, h('ul', {class: 'hashes'}, (cert.subject_hashes || []).map((x) => h('li', {}, h('code', {}, x))))),
      h('dt', {}, 'Ledger verification'), h('dd', {}, verification(cert.ledger))),
    dataTable('Per table', ['Table', 'Versions', 'Rows deleted', 'Files rewritten / added', 'Files purged', 'Log entries expired', 'Checkpoint', 'Verification', 'Timings'],
      tables.map((t) => [
        t.table,
        `${t.version_before} → ${t.version_after}`,
        String(t.rows_deleted),
        `${t.files_rewritten} / ${t.files_added}`,
        String(t.files_purged),
        String(t.log_entries_expired),
        t.checkpoint_version ?? 'none',
        verification(t.verification),
        t.timings_ms ? `delete ${t.timings_ms.delete_ms} ms, purge ${t.timings_ms.purge_ms} ms, verify ${t.timings_ms.verify_ms} ms` : '',
      ]), {class: 'cert-tables'}),
    checkForm(cert),
    h('details', {},
      h('summary', {}, 'Certificate JSON'),
      h('pre', {class: 'json'}, JSON.stringify(cert, null, 2))));
}

function verification(v) {
  if (!v) return '';
  const found = Number(v.occurrences_found);
  return h('span', {class: found === 0 ? 'ok' : 'bad'},
    `${v.objects_scanned} objects (${bytes(v.bytes_scanned)}), ${v.parquet_files_decoded} Parquet decoded, ${found} occurrence${found === 1 ? '' : 's'} found`);
}

/** The JSON the signature covers: keys sorted at every level, no whitespace (as silt-erasure's canonical_json). */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

async function hmacHex(secret, text) {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(text)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The auditor's check from docs/erasure.md, in the browser: the secret and
// the subject typed here are used by WebCrypto on this page only, never sent.
function checkForm(cert) {
  const secret = h('input', {id: 'cert-secret', type: 'password', autocomplete: 'off', spellcheck: 'false'});
  const subject = h('input', {id: 'cert-subject', type: 'text', autocomplete: 'off', spellcheck: 'false'});
  const result = h('div', {id: 'cert-check-result', role: 'status'});
  const check = async (event) => {
    event.preventDefault();
    if (!globalThis.crypto || !crypto.subtle) {
      fill(result, h('p', {class: 'bad'}, 'This page is not a secure context (HTTPS or localhost), so the browser offers no HMAC; verify with the Python snippet in docs/erasure.md.'));
      return;
    }
    if (!secret.value) {
      fill(result, h('p', {class: 'bad'}, 'Type the [erasure] secret first.'));
      return;
    }
    const {signature, ...rest} = cert;
    const expected = await hmacHex(secret.value, canonicalJson(rest));
    const lines = [expected === signature
      ? h('p', {class: 'ok', 'data-check': 'signature'}, 'Signature valid: the certificate was signed with this secret and not edited since.')
      : h('p', {class: 'bad', 'data-check': 'signature'}, 'Signature does not match: a wrong secret, or the certificate was edited.')];
    if (subject.value) {
      const hash = await hmacHex(secret.value, subject.value);
      lines.push((cert.subject_hashes || []).includes(hash)
        ? h('p', {class: 'ok', 'data-check': 'subject'}, 'That subject is one this request erased.')
        : h('p', {class: 'bad', 'data-check': 'subject'}, 'That subject is not among this request\'s subject hashes.'));
    }
    fill(result, lines);
    announce(lines.map((line) => line.textContent).join(' '));
  };
  return h('form', {class: 'cert-check', onsubmit: check},
    h('h4', {}, 'Check it yourself'),
    h('p', {class: 'help'}, 'HMAC-SHA256 over the certificate\'s canonical JSON, computed in this browser. The secret and subject are not sent to the server or stored.'),
    h('label', {for: 'cert-secret'}, 'Erasure secret'), secret,
    h('label', {for: 'cert-subject'}, 'Subject (optional)'), subject,
    h('button', {type: 'submit'}, 'Check signature'),
    result);
}
