// The query builder, Honeycomb-style: VISUALIZE, WHERE, GROUP BY, ORDER BY, LIMIT, time range
// and granularity over the stored spans (`POST /api/query`). Results as a line chart per
// calculation (a line per group), a heatmap per HEATMAP whose cells list their traces, and
// the summary table. The query is Honeycomb's query specification JSON: it is the view's
// address (`#/query?q=…`), can be copied out and pasted in, and opens in Honeycomb.

import { h, replace, number, duration, time } from "./dom.js";
import { getJSON, postJSON } from "./api.js";
import { href, go } from "./route.js";
import { lineChart, heatmap } from "./charts.js";

const OPS = ["COUNT", "CONCURRENCY", "SUM", "AVG", "MIN", "MAX", "COUNT_DISTINCT", "HEATMAP",
  "P001", "P01", "P05", "P10", "P20", "P25", "P50", "P75", "P80", "P90", "P95", "P99", "P999", "RATE_AVG", "RATE_SUM", "RATE_MAX"];
const NO_COLUMN = new Set(["COUNT", "CONCURRENCY"]);
const FILTER_OPS = ["=", "!=", ">", ">=", "<", "<=", "starts-with", "does-not-start-with", "ends-with", "does-not-end-with",
  "contains", "does-not-contain", "exists", "does-not-exist", "in", "not-in"];
const NO_VALUE = new Set(["exists", "does-not-exist"]);
const HAVING_OPS = ["=", "!=", ">", ">=", "<", "<="];
const NO_HAVING = new Set(["HEATMAP"]);
const RANGES = [[600, "last 10 minutes"], [1800, "last 30 minutes"], [3600, "last hour"], [7200, "last 2 hours"], [21600, "last 6 hours"], [86400, "last 24 hours"], [604800, "last 7 days"]];
const COLUMNS = ["duration_ms", "name", "service.name", "http.route", "http.method", "http.request.method", "http.status_code",
  "http.response.status_code", "http.url", "url.path", "error", "status_code", "span.kind", "trace.trace_id", "trace.span_id", "trace.parent_id"];
const DEFAULT_QUERY = { calculations: [{ op: "COUNT" }, { op: "P90", column: "duration_ms" }, { op: "HEATMAP", column: "duration_ms" }], time_range: 3600 };
const HONEYCOMB_URL_KEY = "waggle.honeycomb.dataset_url";

/** The label `/api/query` uses for a calculation: COUNT, CONCURRENCY or OP(column). */
export function label(calculation) {
  return NO_COLUMN.has(calculation.op) ? calculation.op : `${calculation.op}(${calculation.column || ""})`;
}

/** A query template link: the dataset's URL with `?query=<spec JSON>`. */
export function honeycombLink(datasetUrl, spec) {
  const base = datasetUrl.replace(/[?#].*$/, "").replace(/\/+$/, "");
  return `${base}?query=${encodeURIComponent(JSON.stringify(spec))}`;
}

function parseValue(text, op) {
  if (op === "in" || op === "not-in") return text.split(",").map((one) => parseScalar(one.trim()));
  return parseScalar(text);
}

function parseScalar(text) {
  if (text === "true" || text === "false") return text === "true";
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

function shownValue(value) {
  return Array.isArray(value) ? value.join(", ") : value === undefined ? "" : String(value);
}

function columnInput(value, onInput, placeholder = "column") {
  return h("input", { list: "query-columns", value: value || "", placeholder, size: 16, oninput: (event) => onInput(event.target.value.trim()) });
}

function select(options, value, onChange, attrs = {}) {
  return h("select", { ...attrs, onchange: (event) => onChange(event.target.value) },
    options.map((option) => {
      const [key, text] = Array.isArray(option) ? option : [option, option];
      return h("option", { value: key, selected: String(key) === String(value) }, text);
    }));
}

function removeButton(onClick, what) {
  return h("button", { type: "button", "aria-label": `remove ${what}`, onclick: onClick }, "×");
}

/** A HAVING's calculation as `{op, column}`; with `as`, keyed as the spec keys it. */
function calculationOf(having, as = "op") {
  return { [as]: having.calculate_op, ...(having.column ? { column: having.column } : {}) };
}

/** The calculations a HAVING can test (each of the query's but HEATMAP), and its own. */
function havingChoices(calculations, having) {
  const choices = calculations.filter((c) => !NO_HAVING.has(c.op)).map((c) => [JSON.stringify({ op: c.op, ...(c.column ? { column: c.column } : {}) }), label(c)]);
  const own = JSON.stringify(calculationOf(having));
  if (!choices.some(([key]) => key === own)) choices.push([own, label({ op: having.calculate_op, column: having.column })]);
  return choices;
}

/** The editable form of a spec; `run(spec)` is called with the edited spec. */
function builder(spec, run) {
  const draft = structuredClone(spec);
  draft.calculations = draft.calculations && draft.calculations.length ? draft.calculations : [{ op: "COUNT" }];
  draft.filters = draft.filters || [];
  draft.breakdowns = draft.breakdowns || [];
  draft.orders = draft.orders || [];
  draft.havings = draft.havings || [];
  const root = h("form", { class: "builder", "aria-label": "Query builder" });
  const redraw = () => replace(root, ...clauses());
  const clauses = () => [
    h("datalist", { id: "query-columns" }, COLUMNS.map((column) => h("option", { value: column }))),
    h("div", { class: "clause" }, h("span", {}, "VISUALIZE"), h("div", { class: "items", id: "visualize" },
      draft.calculations.map((calculation, index) => h("span", { class: "item calculation" },
        select(OPS, calculation.op, (op) => { calculation.op = op; if (NO_COLUMN.has(op)) delete calculation.column; else calculation.column = calculation.column || "duration_ms"; redraw(); }, { "aria-label": "calculation" }),
        NO_COLUMN.has(calculation.op) ? null : columnInput(calculation.column, (column) => { calculation.column = column; }),
        removeButton(() => { draft.calculations.splice(index, 1); redraw(); }, "calculation"))),
      h("button", { type: "button", onclick: () => { draft.calculations.push({ op: "P90", column: "duration_ms" }); redraw(); } }, "+ add"))),
    h("div", { class: "clause" }, h("span", {}, "WHERE"), h("div", { class: "items", id: "where" },
      draft.filters.map((filter, index) => h("span", { class: "item filter" },
        columnInput(filter.column, (column) => { filter.column = column; }),
        select(FILTER_OPS, filter.op, (op) => { filter.op = op; if (NO_VALUE.has(op)) delete filter.value; redraw(); }, { "aria-label": "filter operator" }),
        NO_VALUE.has(filter.op) ? null : h("input", { value: shownValue(filter.value), placeholder: "value", size: 14, "aria-label": "filter value", oninput: (event) => { filter.value = parseValue(event.target.value, filter.op); } }),
        removeButton(() => { draft.filters.splice(index, 1); redraw(); }, "filter"))),
      h("button", { type: "button", onclick: () => { draft.filters.push({ column: "service.name", op: "=", value: "" }); redraw(); } }, "+ add"),
      draft.filters.length > 1 ? select([["AND", "all (AND)"], ["OR", "any (OR)"]], draft.filter_combination || "AND", (value) => { draft.filter_combination = value; }, { "aria-label": "combine filters" }) : null)),
    h("div", { class: "clause" }, h("span", {}, "GROUP BY"), h("div", { class: "items" },
      h("input", { id: "group-by", value: draft.breakdowns.join(", "), placeholder: "http.route, service.name", size: 40, list: "query-columns", "aria-label": "group by columns",
        oninput: (event) => { draft.breakdowns = event.target.value.split(",").map((column) => column.trim()).filter(Boolean); } }))),
    h("div", { class: "clause" }, h("span", {}, "ORDER BY"), h("div", { class: "items" },
      draft.orders.map((order, index) => h("span", { class: "item order" },
        select([...draft.calculations.filter((c) => c.op !== "HEATMAP").map((c) => [JSON.stringify({ op: c.op, column: c.column }), label(c)]),
          ...draft.breakdowns.map((column) => [JSON.stringify({ column }), column])],
        JSON.stringify(order.op ? { op: order.op, column: order.column } : { column: order.column }),
        (value) => { const picked = JSON.parse(value); delete order.op; delete order.column; Object.assign(order, picked); }, { "aria-label": "order by" }),
        select([["descending", "desc"], ["ascending", "asc"]], order.order || "ascending", (value) => { order.order = value; }, { "aria-label": "direction" }),
        removeButton(() => { draft.orders.splice(index, 1); redraw(); }, "order"))),
      h("button", { type: "button", onclick: () => { const first = draft.calculations.find((c) => c.op !== "HEATMAP") || { op: "COUNT" }; draft.orders.push({ op: first.op, ...(first.column ? { column: first.column } : {}), order: "descending" }); redraw(); } }, "+ add"))),
    h("div", { class: "clause" }, h("span", {}, "HAVING"), h("div", { class: "items", id: "having" },
      draft.havings.map((having, index) => h("span", { class: "item having" },
        select(havingChoices(draft.calculations, having), JSON.stringify(calculationOf(having)),
          (value) => { const picked = JSON.parse(value); having.calculate_op = picked.op; if (picked.column) having.column = picked.column; else delete having.column; }, { "aria-label": "having calculation" }),
        select(HAVING_OPS, having.op, (op) => { having.op = op; }, { "aria-label": "having operator" }),
        h("input", { type: "number", step: "any", value: having.value ?? "", placeholder: "value", size: 8, "aria-label": "having value",
          oninput: (event) => { having.value = event.target.value === "" ? undefined : Number(event.target.value); } }),
        removeButton(() => { draft.havings.splice(index, 1); redraw(); }, "having"))),
      h("button", { type: "button", id: "add-having", onclick: () => { const first = draft.calculations.find((c) => !NO_HAVING.has(c.op)) || { op: "COUNT" }; draft.havings.push({ ...calculationOf({ calculate_op: first.op, column: first.column }, "calculate_op"), op: ">", value: 0 }); redraw(); } }, "+ add"))),
    h("div", { class: "clause" }, h("span", {}, "LIMIT · TIME"), h("div", { class: "items" },
      h("label", {}, "limit", h("input", { type: "number", min: 1, max: 1000, value: draft.limit || "", placeholder: "100", size: 5, oninput: (event) => { draft.limit = event.target.value ? Number(event.target.value) : undefined; } })),
      h("label", {}, "time range", draft.start_time || draft.end_time
        ? h("span", { class: "mono" }, `${draft.start_time || "…"} – ${draft.end_time || "now"} (from the JSON)`)
        : select(RANGES, draft.time_range || 7200, (value) => { draft.time_range = Number(value); }, { "aria-label": "time range" })),
      h("label", {}, "granularity (s)", h("input", { type: "number", min: 1, value: draft.granularity || "", placeholder: "auto", size: 6, oninput: (event) => { draft.granularity = event.target.value ? Number(event.target.value) : undefined; } })),
      h("button", { class: "primary", type: "submit", id: "run-query" }, "Run query"))),
  ];
  root.addEventListener("submit", (event) => {
    event.preventDefault();
    run(clean(draft));
  });
  redraw();
  return root;
}

/** The spec without empty parts, as Honeycomb writes it. */
function clean(draft) {
  const spec = structuredClone(draft);
  for (const key of ["filters", "breakdowns", "orders", "havings"]) if (Array.isArray(spec[key]) && !spec[key].length) delete spec[key];
  if (spec.filters) spec.filters = spec.filters.filter((filter) => filter.column);
  if (spec.havings) spec.havings = spec.havings.filter((having) => typeof having.value === "number" && Number.isFinite(having.value));
  if (spec.havings && !spec.havings.length) delete spec.havings;
  if (spec.filter_combination === "AND" || !spec.filters || spec.filters.length < 2) delete spec.filter_combination;
  for (const key of Object.keys(spec)) if (spec[key] === undefined || spec[key] === "") delete spec[key];
  return spec;
}

function groupName(data, breakdowns) {
  if (!breakdowns.length) return "all spans";
  return breakdowns.map((column) => (data[column] === null || data[column] === undefined ? "(none)" : String(data[column]))).join(" / ");
}

function format(op) {
  return op === "COUNT" || op === "COUNT_DISTINCT" ? number : (value) => number(value);
}

/** The query that finds a heatmap cell's spans exactly: the spec's WHERE clause, the cell's
 * bounds on the column (as the histogram's buckets hold values: `lower <= v < upper` above
 * zero, `lower < v <= upper` below, `lower < v < upper` around it) and its time bucket, grouped
 * by trace; null when the WHERE clause is an OR, which cannot take the bounds. */
export function cellQuery(cell, column, spec) {
  const filters = [...(spec.filters || [])];
  if (spec.filter_combination === "OR" && filters.length > 1) return null;
  const [above, below] = cell.upper !== null && cell.upper <= 0 ? [">", "<="] : cell.lower !== null && cell.lower >= 0 ? [">=", "<"] : [">", "<"];
  if (cell.lower !== null) filters.push({ column, op: above, value: cell.lower });
  if (cell.upper !== null) filters.push({ column, op: below, value: cell.upper });
  return { calculations: [{ op: "COUNT" }], filters, breakdowns: ["trace.trace_id"], orders: [{ op: "COUNT", order: "descending" }],
    start_time: Math.floor(cell.start), end_time: Math.ceil(cell.end), limit: 50 };
}

/** A Jaeger-shaped trace as a listing row: its root (earliest span without a parent), start and length. */
function jaegerSummary(trace) {
  const spans = trace.spans || [];
  const roots = spans.filter((span) => !(span.references || []).some((ref) => ref.refType === "CHILD_OF" && spans.some((other) => other.spanID === ref.spanID)));
  const root = (roots.length ? roots : spans).reduce((best, span) => (!best || span.startTime < best.startTime ? span : best), null);
  const start = Math.min(...spans.map((span) => span.startTime));
  const end = Math.max(...spans.map((span) => span.startTime + span.duration));
  return { trace_id: trace.traceID, root_name: root ? root.operationName : "", service: root ? (trace.processes[root.processID] || {}).serviceName : "",
    start_time_unix_nano: String(BigInt(start) * 1000n), duration_ms: (end - start) / 1000 };
}

async function tracesInCell(cell, column, spec, signal) {
  const query = cellQuery(cell, column, spec);
  if (!query) return { exact: false, traces: (await getJSON("/api/traces", cellSearch(cell, column, spec), signal)).traces };
  const answer = await postJSON("/api/query", query, signal);
  const ids = answer.results.map((row) => row.data["trace.trace_id"]).filter(Boolean);
  if (!ids.length) return { exact: true, traces: [] };
  const found = new Map(((await getJSON("/jaeger/api/traces", { traceID: ids }, signal)).data || []).map((trace) => [trace.traceID, jaegerSummary(trace)]));
  return { exact: true, traces: ids.map((id) => found.get(id)).filter(Boolean) };
}

/** The approximate search for an OR query's cell: the cell's time bucket and, for
 * `duration_ms`, its bounds, whatever the WHERE clause. */
export function cellSearch(cell, column, spec) {
  const params = { start: String(BigInt(Math.floor(cell.start)) * 1000000000n), end: String(BigInt(Math.ceil(cell.end)) * 1000000000n), limit: "50" };
  if (column === "duration_ms") {
    const ms = (value) => String(Number(value.toFixed(6)));
    if (cell.lower !== null && cell.lower > 0) params.min_duration = ms(cell.lower);
    if (cell.upper !== null && cell.upper > 0) params.max_duration = ms(cell.upper);
  }
  return params;
}

function cellTraces(cell, column, spec, target, signal) {
  replace(target, h("p", { class: "muted" }, "Looking up the traces in this cell…"));
  tracesInCell(cell, column, spec, signal).then(({ exact, traces }) => {
    const bounds = column === "duration_ms" ? ` lasting ${duration(cell.lower || 0)} – ${cell.upper === null ? "∞" : duration(cell.upper)}` : "";
    replace(target, h("h3", {}, `Traces with a span that started ${new Date(cell.start * 1000).toLocaleTimeString()}–${new Date(cell.end * 1000).toLocaleTimeString()}${bounds} (${cell.count} span${cell.count === 1 ? "" : "s"} in the cell)`),
      exact ? null : h("p", { class: "muted" }, "Approximate: the WHERE clause is an OR, so only the cell's time and bounds narrow this list."),
      traces.length ? h("table", { id: "cell-traces" }, h("thead", {}, h("tr", {}, h("th", {}, "started"), h("th", {}, "root span"), h("th", {}, "service"), h("th", { class: "num" }, "duration"))),
        h("tbody", {}, traces.map((trace) => h("tr", { "data-trace-id": trace.trace_id }, h("td", { class: "mono" }, time(trace.start_time_unix_nano)),
          h("td", {}, h("a", { href: href(`trace/${trace.trace_id}`) }, trace.root_name || "(no name)")), h("td", {}, trace.service || ""), h("td", { class: "num" }, duration(trace.duration_ms))))))
        : h("p", { class: "empty" }, "No stored trace matches (its spans may have been evicted)."));
  }).catch((error) => { if (error.name !== "AbortError") replace(target, h("p", { class: "error-text" }, error.message)); });
}

function results(answer, spec, signal) {
  const breakdowns = spec.breakdowns || [];
  const calculations = spec.calculations && spec.calculations.length ? spec.calculations : [{ op: "COUNT" }];
  const buckets = [];
  for (let t = answer.start_time; t < answer.end_time; t += answer.granularity) buckets.push(t);
  const groups = answer.results.map((row) => groupName(row.data, breakdowns));
  const charts = [];
  const picked = h("div", { id: "cell-traces-box" });
  for (const calculation of calculations) {
    const name = label(calculation);
    if (calculation.op === "HEATMAP") {
      const byTime = new Map();
      for (const point of answer.series) {
        const counts = point.data[name] || [];
        const sum = byTime.get(point.time_unix) || counts.map(() => 0);
        counts.forEach((count, i) => { sum[i] += count; });
        byTime.set(point.time_unix, sum);
      }
      charts.push(heatmap({
        title: name, buckets: answer.heatmaps[name] || [], cells: [...byTime].map(([t, counts]) => ({ time: t, counts })),
        start: answer.start_time, end: answer.end_time, granularity: answer.granularity,
        format: calculation.column === "duration_ms" ? (value) => (Number.isFinite(value) ? duration(value) : String(value)) : number,
        onSelect: (cell) => cellTraces(cell, calculation.column, spec, picked, signal),
      }));
      continue;
    }
    const series = groups.map((group) => {
      const values = new Map();
      for (const point of answer.series) if (groupName(point.data, breakdowns) === group) values.set(point.time_unix, point.data[name]);
      return { name: group, points: buckets.map((t) => [t, values.has(t) ? values.get(t) : calculation.op === "COUNT" ? 0 : null]) };
    });
    charts.push(lineChart({ title: name, series, start: answer.start_time, end: answer.end_time, format: calculation.column === "duration_ms" && calculation.op !== "COUNT_DISTINCT" ? duration : format(calculation.op) }));
  }
  const names = calculations.map(label);
  const table = h("table", { id: "summary-table", "aria-label": "Summary" },
    h("thead", {}, h("tr", {}, breakdowns.map((column) => h("th", {}, column)), names.map((name) => h("th", { class: "num" }, name)))),
    h("tbody", {}, answer.results.map((row) => h("tr", {},
      breakdowns.map((column) => h("td", {}, row.data[column] === null || row.data[column] === undefined ? "(none)" : String(row.data[column]))),
      calculations.map((calculation) => {
        const value = row.data[label(calculation)];
        if (Array.isArray(value)) return h("td", { class: "num" }, `${number(value.reduce((a, b) => a + b, 0))} spans`);
        return h("td", { class: "num" }, calculation.column === "duration_ms" && !["COUNT_DISTINCT"].includes(calculation.op) && typeof value === "number" ? duration(value) : number(value));
      })))));
  return [
    h("p", { class: "muted", id: "query-totals" }, `${number(answer.total_count)} spans matched · ${number(answer.total_groups)} group${answer.total_groups === 1 ? "" : "s"}`,
      ` · ${new Date(answer.start_time * 1000).toLocaleString()} – ${new Date(answer.end_time * 1000).toLocaleTimeString()} · ${answer.granularity} s per point`,
      answer.dropped_count ? h("span", { class: "warn" }, ` · ${number(answer.dropped_count)} spans beyond 10,000 groups not counted`) : ""),
    charts, picked, h("h2", {}, "Summary"), answer.results.length ? table : h("p", { class: "empty" }, "No spans matched."),
  ];
}

function jsonPanel(spec, honeycombOn, honeycombTarget) {
  const area = h("textarea", { class: "json mono", id: "query-json", spellcheck: "false", "aria-label": "Query specification JSON" }, JSON.stringify(spec, null, 2));
  const note = h("span", { class: "muted", "aria-live": "polite" });
  const copy = () => {
    area.select();
    const done = () => { note.textContent = "Copied."; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(area.value).then(done, () => { note.textContent = "Select the text and copy it (Ctrl+C)."; });
    else { note.textContent = "Selected: press Ctrl+C (or ⌘C) to copy."; }
  };
  const apply = () => {
    try {
      const parsed = JSON.parse(area.value);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("a query specification is a JSON object");
      go("query", { q: JSON.stringify(parsed) });
    } catch (error) {
      note.textContent = `Not a query specification: ${error.message}`;
    }
  };
  const honeycomb = honeycombOn ? honeycombPanel(spec, honeycombTarget) : null;
  return h("details", { class: "json-panel" }, h("summary", {}, "Query JSON (Honeycomb's query specification)", honeycombOn ? " · open in Honeycomb" : ""),
    area, h("div", { class: "toolbar" }, h("button", { type: "button", onclick: copy }, "Copy"), h("button", { type: "button", id: "apply-json", onclick: apply }, "Apply pasted JSON"), note), honeycomb);
}

/** The Honeycomb dataset a query runs on, from `/api/honeycomb` when ready: a Classic key's
 * dataset, else the service of a `service.name =` filter (each service is a dataset); null when
 * neither says. */
export function honeycombDatasetUrl(target, spec) {
  if (!target || target.state !== "ready") return null;
  const service = spec.filter_combination === "OR" ? null : (spec.filters || []).find((filter) => filter.column === "service.name" && filter.op === "=" && filter.value);
  const dataset = target.environment ? service && String(service.value) : target.dataset;
  if (!dataset) return null;
  const path = [target.team, ...(target.environment ? ["environments", target.environment] : []), "datasets", dataset];
  return `${target.ui_url}/${path.map(encodeURIComponent).join("/")}`;
}

function honeycombPanel(spec, target) {
  const known = honeycombDatasetUrl(target, spec);
  if (known) {
    return h("div", {}, h("a", { id: "open-in-honeycomb", href: honeycombLink(known, spec), target: "_blank", rel: "noopener noreferrer" }, "Open this query in Honeycomb"),
      h("span", { class: "muted" }, ` (dataset ${known.slice(known.lastIndexOf("/") + 1)})`));
  }
  const stored = localStorage.getItem(HONEYCOMB_URL_KEY) || "";
  const link = h("a", { id: "open-in-honeycomb", target: "_blank", rel: "noopener noreferrer" }, "Open this query in Honeycomb");
  const input = h("input", { type: "url", value: stored, size: 60, placeholder: "https://ui.honeycomb.io/<team>/environments/<env>/datasets/<dataset>", "aria-label": "Honeycomb dataset URL" });
  const update = () => {
    const url = input.value.trim();
    if (/^https:\/\/[^/]+\//.test(url)) { link.href = honeycombLink(url, spec); link.hidden = false; localStorage.setItem(HONEYCOMB_URL_KEY, url); } else { link.hidden = true; }
  };
  input.addEventListener("input", update);
  update();
  return h("div", {}, h("p", { class: "muted" }, "Honeycomb is on. Filter on one service.name (each service is a Honeycomb dataset), or paste the URL of the dataset this data goes to (open it in Honeycomb and copy the address), to run the same query there:"), input, " ", link);
}

export async function render(main, context) {
  let spec = DEFAULT_QUERY;
  const fromAddress = context.params.get("q");
  const problem = h("p", { class: "error-text", role: "alert" });
  if (fromAddress) {
    try { spec = JSON.parse(fromAddress); } catch (error) { problem.textContent = `The address holds no valid query JSON (${error.message}); showing the default query.`; }
  }
  const status = await getJSON("/status", {}, context.signal).catch(() => ({ destinations: [] }));
  const honeycombOn = status.destinations.some((destination) => destination.name === "honeycomb" && destination.enabled);
  const honeycombTarget = honeycombOn ? await getJSON("/api/honeycomb", {}, context.signal).catch(() => null) : null;
  const output = h("div", { id: "query-results", "aria-live": "polite" }, h("p", { class: "muted" }, "Running…"));
  main.append(h("h1", {}, "Query"), problem,
    builder(spec, (next) => go("query", { q: JSON.stringify(next) })),
    jsonPanel(spec, honeycombOn, honeycombTarget), output);
  try {
    const answer = await postJSON("/api/query", spec, context.signal);
    replace(output, results(answer, spec, context.signal));
  } catch (error) {
    if (error.name !== "AbortError") replace(output, h("p", { class: "error-text", id: "query-error" }, error.message));
  }
}
