// The Prometheus text format (what /metrics serves), read into samples.

// [{name, labels: {k: v}, value}] from the exposition text; comments skipped.
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

export function pick(samples, name, where = {}) {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));
}

export function total(samples, name, where = {}) {
  return pick(samples, name, where).reduce((sum, s) => sum + (isFinite(s.value) ? s.value : 0), 0);
}
