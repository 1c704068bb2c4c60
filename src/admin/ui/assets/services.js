// Service map: services as nodes and the calls between them over a time range, as the
// server aggregates them (`/jaeger/api/dependencies`, Jaeger's dependency links with error
// counts and P90): a child span in another service than its parent is a call (parent's
// service → child's), and a client span (an X-Ray remote subsegment among them) that no traced
// service answered is a call to its peer. Each edge shows its request count, error rate and P90.

import { h, s, replace, duration, number } from "./dom.js";
import { getJSON } from "./api.js";
import { href, go } from "./route.js";

const RANGES = [["900", "last 15 minutes"], ["3600", "last hour"], ["21600", "last 6 hours"], ["86400", "last 24 hours"], ["604800", "last 7 days"]];
const DEFAULT_RANGE = "3600";

/** An edge's figures, as the map and the table show them. */
export function edgeLabel(edge) {
  return `${number(edge.callCount)} calls · ${errorRate(edge)} errors · P90 ${duration(edge.p90DurationMs)}`;
}

function errorRate(edge) {
  return `${((100 * edge.errorCount) / Math.max(edge.callCount, 1)).toFixed(1)}%`;
}

/** Nodes (every service with spans, and every callee) and edges from the API's links. */
export function serviceMap(services, links) {
  const nodes = new Set(services);
  for (const link of links) { nodes.add(link.parent); nodes.add(link.child); }
  return { nodes: [...nodes].sort(), edges: links.map((link) => ({ ...link, from: link.parent, to: link.child })) };
}

function draw(map) {
  const width = 900;
  const rowHeight = 60;
  // Columns by depth from services nobody calls, so calls flow left to right.
  const depth = new Map(map.nodes.map((node) => [node, 0]));
  for (let pass = 0; pass < map.nodes.length; pass += 1) {
    for (const edge of map.edges) if (edge.from !== edge.to && depth.get(edge.to) <= depth.get(edge.from) && depth.get(edge.from) < map.nodes.length) depth.set(edge.to, depth.get(edge.from) + 1);
  }
  const columns = Math.max(...depth.values(), 0) + 1;
  const perColumn = new Map();
  const position = new Map();
  for (const node of map.nodes) {
    const column = depth.get(node);
    const row = perColumn.get(column) || 0;
    perColumn.set(column, row + 1);
    position.set(node, { x: 20 + (column * (width - 200)) / Math.max(columns - 1, 1), y: 20 + row * rowHeight });
  }
  const height = 40 + Math.max(...perColumn.values(), 1) * rowHeight;
  const box = { w: 170, h: 32 };
  return s("svg", { class: "chart svc-map", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Service map" },
    s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse" }, s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "currentColor" }))),
    map.edges.map((edge) => {
      const a = position.get(edge.from);
      const b = position.get(edge.to);
      const x1 = a.x + box.w; const y1 = a.y + box.h / 2; const x2 = b.x; const y2 = b.y + box.h / 2;
      const label = edgeLabel(edge);
      return s("g", { class: "svc-edge", "data-from": edge.from, "data-to": edge.to },
        s("path", { class: `edge${edge.errorCount ? " errors" : ""}${edge.peer ? " peer" : ""}`, d: `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }, s("title", {}, `${edge.from} → ${edge.to}: ${label}`)),
        s("text", { class: "edge-label", x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, label));
    }),
    map.nodes.map((node) => {
      const { x, y } = position.get(node);
      return s("g", { class: "node", "data-service": node }, s("rect", { x, y, width: box.w, height: box.h, rx: 6 }),
        s("text", { x: x + box.w / 2, y: y + 20, "text-anchor": "middle" }, node.length > 24 ? `${node.slice(0, 23)}…` : node));
    }));
}

export async function render(main, context) {
  const range = RANGES.some(([key]) => key === context.params.get("range")) ? context.params.get("range") : DEFAULT_RANGE;
  const body = h("div", {}, h("p", { class: "muted" }, "Counting calls…"));
  const picker = h("select", { id: "map-range", "aria-label": "time range", onchange: (event) => go("services", { range: event.target.value }, { replaceState: true }) },
    RANGES.map(([key, text]) => h("option", { value: key, selected: key === range }, text)));
  const note = h("p", { class: "muted", id: "map-note" });
  main.append(h("h1", {}, "Service map"), h("div", { class: "toolbar" }, h("label", {}, "Calls in the ", picker)), note, body);
  const services = (await getJSON("/jaeger/api/services", {}, context.signal)).data || [];
  const answer = await getJSON("/jaeger/api/dependencies", { endTs: String(Date.now()), lookback: String(Number(range) * 1000) }, context.signal);
  const map = serviceMap(services, answer.data || []);
  note.textContent = `Counted by waggle from ${number(answer.spansRead)} stored spans${answer.truncated ? " (the newest only: older calls in this range are left out)" : ""}.`;
  if (!map.nodes.length) { replace(body, h("p", { class: "empty" }, "No traces stored yet.")); return; }
  replace(body, draw(map),
    h("table", { id: "service-edges" }, h("thead", {}, h("tr", {}, h("th", {}, "caller"), h("th", {}, "callee"), h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "error rate"), h("th", { class: "num" }, "P90"))),
      h("tbody", {}, map.edges.length ? map.edges.map((edge) => h("tr", { "data-from": edge.from, "data-to": edge.to },
        h("td", {}, h("a", { href: href("traces", { service: edge.from }) }, edge.from)),
        h("td", {}, edge.peer ? h("span", { title: "not traced: named by the caller's client spans" }, edge.to, " (peer)") : h("a", { href: href("traces", { service: edge.to }) }, edge.to)),
        h("td", { class: "num calls" }, number(edge.callCount)),
        h("td", { class: `num error-rate${edge.errorCount ? " bad" : ""}` }, errorRate(edge)), h("td", { class: "num p90" }, duration(edge.p90DurationMs))))
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, `${map.nodes.length} service${map.nodes.length === 1 ? "" : "s"}, no calls between services in this range.`)))));
}
