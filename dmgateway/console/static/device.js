// One device: its account, DevInfo, last session, lockouts, jobs, bootstrap
// pushes, and the actions (new job, wake-up, bootstrap, delete).

import { api, query, seg } from "./api.js";
import { badge, dl, field, focusTitle, h, json, replace, select, table, time } from "./dom.js";
import { jobBuilder } from "./jobform.js";

const FINAL = new Set(["done", "failed", "expired"]);
const JOBS_SHOWN = 20;

export function jobLink(id) {
  return h("a", { href: "#/jobs/" + encodeURIComponent(id) }, id.slice(0, 12));
}

export async function render(main, encodedId, ctx) {
  const id = decodeURIComponent(encodedId);
  const path = "/devices/" + seg(id);
  const title = h("h1", {}, id);
  const body = h("div", { class: "device" });
  replace(main, h("p", { class: "crumbs" }, h("a", { href: "#/devices" }, "Devices"), " / "), title, body);
  focusTitle(main);

  let device;
  try {
    device = await api("GET", path, undefined, ctx.signal);
  } catch (e) {
    ctx.sayError(e);
    return;
  }

  const lockouts = h("section", { "aria-labelledby": "h-lockouts" });
  const jobs = h("section", { "aria-labelledby": "h-jobs" });
  const sessions = h("section", { "aria-labelledby": "h-sessions" });
  const notifications = h("section", { "aria-labelledby": "h-notifications" });

  function drawLockouts(list) {
    const clearButton = h("button", { type: "button", class: "secondary", disabled: !list.length }, "Clear lockouts");
    clearButton.addEventListener("click", async () => {
      try {
        const answer = await api("DELETE", path + "/lockouts", undefined, ctx.signal);
        ctx.say(`Lockouts of ${id} cleared (${answer.cleared}).`, "info");
        const fresh = await api("GET", path, undefined, ctx.signal);
        drawLockouts(fresh.lockouts || []);
      } catch (e) {
        ctx.sayError(e);
      }
    });
    replace(
      lockouts,
      h("h2", { id: "h-lockouts" }, "Lockouts"),
      table("Lockouts in force", ["Scope", "Peer", "Until"], list.map((l) => [l.scope, l.peer || "all addresses", time(l.until)]), "none in force."),
      clearButton,
    );
  }

  // The jobs API pages oldest first: follow it (a few big pages at most) and show the newest.
  async function newestJobs() {
    let after = null;
    let jobs = [];
    for (let page = 0; page < 5; page += 1) {
      const answer = await api("GET", path + "/jobs" + query({ limit: 500, after }), undefined, ctx.signal);
      jobs = jobs.concat(answer.jobs).slice(-JOBS_SHOWN);
      if (!answer.next) break;
      after = answer.next;
    }
    return jobs.reverse();
  }

  async function drawJobs() {
    try {
      const list = await newestJobs();
      replace(
        jobs,
        h("h2", { id: "h-jobs" }, "Jobs"),
        table(
          "Newest jobs",
          ["Job", "State", "Commands", "Results", "Created", "Updated"],
          list.map((j) => [
            jobLink(j.id),
            badge(j.state),
            j.commands.map((c) => c.op + (c.target ? " " + c.target : "")).join(", "),
            (j.results || []).map((r) => String(r.status ?? "")).join(", ") || "—",
            time(j.created),
            time(j.updated),
          ]),
          "no job yet.",
        ),
      );
      await drawHistory();
      return list;
    } catch (e) {
      ctx.sayError(e);
      return [];
    }
  }

  // The device's own events: its last sessions and the fate of each wake-up or push.
  async function drawHistory() {
    const [sessionEvents, notificationEvents] = await Promise.all([
      api("GET", path + "/events" + query({ type: "session", limit: 10 }), undefined, ctx.signal),
      api("GET", path + "/events" + query({ type: "notification", limit: 20 }), undefined, ctx.signal),
    ]);
    replace(
      sessions,
      h("h2", { id: "h-sessions" }, "Last sessions"),
      table("Last sessions", ["Ended", "Outcome", "Reason", "Messages", "Jobs"], sessionEvents.events.map((e) => [
        time(e.ended || e.time), badge(e.outcome || "?"), e.reason || "—", e.messages ?? "—",
        (e.jobs || []).length ? e.jobs.map((j) => [jobLink(j), " "]) : "none",
      ]), "no session yet."),
    );
    replace(
      notifications,
      h("h2", { id: "h-notifications" }, "Notifications"),
      table("Wake-ups and pushes", ["Time", "Bearer", "State", "For", "Error", "Message id"], notificationEvents.events.map((e) => [
        time(e.time), e.bearer || "—", badge(e.state || "?"),
        e.job_id ? ["job ", jobLink(e.job_id)] : e.kind || "—", e.error || "—", e.message_id || "—",
      ]), "none sent."),
    );
  }

  const info = device.devinfo || {};
  const last = device.last_session;
  replace(
    body,
    h(
      "div",
      { class: "columns" },
      h("section", { "aria-labelledby": "h-account" }, h("h2", { id: "h-account" }, "Account"),
        dl([
          ["Server id", device.server_id],
          ["Client auth", `${device.client_auth.type} ${device.client_auth.name}`],
          ["Server auth", `${device.server_auth.type} ${device.server_auth.name}`],
          ["MSISDN", device.msisdn],
          ["IMSI", device.imsi],
          ["SIP URI", device.sip_uri],
          ["Created", time(device.created)],
        ])),
      h("section", { "aria-labelledby": "h-devinfo" }, h("h2", { id: "h-devinfo" }, "DevInfo"),
        Object.keys(info).length ? dl(Object.entries(info).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)])) : h("p", { class: "empty" }, "Not reported yet.")),
      h("section", { "aria-labelledby": "h-session" }, h("h2", { id: "h-session" }, "Last session"),
        last ? dl([
          ["Ended", time(last.ended)],
          ["Outcome", badge(last.outcome)],
          ["Reason", last.reason],
          ["Messages", last.messages],
          ["Jobs", (last.jobs || []).length ? (last.jobs || []).map((j) => [jobLink(j), " "]) : "none"],
        ]) : h("p", { class: "empty" }, "No session yet.")),
    ),
    device.functions ? functionsSection(device.functions) : null,
    lockouts,
    jobs,
    sessions,
    notifications,
    h("section", { "aria-labelledby": "h-bootstraps" }, h("h2", { id: "h-bootstraps" }, "Bootstrap pushes"),
      table("Newest bootstrap pushes", ["Profile", "SEC", "Bearer", "State", "Attempts", "Error", "Updated"],
        (device.bootstraps || []).map((b) => [b.profile, b.sec, b.bearer, badge(b.state), b.attempts, b.last_error || "—", time(b.updated)]),
        "none sent.")),
    actions(id, path, ctx, drawJobs),
  );
  drawLockouts(device.lockouts || []);
  let list = await drawJobs();
  // Refresh the jobs while some are still on their way.
  while (!ctx.signal.aborted && list.some((j) => !FINAL.has(j.state))) {
    await new Promise((r) => setTimeout(r, 2000));
    if (ctx.signal.aborted) break;
    list = await drawJobs();
  }
}

// What the device's FUMO / SCOMO / LAWMO operations last read back.
function functionsSection(f) {
  const components = Object.entries(f.components || {});
  return h("section", { "aria-labelledby": "h-functions" }, h("h2", { id: "h-functions" }, "Device functions"),
    dl([["FwV (read back)", f.fwv], ["FUMO state", f.fumo_state], ["LAWMO state", f.lawmo_state]]),
    components.length ? table("Deployed components", ["Component", "Version", "State"],
      components.map(([name, c]) => [name, c.version ?? "—", c.state ?? "—"])) : null);
}

function actions(id, path, ctx, refresh) {
  const section = h("section", { "aria-labelledby": "h-actions", class: "actions-panel" }, h("h2", { id: "h-actions" }, "Actions"));

  // New job
  section.appendChild(
    h("details", { open: true }, h("summary", {}, "New job"),
      jobBuilder(async (spec) => {
        const job = await api("POST", path + "/jobs", spec, ctx.signal);
        ctx.say(`Job ${job.id} queued.`, "info", true);
        location.hash = "#/jobs/" + encodeURIComponent(job.id);
      }, ctx)),
  );

  // Wake up: a job asking for the DevId, sent over the chosen bearer.
  const bearer = select("notify", [["auto", "auto (SMS, then SIP)"], ["sms", "SMS"], ["sip", "SIP"]], "auto");
  const wake = h("form", { class: "inline" }, field("Bearer", bearer),
    h("button", { type: "submit" }, "Wake up"));
  wake.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const job = await api("POST", path + "/jobs", { commands: [{ op: "Get", target: "./DevInfo/DevId" }], notify: bearer.value }, ctx.signal);
      ctx.say(`Wake-up sent with job ${job.id} (a Get of ./DevInfo/DevId).`, "info");
      refresh();
    } catch (e) {
      ctx.sayError(e);
    }
  });
  section.appendChild(h("details", {}, h("summary", {}, "Wake up"),
    h("p", { class: "hint" }, "Queues a job reading ./DevInfo/DevId and sends the wake-up (DM-1 package #0) over the bearer."), wake));

  // Bootstrap
  const profile = select("profile", [["dm", "DM (SyncML DM account)"], ["cp", "CP (WAP provisioning)"]], "dm");
  const sec = select("sec", ["NETWPIN", "USERPIN", "USERNETWPIN", "USERPINMAC", "none"], "NETWPIN");
  const pin = h("input", { name: "pin", inputmode: "numeric", pattern: "[0-9]{1,32}", autocomplete: "off" });
  const deliver = select("deliver", [["push", "push over SMS"], ["return", "return the document here"]], "push");
  const out = h("div", { "aria-live": "polite" });
  const boot = h("form", { class: "grid" }, field("Profile", profile), field("Security (SEC)", sec),
    field("PIN", pin, "USERPIN, USERNETWPIN, USERPINMAC only"), field("Deliver", deliver),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Bootstrap")));
  boot.addEventListener("submit", async (event) => {
    event.preventDefault();
    const spec = { profile: profile.value, sec: sec.value, deliver: deliver.value };
    if (pin.value) spec.pin = pin.value;
    try {
      const answer = await api("POST", path + "/bootstrap", spec, ctx.signal);
      ctx.say(deliver.value === "push" ? `Bootstrap queued (notification ${answer.id}).` : "Bootstrap document built.", "info");
      replace(out, json(answer));
    } catch (e) {
      ctx.sayError(e);
    }
  });
  section.appendChild(h("details", {}, h("summary", {}, "Bootstrap"), boot, out));

  // Delete, in two steps
  const history = select("history", [["keep", "keep its events"], ["purge", "purge its events"]], "keep");
  const confirm = h("button", { type: "button", class: "danger", hidden: true }, "Confirm: delete " + id);
  const start = h("button", { type: "button", class: "danger" }, "Delete device…");
  start.addEventListener("click", () => {
    confirm.hidden = false;
    confirm.focus();
  });
  confirm.addEventListener("click", async () => {
    try {
      const answer = await api("DELETE", path + query({ history: history.value }), undefined, ctx.signal);
      ctx.say(`${id} deleted; ${answer.jobs_cancelled.length} job(s) cancelled; history ${answer.history}.`, "info", true);
      location.hash = "#/devices";
    } catch (e) {
      ctx.sayError(e);
    }
  });
  section.appendChild(h("details", {}, h("summary", {}, "Delete"),
    h("p", { class: "hint" }, "Aborts a live session, cancels pending jobs and removes the account."),
    field("History", history), h("div", { class: "actions" }, start, confirm)));
  return section;
}
