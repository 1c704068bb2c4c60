// Metrics: the OTLP metrics received, by name; a metric's data points charted over time, one
// line per attribute set (sums and gauges by value, histograms by their mean).

import { h, replace, number } from "./dom.js";
import { getJSON } from "./api.js";
import { href } from "./route.js";
import { lineChart } from "./charts.js";

function pointValue(point) {
  if (typeof point.value === "number") return point.value;
  if (typeof point.sum === "number" && point.count) return point.sum / Number(point.count);
  return null;
}

function attributeLabel(attributes, service) {
  const parts = Object.entries(attributes || {}).map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  return [service, ...parts].filter(Boolean).join(" ") || "(no attributes)";
}

export async function render(main, context) {
  const chosen = context.params.get("name");
  const body = h("div", {});
  main.append(h("h1", {}, "Metrics"), body);
  context.every(5000, async () => {
    const answer = await getJSON("/api/metrics", { limit: 1000, name: chosen || undefined }, context.signal);
    const byName = new Map();
    for (const metric of answer.metrics) {
      if (!byName.has(metric.name)) byName.set(metric.name, []);
      byName.get(metric.name).push(metric);
    }
    const list = h("ul", { id: "metric-names" }, [...byName.keys()].sort().map((name) => {
      const first = byName.get(name)[0];
      return h("li", {}, h("a", { href: href("metrics", { name }) }, name), h("span", { class: "muted" }, ` ${first.type}${first.unit ? `, ${first.unit}` : ""}${first.description ? ` — ${first.description}` : ""}`));
    }));
    if (!chosen) {
      replace(body, byName.size ? [h("p", { class: "muted" }, "Metrics received, by name. Choose one to chart it."), list] : h("p", { class: "empty" }, "No metrics stored yet."));
      return;
    }
    const metrics = byName.get(chosen) || [];
    const lines = new Map();
    let start = Infinity;
    let end = 0;
    for (const metric of metrics) {
      for (const point of metric.data_points || []) {
        const seconds = Number(BigInt(point.time_unix_nano) / 1000000n) / 1000;
        const value = pointValue(point);
        if (value === null) continue;
        const name = attributeLabel(point.attributes, metric.service);
        if (!lines.has(name)) lines.set(name, []);
        lines.get(name).push([seconds, value]);
        start = Math.min(start, seconds);
        end = Math.max(end, seconds);
      }
    }
    const series = [...lines].map(([name, points]) => ({ name, points: points.sort((a, b) => a[0] - b[0]) }));
    const first = metrics[0];
    replace(body, h("p", {}, h("a", { href: href("metrics") }, "All metrics"), " / ", h("strong", {}, chosen)),
      first ? h("p", { class: "muted" }, `${first.type}${first.unit ? `, unit ${first.unit}` : ""}${first.aggregation_temporality ? `, ${first.aggregation_temporality}` : ""}${first.description ? ` — ${first.description}` : ""}`) : null,
      series.length ? lineChart({ title: chosen, series, start: start === end ? start - 30 : start, end: start === end ? end + 30 : end, format: number })
        : h("p", { class: "empty" }, "No data points for this metric."));
  });
}
