// The base of every live lab (one that trains on the server and streams frames over /ws/<slug>):
// the state and its link, the controls, the socket, config throttling, the status line, adopting the
// server's config, dropping stale frames, and play / pause / step / reset. A lab extends it with its
// own views only; the views get plain arrays, never socket messages.
import { Controls } from "../views/controls.js";
import { $, errors, showStatus } from "./page.js";
import { LabSocket } from "./socket.js";
import { LinkState } from "./state.js";

/** Config messages go out at most this often while a slider is dragged (≤ 20 a second). */
const SEND_INTERVAL_MS = 50;

/**
 * What the page tracks of one server session: `sent` counts our config messages, `newest` is the
 * newest `state` version seen (older frames are stale), `lastState` the server's latest state.
 */
const newSession = () => ({ sent: 0, newest: -1, running: false, lastState: null });

/**
 * A live lab page. Subclasses create their views, then call `start()`, and implement:
 * - `showState()`: the local state in the views that do not wait for the server;
 * - `resetViews()`: a new connection is a new server session, untrained;
 * - `onFrame(frame, bytes)`: every fresh frame (e.g. a loss chart's point);
 * - `draw(frame, bytes)`: the newest frame, at most once per display refresh;
 * and may implement `onData(message)`, `constrain(changes)` and `countsError(field)`.
 */
export class LiveLab {
  /**
   * @param {{slug: string, props: object[], protocol: object}} lab `props`: the lab's PROPS table;
   *   `protocol`: its mirror (static/js/protocol/<slug>.js); its CONFIG_DEFAULTS name the wire props.
   */
  constructor({ slug, props, protocol }) {
    this.slug = slug;
    this.protocol = protocol;
    this.link = new LinkState(props);
    this.session = newSession();
    this.outbox = { changes: {}, timer: null, lastSent: 0 };
    this.latest = null;
    const { state, rejected } = this.link.read();
    this.state = state;
    this.rejected = rejected;
    this.controls = new Controls($("lab"), (name, v, final) => this.set({ [name]: v }, final));
  }

  /** Shows the state from the link, binds the buttons and connects. */
  start() {
    Object.assign(this.state, this.constrain({}));
    this.bind();
    this.show();
    this.link.write(this.state);
    this.reportRejected(this.rejected);
    // A classroom room's student follows the instructor's session instead of opening their own.
    if (!this.classroom?.following) this.connect(this.classroom?.sessionPath());
  }

  /** Opens the page's own server session at `path` (a room's host or fork adds a query). */
  connect(path = `/ws/${this.slug}`) {
    this.socket?.close();
    const { SERVER_MESSAGES } = this.protocol;
    this.socket = new LabSocket(path, {
      onOpen: () => this.onOpen(),
      onMessage: (message, bytes) => this.onMessage(message, bytes),
      onStatus: (status, detail) => this.showConnection(status, detail),
    }, SERVER_MESSAGES.FRAME, this.protocol.decodeFrame);
  }

  /** Closes the page's own session (a room's student goes back to following the instructor). */
  disconnect() {
    this.socket?.close();
    this.socket = null;
  }

  bind() {
    const { CLIENT_MESSAGES: SEND, MAX_SEED } = this.protocol;
    const click = (id, fn) => $(id)?.addEventListener("click", fn);
    click("play", () => this.togglePlay());
    click("step", () => this.socket?.send({ type: SEND.STEP }));
    click("reset", () => this.socket?.send({ type: SEND.RESET }));
    click("new-data", () => this.set({ seed: Math.floor(Math.random() * MAX_SEED) }));
    this.link.listen(({ state, rejected }) => {
      this.set(state);
      this.reportRejected(rejected);
    });
    // Space plays/pauses unless a control has focus (there it keeps its own meaning).
    document.addEventListener("keydown", (e) => {
      if (e.key !== " " || e.target.closest?.("button, input, select, textarea, a")) return;
      e.preventDefault();
      this.togglePlay();
    });
  }

  /** Whether a prop is a config field sent to the server. */
  isWire(name) {
    return name in this.protocol.CONFIG_DEFAULTS;
  }

  /** Changes that keep the state consistent once `changes` apply (a lab's rules); none here. */
  constrain(changes) {
    return changes;
  }

  /** A change the user made: applied here and, for wire props, sent to the server. */
  set(changes, final = true) {
    const all = this.constrain(changes);
    this.apply(all);
    const wire = Object.keys(all).filter((name) => this.isWire(name));
    if (wire.length) {
      this.queueConfig(Object.fromEntries(wire.map((n) => [n, structuredClone(this.state[n])])), final);
    }
  }

  /** Puts changes into the state, the controls, the views and (a little later) the URL. */
  apply(changes) {
    Object.assign(this.state, changes);
    this.show();
    this.link.writeSoon(this.state);
  }

  show() {
    this.controls.update(this.state);
    this.showState();
  }

  reportRejected(rejected) {
    if (rejected.length) errors.show(`Ignored in the link: ${rejected.join(", ")}`, "link");
  }

  /** Merges config changes and sends them at most every SEND_INTERVAL_MS; final ones go at once. */
  queueConfig(changes, final) {
    Object.assign(this.outbox.changes, changes);
    const wait = this.outbox.lastSent + SEND_INTERVAL_MS - performance.now();
    if (final || wait <= 0) this.flushConfig();
    else this.outbox.timer ??= setTimeout(() => this.flushConfig(), wait);
  }

  flushConfig() {
    clearTimeout(this.outbox.timer);
    this.outbox.timer = null;
    if (!Object.keys(this.outbox.changes).length) return;
    const { CONFIG } = this.protocol.CLIENT_MESSAGES;
    if (this.socket?.send({ type: CONFIG, ...this.outbox.changes })) this.session.sent += 1;
    this.outbox = { changes: {}, timer: null, lastSent: performance.now() };
  }

  /**
   * Sends a message other than `config` that the server also counts in `version` (mlp's
   * `set_weight`): frames from before it are stale once its `state` comes back.
   */
  sendCounted(message) {
    this.flushConfig();
    if (this.socket?.send(message)) this.session.sent += 1;
  }

  /** Whether an `error` naming `field` answers a counted message: the config's fields here. */
  countsError(field) {
    return this.isWire(field);
  }

  togglePlay() {
    const { PLAY, PAUSE } = this.protocol.CLIENT_MESSAGES;
    if (!this.socket) return; // following a room: the instructor plays
    this.session.running = !this.session.running;
    this.socket.send({ type: this.session.running ? PLAY : PAUSE });
    this.showRunning();
  }

  /** A new connection is a new server session: send it the whole config, start the views over. */
  onOpen() {
    this.session = newSession();
    this.resetViews();
    const wire = Object.keys(this.protocol.CONFIG_DEFAULTS);
    this.outbox.changes = Object.fromEntries(wire.map((n) => [n, structuredClone(this.state[n])]));
    this.flushConfig();
    this.showRunning();
  }

  onMessage(message, bytes) {
    const { STATE, DATA, FRAME, ERROR } = this.protocol.SERVER_MESSAGES;
    switch (message.type) {
      case STATE: return this.onState(message);
      // Never stale: the server sends data only when they change, so the newest data message is
      // the session's data whatever config messages are still on their way (the first one, version
      // 0, arrives after the page sent its config, which may not change the data at all). A frame
      // not drawn yet belongs to the data before.
      case DATA:
        this.latest = null;
        return this.onData(message);
      case FRAME: return this.receiveFrame(message, bytes);
      case ERROR:
        // A rejected config is not counted in `version`: stop waiting for it, show what runs.
        if (message.field && this.countsError(message.field)) {
          this.session.sent -= 1;
          this.adoptServerConfig();
        }
        return errors.show(message.message, "server");
      default: throw Error(`unknown message type ${message.type}`);
    }
  }

  onData() {}

  onState(message) {
    this.session.newest = Math.max(this.session.newest, message.version);
    this.session.running = message.running;
    this.session.lastState = message;
    this.adoptServerConfig();
    this.showRunning();
    this.showDiverged(message.diverged);
  }

  /** Shows the server's config once it applied all we sent (sooner, a dragged slider jumps back). */
  adoptServerConfig() {
    const { lastState, sent } = this.session;
    if (!lastState || lastState.version < sent) return;
    const differs = ([k, v]) => JSON.stringify(v) !== JSON.stringify(this.state[k]);
    if (Object.entries(lastState.config).some(differs)) this.apply(lastState.config);
  }

  /** A frame computed before the newest config the server applied: drawing it would undo a change. */
  isStale(frame) {
    return frame.version < this.session.newest;
  }

  receiveFrame(frame, bytes) {
    if (this.isStale(frame)) return;
    this.onFrame(frame, bytes);
    this.classroom?.onOwnFrame(frame);
    // `running` comes from `state` only: a frame computed before a pause can arrive after it.
    this.showDiverged(frame.diverged);
    // Draw only the newest frame, once per display refresh.
    if (!this.latest) requestAnimationFrame(() => this.drawLatest());
    this.latest = { frame, bytes };
  }

  drawLatest() {
    if (!this.latest) return;
    const { frame, bytes } = this.latest;
    this.latest = null;
    this.draw(frame, bytes);
  }

  showDiverged(diverged) {
    $("diverged-banner").hidden = !diverged;
  }

  showRunning() {
    const button = $("play");
    button.textContent = this.session.running ? "❚❚ Pause" : "▶ Play";
    button.classList.toggle("running", this.session.running);
  }

  showConnection(status, { reason = "", retryInMs = 0 } = {}) {
    const why = reason ? ` (${reason})` : "";
    showStatus(status, {
      connecting: "connecting…",
      connected: "connected",
      disconnected: `disconnected${why}, retrying in ${Math.ceil(retryInMs / 1000)} s`,
    }[status]);
  }
}
