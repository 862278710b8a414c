// The REST API as the console uses it: the token lives in this tab's
// sessionStorage only and travels in the Authorization header, never in a URL.

const KEY = "dmgateway.token";

export function token() {
  return sessionStorage.getItem(KEY);
}

export function setToken(value) {
  sessionStorage.setItem(KEY, value);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

// An answer that was not 2xx, with the API's own code and message.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  toString() {
    return `${this.status} ${this.code}: ${this.message}`;
  }
}

let unauthorized = () => {};

// Called with the error when the API says 401 (the token is wrong or was replaced).
export function onUnauthorized(callback) {
  unauthorized = callback;
}

async function request(method, url, body, signal) {
  const headers = { Authorization: "Bearer " + (token() || "") };
  const init = { method, headers, signal, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", "the gateway cannot be reached (" + e.message + ")");
  }
  const text = await response.text();
  if (!response.ok) {
    let code = "http_" + response.status;
    let message = text.trim() || response.statusText;
    try {
      const error = JSON.parse(text).error;
      if (error && typeof error.code === "string") {
        code = error.code;
        message = String(error.message);
      }
    } catch (_) {
      // not JSON: keep the text as the API sent it
    }
    const error = new ApiError(response.status, code, message);
    if (response.status === 401) unauthorized(error);
    throw error;
  }
  return { text, type: response.headers.get("Content-Type") || "" };
}

// JSON from /api/v1 + path (path segments already encoded by the caller).
export async function api(method, path, body, signal) {
  const { text } = await request(method, "/api/v1" + path, body, signal);
  return text ? JSON.parse(text) : null;
}

// Text of a path outside /api/v1 (/metrics, /healthz); 503 from /healthz is an answer too.
export async function plain(path, signal) {
  try {
    return (await request("GET", path, undefined, signal)).text;
  } catch (e) {
    if (e instanceof ApiError && e.status === 503 && path === "/healthz") return e.message;
    throw e;
  }
}

export function seg(value) {
  return encodeURIComponent(value);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? "?" + s : "";
}
