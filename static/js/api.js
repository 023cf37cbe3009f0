// One-shot JSON endpoints: POST a body, get the answer or an Error carrying the server's message.

/**
 * POSTs `body` as JSON to `url`.
 * @returns {Promise<object>} the JSON answer.
 * @throws {Error} with the server's `detail` (each validation message joined) when not OK.
 */
export async function postJSON(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data?.detail;
    throw Error(Array.isArray(detail) ? detail.map((e) => e.msg).join(" · ") : detail ?? response.statusText);
  }
  return data;
}
