// The router: each view is a `#/name?params` address, so every view can be bookmarked and shared.
// Leaving a view aborts its requests and stops its timers. `/` focuses the view's search field.

import { h, replace } from "./dom.js";
import { explain } from "./api.js";
import * as home from "./home.js";
import * as traces from "./traces.js";
import * as trace from "./trace.js";
import * as query from "./query.js";
import * as logs from "./logs.js";
import * as services from "./services.js";
import * as metrics from "./metrics.js";

const VIEWS = { "": home, traces, trace, query, logs, services, metrics };

let current = null;

/** What a view gets: where to draw, its parameters, and timers/requests that end with it. */
class ViewContext {
  constructor(rest, params) {
    this.rest = rest;
    this.params = params;
    this.controller = new AbortController();
    this.signal = this.controller.signal;
    this.timers = [];
  }

  /** Runs `task` now and every `ms` until the view is left; a failing run is shown, not thrown. */
  every(ms, task) {
    let running = false;
    const run = async () => {
      if (running || this.signal.aborted) return;
      running = true;
      try { await task(); } catch (error) { this.fail(error); } finally { running = false; }
    };
    run();
    this.timers.push(setInterval(run, ms));
  }

  fail(error) {
    const message = explain(error);
    if (!message || this.signal.aborted) return;
    const box = document.getElementById("view-error");
    if (box) box.textContent = message;
  }

  close() {
    this.controller.abort();
    for (const timer of this.timers) clearInterval(timer);
  }
}

function parse() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?", 2);
  const [name, ...rest] = path.split("/");
  return { name: decodeURIComponent(name || ""), rest: rest.map(decodeURIComponent), params: new URLSearchParams(search || "") };
}

async function show() {
  const { name, rest, params } = parse();
  if (current) current.close();
  const view = VIEWS[name];
  const main = document.getElementById("view");
  for (const link of document.querySelectorAll("nav a")) {
    const active = link.dataset.route === (name === "trace" ? "traces" : name);
    if (active) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  const context = new ViewContext(rest, params);
  current = context;
  if (!view) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No view called ", h("code", {}, name), ". ", h("a", { href: "#/" }, "Home")));
    return;
  }
  replace(main, h("p", { id: "view-error", class: "error-text", role: "alert" }));
  try {
    await view.render(main, context);
  } catch (error) {
    context.fail(error);
  }
}

/** `/` focuses the view's search field (the first field of its form), as on GitHub or Jaeger,
 * unless a field already has the keyboard. */
function focusSearch(event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const active = document.activeElement;
  if (active && (active.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName))) return;
  const field = document.querySelector("#view form input:not([type=checkbox]):not([type=hidden]), #view form textarea");
  if (!field) return;
  event.preventDefault();
  field.focus();
  if (field.select) field.select();
}

window.addEventListener("hashchange", show);
window.addEventListener("keydown", focusSearch);
show();
