// One kind of request of the page (describe, pipeline, normalizations, augment): at most one in
// flight, and while it runs only the newest request asked for waits — a dragged slider sends what
// the server can keep up with, and the answer drawn is always the newest. Its panel shows progress
// while it works, and the page's banner its error until it succeeds again.
import { errors } from "../../lab/page.js";

export class Channel {
  /**
   * @param {string} name The banner's source for this channel's errors.
   * @param {{panel: HTMLElement, send: (job: *) => Promise<*>, draw: (answer: *, job: *) => void,
   *   failed?: (error: Error, job: *) => boolean}} options send: the request; draw: what its answer
   *   changes; failed: handles an error itself (an expired upload) and returns true, or returns
   *   false for the banner to say it.
   */
  constructor(name, { panel, send, draw, failed = () => false }) {
    Object.assign(this, { name, panel, send, draw, failed });
    this.running = false;
    this.waiting = null;
  }

  /** Sends `job` now, or once the running request is answered if no newer job comes first. */
  run(job) {
    if (this.running) {
      this.waiting = { job };
      return;
    }
    this.running = true;
    this.panel.setAttribute("aria-busy", "true");
    this.send(job).then((answer) => {
      errors.clear(this.name);
      this.draw(answer, job);
    }, (error) => {
      if (!this.failed(error, job)) errors.show(error.message, this.name);
    }).finally(() => {
      this.running = false;
      this.panel.setAttribute("aria-busy", "false");
      const next = this.waiting;
      this.waiting = null;
      if (next) this.run(next.job);
    });
  }
}
