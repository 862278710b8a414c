// Devices: the inventory with its filters (GET /api/v1/devices), page by page.

import { api, query } from "./api.js";
import { h, field, focusTitle, replace, select, table, time, badge } from "./dom.js";

const TEXT = [
  ["mod", "Model (Mod)"],
  ["man", "Manufacturer (Man)"],
  ["fwv", "Firmware (FwV)"],
  ["server_id", "Server id"],
];
const BOOLS = [
  ["locked_out", "Locked out (all addresses)"],
  ["never_seen", "Never seen"],
  ["has_msisdn", "Has an MSISDN"],
];

export function deviceLink(id) {
  return h("a", { href: "#/devices/" + encodeURIComponent(id) }, id);
}

export async function render(main, search, ctx) {
  const params = Object.fromEntries(new URLSearchParams(search || ""));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Device filters" });
  for (const [name, label] of TEXT) {
    form.appendChild(field(label, h("input", { type: "search", name, value: params[name] || "", maxlength: "256" })));
  }
  for (const [name, label] of BOOLS) {
    form.appendChild(field(label, select(name, [["", "any"], ["true", "yes"], ["false", "no"]], params[name] || "")));
  }
  form.appendChild(
    field("Last session after", h("input", { type: "datetime-local", name: "last_session_after", value: params.last_session_after ? params.last_session_after.replace("Z", "") : "" }), "UTC"),
  );
  form.appendChild(h("div", { class: "actions" }, h("button", { type: "submit" }, "Search"), h("button", { type: "reset", class: "secondary" }, "Clear")));
  const results = h("section", { "aria-label": "Devices found", "aria-live": "polite" });
  replace(main, h("h1", {}, "Devices"), form, results);
  focusTitle(main);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    if (data.last_session_after) data.last_session_after = new Date(data.last_session_after + "Z").toISOString();
    const q = query(data);
    const target = "#/devices" + q;
    if (location.hash === target) load(data, null);
    else location.hash = target;
  });
  form.addEventListener("reset", () => {
    setTimeout(() => { location.hash = "#/devices"; }, 0);
  });

  const rows = [];
  async function load(filters, cursor) {
    try {
      const page = await api("GET", "/devices" + query({ ...filters, cursor, limit: 50 }), undefined, ctx.signal);
      if (!cursor) rows.length = 0;
      for (const d of page.devices) {
        const info = d.devinfo || {};
        rows.push([
          deviceLink(d.device_id),
          info.Man || "—",
          info.Mod || "—",
          info.FwV || "—",
          d.last_session ? [time(d.last_session.ended), " ", badge(d.last_session.outcome)] : "never",
          d.locked_out ? badge("locked") : "no",
        ]);
      }
      const more = page.next
        ? h("button", { type: "button", class: "secondary", onclick: () => load(filters, page.next) }, "More devices")
        : null;
      replace(
        results,
        h("p", {}, `${rows.length} device${rows.length === 1 ? "" : "s"}${page.next ? " so far" : ""}.`),
        table("Devices", ["Device id", "Manufacturer", "Model", "Firmware", "Last session", "Locked out (all addresses)"], rows, "no device matches."),
        more,
      );
    } catch (e) {
      ctx.sayError(e);
    }
  }
  await load(params, null);
}
