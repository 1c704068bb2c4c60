// The admin port's JSON APIs, as the page calls them (same origin), and the Prometheus text.

/** An API failure, with the `{"error": …}` message the server sent. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function url(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") query.append(key, one);
    }
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function answer(response) {
  const body = await response.text();
  let json = null;
  try { json = JSON.parse(body); } catch { /* not JSON: reported below */ }
  if (!response.ok) {
    const message = (json && (json.error || (json.errors && json.errors[0] && json.errors[0].msg))) || body || response.statusText;
    throw new ApiError(response.status, message);
  }
  if (json === null) throw new ApiError(response.status, "the answer was not JSON");
  return json;
}

export async function getJSON(path, params, signal) {
  return answer(await fetch(url(path, params), { signal, headers: { accept: "application/json" } }));
}

export async function postJSON(path, body, signal) {
  return answer(await fetch(path, {
    method: "POST", signal, body: JSON.stringify(body), headers: { "content-type": "application/json" },
  }));
}

export async function getText(path, signal) {
  const response = await fetch(path, { signal });
  if (!response.ok) throw new ApiError(response.status, response.statusText);
  return response.text();
}

/** Prometheus/OpenMetrics text as samples: [{name, labels: {…}, value}]. */
export function parsePrometheus(textBody) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const raw of textBody.split("\n")) {
    if (!raw || raw.startsWith("#")) continue;
    const match = line.exec(raw);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[2] || "").matchAll(label)) labels[key] = value.replace(/\\(.)/g, "$1");
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The store's endpoints answer 404 when the local store is off: say so in one sentence. */
export function explain(error) {
  if (error && error.name === "AbortError") return "";
  if (error instanceof ApiError && error.status === 404 && /not found|Not Found/.test(error.message) === false) {
    return "The local store is off (destinations.local.enabled = false), so there is nothing to show here.";
  }
  return error && error.message ? error.message : String(error);
}
