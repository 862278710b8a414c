// Building the page: elements from data with textContent only (device data is
// untrusted: DevInfo strings, Generic Alert payloads), never as HTML markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

let fieldIds = 0;

// A labelled form field; returns the wrapper, the control is .control.
export function field(label, control, hint) {
  const id = control.id || "f" + ++fieldIds;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = id + "-hint";
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  const wrap = h("div", { class: "field" }, parts);
  wrap.control = control;
  return wrap;
}

export function select(name, options, value) {
  const s = h("select", { name });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    const opt = h("option", { value: v }, text);
    if (v === value) opt.selected = true;
    s.appendChild(opt);
  }
  return s;
}

// A table with a caption, header cells with scope, and one row per item.  Each
// cell carries its column's name, shown before it when a phone stacks the rows.
export function table(caption, headers, rows, empty = "None.") {
  if (!rows.length) return h("p", { class: "empty" }, caption + ": " + empty);
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      { role: "table" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", { role: "row" }, headers.map((x) => h("th", { scope: "col", role: "columnheader" }, x)))),
      h("tbody", {}, rows.map((r) => h("tr", { role: "row" }, r.map((c, i) => h("td", { role: "cell", "data-label": headers[i] }, h("span", {}, c)))))),
    ),
  );
}

export function dl(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

export function badge(state) {
  return h("span", { class: "badge state-" + String(state).replace(/[^a-z_]/g, "") }, String(state));
}

export function time(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return h("time", { datetime: iso }, d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"));
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

// Focus a page's heading once it is drawn (keyboard and screen-reader users start there).
export function focusTitle(main) {
  const title = main.querySelector("h1");
  if (title) {
    title.setAttribute("tabindex", "-1");
    title.focus({ preventScroll: true });
  }
}
