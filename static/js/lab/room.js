// A classroom room, for any live lab (docs/protocol.md, Rooms): the instructor opens one and hosts it
// from their own session; a student follows the instructor's session (its messages drive the lab's
// views as if they were the student's own), forks it into a session of their own, and re-syncs.
// The instructor hosts from the page's own session by a message on its socket (the run goes on;
// the token never goes in an address). The lab's page gives the room its panel (`onEvent` gets
// every room event); this module keeps the sockets, the modes and the instructor's token (in this
// tab's sessionStorage, never in a link).
import { sendJSON } from "./api.js";
import { errors } from "./page.js";
import { LabSocket } from "./socket.js";

const TOKEN_KEY = (code) => `room-token:${code}`;
const SEAT_KEY = (code) => `room-seat:${code}`;
/** Points of the instructor's curve kept; past this every other one is dropped. */
const MAX_CURVE = 2000;

/** The room the page's address names (`?room=CODE`), or null. */
export function roomInUrl() {
  const code = new URLSearchParams(location.search).get("room");
  return code ? code.toUpperCase() : null;
}

/** The page's address with (or without) `?room=`; the hash (the lab's state) stays. */
function writeRoomToUrl(code) {
  const url = new URL(location.href);
  if (code) url.searchParams.set("room", code);
  else url.searchParams.delete("room");
  history.replaceState(null, "", url);
}

export class Room {
  /**
   * @param {object} lab The LiveLab.
   * @param {{onEvent: Function, onInstructorFrame?: Function, onMode?: Function}} handlers
   *   onEvent(event): every room event; onInstructorFrame(frame): each of the instructor's frames
   *   (a forked student's overlay); onMode(mode): "none" | "host" | "following" | "own".
   */
  constructor(lab, handlers) {
    this.lab = lab;
    this.handlers = handlers;
    this.code = roomInUrl();
    this.token = this.code ? sessionStorage.getItem(TOKEN_KEY(this.code)) : null;
    this.mode = !this.code ? "none" : this.token ? "host" : "following";
    this.latest = {}; // the instructor's newest state, data and frame: a re-sync starts from them
    this.curve = []; // the instructor's run's [epoch, test loss] so far: a fork's overlay starts with it
    this.step = 0;
    this.fork = null; // the snapshot this student's own session starts from
    this.projecting = null; // instructor: the number of the student whose run the page shows
    this.saved = null; // instructor: the page's own state while it shows a student's run
    if (this.code) this.listen();
  }

  get following() {
    return this.mode === "following";
  }

  /** The lab's own socket path: a student's own run is in the room (its lock holds there, the
   * instructor may project it) and a fork's adopts the snapshot. */
  sessionPath() {
    const base = `/ws/${this.lab.slug}`;
    if (this.mode !== "own") return base;
    const seat = sessionStorage.getItem(SEAT_KEY(this.code)) ?? "";
    const fork = this.fork ? `&fork=${encodeURIComponent(this.fork)}` : "";
    return `${base}?room=${this.code}&seat=${seat}${fork}`;
  }

  /** Instructor: hosts the room from the page's own session as it is (the lab calls it on each
   * new socket too: after a reload or a reconnect, the room is hosted again). */
  hostOnSession() {
    if (this.mode === "host") this.lab.socket?.send({ type: "host", room: this.code, token: this.token });
  }

  /** Instructor: opens a room for this lab and hosts it from the page's session: the run goes on. */
  async open() {
    const room = await sendJSON("/api/rooms", "POST", { lab: this.lab.slug });
    sessionStorage.setItem(TOKEN_KEY(room.code), room.token);
    Object.assign(this, { code: room.code, token: room.token, mode: "host" });
    writeRoomToUrl(room.code);
    this.hostOnSession();
    this.listen();
    this.handlers.onMode?.(this.mode);
    return room;
  }

  /** Instructor: one of the room's actions ({action: "lock", locked: true} …). */
  act(action) {
    return sendJSON(`/api/rooms/${this.code}/actions`, "POST", action, this.auth());
  }

  /** Instructor: closes the room; the page goes on as a session of its own. */
  async close() {
    await sendJSON(`/api/rooms/${this.code}`, "DELETE", undefined, this.auth());
    this.leave();
  }

  auth() {
    return { Authorization: `Bearer ${this.token}` };
  }

  /** Instructor: the class follows student `number`'s run (null: the instructor's again). */
  projectStudent(number) {
    return this.act({ action: "project", number });
  }

  /** Instructor: the page shows the projected student's run (the room's stream) instead of its
   * own, or, with null, its own again (state as it was; the session sends where its run is). */
  showProjected(number) {
    if (this.mode !== "host" || number === this.projecting) return;
    const was = this.projecting;
    this.projecting = number;
    if (was === null) this.saved = structuredClone(this.lab.state);
    if (number !== null) {
      this.lab.session = { sent: 0, newest: -1, running: false, lastState: null };
      this.lab.resetViews();
      return;
    }
    this.lab.apply(this.saved);
    this.lab.onOpen();
    this.hostOnSession();
  }

  /** Student: asks for the instructor's run as it is now; `forked` moves the page onto it. */
  requestFork() {
    if (!this.socket?.send({ type: "fork" })) {
      throw new Error("The room's connection is not open yet: press Fork again in a moment.");
    }
    errors.clear("room");
  }

  /** Student: back to following the instructor, from their newest state, data and frame. */
  resync() {
    this.fork = null;
    this.lab.disconnect();
    this.setMode("following");
    this.lab.onOpen();
    for (const kind of ["state", "data", "frame"]) {
      if (this.latest[kind]) this.lab.onMessage(...this.latest[kind]);
    }
  }

  /** Student: a new session of their own, from the page's config, at step 0 (an experiment's run). */
  ownSession() {
    this.fork = null;
    this.setMode("own");
    this.lab.connect(this.sessionPath());
  }

  send(message) {
    return this.socket?.send(message);
  }

  setMode(mode) {
    this.mode = mode;
    this.handlers.onMode?.(mode);
  }

  /** The room's socket: events (and, for a student, the instructor's session). */
  listen() {
    const seat = sessionStorage.getItem(SEAT_KEY(this.code)) ?? "";
    const query = this.mode === "host" ? "watch=1" : `seat=${seat}`;
    const { FRAME } = this.lab.protocol.SERVER_MESSAGES;
    this.socket?.close();
    this.socket = new LabSocket(`/ws/rooms/${this.code}?${query}`, {
      onOpen: () => this.following && this.lab.onOpen(),
      onMessage: (message, bytes) => this.receive(message, bytes),
      onStatus: (status, detail) => this.following && this.lab.showConnection(status, detail),
    }, FRAME, this.lab.protocol.decodeFrame);
  }

  receive(message, bytes) {
    if (message.type === "room") return this.onEvent(message);
    const { STATE, DATA, FRAME, ERROR } = this.lab.protocol.SERVER_MESSAGES;
    if (message.type === ERROR) return errors.show(message.message, "room");
    if ([STATE, DATA, FRAME].includes(message.type)) this.latest[message.type] = [message, bytes];
    if (message.type === FRAME) {
      if (message.step < this.step) this.curve = []; // a new run
      this.step = message.step;
      if (message.test_loss !== null) this.curve.push([message.epoch, message.test_loss]);
      if (this.curve.length > MAX_CURVE) this.curve = this.curve.filter((_, i) => i % 2 === 0);
      this.handlers.onInstructorFrame?.(message);
    }
    if (this.following || this.projecting !== null) this.lab.onMessage(message, bytes, true);
  }

  onEvent(event) {
    switch (event.event) {
      case "welcome":
        sessionStorage.setItem(SEAT_KEY(this.code), event.seat);
        this.showProjected(event.room.projected);
        break;
      case "forked":
        this.fork = event.snapshot;
        this.setMode("own");
        this.lab.connect(this.sessionPath());
        break;
      case "projected":
        this.showProjected(event.number);
        break;
      case "closed":
        this.handlers.onEvent(event);
        this.leave();
        return;
      default:
    }
    this.handlers.onEvent(event);
  }

  /** The room is gone: the page becomes a lab page of its own again. */
  leave() {
    this.socket?.close();
    this.socket = null;
    if (this.token) sessionStorage.removeItem(TOKEN_KEY(this.code));
    writeRoomToUrl(null);
    const wasFollowing = this.following;
    this.code = this.token = this.fork = null;
    this.setMode("none");
    if (wasFollowing) this.lab.connect(); // a run of one's own (or the host's) goes on as it is
  }
}
