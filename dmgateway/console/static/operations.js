// Operations: what the gateway is doing now, from /healthz and /metrics
// (sampled every few seconds while the page is open).

import { plain } from "./api.js";
import { barChart, lineChart } from "./chart.js";
import { badge, dl, focusTitle, h, replace, table } from "./dom.js";
import { parseMetrics, pick, total } from "./metrics.js";

const PERIOD = 2000;
const KEEP = 90; // points on the charts (3 minutes)

export async function render(main, _arg, ctx) {
  const health = h("section", { "aria-labelledby": "h-health" });
  const now = h("section", { "aria-labelledby": "h-now" });
  const charts = h("section", { "aria-labelledby": "h-charts", class: "charts" });
  replace(main, h("h1", {}, "Operations"), health, now, charts);
  focusTitle(main);
  const rate = [];
  const latency = [];
  const sessionTime = [];
  let previous = null;
  while (!ctx.signal.aborted) {
    try {
      const [healthText, metricsText] = await Promise.all([plain("/healthz", ctx.signal), plain("/metrics", ctx.signal)]);
      const t = Date.now() / 1000;
      const m = parseMetrics(metricsText);
      const sample = {
        t,
        started: total(m, "dmgw_sessions_started_total"),
        dmSum: total(m, "dmgw_http_request_duration_seconds_sum", { listener: "dm" }),
        dmCount: total(m, "dmgw_http_request_duration_seconds_count", { listener: "dm" }),
        sessSum: total(m, "dmgw_session_duration_seconds_sum"),
        sessCount: total(m, "dmgw_session_duration_seconds_count"),
      };
      if (previous) {
        const dt = Math.max(0.001, t - previous.t);
        rate.push([t, Math.max(0, sample.started - previous.started) / dt]);
        const n = sample.dmCount - previous.dmCount;
        latency.push([t, n > 0 ? ((sample.dmSum - previous.dmSum) / n) * 1000 : 0]);
        const s = sample.sessCount - previous.sessCount;
        sessionTime.push([t, s > 0 ? (sample.sessSum - previous.sessSum) / s : NaN]);
        for (const list of [rate, latency, sessionTime]) while (list.length > KEEP) list.shift();
      }
      previous = sample;
      drawHealth(health, healthText);
      drawNow(now, m);
      replace(
        charts,
        h("h2", { id: "h-charts" }, "Traffic"),
        h("figure", {}, lineChart("DM sessions opened per second", [{ label: "sessions/s", points: rate }], "/s", 1),
          h("figcaption", {}, "Sessions opened per second")),
        h("figure", {}, lineChart("Mean DM request latency", [{ label: "latency", points: latency }], " ms", 10),
          h("figcaption", {}, "Mean DM HTTP request latency (ms)")),
        h("figure", {}, lineChart("Mean duration of the sessions that ended", [{ label: "duration", points: sessionTime }], " s", 1),
          h("figcaption", {}, "Mean session duration (s)")),
        h("figure", {}, barChart("Sessions ended by outcome", pick(m, "dmgw_sessions_ended_total").map((s) => [s.labels.outcome || "?", s.value])),
          h("figcaption", {}, "Sessions ended, by outcome")),
      );
    } catch (e) {
      if (e.name === "AbortError") return;
      ctx.sayError(e);
    }
    await new Promise((r) => setTimeout(r, PERIOD));
  }
}

function drawHealth(section, text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch (_) {
    body = { status: text };
  }
  replace(
    section,
    h("h2", { id: "h-health" }, "Health"),
    dl([
      ["Status", h("span", { class: "health" }, badge(body.status || "?"))],
      ["Failing", (body.failing || []).map((f) => `${f}: ${(body.reasons || {})[f] || ""}`).join("; ") || "nothing"],
    ]),
  );
}

function drawNow(section, m) {
  const links = pick(m, "dmgw_smpp_link_up");
  const outbox = pick(m, "dmgw_outbox_depth");
  replace(
    section,
    h("h2", { id: "h-now" }, "Now"),
    dl([
      ["Live sessions", h("span", { class: "live-sessions" }, String(total(m, "dmgw_sessions_live")))],
      ["Webhook backlog", String(total(m, "dmgw_webhook_backlog"))],
      ["Devices locked out", String(total(m, "dmgw_devices_locked_out"))],
      ["Serving", total(m, "dmgw_up") ? "yes" : "no (starting or draining)"],
    ]),
    table("Outbox depth by bearer", ["Bearer", "State", "Notifications"],
      outbox.map((s) => [s.labels.bearer || "?", s.labels.state || "?", s.value]), "empty."),
    table("SMSC links", ["Link", "State", "Window used", "Window size"],
      links.map((s) => [
        s.labels.link || "?",
        badge(s.value ? "bound" : "down"),
        total(m, "dmgw_smpp_window_used", { link: s.labels.link }),
        total(m, "dmgw_smpp_window_size", { link: s.labels.link }),
      ]), "no SMPP link configured."),
    table("Jobs in the store", ["State", "Jobs"], pick(m, "dmgw_jobs").map((s) => [s.labels.state || "?", s.value]), "none."),
  );
}
