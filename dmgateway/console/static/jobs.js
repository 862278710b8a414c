// Jobs and events: the live event feed (long-poll of GET /api/v1/events) and
// one job's detail with its results, wake-ups and error.

import { api, query, seg } from "./api.js";
import { badge, dl, focusTitle, h, json, replace, table, time } from "./dom.js";
import { deviceLink } from "./devices.js";
import { jobLink } from "./device.js";

const SHOWN = 200;
const CATCH_UP_PAGES = 20;
const FINAL = new Set(["done", "failed", "expired"]);

function summary(e) {
  switch (e.type) {
    case "session":
      return `${e.outcome || ""} (${e.reason || ""}), ${e.messages ?? "?"} messages`;
    case "job":
      return [e.job_id ? jobLink(e.job_id) : "", " ", e.state ? badge(e.state) : "", e.error ? " " + e.error : ""];
    case "notification":
      return [e.bearer || "", " ", e.state ? badge(e.state) : "", e.error ? " " + e.error : "", e.job_id ? [" job ", jobLink(e.job_id)] : ""];
    case "generic_alert":
      return `${e.meta_type || ""} ${e.source || ""}: ${e.data ?? ""}`;
    case "lockout":
      return `${e.scope || ""} ${e.peer || ""} until ${e.until || ""}`;
    default: {
      const rest = { ...e };
      for (const k of ["seq", "type", "device_id", "time"]) delete rest[k];
      return JSON.stringify(rest);
    }
  }
}

export async function render(main, _arg, ctx) {
  const state = h("p", { class: "hint", "aria-live": "polite" }, "Connecting…");
  const body = h("tbody");
  const paused = h("input", { type: "checkbox", id: "feed-paused" });
  replace(
    main,
    h("h1", {}, "Jobs and events"),
    h("p", {}, "Events as the gateway appends them: sessions, jobs, wake-ups, Generic Alerts, lockouts. Newest first."),
    h("div", { class: "check" }, paused, h("label", { for: "feed-paused" }, "Pause the feed")),
    state,
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Event feed" },
      h("table", { class: "feed", role: "table" }, h("caption", {}, "Event feed"),
        h("thead", {}, h("tr", { role: "row" }, ["Seq", "Time", "Type", "Device", "What"].map((x) => h("th", { scope: "col", role: "columnheader" }, x)))),
        body)),
  );
  focusTitle(main);

  let after = 0;
  let pages = 0;
  let caughtUp = false;
  const pending = [];
  function add(events) {
    for (const e of events) {
      after = Math.max(after, e.seq);
      body.insertBefore(
        h("tr", { "data-type": e.type, role: "row" },
          [["Seq", e.seq], ["Time", time(e.time)], ["Type", e.type], ["Device", e.device_id ? deviceLink(e.device_id) : "—"],
            ["What", summary(e)]].map(([label, value]) => h("td", { role: "cell", "data-label": label }, h("span", {}, value)))),
        body.firstChild,
      );
    }
    while (body.children.length > SHOWN) body.removeChild(body.lastChild);
  }
  while (!ctx.signal.aborted) {
    try {
      // Catch up in big pages without waiting, then wait for news.
      const wait = caughtUp ? 25 : 0;
      const page = await api("GET", "/events" + query({ after, wait, limit: caughtUp ? 100 : 1000 }), undefined, ctx.signal);
      if (!caughtUp) {
        pages += 1;
        if (page.events.length < 1000 || pages >= CATCH_UP_PAGES) caughtUp = true;
      }
      if (paused.checked) pending.push(...page.events);
      else add(pending.splice(0).concat(page.events));
      after = Math.max(after, ...page.events.map((e) => e.seq));
      state.textContent = caughtUp ? `Live: waiting for events after #${after}.` : "Catching up…";
    } catch (e) {
      if (e.name === "AbortError") return;
      ctx.sayError(e);
      state.textContent = "Disconnected; retrying in 5 s.";
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

export const detail = {
  async render(main, encodedId, ctx) {
    const id = decodeURIComponent(encodedId);
    const title = h("h1", {}, "Job " + id);
    const body = h("div", { "aria-live": "polite" });
    replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs and events"), " / "), title, body);
    focusTitle(main);
    while (!ctx.signal.aborted) {
      let job;
      try {
        job = await api("GET", "/jobs/" + seg(id), undefined, ctx.signal);
      } catch (e) {
        ctx.sayError(e);
        return;
      }
      draw(body, job, ctx);
      if (FINAL.has(job.state)) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  },
};

function draw(body, job, ctx) {
  const cancel = FINAL.has(job.state)
    ? null
    : h("button", { type: "button", class: "danger", onclick: async () => {
        try {
          const answer = await api("POST", "/jobs/" + seg(job.id) + "/cancel", undefined, ctx.signal);
          ctx.say(answer.cancelled ? `Job ${job.id} cancelled.` : `Job ${job.id}: ${answer.state}` + (answer.cancel ? " (cancelled at the session's end)" : ""), "info");
        } catch (e) {
          ctx.sayError(e);
        }
      } }, "Cancel job");
  replace(
    body,
    dl([
      ["State", h("span", { class: "job-state" }, badge(job.state))],
      ["Device", deviceLink(job.device_id)],
      ["Wake-up", job.notify],
      ["Atomic", job.atomic ? "yes" : "no"],
      ["Created", time(job.created)],
      ["Updated", time(job.updated)],
    ]),
    job.error ? h("p", { class: "error job-error" }, `${job.error.code}: ${job.error.message}`) : null,
    cancel,
    h("h2", {}, "Commands"),
    table("Commands", ["#", "Operation", "Target", "Data"], job.commands.map((c, i) => [
      i + 1, c.op + (c.alert ? " " + c.alert : ""), c.target || "—", c.data ?? (c.choices ? c.choices.join("; ") : "—"),
    ])),
    h("h2", {}, "Results"),
    table("Results", ["Operation", "Target", "Status", "Data", "Format", "Type"], (job.results || []).map((r) => [
      r.op, r.target || "—", h("span", { class: "status-code" }, String(r.status ?? "—")), r.data ?? "—", r.format || "—", r.type || "—",
    ]), FINAL.has(job.state) ? "none." : "not yet."),
    h("h2", {}, "Wake-ups"),
    table("Wake-ups", ["Bearer", "State", "Attempts", "Error", "Message id"], (job.notifications || []).map((n) => [
      n.bearer, badge(n.state), n.attempts, n.last_error || "—", n.message_id || "—",
    ]), "none."),
    h("details", {}, h("summary", {}, "As JSON"), json(job)),
  );
}
