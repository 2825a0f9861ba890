// Calls to silt's HTTP API with the session's bearer token. The token lives
// in sessionStorage (this tab only, gone when it closes) and travels only in
// the Authorization header, never in a URL.

const TOKEN_KEY = 'silt.console.token';

/** The session's token, or null before login. "" means "no token" (a server without tokens). */
export function sessionToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Remembers `token` for this tab. */
export function rememberToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forgets the token (log out). */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer: the fields of the server's problem+json body. */
export class ProblemError extends Error {
  constructor(status, title, detail, type) {
    super(detail || title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.type = type;
  }
}

async function problem(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (body && typeof body === 'object') {
    return new ProblemError(response.status, String(body.title || response.statusText), String(body.detail || ''), body.type);
  }
  return new ProblemError(response.status, response.statusText || 'error', `the server answered ${response.status}`);
}

/**
 * One request. `body` is sent as JSON; `accept` picks the answer's format;
 * `token` overrides the session's (used by the login form). Throws a
 * ProblemError for any answer that is not 2xx.
 */
export async function request(path, {method = 'GET', body, accept = 'application/json', token, signal} = {}) {
  const headers = {Accept: accept};
  const bearer = token === undefined ? sessionToken() : token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, {method, headers, body: payload, cache: 'no-store', credentials: 'omit', signal});
  } catch (error) {
    if (error && error.name === 'AbortError') throw error;
    throw new ProblemError(0, 'network error', 'the server did not answer; is it running?');
  }
  if (!response.ok) throw await problem(response);
  return response;
}

/** A JSON answer. */
export async function getJson(path, options) {
  return (await request(path, options)).json();
}

/** `/v1/...` path segment, escaped. */
export function segment(value) {
  return encodeURIComponent(value);
}
