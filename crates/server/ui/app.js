// The console's shell: login, the role-dependent tabs and hash routing
// (#tables/NAME, #sql, #ingest, #erasures/ID). Pages a role may not use are
// never built: a reader's page has no erasure tab, panel or request.

import {forgetToken, getJson, rememberToken, sessionToken} from './api.js';
import {announce, fill, h} from './dom.js';
import * as tables from './tables.js';
import * as sql from './sql.js';
import * as ingest from './ingest.js';
import * as erasures from './erasures.js';

const RANK = {reader: 0, writer: 1, operator: 2};
const PAGES = [tables, sql, ingest, erasures];

let session = null; // {role, tokensConfigured, pages: [{page, tab, panel}]}

function visiblePages(role) {
  return PAGES.filter((page) => RANK[role] >= RANK[page.role]);
}

async function whoami(token) {
  return getJson('/v1/whoami', {token});
}

function showLogin(message) {
  session = null;
  document.getElementById('nav').hidden = true;
  document.getElementById('logout').hidden = true;
  fill(document.getElementById('whoami'));
  fill(document.getElementById('tabs'));
  fill(document.getElementById('panels'));
  const login = document.getElementById('login');
  login.hidden = false;
  document.getElementById('login-error').textContent = message || '';
  document.getElementById('token').value = '';
  document.getElementById('token').focus();
}

function start(answer) {
  const role = answer.role;
  document.getElementById('login').hidden = true;
  document.getElementById('logout').hidden = false;
  fill(document.getElementById('whoami'),
    answer.tokens_configured ? `role: ${role}` : `role: ${role} (this server has no tokens: everyone on loopback is an operator)`);
  const tabs = fill(document.getElementById('tabs'));
  const panels = fill(document.getElementById('panels'));
  const built = visiblePages(role).map((page) => {
    const tab = h('button', {
      type: 'button', role: 'tab', id: `tab-${page.id}`, 'aria-controls': `panel-${page.id}`,
      'aria-selected': 'false', tabindex: '-1',
      onclick: () => navigate(`#${page.id}`),
    }, page.label);
    const panel = h('section', {role: 'tabpanel', id: `panel-${page.id}`, 'aria-labelledby': `tab-${page.id}`, tabindex: '0', hidden: true});
    tabs.append(tab);
    panels.append(panel);
    return {page, tab, panel};
  });
  session = {role, tokensConfigured: answer.tokens_configured, pages: built};
  const context = {role, navigate, can: (needed) => RANK[role] >= RANK[needed]};
  for (const {page, panel} of built) page.mount(panel, context);
  document.getElementById('nav').hidden = false;
  route();
  // Keyboard users land on the tabs, not on the login form that went away.
  const selected = built.find(({tab}) => tab.getAttribute('aria-selected') === 'true');
  if (selected) selected.tab.focus();
}

/** Moves to `hash` (e.g. "#sql"), keeping browser history. */
export function navigate(hash, state) {
  if (state !== undefined) pendingState = state;
  if (location.hash === hash) route();
  else location.hash = hash;
}

let pendingState;

function route() {
  if (!session) return;
  const [id, ...rest] = location.hash.replace(/^#/, '').split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : undefined;
  let current = session.pages.find(({page}) => page.id === id);
  if (!current) {
    if (id && PAGES.some((page) => page.id === id)) {
      // A page the role may not use: it was never built, and nothing of it is fetched.
      announce(`the ${id} page needs a role this token does not have`);
    }
    current = session.pages[0];
  }
  for (const entry of session.pages) {
    const active = entry === current;
    entry.tab.setAttribute('aria-selected', String(active));
    entry.tab.tabIndex = active ? 0 : -1;
    entry.panel.hidden = !active;
    if (!active && entry.page.hide) entry.page.hide();
  }
  const state = pendingState;
  pendingState = undefined;
  current.page.show(arg, state);
}

// Tabs follow the ARIA pattern: arrows, Home and End move between tabs and
// select the one focused; Tab moves into the panel.
function onTabKey(event) {
  if (!session || event.target.getAttribute('role') !== 'tab') return;
  const tabs = session.pages.map(({tab}) => tab);
  const at = tabs.indexOf(event.target);
  let next = null;
  if (event.key === 'ArrowRight') next = (at + 1) % tabs.length;
  else if (event.key === 'ArrowLeft') next = (at - 1 + tabs.length) % tabs.length;
  else if (event.key === 'Home') next = 0;
  else if (event.key === 'End') next = tabs.length - 1;
  if (next === null) return;
  event.preventDefault();
  tabs[next].focus();
  navigate(`#${session.pages[next].page.id}`);
}

async function onLogin(event) {
  event.preventDefault();
  const token = document.getElementById('token').value.trim();
  const error = document.getElementById('login-error');
  error.textContent = '';
  try {
    const answer = await whoami(token);
    rememberToken(token);
    start(answer);
    announce(`logged in as ${answer.role}`);
  } catch (problem) {
    error.textContent = problem.status === 401 ? 'That token is not one this server knows.' : `Cannot log in: ${problem.detail || problem.message}`;
    document.getElementById('token').focus();
  }
}

function onLogout() {
  forgetToken();
  for (const page of PAGES) if (page.hide) page.hide();
  showLogin('Logged out.');
}

async function boot() {
  document.getElementById('login-form').addEventListener('submit', onLogin);
  document.getElementById('logout').addEventListener('click', onLogout);
  document.getElementById('tabs').addEventListener('keydown', onTabKey);
  window.addEventListener('hashchange', route);
  const saved = sessionToken();
  try {
    // A saved token, or none: a server without tokens answers without one.
    const answer = await whoami(saved === null ? '' : saved);
    if (saved === null && answer.tokens_configured) throw new Error('login needed');
    rememberToken(saved || '');
    start(answer);
  } catch {
    if (saved !== null) forgetToken();
    showLogin(saved ? 'The saved token is no longer accepted; log in again.' : '');
  }
}

boot();
