// The console's shell: log-in, navigation by the URL fragment, and one page at a time.

import { api, ApiError, forgetToken, onUnauthorized, setToken, token } from "./api.js";
import { h, field, replace } from "./dom.js";
import * as devices from "./devices.js";
import * as device from "./device.js";
import * as jobs from "./jobs.js";
import * as operations from "./operations.js";
import * as campaigns from "./campaigns.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const logout = document.getElementById("logout");
const status = document.getElementById("status");

// Route table: fragment pattern -> [section, page module].
const routes = [
  [/^#\/devices\/(.+)$/, "devices", device],
  [/^#\/devices(?:\?(.*))?$/, "devices", devices],
  [/^#\/jobs\/(.+)$/, "jobs", jobs.detail],
  [/^#\/jobs$/, "jobs", jobs],
  [/^#\/campaigns\/(.+)$/, "campaigns", campaigns.detail],
  [/^#\/campaigns$/, "campaigns", campaigns],
  [/^#\/operations$/, "operations", operations],
];

let current = null; // AbortController of the page shown

let carried = false; // a message said just before navigating stays on the next page

// Show a message (errors exactly as the API gave them) in the live region.
export function say(message, kind = "error", carry = false) {
  replace(status, message ? h("p", { class: kind }, String(message)) : null);
  carried = carry;
}

export function sayError(e) {
  if (e && e.name === "AbortError") return;
  say(e instanceof ApiError ? e.toString() : "error: " + (e && e.message ? e.message : e));
}

function stopPage() {
  if (current) current.abort();
  current = null;
}

function showLogin(message) {
  stopPage();
  nav.hidden = true;
  logout.hidden = true;
  const input = h("input", { type: "password", name: "token", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title", tabindex: "-1" }, "Log in"),
    h("p", {}, "The API bearer token of this gateway (the content of [api] token_file). It is kept in this tab only."),
    field("API token", input),
    h("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    try {
      await api("GET", "/devices?limit=1");
      say("");
      if (!location.hash || location.hash === "#/login") location.hash = "#/devices";
      route();
    } catch (e) {
      forgetToken();
      sayError(e);
      input.focus();
    }
  });
  replace(main, form);
  if (message) say(message);
  input.focus();
}

function route() {
  if (!token()) return showLogin();
  stopPage();
  nav.hidden = false;
  logout.hidden = false;
  const hash = location.hash || "#/devices";
  for (const [pattern, section, page] of routes) {
    const m = hash.match(pattern);
    if (!m) continue;
    for (const a of nav.querySelectorAll("a")) {
      if (a.dataset.section === section) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    current = new AbortController();
    const arg = m[1] === undefined ? undefined : m[1];
    if (!carried) say("");
    carried = false;
    replace(main);
    Promise.resolve(page.render(main, arg, { signal: current.signal, say, sayError })).catch(sayError);
    return;
  }
  location.hash = "#/devices";
}

onUnauthorized((error) => {
  forgetToken();
  showLogin(error.toString());
});

logout.addEventListener("click", () => {
  forgetToken();
  say("");
  location.hash = "#/login";
  showLogin();
});

window.addEventListener("hashchange", route);
route();
