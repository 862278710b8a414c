// Campaigns: one device function (FUMO / SCOMO / LAWMO) over a device filter
// with a rollout policy; live progress (waves, outcomes by state and result
// code), pause / resume / cancel, and the per-device report.

import { api, query, seg } from "./api.js";
import { barChart } from "./chart.js";
import { badge, dl, field, focusTitle, h, json, replace, select, table, time } from "./dom.js";
import { deviceLink } from "./devices.js";

const FINAL = new Set(["done", "cancelled"]);
const ACTIONS = {
  fumo: ["download_and_update", "download", "update"],
  scomo: ["install", "install_inactive", "activate", "deactivate", "remove"],
  lawmo: ["fully_lock", "partially_lock", "unlock", "wipe", "factory_reset"],
};
const DESTRUCTIVE = new Set(["wipe", "factory_reset"]);

function link(id) {
  return h("a", { href: "#/campaigns/" + encodeURIComponent(id) }, id.slice(0, 12));
}

function when(seconds) {
  return typeof seconds === "number" ? time(new Date(seconds * 1000).toISOString()) : time(seconds);
}

function numbers(text) {
  return text.split(/[\s,]+/).filter(Boolean).map(Number);
}

export async function render(main, _arg, ctx) {
  const fn = select("function", [["fumo", "FUMO (firmware update)"], ["scomo", "SCOMO (software)"], ["lawmo", "LAWMO (lock and wipe)"]], "lawmo");
  const action = select("action", ACTIONS.lawmo, "fully_lock");
  const firmware = h("input", { name: "firmware_id", spellcheck: "false" });
  const packageUrl = h("input", { name: "package_url", type: "url", spellcheck: "false" });
  const expect = h("input", { name: "expect_fwv" });
  const component = h("input", { name: "component", spellcheck: "false" });
  const confirm = h("input", { type: "checkbox", name: "confirm", id: "campaign-confirm" });
  const fields = {
    firmware: field("Firmware id", firmware, "a registered package (FUMO)"),
    url: field("Package URL", packageUrl, "instead of a firmware id"),
    expect: field("Expected FwV after", expect),
    component: field("Component", component, "SCOMO"),
    confirm: h("div", { class: "check" }, confirm, h("label", { for: "campaign-confirm" }, "Yes, destroy data on these devices")),
  };
  function show() {
    const f = fn.value;
    const keep = action.value;
    replace(action, ACTIONS[f].map((a) => h("option", { value: a }, a)));
    if (ACTIONS[f].includes(keep)) action.value = keep;
    fields.firmware.hidden = f !== "fumo";
    fields.expect.hidden = f !== "fumo";
    fields.url.hidden = f === "lawmo";
    fields.component.hidden = f !== "scomo";
    fields.confirm.hidden = !(f === "lawmo" && DESTRUCTIVE.has(action.value));
  }
  fn.addEventListener("change", show);
  action.addEventListener("change", show);

  const filters = {
    mod: h("input", { name: "mod", type: "search" }),
    man: h("input", { name: "man", type: "search" }),
    fwv: h("input", { name: "fwv", type: "search" }),
    server_id: h("input", { name: "server_id", type: "search" }),
  };
  const devices = h("textarea", { name: "devices", rows: "2", spellcheck: "false" });
  const waves = h("input", { name: "waves", value: "10, 50, 100", inputmode: "decimal" });
  const rate = h("input", { name: "rate_per_minute", type: "number", min: "0.01", step: "any", value: "60" });
  const concurrency = h("input", { name: "concurrency", type: "number", min: "1", value: "100" });
  const ratio = h("input", { name: "pause_failure_ratio", type: "number", min: "0", max: "1", step: "0.01", value: "0.2" });
  const start = h("input", { name: "window_start", placeholder: "22:00", pattern: "[0-2][0-9]:[0-5][0-9]" });
  const end = h("input", { name: "window_end", placeholder: "06:00", pattern: "[0-2][0-9]:[0-5][0-9]" });
  const timeout = h("input", { name: "timeout", type: "number", min: "60" });
  const form = h("form", { class: "grid campaign-form", "aria-label": "New campaign" },
    h("fieldset", {}, h("legend", {}, "Operation"), field("Function", fn), field("Action", action),
      fields.firmware, fields.url, fields.expect, fields.component, fields.confirm),
    h("fieldset", {}, h("legend", {}, "Devices"), field("Model (Mod)", filters.mod), field("Manufacturer (Man)", filters.man),
      field("Firmware (FwV)", filters.fwv), field("Server id", filters.server_id),
      field("Or device ids", devices, "one per line, instead of the filter")),
    h("fieldset", {}, h("legend", {}, "Rollout policy"), field("Waves (%)", waves, "cumulative, ending at 100"),
      field("Rate per minute", rate), field("Concurrency", concurrency), field("Pause at failure ratio", ratio, "0 to 1"),
      field("Window start (UTC)", start), field("Window end (UTC)", end), field("Timeout (s)", timeout, "per device; empty: the default")),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Start campaign")));
  show();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = devices.value.split("\n").map((s) => s.trim()).filter(Boolean);
    const selection = ids.length
      ? { devices: ids }
      : Object.fromEntries(Object.entries(filters).map(([k, el]) => [k, el.value.trim()]).filter(([, v]) => v));
    const policy = {
      waves: numbers(waves.value),
      rate_per_minute: Number(rate.value),
      concurrency: Number(concurrency.value),
      pause_failure_ratio: Number(ratio.value),
    };
    if (start.value || end.value) policy.window = { start: start.value, end: end.value };
    if (timeout.value) policy.timeout = Number(timeout.value);
    const params = {};
    if (!fields.firmware.hidden && firmware.value) params.firmware_id = firmware.value.trim();
    if (!fields.url.hidden && packageUrl.value) params.package_url = packageUrl.value.trim();
    if (!fields.expect.hidden && expect.value) params.expect_fwv = expect.value.trim();
    if (!fields.component.hidden && component.value) params.component = component.value.trim();
    if (!fields.confirm.hidden) params.confirm = confirm.checked;
    try {
      const created = await api("POST", "/campaigns", { function: fn.value, action: action.value, params, selection, policy }, ctx.signal);
      location.hash = "#/campaigns/" + encodeURIComponent(created.id);
    } catch (e) {
      ctx.sayError(e);
    }
  });

  const list = h("section", { "aria-labelledby": "h-campaign-list" });
  replace(main, h("h1", {}, "Campaigns"), list, h("h2", {}, "New campaign"), form);
  focusTitle(main);
  try {
    const answer = await api("GET", "/campaigns", undefined, ctx.signal);
    const campaigns = Array.isArray(answer) ? answer : answer.campaigns || [];
    replace(list, h("h2", { id: "h-campaign-list" }, "Campaigns"),
      table("Campaigns", ["Campaign", "Function", "Action", "State", "Wave", "Devices", "Created"], campaigns.map((c) => [
        link(c.id), c.function, c.action, badge(c.state), `${c.wave} of ${c.waves}`, c.total, when(c.created),
      ]), "none yet."));
  } catch (e) {
    ctx.sayError(e);
  }
}

function drawCampaign(body, c, ctx, refresh) {
  const control = (verb, label, cls) => h("button", {
    type: "button", class: cls, onclick: async () => {
      try {
        const after = await api("POST", `/campaigns/${seg(c.id)}/${verb}`, undefined, ctx.signal);
        ctx.say(`Campaign ${c.id}: ${after.state}.`, "info");
        refresh();
      } catch (e) {
        ctx.sayError(e);
      }
    },
  }, label);
  const progress = c.progress || {};
  const counts = (o) => Object.entries(o || {}).map(([k, v]) => [k, v]);
  replace(
    body,
    dl([
      ["State", h("span", { class: "campaign-state" }, badge(c.state))],
      ["Reason", c.reason || "—"],
      ["Operation", `${c.function} ${c.action}`],
      ["Wave", `${c.wave} of ${c.waves} (${(c.policy && c.policy.waves || []).join("%, ")}%)`],
      ["Devices", c.total],
      ["Created", when(c.created)],
      ["Updated", when(c.updated)],
    ]),
    FINAL.has(c.state) ? null : h("div", { class: "actions" },
      c.state === "paused" ? control("resume", "Resume", "secondary") : control("pause", "Pause", "secondary"),
      control("cancel", "Cancel campaign", "danger")),
    h("div", { class: "charts" },
      h("figure", {}, barChart("Devices by state", counts(progress.by_state)), h("figcaption", {}, "Devices by state")),
      h("figure", {}, barChart("Outcomes by result code", counts(progress.by_result)), h("figcaption", {}, "Outcomes by result code")),
      h("figure", {}, barChart("Devices by wave", Object.entries(progress.by_wave || {}).flatMap(([wave, states]) =>
        Object.entries(states || {}).map(([state, n]) => [`wave ${Number(wave) + 1} ${state}`, n]))), h("figcaption", {}, "Devices by wave and state"))),
    h("details", {}, h("summary", {}, "Selection, policy and parameters"), json({ selection: c.selection, policy: c.policy, params: c.params })),
  );
}

export const detail = {
  async render(main, encodedId, ctx) {
    const id = decodeURIComponent(encodedId);
    const body = h("div", { "aria-live": "polite" });
    const report = h("section", { "aria-labelledby": "h-report" });
    replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/campaigns" }, "Campaigns"), " / "),
      h("h1", {}, "Campaign " + id), body, report);
    focusTitle(main);

    async function drawReport() {
      const answer = await api("GET", `/campaigns/${seg(id)}/report` + query({ format: "json" }), undefined, ctx.signal);
      replace(report, h("h2", { id: "h-report" }, "Per-device report"),
        table("Per-device report", ["Device", "Wave", "State", "Result", "Reason", "FwV", "Finished"],
          (answer.devices || []).map((r) => [deviceLink(r.device_id), typeof r.wave === "number" ? r.wave + 1 : "—", badge(r.state), r.result_code ?? "—",
            r.reason || "—", r.fwv || "—", when(r.finished)]), "no device yet."));
    }

    let wake = null;
    const refresh = () => wake && wake();
    while (!ctx.signal.aborted) {
      try {
        const c = await api("GET", "/campaigns/" + seg(id), undefined, ctx.signal);
        drawCampaign(body, c, ctx, refresh);
        await drawReport();
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
