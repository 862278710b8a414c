// Campaigns (DESIGN §5): create one from a device filter with its rollout
// policy, follow its progress, pause / resume / cancel it, read its report.
// The campaign answer is drawn generically: its scalar fields as facts and
// every {name: count} object (by state, by result code, per wave) as a chart.

import { api, query, seg } from "./api.js";
import { barChart } from "./chart.js";
import { dl, field, focusTitle, h, json, replace, select, table, badge } from "./dom.js";

const RECENT = "dmgateway.campaigns";
const FINAL = new Set(["done", "finished", "completed", "cancelled", "failed"]);

function recent() {
  try {
    return JSON.parse(sessionStorage.getItem(RECENT) || "[]");
  } catch (_) {
    return [];
  }
}

function remember(id) {
  sessionStorage.setItem(RECENT, JSON.stringify([id, ...recent().filter((x) => x !== id)].slice(0, 20)));
}

function link(id) {
  return h("a", { href: "#/campaigns/" + encodeURIComponent(id) }, id);
}

function numbers(text) {
  return text.split(/[\s,]+/).filter(Boolean).map(Number);
}

export async function render(main, _arg, ctx) {
  const fn = select("function", [["fumo", "FUMO (firmware update)"], ["scomo", "SCOMO (software)"], ["lawmo", "LAWMO (lock and wipe)"]], "fumo");
  const action = h("input", { name: "action", value: "update", required: true });
  const pkg = h("input", { name: "package", spellcheck: "false" });
  const mod = h("input", { name: "mod", type: "search" });
  const man = h("input", { name: "man", type: "search" });
  const fwv = h("input", { name: "fwv", type: "search" });
  const devices = h("textarea", { name: "devices", rows: "2", spellcheck: "false" });
  const waves = h("input", { name: "waves", value: "1, 10, 100", inputmode: "numeric" });
  const rateInput = h("input", { name: "rate_per_minute", type: "number", min: "1", value: "60" });
  const concurrency = h("input", { name: "concurrency", type: "number", min: "1", value: "10" });
  const ratio = h("input", { name: "pause_failure_ratio", type: "number", min: "0", max: "1", step: "0.01", value: "0.2" });
  const windowInput = h("input", { name: "window", placeholder: "e.g. 22:00-06:00" });
  const form = h("form", { class: "grid campaign-form", "aria-label": "New campaign" },
    h("fieldset", {}, h("legend", {}, "What"), field("Function", fn), field("Action", action), field("Package id", pkg, "FUMO / SCOMO: the registered firmware or software package")),
    h("fieldset", {}, h("legend", {}, "Which devices"), field("Model (Mod)", mod), field("Manufacturer (Man)", man), field("Firmware (FwV)", fwv),
      field("Or device ids", devices, "one per line; replaces the filter")),
    h("fieldset", {}, h("legend", {}, "Rollout policy"), field("Waves", waves, "devices per wave, e.g. 1, 10, 100"),
      field("Rate per minute", rateInput), field("Concurrency", concurrency), field("Pause at failure ratio", ratio), field("Window", windowInput)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Start campaign")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = devices.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const selection = ids.length ? { devices: ids } : Object.fromEntries(Object.entries({ mod: mod.value, man: man.value, fwv: fwv.value }).filter(([, v]) => v));
    const policy = {
      waves: numbers(waves.value),
      rate_per_minute: Number(rateInput.value),
      concurrency: Number(concurrency.value),
      pause_failure_ratio: Number(ratio.value),
    };
    if (windowInput.value) policy.window = windowInput.value;
    const spec = { function: fn.value, action: action.value, selection, policy };
    if (pkg.value) spec.package = pkg.value;
    try {
      const created = await api("POST", "/campaigns", spec, ctx.signal);
      remember(created.id);
      location.hash = "#/campaigns/" + encodeURIComponent(created.id);
    } catch (e) {
      ctx.sayError(e);
    }
  });
  const open = h("input", { name: "campaign_id", spellcheck: "false" });
  const openForm = h("form", { class: "inline", "aria-label": "Open a campaign" }, field("Campaign id", open), h("button", { type: "submit" }, "Open"));
  openForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (open.value.trim()) location.hash = "#/campaigns/" + encodeURIComponent(open.value.trim());
  });
  const mine = recent();
  replace(
    main,
    h("h1", {}, "Campaigns"),
    openForm,
    mine.length ? h("p", {}, "Started in this tab: ", mine.map((id) => [link(id), " "])) : null,
    h("h2", {}, "New campaign"),
    form,
  );
  focusTitle(main);
}

function isCounts(v) {
  return v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length && Object.values(v).every((x) => typeof x === "number");
}

function drawCampaign(body, c, id, ctx, refresh) {
  const facts = Object.entries(c).filter(([, v]) => v === null || typeof v !== "object");
  const counts = Object.entries(c).filter(([, v]) => isCounts(v));
  const nested = Object.entries(c).filter(([, v]) => v && typeof v === "object" && !isCounts(v));
  const control = (verb) => h("button", { type: "button", class: verb === "cancel" ? "danger" : "secondary", onclick: async () => {
    try {
      await api("POST", `/campaigns/${seg(id)}/${verb}`, undefined, ctx.signal);
      ctx.say(`Campaign ${id}: ${verb} asked.`, "info");
      refresh();
    } catch (e) {
      ctx.sayError(e);
    }
  } }, verb[0].toUpperCase() + verb.slice(1));
  replace(
    body,
    dl(facts.map(([k, v]) => [k, k === "state" ? h("span", { class: "campaign-state" }, badge(v)) : String(v ?? "—")])),
    h("div", { class: "actions" }, control("pause"), control("resume"), control("cancel")),
    counts.map(([k, v]) => h("figure", {}, barChart(k, Object.entries(v)), h("figcaption", {}, k.replace(/_/g, " ")))),
    nested.map(([k, v]) => h("details", {}, h("summary", {}, k.replace(/_/g, " ")), json(v))),
  );
}

export const detail = {
  async render(main, encodedId, ctx) {
    const id = decodeURIComponent(encodedId);
    const body = h("div", { "aria-live": "polite" });
    const report = h("section", { "aria-labelledby": "h-report" });
    const reportButton = h("button", { type: "button", class: "secondary" }, "Per-device report");
    reportButton.addEventListener("click", async () => {
      try {
        const answer = await api("GET", `/campaigns/${seg(id)}/report` + query({ format: "json" }), undefined, ctx.signal);
        const rows = Array.isArray(answer) ? answer : answer.devices || answer.report || [];
        const keys = rows.length ? Object.keys(rows[0]) : [];
        replace(report, h("h2", { id: "h-report" }, "Per-device report"),
          table("Per-device report", keys, rows.map((r) => keys.map((k) => (r[k] === null || typeof r[k] !== "object" ? String(r[k] ?? "—") : JSON.stringify(r[k])))), "no device yet."));
      } catch (e) {
        ctx.sayError(e);
      }
    });
    replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/campaigns" }, "Campaigns"), " / "), h("h1", {}, "Campaign " + id), body, reportButton, report);
    focusTitle(main);
    let wake = null;
    const refresh = () => wake && wake();
    while (!ctx.signal.aborted) {
      try {
        const c = await api("GET", "/campaigns/" + seg(id), undefined, ctx.signal);
        remember(id);
        drawCampaign(body, c, id, ctx, refresh);
        if (FINAL.has(c.state)) return;
      } catch (e) {
        ctx.sayError(e);
        return;
      }
      await new Promise((r) => {
        wake = r;
        setTimeout(r, 2000);
      });
    }
  },
};
