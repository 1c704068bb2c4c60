// Addresses of views: `#/name?params`, so every view can be bookmarked and shared.

/** `href("traces", {service: "a"})` → `#/traces?service=a`; `params` may be an object or URLSearchParams. */
export function href(route, params) {
  const query = new URLSearchParams();
  for (const [key, value] of params instanceof URLSearchParams ? params : Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") query.append(key, value);
  }
  const text = query.toString();
  return `#/${route}${text ? `?${text}` : ""}`;
}

/** Goes to a view. With `replaceState` the current history entry is replaced (filters typed
 * into a view), so the back button goes to the previous view, not the previous keystroke. */
export function go(route, params, { replaceState = false } = {}) {
  const target = href(route, params);
  if (replaceState) {
    history.replaceState(null, "", target);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    location.hash = target;
  }
}
