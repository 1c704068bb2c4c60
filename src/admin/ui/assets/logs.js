// Logs: a live tail of the stored log records, newest first, filtered by service, minimum
// severity and text; a record's trace id opens its trace.

import { h, replace, time, text } from "./dom.js";
import { getJSON } from "./api.js";
import { href, go } from "./route.js";

const SEVERITIES = [["", "any severity"], ["debug", "debug and above"], ["info", "info and above"], ["warn", "warn and above"], ["error", "error and above"], ["fatal", "fatal"]];

function severityClass(log) {
  const number = log.severity_number || 0;
  if (number >= 21) return "sev-fatal";
  if (number >= 17) return "sev-error";
  if (number >= 13) return "sev-warn";
  return "";
}

export async function render(main, context) {
  const params = context.params;
  const services = await getJSON("/jaeger/api/services", {}, context.signal).then((body) => body.data || []).catch(() => []);
  const form = h("form", { class: "bar", role: "search", "aria-label": "Filter logs" },
    h("label", {}, "Service", h("select", { name: "service" }, h("option", { value: "" }, "all services"),
      services.map((service) => h("option", { value: service, selected: service === params.get("service") }, service)))),
    h("label", {}, "Severity", h("select", { name: "severity" }, SEVERITIES.map(([key, label]) => h("option", { value: key, selected: key === (params.get("severity") || "") }, label)))),
    h("label", {}, "Text", h("input", { name: "q", value: params.get("q") || "", placeholder: "contains…", size: 28 })),
    h("button", { class: "primary", type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    go("logs", { service: data.get("service"), severity: data.get("severity"), q: data.get("q") });
  });
  const live = h("input", { type: "checkbox", checked: true });
  const status = h("span", { class: "muted", "aria-live": "polite" });
  const list = h("div", {});
  main.append(h("h1", {}, "Logs"), form, h("div", { class: "toolbar" }, h("label", { class: "check" }, live, "live tail"), status), list);
  let shown = "";
  context.every(2000, async () => {
    if (shown && !live.checked) return;
    const body = await getJSON("/api/logs", { service: params.get("service"), severity: params.get("severity"), q: params.get("q"), limit: 200 }, context.signal);
    status.textContent = `${body.logs.length} record${body.logs.length === 1 ? "" : "s"}, newest first · updated ${new Date().toLocaleTimeString()}`;
    const key = body.logs.map((log) => `${log.time_unix_nano}/${log.span_id}`).join(",");
    if (key === shown) return;
    shown = key;
    replace(list, body.logs.length ? h("table", { id: "log-list", "aria-label": "Log records" },
      h("thead", {}, h("tr", {}, h("th", {}, "time"), h("th", {}, "severity"), h("th", {}, "service"), h("th", {}, "message"), h("th", {}, "trace"))),
      h("tbody", {}, body.logs.map((log) => h("tr", { class: "log-row" },
        h("td", { class: "mono" }, time(log.time_unix_nano || log.observed_time_unix_nano)),
        h("td", { class: `sev ${severityClass(log)}` }, log.severity_text || String(log.severity_number || "")),
        h("td", {}, log.service || ""),
        h("td", { class: "log-body" }, text(log.body)),
        h("td", { class: "mono" }, log.trace_id ? h("a", { class: "trace-link", href: href(`trace/${log.trace_id}`, log.span_id ? { span: log.span_id } : {}) }, log.trace_id.slice(0, 12) + "…") : "")))))
      : h("p", { class: "empty" }, "No log records match."));
  });
}
