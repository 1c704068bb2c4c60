// Service map: services as nodes and the calls between them, from recent traces: a child span
// in another service than its parent is a call (parent's service → child's), and a client span
// (an X-Ray subsegment with a remote call among them) to a peer nobody traced is a call to that
// peer. Each edge shows its request count, error rate and P90 duration.

import { h, s, replace, duration, number } from "./dom.js";
import { getJSON } from "./api.js";
import { href } from "./route.js";

const TRACES_PER_SERVICE = 200;

/** A span's remote peer when it calls out of the traced world: `peer.service`, else the host. */
function peer(span) {
  const tags = span.tags;
  const host = tags["peer.service"] || tags["server.address"] || tags["net.peer.name"] || tags["aws.service"] || tags["rpc.service"] || tags["db.system"];
  if (host) return String(host);
  const url = tags["http.url"] || tags["url.full"];
  if (url) { try { return new URL(String(url)).host; } catch { return null; } }
  return null;
}

function p90(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(0.9 * sorted.length) - 1)] : null;
}

/** Edges from Jaeger-shaped traces: [{from, to, count, errors, durations}]. */
export function edges(traces) {
  const found = new Map();
  const add = (from, to, span) => {
    const key = `${from}\u0000${to}`;
    if (!found.has(key)) found.set(key, { from, to, count: 0, errors: 0, durations: [] });
    const edge = found.get(key);
    edge.count += 1;
    if (span.tags.error === true || span.tags.error === "true") edge.errors += 1;
    edge.durations.push(span.duration / 1000);
  };
  const nodes = new Set();
  for (const trace of traces) {
    const spans = new Map(trace.spans.map((span) => [span.spanID, span]));
    const service = (span) => (trace.processes[span.processID] || {}).serviceName || "(unknown)";
    for (const span of trace.spans) {
      span.tags = Object.fromEntries((span.tags || []).map((tag) => [tag.key, tag.value]));
      nodes.add(service(span));
    }
    const parents = new Set();
    for (const span of trace.spans) {
      const parentRef = (span.references || []).find((ref) => ref.refType === "CHILD_OF");
      const parent = parentRef && spans.get(parentRef.spanID);
      if (!parent) continue;
      parents.add(parent.spanID);
      if (service(parent) !== service(span)) add(service(parent), service(span), span);
    }
    for (const span of trace.spans) {
      // A client call whose callee was traced is drawn from the callee's span above.
      const remote = span.tags["span.kind"] === "client" || span.tags["aws.xray.namespace"] === "remote" || span.tags["aws.remote"] === true;
      const target = remote && !parents.has(span.spanID) ? peer(span) : null;
      if (target && target !== service(span)) { nodes.add(target); add(service(span), target, span); }
    }
  }
  return { nodes: [...nodes].sort(), edges: [...found.values()] };
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
      const label = `${number(edge.count)} calls · ${Math.round((100 * edge.errors) / edge.count)}% errors · P90 ${duration(p90(edge.durations))}`;
      return s("g", { class: "svc-edge" },
        s("path", { class: `edge${edge.errors ? " errors" : ""}`, d: `M ${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }, s("title", {}, `${edge.from} → ${edge.to}: ${label}`)),
        s("text", { class: "edge-label", x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, "text-anchor": "middle" }, label));
    }),
    map.nodes.map((node) => {
      const { x, y } = position.get(node);
      return s("g", { class: "node", "data-service": node }, s("rect", { x, y, width: box.w, height: box.h, rx: 6 }),
        s("text", { x: x + box.w / 2, y: y + 20, "text-anchor": "middle" }, node.length > 24 ? `${node.slice(0, 23)}…` : node));
    }));
}

export async function render(main, context) {
  const body = h("div", {}, h("p", { class: "muted" }, "Reading recent traces…"));
  main.append(h("h1", {}, "Service map"), h("p", { class: "muted" }, `From the latest ${TRACES_PER_SERVICE} traces of each service in the local store.`), body);
  const services = (await getJSON("/jaeger/api/services", {}, context.signal)).data || [];
  const traces = new Map();
  for (const service of services) {
    const answer = await getJSON("/jaeger/api/traces", { service, limit: TRACES_PER_SERVICE }, context.signal);
    for (const trace of answer.data || []) traces.set(trace.traceID, trace);
  }
  const map = edges([...traces.values()]);
  if (!map.nodes.length) { replace(body, h("p", { class: "empty" }, "No traces stored yet.")); return; }
  replace(body, draw(map),
    h("table", { id: "service-edges" }, h("thead", {}, h("tr", {}, h("th", {}, "caller"), h("th", {}, "callee"), h("th", { class: "num" }, "requests"), h("th", { class: "num" }, "error rate"), h("th", { class: "num" }, "P90"))),
      h("tbody", {}, map.edges.length ? map.edges.map((edge) => h("tr", {},
        h("td", {}, h("a", { href: href("traces", { service: edge.from }) }, edge.from)), h("td", {}, edge.to), h("td", { class: "num" }, number(edge.count)),
        h("td", { class: `num${edge.errors ? " bad" : ""}` }, `${((100 * edge.errors) / edge.count).toFixed(1)}%`), h("td", { class: "num" }, duration(p90(edge.durations)))))
        : h("tr", {}, h("td", { colspan: 5, class: "muted" }, `${map.nodes.length} service${map.nodes.length === 1 ? "" : "s"}, no calls between services seen yet.`)))));
}
