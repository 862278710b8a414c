// The job builder: a list of Get / Replace / Exec / Alert (and Add / Delete)
// commands, checked by the API when submitted (its error names the field).

import { field, h, select } from "./dom.js";

const OPS = ["Get", "Replace", "Exec", "Alert", "Add", "Delete"];
const FORMATS = ["chr", "int", "bool", "b64", "xml", "node"];
const ALERTS = [
  ["1100", "1100 display"],
  ["1101", "1101 confirm"],
  ["1102", "1102 text input"],
  ["1103", "1103 single choice"],
  ["1104", "1104 multiple choice"],
];

let rows = 0;

function commandRow(list) {
  const n = ++rows;
  const op = select("op", OPS, "Get");
  const target = h("input", { name: "target", value: "./DevDetail/SwV", spellcheck: "false" });
  const data = h("input", { name: "data", spellcheck: "false" });
  const format = select("format", [["", "(default)"], ...FORMATS.map((f) => [f, f])], "");
  const alert = select("alert", ALERTS, "1101");
  const choices = h("input", { name: "choices", placeholder: "one; two; three" });
  const remove = h("button", { type: "button", class: "secondary", "aria-label": "Remove command " + n }, "Remove");
  const fTarget = field("Target", target);
  const fData = field("Data", data);
  const fFormat = field("Format", format);
  const fAlert = field("Alert", alert);
  const fChoices = field("Choices", choices, "separated by ;");
  const row = h("fieldset", { class: "command" }, h("legend", {}, "Command " + n), field("Operation", op),
    fTarget, fData, fFormat, fAlert, fChoices, remove);
  function show() {
    const isAlert = op.value === "Alert";
    fTarget.hidden = isAlert;
    fFormat.hidden = isAlert || op.value === "Get" || op.value === "Delete";
    fData.hidden = op.value === "Get" || op.value === "Delete";
    fAlert.hidden = !isAlert;
    fChoices.hidden = !(isAlert && (alert.value === "1103" || alert.value === "1104"));
  }
  op.addEventListener("change", show);
  alert.addEventListener("change", show);
  remove.addEventListener("click", () => {
    if (list.children.length > 1) row.remove();
  });
  show();
  row.spec = () => {
    if (op.value === "Alert") {
      const c = { op: "Alert", alert: Number(alert.value), data: data.value };
      if (!fChoices.hidden) c.choices = choices.value.split(";").map((s) => s.trim()).filter(Boolean);
      return c;
    }
    const c = { op: op.value, target: target.value };
    if (!fData.hidden && data.value !== "") c.data = data.value;
    if (!fFormat.hidden && format.value) c.format = format.value;
    return c;
  };
  return row;
}

export function jobBuilder(submit, ctx) {
  const list = h("div", { class: "commands" });
  list.appendChild(commandRow(list));
  const add = h("button", { type: "button", class: "secondary" }, "Add a command");
  add.addEventListener("click", () => {
    const row = commandRow(list);
    list.appendChild(row);
    row.querySelector("select").focus();
  });
  const atomic = h("input", { type: "checkbox", name: "atomic" });
  const notify = select("notify", [["auto", "auto"], ["sms", "SMS"], ["sip", "SIP"], ["none", "none (wait for the device)"]], "auto");
  const form = h("form", { class: "job-builder", "aria-label": "New job" }, list,
    h("div", { class: "actions" }, add),
    h("div", { class: "check" }, atomic, h("label", { for: (atomic.id = "atomic" + rows) }, "Atomic")),
    field("Wake-up", notify),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Create job")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const spec = {
      commands: [...list.children].map((row) => row.spec()),
      atomic: atomic.checked,
      notify: notify.value,
    };
    try {
      await submit(spec);
    } catch (e) {
      ctx.sayError(e);
    }
  });
  return form;
}
