// DOM helpers. Every value reaches the page as a text node or an attribute
// set with setAttribute: nothing is ever parsed as HTML, so data cannot
// inject markup or script.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(element, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('td', {class: 'n'}, 'text', otherNode). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces everything inside `element` with `children`. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

/** Announces `message` to screen readers (the page's status region). */
export function announce(message) {
  const region = document.getElementById('status');
  if (region) region.textContent = message;
}

/** A byte count for people: 1536 → "1.5 KiB". */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A problem+json error box (the server's `detail`, as text). */
export function errorBox(error) {
  const title = error && error.title ? error.title : 'error';
  const detail = error && error.detail ? error.detail : String(error && error.message ? error.message : error);
  return h('div', {class: 'error-box', role: 'alert'}, h('strong', {}, title), ': ', detail);
}

/** A table with a caption, header row and body rows (cells as text). */
export function dataTable(caption, headers, rows, attrs = {}) {
  return h('table', attrs,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((name) => h('th', {scope: 'col'}, name)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, row.map((cell) => (cell instanceof Node ? h('td', {}, cell) : h('td', {}, cell === null ? h('span', {class: 'null'}, 'NULL') : String(cell))))))));
}
