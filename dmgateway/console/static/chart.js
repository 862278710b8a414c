// Small SVG charts drawn from numbers (no library): a line chart over time and
// a horizontal bar chart.  Each has a text alternative for screen readers.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function fmt(v) {
  if (!isFinite(v)) return "—";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

// series: [{label, points: [[t, v], ...]}]; returns an <svg> with role img.
// floor: the least top of the scale (an idle gateway draws a flat line at 0).
export function lineChart(title, series, unit = "", floor = 1) {
  const W = 480, H = 160, L = 64, B = 20, T = 10, R = 10;
  const all = series.flatMap((s) => s.points);
  const el = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart" });
  const last = series.map((s) => {
    const values = s.points.map((p) => p[1]).filter(isFinite);
    if (!values.length) return `${s.label}: no data yet`;
    return `${s.label} now ${fmt(values[values.length - 1])}${unit}, peak ${fmt(Math.max(...values))}${unit}`;
  }).join("; ");
  el.appendChild(svg("title", {}, `${title}: ${last}`));
  const t0 = all.length ? Math.min(...all.map((p) => p[0])) : 0;
  const t1 = all.length ? Math.max(...all.map((p) => p[0])) : 1;
  const vmax = Math.max(floor, ...all.map((p) => p[1]).filter(isFinite));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => H - B - (v / vmax) * (H - B - T);
  el.appendChild(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  el.appendChild(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  el.appendChild(svg("text", { x: L - 4, y: T + 8, "text-anchor": "end", class: "tick" }, fmt(vmax) + unit));
  el.appendChild(svg("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "tick" }, "0"));
  el.appendChild(svg("text", { x: W - R, y: H - 4, "text-anchor": "end", class: "tick" }, "now"));
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => isFinite(p[1]));
    if (pts.length) {
      el.appendChild(svg("polyline", { points: pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" "), class: "series s" + i }));
    }
  });
  return el;
}

// bars: [[label, value]]; returns an <svg> with role img.
export function barChart(title, bars) {
  const W = 480, row = 22, L = 150;
  const H = Math.max(1, bars.length) * row + 4;
  const el = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart bars" });
  el.appendChild(svg("title", {}, `${title}: ` + (bars.map(([k, v]) => `${k} ${v}`).join(", ") || "none")));
  bars = bars.map(([label, value]) => [label, isFinite(Number(value)) ? Number(value) : 0]);
  const max = Math.max(1, ...bars.map((b) => b[1]));
  bars.forEach(([label, value], i) => {
    const yy = i * row + 2;
    el.appendChild(svg("text", { x: L - 6, y: yy + 15, "text-anchor": "end", class: "tick" }, label));
    el.appendChild(svg("rect", { x: L, y: yy + 2, width: Math.max(1, ((W - L - 50) * value) / max), height: row - 6, class: "bar s" + (i % 6) }));
    el.appendChild(svg("text", { x: L + 4 + ((W - L - 50) * value) / max, y: yy + 15, class: "tick" }, String(value)));
  });
  return el;
}
