// One trace: the waterfall (OpenTelemetry spans and X-Ray segments and subsegments alike;
// collapsible, the critical path outlined, errors marked), the selected span's details, and
// the trace's log records in time order beside it.

import { h, replace, duration, time, colour, kvTable, text } from "./dom.js";
import { getJSON } from "./api.js";
import { href } from "./route.js";

/** Spans as a forest: roots are spans without a parent or whose parent is not stored. */
export function buildTree(spans) {
  const nodes = new Map(spans.map((span) => [span.span_id, { span, children: [], depth: 0 }]));
  const roots = [];
  for (const node of nodes.values()) {
    const parent = node.span.parent_span_id && nodes.get(node.span.parent_span_id);
    if (parent && parent !== node) parent.children.push(node); else roots.push(node);
  }
  const byStart = (a, b) => Number(BigInt(a.span.start_time_unix_nano) - BigInt(b.span.start_time_unix_nano));
  const order = [];
  const walk = (node, depth) => {
    node.depth = depth;
    order.push(node);
    node.children.sort(byStart);
    for (const child of node.children) walk(child, depth + 1);
  };
  roots.sort(byStart);
  for (const root of roots) walk(root, 0);
  return { roots, order, nodes };
}

/** The spans on the critical path: from each root, the child that finished last before the
 * cursor, then the one before that child started, and so on down. */
export function criticalPath(roots) {
  const critical = new Set();
  const end = (node) => Number(node.span.end_time_unix_nano);
  const start = (node) => Number(node.span.start_time_unix_nano);
  const visit = (node, boundary) => {
    critical.add(node.span.span_id);
    let cursor = Math.min(end(node), boundary);
    const pending = [...node.children];
    for (let guard = 0; guard < 10000 && pending.length; guard += 1) {
      let best = -1;
      for (let i = 0; i < pending.length; i += 1) {
        if (start(pending[i]) >= cursor) continue;
        if (best < 0 || Math.min(end(pending[i]), cursor) > Math.min(end(pending[best]), cursor)) best = i;
      }
      if (best < 0) break;
      const [child] = pending.splice(best, 1);
      visit(child, cursor);
      cursor = start(child);
    }
  };
  for (const root of roots) visit(root, Infinity);
  return critical;
}

function isError(span) {
  return span.status.code === "error" || (span.events || []).some((event) => event.name === "exception");
}

function isXray(span) {
  return span.resource && span.resource["aws.xray.sdk"] !== undefined;
}

function spanDetails(span, trace, selectLog) {
  const attributes = { ...span.attributes };
  const annotationKeys = Array.isArray(attributes["aws.xray.annotations"]) ? attributes["aws.xray.annotations"] : [];
  const annotations = {};
  const metadata = {};
  for (const key of Object.keys(attributes)) {
    if (key.startsWith("aws.xray.metadata.")) { metadata[key.slice(18)] = attributes[key]; delete attributes[key]; }
  }
  for (const key of annotationKeys) if (key in attributes) { annotations[key] = attributes[key]; delete attributes[key]; }
  delete attributes["aws.xray.annotations"];
  const traceStart = BigInt(trace.start);
  const events = (span.events || []).map((event) => {
    const at = duration(Number(BigInt(event.time_unix_nano) - traceStart) / 1e6);
    const attrs = event.attributes || {};
    if (event.name === "exception") {
      return h("div", { class: "event exception" },
        h("p", { class: "bad" }, h("strong", {}, `${attrs["exception.type"] || "exception"}`), `: ${attrs["exception.message"] || ""}`, h("span", { class: "muted" }, ` at +${at}`)),
        attrs["exception.stacktrace"] ? h("pre", { class: "stacktrace" }, attrs["exception.stacktrace"]) : null);
    }
    return h("div", { class: "event" }, h("p", {}, h("strong", {}, event.name), h("span", { class: "muted" }, ` at +${at}`)), kvTable(attrs, "attributes"));
  });
  const logs = trace.logs.filter((log) => log.span_id === span.span_id);
  return h("section", { id: "span-details", "aria-label": "Span details" },
    h("h2", {}, span.name, isError(span) ? h("span", { class: "err-mark", title: "error" }, " ⚠ error") : null),
    h("table", { class: "kv" }, h("tbody", {},
      [["service", span.service || ""], ["kind", span.kind], ["status", `${span.status.code}${span.status.message ? `: ${span.status.message}` : ""}`],
        ["duration", duration(span.duration_ms)], ["start", time(span.start_time_unix_nano)], ["span id", span.span_id],
        ["parent", span.parent_span_id || "(root)"], ["scope", `${span.scope.name}${span.scope.version ? ` ${span.scope.version}` : ""}`],
        ["source", isXray(span) ? `X-Ray SDK ${span.parent_span_id ? "segment or subsegment" : "segment"}` : "OpenTelemetry"]]
        .map(([key, value]) => h("tr", {}, h("td", {}, key), h("td", { class: "mono" }, value))))),
    h("h3", {}, "Attributes"), kvTable(attributes, "attributes"),
    annotationKeys.length ? [h("h3", {}, "X-Ray annotations"), kvTable(annotations, "annotations")] : null,
    Object.keys(metadata).length ? [h("h3", {}, "X-Ray metadata"), Object.entries(metadata).map(([namespace, value]) =>
      h("div", {}, h("p", { class: "mono" }, namespace), h("pre", {}, (() => { try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return text(value); } })())))] : null,
    h("h3", {}, `Events (${events.length})`), events.length ? events : h("p", { class: "muted" }, "No events."),
    h("h3", {}, `Links (${(span.links || []).length})`),
    (span.links || []).length ? h("ul", {}, span.links.map((link) => h("li", {}, h("a", { href: href(`trace/${link.trace_id}`, { span: link.span_id }) }, `${link.trace_id} / ${link.span_id}`)))) : h("p", { class: "muted" }, "No links."),
    logs.length ? [h("h3", {}, `Log records of this span (${logs.length})`), h("ul", {}, logs.map((log) => h("li", {}, h("button", { type: "button", onclick: () => selectLog(log) }, text(log.body)))))] : null,
    h("h3", {}, "Resource"), kvTable(span.resource, "resource attributes"));
}

function logPanel(trace, selectSpan) {
  if (!trace.logs.length) return h("p", { class: "muted" }, "No log records for this trace.");
  return h("table", { id: "trace-logs", "aria-label": "Log records of this trace" },
    h("thead", {}, h("tr", {}, h("th", {}, "time"), h("th", {}, "severity"), h("th", {}, "message"))),
    h("tbody", {}, trace.logs.map((log) => h("tr", { class: "log-row", "data-span-id": log.span_id || "" },
      h("td", { class: "mono" }, time(log.time_unix_nano || log.observed_time_unix_nano).slice(11)),
      h("td", { class: `sev sev-${(log.severity_text || "").toLowerCase()}` }, log.severity_text || log.severity_number),
      h("td", {}, text(log.body), log.span_id ? [" ", h("button", { type: "button", title: "show the span that logged this", onclick: () => selectSpan(log.span_id) }, "span")] : null)))));
}

/** Honeycomb's direct trace link for `target` (what `/api/honeycomb` answers when ready): the
 * trace in the dataset of its root service (or the Classic key's dataset), in its time range;
 * null when no link can be made. */
export function honeycombTraceLink(target, traceId, rootService, startNs, endNs) {
  if (!target || target.state !== "ready") return null;
  const dataset = target.environment ? (rootService || "unknown_service") : target.dataset;
  if (!dataset) return null;
  const path = [target.team, ...(target.environment ? ["environments", target.environment] : []), "datasets", dataset, "trace"];
  const query = new URLSearchParams({
    trace_id: traceId,
    trace_start_ts: String(Number(BigInt(startNs) / 1000000000n)),
    trace_end_ts: String(Number((BigInt(endNs) + 999999999n) / 1000000000n)),
  });
  return `${target.ui_url}/${path.map(encodeURIComponent).join("/")}?${query}`;
}

export async function render(main, context) {
  const id = context.rest[0] || "";
  const detail = await getJSON(`/api/traces/${encodeURIComponent(id)}`, {}, context.signal);
  const collapsed = new Set();
  let selected = context.params.get("span");
  const waterfall = h("div", { class: "waterfall", role: "tree", "aria-label": "Waterfall" });
  const details = h("div", {});
  const logs = h("div", {});
  const heading = h("div", {});
  main.append(heading, h("div", { class: "trace-layout" }, h("div", {}, waterfall, details), h("aside", { "aria-label": "Logs" }, h("h2", {}, "Logs"), logs)));

  let trace = null;
  let honeycomb = null;
  const askHoneycomb = async () => {
    if (honeycomb && honeycomb.state !== "pending") return false;
    honeycomb = await getJSON("/api/honeycomb", {}, context.signal).catch(() => ({ state: "off" }));
    return honeycomb.state !== "pending";
  };
  await askHoneycomb();
  const draw = () => {
    if (!trace.spans.length) {
      replace(heading, h("h1", {}, "Trace ", h("span", { class: "muted mono" }, trace.trace_id)), h("p", { class: "empty" }, "No spans of this trace are stored (only its log records)."));
      replace(logs, logPanel(trace, () => {}));
      return;
    }
    const tree = buildTree(trace.spans);
    const critical = criticalPath(tree.roots);
    trace.start = tree.order.reduce((min, node) => (BigInt(node.span.start_time_unix_nano) < min ? BigInt(node.span.start_time_unix_nano) : min), BigInt(tree.order[0].span.start_time_unix_nano));
    const endNs = tree.order.reduce((max, node) => (BigInt(node.span.end_time_unix_nano) > max ? BigInt(node.span.end_time_unix_nano) : max), 0n);
    const total = Math.max(Number(endNs - trace.start), 1);
    if (!selected || !tree.nodes.has(selected)) selected = tree.order[0].span.span_id;
    const services = [...new Set(trace.spans.map((span) => span.service || ""))];
    const errors = trace.spans.filter(isError).length;
    replace(heading,
      h("h1", {}, tree.roots[0].span.name, " ", h("span", { class: "muted mono" }, trace.trace_id)),
      h("p", {}, `${trace.spans.length} spans · ${services.length} service${services.length === 1 ? "" : "s"} · ${duration(total / 1e6)} · started ${time(trace.start)}`,
        errors ? h("span", { class: "bad" }, ` · ${errors} with errors`) : "",
        ((link) => (link ? [" · ", h("a", { id: "open-in-honeycomb", href: link, target: "_blank", rel: "noopener noreferrer" }, "Open in Honeycomb")] : ""))(
          honeycombTraceLink(honeycomb, trace.trace_id, tree.roots[0].span.service, trace.start, endNs))),
      h("div", { class: "legend" }, services.map((service) => h("span", {}, swatch(colour(service)), service || "(no service)")),
        h("span", {}, "outlined: critical path"), h("span", { class: "bad" }, "⚠ striped: error")));

    const hidden = new Set();
    const rows = [];
    for (const node of tree.order) {
      const parentId = node.span.parent_span_id;
      if (parentId && (hidden.has(parentId) || collapsed.has(parentId)) && tree.nodes.has(parentId)) { hidden.add(node.span.span_id); continue; }
      rows.push(row(node, total, critical));
    }
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((fraction) => {
      const tick = h("span", { class: "wf-dur" }, duration((fraction * total) / 1e6));
      tick.style.left = `${fraction * 92}%`;
      return tick;
    });
    replace(waterfall, h("div", { class: "wf-row wf-axis", "aria-hidden": "true" }, h("div", { class: "wf-name muted" }, "span"), h("div", { class: "wf-track" }, ticks)), rows);
    const current = trace.spans.find((span) => span.span_id === selected);
    replace(details, spanDetails(current, trace, (log) => select(log.span_id)));
    replace(logs, logPanel(trace, select));
  };

  const swatch = (fill) => { const box = h("span", { class: "swatch" }); box.style.background = fill; return box; };

  const select = (spanId) => {
    selected = spanId;
    history.replaceState(null, "", href(`trace/${id}`, { span: spanId }));
    draw();
    const focused = waterfall.querySelector(`[data-span-id="${spanId}"]`);
    if (focused) focused.focus();
  };

  const row = (node, total, critical) => {
    const span = node.span;
    const offset = Number(BigInt(span.start_time_unix_nano) - trace.start);
    const length = Number(BigInt(span.end_time_unix_nano) - BigInt(span.start_time_unix_nano));
    const bar = h("div", { class: `wf-bar${critical.has(span.span_id) ? " critical" : ""}${isError(span) ? " error" : ""}`, title: `${span.name}: ${duration(span.duration_ms)}` });
    bar.style.left = `${(offset / total) * 92}%`;
    bar.style.width = `${Math.max((length / total) * 92, 0.2)}%`;
    bar.style.background = colour(span.service || "");
    const label = h("span", { class: "wf-dur" }, duration(span.duration_ms));
    label.style.left = `${Math.min(((offset + length) / total) * 92 + 0.5, 93)}%`;
    const hasChildren = node.children.length > 0;
    const toggle = hasChildren
      ? h("button", { type: "button", class: "wf-toggle", tabindex: -1, "aria-label": collapsed.has(span.span_id) ? "expand" : "collapse",
        onclick: (event) => { event.stopPropagation(); flip(span.span_id); } }, collapsed.has(span.span_id) ? "▸" : "▾")
      : h("span", { class: "wf-spacer" });
    const name = h("div", { class: "wf-name" }, toggle, isError(span) ? h("span", { class: "err-mark", title: "error" }, "⚠") : null,
      h("span", { class: "wf-span-name" }, span.name), h("span", { class: "wf-service" }, span.service || ""),
      isXray(span) ? h("span", { class: "wf-service" }, "· X-Ray") : null);
    name.style.paddingLeft = `${6 + node.depth * 14}px`;
    return h("div", {
      class: `wf-row${span.span_id === selected ? " selected" : ""}`, role: "treeitem", tabindex: 0, "data-span-id": span.span_id,
      "aria-level": node.depth + 1, "aria-selected": span.span_id === selected ? "true" : "false",
      "aria-expanded": hasChildren ? String(!collapsed.has(span.span_id)) : null,
      onclick: () => select(span.span_id),
      onkeydown: (event) => keyboard(event, span.span_id, hasChildren),
    }, name, h("div", { class: "wf-track" }, bar, label));
  };

  const flip = (spanId) => {
    if (collapsed.has(spanId)) collapsed.delete(spanId); else collapsed.add(spanId);
    draw();
    const focused = waterfall.querySelector(`[data-span-id="${spanId}"]`);
    if (focused) focused.focus();
  };

  const keyboard = (event, spanId, hasChildren) => {
    const rows = [...waterfall.querySelectorAll(".wf-row[data-span-id]")];
    const index = rows.findIndex((r) => r.dataset.spanId === spanId);
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(spanId); }
    else if (event.key === "ArrowDown" && rows[index + 1]) { event.preventDefault(); rows[index + 1].focus(); }
    else if (event.key === "ArrowUp" && rows[index - 1]) { event.preventDefault(); rows[index - 1].focus(); }
    else if (event.key === "ArrowLeft" && hasChildren && !collapsed.has(spanId)) flip(spanId);
    else if (event.key === "ArrowRight" && hasChildren && collapsed.has(spanId)) flip(spanId);
  };

  let seen = "";
  context.every(4000, async () => {
    const fresh = trace ? await getJSON(`/api/traces/${encodeURIComponent(id)}`, {}, context.signal) : detail;
    fresh.spans = fresh.spans || [];
    fresh.logs = fresh.logs || [];
    const key = `${fresh.spans.length}/${fresh.logs.length}`;
    const linkChanged = trace ? await askHoneycomb() : false;
    if (key === seen && !linkChanged) return;
    seen = key;
    trace = fresh;
    draw();
  });
}
