// The labs' HTTP endpoints: JSON answers, and the one place the app's error shape is read —
// {"detail": "text"} or {"detail": [{"loc": [...], "msg": "...", "type": "...", "input"?: ...}]}.

/** Where a request's value sits (loc's first part) is not part of the field's name. */
const SOURCES = new Set(["body", "query", "path", "header"]);

/** "learning_rates[0]" from loc ["body", "learning_rates", 0]. */
function fieldName(loc = []) {
  return loc.filter((part, i) => !(i === 0 && SOURCES.has(part)))
    .map((part, i) => (typeof part === "number" ? `[${part}]` : i ? `.${part}` : part)).join("");
}

/**
 * One readable sentence from an error answer. The app's messages name their field ("x must be … .
 * Received: x=5000"); a message that does not is prefixed with it.
 */
export function describeError(detail, fallback) {
  if (!Array.isArray(detail)) return detail ? String(detail) : fallback;
  return detail.map(({ loc, msg }) => {
    const field = fieldName(loc);
    return field && !msg.includes(field) ? `${field}: ${msg}` : msg;
  }).join(" · ");
}

/**
 * Sends a request and reads its answer: JSON, or as `read` reads it (a file's bytes).
 * @returns {Promise<object>} the answer.
 * @throws {Error} with the server's message, `status` the HTTP status and `retryAfter` the seconds
 *   its Retry-After header asks to wait (a 503 while a model loads, a full queue) or null.
 */
async function request(url, init = {}, read = (response) => response.json().catch(() => null)) {
  const response = await fetch(url, init);
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    const message = describeError(data?.detail, response.statusText || `HTTP ${response.status}`);
    const retryAfter = Number(response.headers.get("retry-after")) || null;
    throw Object.assign(Error(message), { status: response.status, retryAfter });
  }
  return read(response);
}

/** GETs `url`'s JSON answer. */
export const getJSON = (url) => request(url);

/** POSTs `body` as JSON to `url`; resolves to the JSON answer. */
export const postJSON = (url, body) => request(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** Sends `body` (if any) as JSON with `method` and extra `headers` (a bearer token); the JSON answer. */
export const sendJSON = (url, method, body, headers = {}) => request(url, {
  method,
  headers: { "content-type": "application/json", ...headers },
  body: body === undefined ? undefined : JSON.stringify(body),
});

/** POSTs `body` as JSON to `url`; resolves to the answer's bytes, a Blob (a file to download). */
export const postForBlob = (url, body) => request(url, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
}, (response) => response.blob());

/** POSTs a file's bytes as they are (an upload); resolves to the JSON answer. */
export const postFile = (url, file) => request(url, { method: "POST", body: file });
