// Traces: search by service, span name, duration range, errors, attribute key=value and time
// range; the list shows each trace's root, service, span count and duration (with a bar), and
// new traces appear without a reload.

import { h, replace, duration, time, colour } from "./dom.js";
import { getJSON } from "./api.js";
import { href, go } from "./route.js";

const FIELDS = ["service", "name", "min_duration", "max_duration", "error", "attr", "since", "limit"];
const RANGES = [["", "any time"], ["15m", "last 15 minutes"], ["1h", "last hour"], ["6h", "last 6 hours"], ["24h", "last 24 hours"]];
const SECONDS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 };

/** The API's parameters for the view's: `since` becomes `start`; several `attr` are split. */
export function searchParams(params) {
  const api = {};
  for (const key of ["service", "name", "min_duration", "max_duration", "limit"]) api[key] = params.get(key) || undefined;
  if (params.get("error") === "true") api.error = "true";
  api.attr = params.getAll("attr").flatMap((attr) => attr.split(/\s*,\s*(?=[^,=]+=)/)).filter(Boolean);
  const since = SECONDS[params.get("since")];
  if (since) api.start = new Date(Date.now() - since * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  if (params.get("start")) api.start = params.get("start");
  if (params.get("end")) api.end = params.get("end");
  api.limit = api.limit || "50";
  return api;
}

function field(label, input) {
  return h("label", {}, label, input);
}

function searchForm(params, services) {
  const value = (name) => params.get(name) || "";
  const form = h("form", { class: "bar", role: "search", "aria-label": "Search traces" },
    field("Service", h("select", { name: "service" }, h("option", { value: "" }, "all services"),
      services.map((service) => h("option", { value: service, selected: service === value("service") }, service)))),
    field("Span name", h("input", { name: "name", value: value("name"), placeholder: "GET /api/…", size: 22 })),
    field("Min duration", h("input", { name: "min_duration", value: value("min_duration"), placeholder: "100ms", size: 8 })),
    field("Max duration", h("input", { name: "max_duration", value: value("max_duration"), placeholder: "2s", size: 8 })),
    field("Attribute", h("input", { name: "attr", value: params.getAll("attr").join(", "), placeholder: "http.status_code=500", size: 24 })),
    field("Time", h("select", { name: "since" }, RANGES.map(([key, label]) => h("option", { value: key, selected: key === value("since") }, label)))),
    field("Limit", h("input", { name: "limit", type: "number", min: 1, max: 1000, value: value("limit") || 50, size: 5 })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "error", value: "true", checked: value("error") === "true" }), "errors only"),
    h("button", { class: "primary", type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const key of FIELDS) {
      const entry = data.get(key);
      if (entry) next.set(key, entry);
    }
    if (next.get("limit") === "50") next.delete("limit");
    go("traces", next);
  });
  return form;
}

function traceTable(traces) {
  if (!traces.length) return h("p", { class: "empty" }, "No traces match. Send some, or widen the search.");
  const longest = Math.max(...traces.map((trace) => trace.duration_ms), 0.001);
  return h("table", { id: "trace-list", "aria-label": "Traces" },
    h("thead", {}, h("tr", {}, h("th", {}, "started"), h("th", {}, "root span"), h("th", {}, "services"),
      h("th", { class: "num" }, "spans"), h("th", { class: "num" }, "duration"), h("th", {}, ""))),
    h("tbody", {}, traces.map((trace) => {
      const bar = h("div", { class: "durbar" });
      bar.style.width = `${Math.max(0.5, (100 * trace.duration_ms) / longest)}%`;
      bar.style.background = colour(trace.service || "");
      return h("tr", { class: "trace-row", "data-trace-id": trace.trace_id },
        h("td", { class: "mono" }, time(trace.start_time_unix_nano)),
        h("td", {}, h("a", { href: href(`trace/${trace.trace_id}`) }, trace.root_name || "(no name)")),
        h("td", { class: "services" }, (trace.services && trace.services.length ? trace.services : [trace.service || ""]).join(", ")),
        h("td", { class: "num" }, trace.span_count),
        h("td", { class: "num" }, duration(trace.duration_ms)),
        h("td", { class: "bar-cell" }, bar));
    })));
}

export async function render(main, context) {
  const params = context.params;
  const services = await getJSON("/jaeger/api/services", {}, context.signal).then((body) => body.data || []).catch(() => []);
  const status = h("p", { class: "muted", "aria-live": "polite" });
  const list = h("div", {});
  const live = h("input", { type: "checkbox", checked: true });
  main.append(h("h1", {}, "Traces"), searchForm(params, services),
    h("div", { class: "toolbar" }, h("label", { class: "check" }, live, "live: new traces appear as they arrive"), status), list);
  let shown = "";
  context.every(3000, async () => {
    if (shown && !live.checked) return;
    const body = await getJSON("/api/traces", searchParams(params), context.signal);
    const key = body.traces.map((trace) => `${trace.trace_id}:${trace.span_count}`).join(",");
    status.textContent = `${body.traces.length} trace${body.traces.length === 1 ? "" : "s"}, newest first · updated ${new Date().toLocaleTimeString()}`;
    if (key !== shown) {
      shown = key;
      replace(list, traceTable(body.traces));
    }
  });
}
