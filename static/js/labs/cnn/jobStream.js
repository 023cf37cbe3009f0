// A training job's socket /ws/cnn/{id}: JSON messages until the job ends. Unlike lab/socket.js (a
// live session that lives as long as the page), the stream ends for good when the server closes it
// normally (1000, after the final status) or does not know the job (4404); a dropped connection is
// reopened, and the server starts again with the job's whole status.

import { sendJSON, socketUrl } from "../../lab/socket.js";

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 8000;
const ENDED = new Set([1000, 4404]);

export class JobStream {
  /**
   * @param {string} jobId
   * @param {{onMessage: (message: object) => void, onEnd: (code: number) => void}} handlers
   */
  constructor(jobId, { onMessage, onEnd }) {
    this.url = socketUrl(`/ws/cnn/${encodeURIComponent(jobId)}`);
    this.onMessage = onMessage;
    this.onEnd = onEnd;
    this.retryMs = FIRST_RETRY_MS;
    this.closed = false;
    this.connect();
  }

  /** Sends a control ({type: "pause" | "resume" | "stop"}); false while disconnected. */
  send(message) {
    return sendJSON(this.ws, message);
  }

  /** Stops following the job (the job itself goes on). */
  close() {
    this.closed = true;
    this.ws?.close(1000);
  }

  connect() {
    const ws = new WebSocket(this.url);
    ws.onopen = () => { this.retryMs = FIRST_RETRY_MS; };
    ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.closed) return;
      if (ENDED.has(event.code)) {
        this.closed = true;
        this.onEnd(event.code);
        return;
      }
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
    };
    this.ws = ws;
  }
}
