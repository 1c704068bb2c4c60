// Home: is my data arriving? Each destination on or off and why, what it sent, refused and
// dropped (since start and over the last minutes), its backlog and last error with the fix;
// each receiver's counts; and what the app should set to send here.

import { h, replace, ago, number, bytes } from "./dom.js";
import { getJSON, getText, parsePrometheus } from "./api.js";
import { href } from "./route.js";

const WINDOW_MS = 5 * 60 * 1000;
/** Samples of /status and /metrics kept while the page is open (for "last 5 minutes"). */
const history = [];

const NAMES = { local: "Local store", honeycomb: "Honeycomb", xray: "AWS X-Ray", cloudwatch_logs: "CloudWatch Logs" };
const RECEIVERS = { otlp_http: "OTLP/HTTP", otlp_grpc: "OTLP/gRPC", xray_udp: "X-Ray UDP" };

/** What a person does about a destination's error, in one sentence. */
function fix(destination, message) {
  const text = message.toLowerCase();
  if (destination === "honeycomb" && /api key|401|403|unauthori[sz]ed|forbidden/.test(text)) return "Check HONEYCOMB_API_KEY (and HONEYCOMB_DATASET for a classic key).";
  if (/credential|unauthori[sz]ed|access ?denied|forbidden|signature|security token|expired/.test(text)) {
    return destination === "cloudwatch_logs"
      ? "Check the AWS credentials and that they allow logs:PutLogEvents, logs:CreateLogStream and logs:CreateLogGroup."
      : "Check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role) and that they allow xray:PutTraceSegments.";
  }
  if (/spool/.test(text)) return "Check that the data directory is writable and has room.";
  if (/throttl|429|rate/.test(text)) return "The destination is throttling: waggle retries with backoff; lower the volume or raise the account's limits.";
  if (/connect|dns|timed out|timeout|network/.test(text)) return "Check the network path (and proxy settings) from waggle to the destination.";
  return "";
}

function sum(object) {
  return Object.values(object || {}).reduce((total, value) => total + value, 0);
}

function reasons(object) {
  const entries = Object.entries(object || {}).filter(([, value]) => value > 0);
  return entries.length ? h("span", { class: "why" }, entries.map(([key, value]) => `${key}: ${number(value)}`).join(", ")) : "";
}

/** The counts of `name` at the oldest sample within the window, for deltas. */
function baseline() {
  const now = Date.now();
  return history.find((sample) => now - sample.at <= WINDOW_MS) || history[0];
}

function delta(now, then) {
  return then === undefined ? null : Math.max(0, now - then);
}

function appAddress(address) {
  if (!address) return null;
  const cut = address.lastIndexOf(":");
  let host = address.slice(0, cut);
  const port = address.slice(cut + 1);
  if (host === "0.0.0.0" || host === "[::]") host = location.hostname;
  return `${host}:${port}`;
}

function setupBlock(listeners) {
  const http = appAddress(listeners.otlp_http);
  const grpc = appAddress(listeners.otlp_grpc);
  const xray = appAddress(listeners.xray_udp);
  const lines = [];
  if (http) lines.push(`OTEL_EXPORTER_OTLP_ENDPOINT=http://${http}`);
  else if (grpc) lines.push(`OTEL_EXPORTER_OTLP_ENDPOINT=http://${grpc}`, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc");
  lines.push("OTEL_SERVICE_NAME=<your service>");
  if (xray) lines.push(`AWS_XRAY_DAEMON_ADDRESS=${xray}`);
  return h("section", { "aria-labelledby": "setup-title" },
    h("h2", { id: "setup-title" }, "Point your app here"),
    h("pre", { id: "app-env" }, lines.join("\n")),
    h("p", { class: "muted" }, grpc && http ? `OTLP/gRPC: http://${grpc} with OTEL_EXPORTER_OTLP_PROTOCOL=grpc. ` : "",
      "From another container on the same compose network, use waggle's service name as the host (http://waggle:4318, waggle:2000)."));
}

function destinationCard(destination, gauges, before) {
  const problem = destination.problem;
  const state = problem ? "problem" : destination.enabled ? "on" : "off";
  const label = problem ? "PROBLEM" : destination.enabled ? "ON" : "OFF";
  const rows = Object.entries(destination.items || {}).map(([signal, totals]) => {
    const then = before && before.items && before.items[signal];
    const recent = then
      ? `${number(delta(totals.sent, then.sent))} / ${number(delta(sum(totals.failed), sum(then.failed)))} / ${number(delta(sum(totals.dropped), sum(then.dropped)))}`
      : "–";
    return h("tr", {},
      h("td", {}, signal),
      h("td", { class: "num" }, number(totals.sent)),
      h("td", { class: "num" }, number(sum(totals.failed)), reasons(totals.failed)),
      h("td", { class: "num" }, number(sum(totals.dropped)), reasons(totals.dropped)),
      h("td", { class: "num" }, recent));
  });
  const error = destination.last_error;
  const hint = error ? fix(destination.name, error) : "";
  return h("article", { class: "card destination", "data-destination": destination.name, "aria-label": NAMES[destination.name] || destination.name },
    h("h3", {}, NAMES[destination.name] || destination.name, h("span", { class: `badge ${state}` }, label)),
    h("p", { class: "sentence reason" }, destination.enabled ? `On: ${destination.reason}` : `Off: ${destination.reason}`),
    problem ? h("p", { class: "sentence bad problem" }, `${problem}.${fix(destination.name, problem) ? " " + fix(destination.name, problem) : ""}`) : null,
    rows.length ? h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "signal"), h("th", { class: "num" }, "sent"), h("th", { class: "num" }, "failed"),
        h("th", { class: "num" }, "dropped"), h("th", { class: "num", title: "sent / failed / dropped over the last 5 minutes this page was open" }, "last 5 min"))),
      h("tbody", {}, rows)) : null,
    destination.enabled ? h("p", { class: "muted" },
      `Queue: ${bytes(gauges.queue)}`, gauges.spool !== undefined ? ` · spool on disk: ${bytes(gauges.spool)}` : "",
      ` · last success: ${ago(destination.last_success)}`) : null,
    error && !problem ? h("p", { class: "sentence warn last-error" }, `Last error ${ago(destination.last_error_at)}: ${error}.${hint ? " " + hint : ""}`) : null);
}

const SIGNAL_ORDER = ["traces", "logs", "metrics"];

function byReceiverAndSignal(a, b) {
  const receivers = Object.keys(RECEIVERS);
  return (receivers.indexOf(a.receiver) - receivers.indexOf(b.receiver)) || (SIGNAL_ORDER.indexOf(a.signal) - SIGNAL_ORDER.indexOf(b.signal));
}

function receiverTable(samples, beforeSamples) {
  const key = (sample) => `${sample.labels.receiver}/${sample.labels.signal}`;
  const rows = new Map();
  const add = (sample, field) => {
    const k = key(sample);
    if (!rows.has(k)) rows.set(k, { receiver: sample.labels.receiver, signal: sample.labels.signal, received: 0, accepted: 0, refused: {}, rejected: {} });
    const row = rows.get(k);
    if (field === "refused" || field === "rejected") row[field][sample.labels.reason || "?"] = (row[field][sample.labels.reason || "?"] || 0) + sample.value;
    else row[field] += sample.value;
  };
  const fields = {
    waggle_receiver_received_items_total: "received",
    waggle_receiver_accepted_items_total: "accepted",
    waggle_receiver_refused_items_total: "refused",
    waggle_receiver_rejected_requests_total: "rejected",
  };
  for (const sample of samples) if (fields[sample.name]) add(sample, fields[sample.name]);
  const earlier = new Map();
  for (const sample of beforeSamples || []) {
    if (sample.name === "waggle_receiver_accepted_items_total") earlier.set(key(sample), sample.value);
  }
  if (!rows.size) return h("p", { class: "empty" }, "No receiver counts yet.");
  return h("table", { id: "receivers" },
    h("thead", {}, h("tr", {}, h("th", {}, "receiver"), h("th", {}, "signal"), h("th", { class: "num" }, "received"),
      h("th", { class: "num" }, "accepted"), h("th", { class: "num" }, "accepted, last 5 min"), h("th", {}, "refused items (why)"), h("th", {}, "rejected requests (why)"))),
    h("tbody", {}, [...rows.values()].sort(byReceiverAndSignal).map((row) => h("tr", {},
      h("td", {}, RECEIVERS[row.receiver] || row.receiver), h("td", {}, row.signal),
      h("td", { class: "num" }, number(row.received)), h("td", { class: "num" }, number(row.accepted)),
      h("td", { class: "num" }, number(delta(row.accepted, earlier.get(`${row.receiver}/${row.signal}`)))),
      h("td", { class: sum(row.refused) ? "bad" : "" }, number(sum(row.refused)), reasons(row.refused)),
      h("td", { class: sum(row.rejected) ? "bad" : "" }, number(sum(row.rejected)), reasons(row.rejected))))));
}

function storeSection(store) {
  if (!store) return null;
  return h("section", { "aria-labelledby": "store-title" },
    h("h2", { id: "store-title" }, "Local store"),
    h("p", {},
      h("a", { href: href("traces") }, `${number(store.traces)} traces`), ` (${number(store.spans)} spans), `,
      h("a", { href: href("logs") }, `${number(store.logs)} log records`), ", ",
      h("a", { href: href("metrics") }, `${number(store.metrics)} metrics`),
      ` · ${bytes(store.bytes + (store.buffered_bytes || 0))} of ${bytes(store.max_bytes)}`,
      store.bytes_per_span ? ` · ${store.bytes_per_span} bytes per span` : "",
      store.evicted_traces ? ` · ${number(store.evicted_traces)} traces evicted (oldest first)` : ""));
}

/** "4 min" for the time the page's samples cover. */
function covered(ms) {
  const seconds = Math.round(ms / 1000);
  return seconds < 90 ? `${seconds} s` : `${Math.round(seconds / 60)} min`;
}

function headline(samples, previous, status) {
  const accepted = (list) => (list || []).filter((s) => s.name === "waggle_receiver_accepted_items_total").reduce((t, s) => t + s.value, 0);
  const total = accepted(samples);
  const recent = previous ? total - accepted(previous.samples) : null;
  const window = previous ? covered(Date.now() - previous.at) : "";
  const problems = status.destinations.filter((d) => d.problem);
  const sentence = (kind, words) => h("p", { class: `sentence ${kind}`, id: "headline" }, words);
  if (problems.length) return sentence("bad", `${problems.map((d) => NAMES[d.name] || d.name).join(", ")} need${problems.length === 1 ? "s" : ""} attention: see below.`);
  if (!total) return sentence("warn", "Nothing has arrived since waggle started. Point your app at the addresses below.");
  // Silence only counts once the page has watched for a minute.
  if (recent === 0 && previous && Date.now() - previous.at >= 60000) return sentence("warn", `Nothing arrived in the last ${window} (${number(total)} items since start).`);
  return sentence("ok", `Data is arriving: ${number(total)} items accepted since start${recent ? `, ${number(recent)} in the last ${window}` : ""}.`);
}

export async function render(main, context) {
  const body = h("div", {});
  main.append(h("h1", {}, "Is my data arriving?"), body);
  context.every(3000, async () => {
    const [status, prometheus] = await Promise.all([getJSON("/status", {}, context.signal), getText("/metrics", context.signal)]);
    const samples = parsePrometheus(prometheus);
    const now = Date.now();
    history.push({ at: now, status, samples });
    while (history.length && now - history[0].at > WINDOW_MS + 60000) history.shift();
    const before = baseline();
    const previous = before && before.at < now ? before : null;
    const gauge = (name, destination) => {
      const found = samples.find((s) => s.name === name && s.labels.destination === destination);
      return found ? found.value : undefined;
    };
    replace(body,
      headline(samples, previous, status),
      h("p", { class: "muted" }, `waggle ${status.version} · up ${ago(new Date(now - status.uptime_seconds * 1000)).replace(" ago", "")} · ${status.ready ? "ready" : "not ready"}`),
      h("h2", {}, "Destinations"),
      h("div", { class: "cards", id: "destinations" }, status.destinations.map((destination) => {
        const then = previous && previous.status.destinations.find((d) => d.name === destination.name);
        return destinationCard(destination, { queue: gauge("waggle_destination_queue_bytes", destination.name), spool: gauge("waggle_destination_spool_bytes", destination.name) }, then);
      })),
      h("h2", {}, "Receivers"),
      receiverTable(samples, previous && previous.samples),
      storeSection(status.local_store),
      setupBlock(status.listeners || {}));
  });
}
