// The live lab's WebSocket: JSON messages both ways, each `frame` paired with the binary message the
// server sends right after it (docs/protocol.md), and reconnects with exponential backoff.

/** First reconnect delay; doubled after each failed attempt up to MAX_RETRY_MS. */
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 15000;
/** A connection that lived this long was healthy: the next drop retries fast again. */
const STABLE_MS = 5000;
/** ± fraction of random spread, so a room of tabs does not reconnect in lockstep after a restart. */
const JITTER = 0.2;
/** Why the server closed, by close code (docs/protocol.md). */
const CLOSE_REASONS = {
  1008: "too many messages",
  1009: "message too large",
  1013: "server full, try again later",
};

/** The WebSocket URL of `path` on the page's host: wss for an https page, else ws. */
export function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

/** Sends `message` as JSON on `ws`; returns false (and drops it) unless `ws` is open. */
export function sendJSON(ws, message) {
  if (ws?.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(message));
  return true;
}

/**
 * A self-reconnecting socket to one lab endpoint.
 *
 * Handlers: `onOpen()` after each (re)connect; `onMessage(message, bytes)` for every JSON message,
 * with `bytes` (a Uint8Array) set only for a `frame`, delivered once its binary grids arrived;
 * `onStatus(status, detail)` with status "connecting" | "connected" | "disconnected".
 */
export class LabSocket {
  /**
   * @param {string} path Endpoint path, e.g. "/ws/mlp"; host and ws/wss follow the page.
   * @param {{onOpen: Function, onMessage: Function, onStatus: Function}} handlers Also, for a
   *   stream the server ends (a CNN job's): `endCodes`, a Set of close codes after which it
   *   calls `onEnd(code)` and does not reconnect.
   * @param {string} frameType The `type` of the messages followed by a binary one (the lab's
   *   SERVER_MESSAGES.FRAME).
   * @param {Function} [decodeFrame] For a lab whose frames are one binary message each (the
   *   mlp's): bytes → `{frame, bytes}`, the frame and its grids.
   */
  constructor(path, handlers, frameType, decodeFrame = null) {
    this.url = socketUrl(path);
    this.handlers = handlers;
    this.frameType = frameType;
    this.decodeFrame = decodeFrame;
    this.retryMs = FIRST_RETRY_MS;
    this.ws = null;
    this.pendingFrame = null;
    this.connect();
  }

  /** Sends one JSON message; returns false (and drops it) while disconnected. */
  send(message) {
    return sendJSON(this.ws, message);
  }

  /** Closes for good: no reconnect (a room's student switching between followed and own runs). */
  close() {
    this.closed = true;
    this.ws?.close();
  }

  connect() {
    if (this.closed) return;
    this.handlers.onStatus("connecting");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = performance.now();
      this.handlers.onStatus("connected");
      this.handlers.onOpen();
    };
    ws.onmessage = (event) => this.closed || this.receive(event.data);
    ws.onclose = (event) => {
      this.pendingFrame = null;
      if (this.closed) return;
      if (this.handlers.endCodes?.has(event.code)) {
        this.closed = true;
        this.handlers.onEnd(event.code);
        return;
      }
      if (openedAt && performance.now() - openedAt > STABLE_MS) this.retryMs = FIRST_RETRY_MS;
      const delay = this.retryMs * (1 + JITTER * (2 * Math.random() - 1));
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
      this.handlers.onStatus("disconnected", {
        reason: CLOSE_REASONS[event.code] ?? "",
        retryInMs: delay,
      });
      setTimeout(() => this.connect(), delay);
    };
    this.ws = ws;
  }

  receive(data) {
    if (typeof data !== "string") {
      if (this.pendingFrame === null && this.decodeFrame) {
        const { frame, bytes } = this.decodeFrame(new Uint8Array(data));
        this.handlers.onMessage(frame, bytes);
        return;
      }
      if (this.pendingFrame === null) throw Error("binary message without a frame before it");
      const frame = this.pendingFrame;
      this.pendingFrame = null;
      this.handlers.onMessage(frame, new Uint8Array(data));
      return;
    }
    const message = JSON.parse(data);
    // The grids of a frame come in the next message; hold the frame until they do.
    if (message.type === this.frameType) this.pendingFrame = message;
    else this.handlers.onMessage(message);
  }
}
