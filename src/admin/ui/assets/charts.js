// Charts drawn as SVG: a line chart (one line per group) and a heatmap whose cells can be
// selected with the mouse or the keyboard. Sized by viewBox, so they scale with the page.

import { h, s, colour, number } from "./dom.js";

const WIDTH = 900;
const PAD = { left: 64, right: 16, top: 12, bottom: 28 };

function clock(seconds) {
  const date = new Date(seconds * 1000);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}:${String(date.getSeconds()).padStart(2, "0")}`;
}

function timeAxis(start, end, plotWidth, height) {
  const ticks = [];
  for (let i = 0; i <= 5; i += 1) {
    const t = start + ((end - start) * i) / 5;
    const x = PAD.left + (plotWidth * i) / 5;
    ticks.push(s("text", { x, y: height - 8, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, clock(t)));
  }
  return ticks;
}

/** `series`: [{name, points: [[unixSeconds, value|null], …]}]; one chart with a line each. */
export function lineChart({ title, series, start, end, height = 220, format = number }) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  const values = series.flatMap((one) => one.points.map(([, value]) => value)).filter((value) => typeof value === "number");
  const max = values.length ? Math.max(...values, 0) : 1;
  const min = values.length ? Math.min(...values, 0) : 0;
  const span = max - min || 1;
  const x = (t) => PAD.left + ((t - start) / Math.max(end - start, 1)) * plotWidth;
  const y = (v) => PAD.top + plotHeight - ((v - min) / span) * plotHeight;
  const grid = [0, 0.5, 1].map((fraction) => {
    const value = min + span * fraction;
    return [s("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value) }),
      s("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, format(value))];
  });
  const lines = series.map((one) => {
    const stroke = colour(one.name);
    const runs = [[]];
    for (const [t, value] of one.points) {
      if (typeof value === "number") runs[runs.length - 1].push(`${x(t).toFixed(1)},${y(value).toFixed(1)}`);
      else if (runs[runs.length - 1].length) runs.push([]);
    }
    return s("g", { class: "line-series", "data-series": one.name },
      s("title", {}, one.name),
      runs.filter((run) => run.length).map((run) => run.length === 1
        ? s("circle", { cx: run[0].split(",")[0], cy: run[0].split(",")[1], r: 3, fill: stroke })
        : s("polyline", { class: "series", points: run.join(" "), stroke })));
  });
  const svg = s("svg", { class: "chart line-chart", viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-label": title },
    grid, lines, timeAxis(start, end, plotWidth, height));
  const legend = h("div", { class: "legend" }, series.map((one) => {
    const box = h("span", { class: "swatch" });
    box.style.background = colour(one.name);
    return h("span", {}, box, one.name);
  }));
  return h("figure", { class: "chart-figure" }, h("figcaption", {}, h("strong", {}, title)), svg, legend);
}

/** `buckets`: [{lower, upper}] lowest first; `cells`: [{time, counts: [n per bucket]}].
 * `onSelect({start, end, lower, upper, count})` runs when a cell is chosen. */
export function heatmap({ title, buckets, cells, start, end, granularity, onSelect, format = number, height = 260 }) {
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = height - PAD.top - PAD.bottom;
  const columns = Math.max(1, Math.ceil((end - start) / granularity));
  const cellWidth = plotWidth / columns;
  const cellHeight = plotHeight / Math.max(buckets.length, 1);
  const max = Math.max(1, ...cells.flatMap((cell) => cell.counts));
  const bound = (value, fallback) => (value === null || value === undefined ? fallback : value);
  const rects = [];
  let chosen = null;
  for (const cell of cells) {
    const column = Math.floor((cell.time - start) / granularity);
    cell.counts.forEach((count, row) => {
      if (!count) return;
      const bucket = buckets[row];
      const label = `${clock(cell.time)}, ${format(bound(bucket.lower, -Infinity))} – ${format(bound(bucket.upper, Infinity))}: ${count}`;
      const rect = s("rect", {
        class: "heat-cell", x: PAD.left + column * cellWidth, y: PAD.top + plotHeight - (row + 1) * cellHeight,
        width: Math.max(cellWidth - 1, 1), height: Math.max(cellHeight - 1, 1),
        "fill-opacity": (0.15 + 0.85 * Math.log1p(count) / Math.log1p(max)).toFixed(3),
        tabindex: 0, role: "button", "aria-label": label, "data-count": count,
        "data-start": cell.time, "data-end": Math.min(cell.time + granularity, end), "data-lower": bucket.lower ?? "", "data-upper": bucket.upper ?? "",
      }, s("title", {}, label));
      const choose = () => {
        if (chosen) chosen.classList.remove("selected");
        chosen = rect;
        rect.classList.add("selected");
        onSelect({ start: cell.time, end: Math.min(cell.time + granularity, end), lower: bucket.lower, upper: bucket.upper, count });
      };
      rect.addEventListener("click", choose);
      rect.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(); } });
      rects.push(rect);
    });
  }
  const labels = [];
  const step = Math.max(1, Math.ceil(buckets.length / 6));
  for (let row = 0; row < buckets.length; row += step) {
    labels.push(s("text", { x: PAD.left - 6, y: PAD.top + plotHeight - row * cellHeight - 2, "text-anchor": "end" }, format(bound(buckets[row].lower, bound(buckets[row].upper, 0)))));
  }
  const svg = s("svg", { class: "chart heatmap", viewBox: `0 0 ${WIDTH} ${height}`, role: "group", "aria-label": title },
    s("line", { class: "axis", x1: PAD.left, x2: WIDTH - PAD.right, y1: PAD.top + plotHeight, y2: PAD.top + plotHeight }),
    labels, rects, timeAxis(start, end, plotWidth, height));
  return h("figure", { class: "chart-figure" }, h("figcaption", {}, h("strong", {}, title), h("span", { class: "muted" }, " · select a cell to list its traces")), svg);
}
