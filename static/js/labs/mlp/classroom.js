// The MLP page's Classroom panel on a room (static/js/lab/room.js): the instructor's code, QR and
// actions; a student's following / own-run modes, the overlay of their test loss on the
// instructor's, their part in the class experiment, the vote; everyone's live results plot.
import { $, errors } from "../../lab/page.js";
import { Room } from "../../lab/room.js";
import { lossChart } from "../../views/lineChart.js";
import { ClassResults } from "./classroomResults.js";

/** What a student's page may not touch while following the instructor or locked. */
const LOCKABLE = "#lab [data-control], #lab [data-prop], #play, #network, .net-toolbar";
const VARIABLE_NAMES = { hidden_size: "hidden size", learning_rate: "learning rate", seed: "seed" };

/** The config a student's run of the experiment uses for `value` of `variable`. */
function experimentConfig(variable, value, state) {
  if (variable === "hidden_size") {
    const layers = state.hidden.length ? state.hidden : [0];
    return { hidden: layers.map(() => Math.round(value)) };
  }
  return { [variable]: variable === "seed" ? Math.round(value) : value };
}

export class Classroom {
  /** @param {object} lab The MlpLab, before it starts: it asks us how to open its session. */
  constructor(lab) {
    this.lab = lab;
    this.locked = false;
    this.experiment = null;
    this.value = null; // this student's value in the experiment
    this.run = null; // this student's experiment run: {value, epochs, phase}
    this.results = new ClassResults($("room-results"));
    this.room = new Room(lab, {
      onEvent: (event) => this.onEvent(event),
      onInstructorFrame: (frame) => this.overlay(frame, 0),
      onMode: () => this.showMode(),
    });
    this.bind();
    this.showMode();
  }

  get following() {
    return this.room.following;
  }

  /** The instructor's page shows a student's run instead of its own. */
  get projecting() {
    return this.room.projecting !== null;
  }

  sessionPath() {
    return this.room.sessionPath();
  }

  bind() {
    const click = (id, fn) => $(id).addEventListener("click", () => fn().catch?.((e) => errors.show(e.message, "room")));
    click("room-open", async () => this.showRoom(await this.room.open()));
    click("room-push", () => this.room.act({ action: "push_config", config: this.wireConfig() }));
    click("room-pause", () => this.room.act({ action: "pause" }));
    click("room-lock", () => this.room.act({ action: "lock", locked: !this.locked }));
    click("room-close", () => this.room.close());
    click("room-project", () => this.room.projectStudent(Number($("room-project-pick").value)));
    click("room-project-stop", () => this.room.projectStudent(null));
    click("experiment-start", () => this.room.act({ action: "start_experiment", experiment: this.readExperiment() }));
    click("experiment-stop", () => this.room.act({ action: "stop_experiment" }));
    click("vote-open", () => this.room.act({ action: "open_vote", vote: this.readVote() }));
    click("vote-reveal", () => this.room.act({ action: "reveal_vote" }));
    click("room-fork", async () => this.room.requestFork());
    click("room-resync", async () => this.room.resync());
    click("room-run", async () => this.runExperiment());
  }

  wireConfig() {
    const { state } = this.lab;
    return Object.fromEntries(Object.keys(this.lab.protocol.CONFIG_DEFAULTS).map((k) => [k, state[k]]));
  }

  readExperiment() {
    const values = $("experiment-values").value.split(/[\s,;]+/).filter(Boolean).map(Number);
    return {
      variable: $("experiment-variable").value,
      values,
      epochs: Number($("experiment-epochs").value),
      assign: !$("experiment-pick").checked,
    };
  }

  readVote() {
    const options = $("vote-options").value.split(",").map((o) => o.trim()).filter(Boolean);
    return { question: $("vote-question").value.trim(), options };
  }

  /** The instructor's room: its code, its link and the link's QR code (an SVG image from the
   * server, so a reloaded page shows it again). */
  showRoom({ code, link }) {
    $("room-code").textContent = code;
    $("room-link").href = link;
    $("room-join-url").textContent = `${location.host}/join`;
    $("room-qr").src = `/api/rooms/${code}/qr`;
  }

  showMode() {
    const { mode, code } = this.room;
    $("room-none").hidden = mode !== "none";
    $("room-host").hidden = mode !== "host";
    $("room-student").hidden = !["following", "own"].includes(mode);
    $("classroom").dataset.mode = mode;
    if (mode === "host" && $("room-code").textContent !== code) {
      this.showRoom({ code, link: `${location.origin}/labs/${this.lab.slug}?room=${code}` });
    }
    if (mode === "following" || mode === "own") {
      $("room-student-code").textContent = code;
      $("room-mode").textContent = mode === "following" ? "● Following the instructor" : "Your own run";
      $("room-mode").classList.toggle("live", mode === "following");
      $("room-fork").hidden = mode !== "following";
      $("room-resync").hidden = mode !== "own";
      $("room-overlay").hidden = mode !== "own";
      if (mode === "own") this.startOverlay();
    }
    this.showLocked();
  }

  /** Disables the lab's controls while the student follows, or the instructor locked them. */
  showLocked() {
    const off = this.room.following || this.projecting || (this.locked && this.room.mode === "own");
    for (const el of document.querySelectorAll(LOCKABLE)) el.inert = off;
    $("lab").classList.toggle("room-locked", off);
    $("room-lock").textContent = this.locked ? "Unlock controls" : "Lock controls";
    $("room-lock").setAttribute("aria-pressed", String(this.locked));
  }

  /** The student's own test loss over the instructor's, from the fork on. */
  startOverlay() {
    this.overlayChart ??= lossChart($("room-overlay"), {
      x: "epoch",
      y: "test loss",
      series: [
        { name: "instructor", color: "#57606a", dash: "dash" },
        { name: "you", color: "#cc79a7", dash: "solid" },
      ],
    });
    this.overlayChart.reset();
    for (const [epoch, loss] of this.room.curve) this.overlayChart.append(epoch, [loss, null]);
  }

  /** A frame of the instructor's (`who` 0) or of the student's own run (1), on the overlay. */
  overlay(frame, who) {
    if (this.room.mode !== "own" || !this.overlayChart || frame.test_loss === null) return;
    this.overlayChart.append(frame.epoch, who === 0 ? [frame.test_loss, null] : [null, frame.test_loss]);
  }

  /** Each fresh frame of the page's own session (LiveLab calls it). */
  onOwnFrame(frame) {
    if (this.room.mode !== "own") return;
    this.overlay(frame, 1);
    const run = this.run;
    if (!run || frame.version < this.lab.session.sent) return;
    if (run.phase === "starting" && frame.step === 0) {
      run.phase = "running";
      if (!this.lab.session.running) this.lab.togglePlay();
    } else if (run.phase === "running" && (frame.epoch >= run.epochs || frame.diverged)) {
      run.phase = "done";
      if (this.lab.session.running) this.lab.togglePlay();
      const result = { value: run.value, test_loss: frame.diverged ? null : frame.test_loss, diverged: frame.diverged };
      this.room.send({ type: "result", result });
      $("room-run-status").textContent = frame.diverged ? "diverged — reported" : `test loss ${frame.test_loss.toFixed(3)} — reported`;
    }
  }

  /** A run of one's own with the experiment's value, from step 0, for its epochs. */
  runExperiment() {
    const { experiment } = this;
    if (!experiment) return;
    const value = experiment.assign ? this.value : Number($("room-pick").value);
    if (value === null || Number.isNaN(value)) return;
    this.run = { value, epochs: experiment.epochs, phase: "starting" };
    $("room-run-status").textContent = "running…";
    // A fresh session: it gets the whole state, with the experiment's value, when it opens.
    this.lab.apply(experimentConfig(experiment.variable, value, this.lab.state));
    this.room.ownSession();
  }

  onEvent(event) {
    switch (event.event) {
      case "welcome": return this.welcome(event.room);
      case "followers": $("room-followers").value = event.count; return;
      case "projectable": return this.showProjectable(event.numbers);
      case "projected": return this.showProjected(event.number);
      case "project":
        $("room-on-projector").hidden = !event.on;
        return;
      case "you": $("room-number").textContent = ` · you are student ${event.number}`; return;
      case "locked":
        this.locked = event.locked;
        return this.showLocked();
      case "config":
        if (this.room.mode === "own") this.lab.set(event.config);
        return;
      case "experiment": return this.showExperiment(event.experiment, []);
      case "assigned":
        this.value = event.value;
        return this.showAssignment();
      case "result": return this.results.add(event.result);
      case "vote": return this.showVote(event);
      case "closed":
        errors.show(`The room closed: ${event.reason}`, "room");
        return;
      default:
    }
  }

  welcome(room) {
    this.showProjectable(room.projectable);
    this.showProjected(room.projected);
    this.locked = room.locked;
    this.showLocked();
    $("room-followers").value = room.followers;
    this.showExperiment(room.experiment, room.results);
    if (room.vote) this.showVote({ vote: room.vote, open: room.vote_open, votes: room.votes, tally: room.tally });
  }

  /** Instructor: the students whose own run (a fork, an experiment's) may be projected. */
  showProjectable(numbers) {
    const pick = $("room-project-pick");
    const chosen = pick.value;
    pick.replaceChildren(...numbers.map((n) => new Option(`student ${n}`, String(n))));
    if (numbers.map(String).includes(chosen)) pick.value = chosen;
    $("room-project").disabled = numbers.length === 0;
  }

  /** Whose run the class sees: the instructor's, or (by number) one student's. */
  showProjected(number) {
    const note = number === null ? "" : `The class sees student ${number}'s run.`;
    $("room-projected").textContent = note;
    $("room-student-projected").textContent = note;
    $("room-project-stop").hidden = number === null;
    this.showLocked();
  }

  showExperiment(experiment, results) {
    this.experiment = experiment;
    this.run = null;
    this.results.start(experiment, results);
    $("room-assignment").hidden = !experiment || this.room.mode === "host";
    if (!experiment) return;
    const pick = $("room-pick");
    pick.hidden = experiment.assign;
    pick.replaceChildren(...experiment.values.map((v) => new Option(String(v), String(v))));
    $("room-run-status").textContent = "";
    this.showAssignment();
  }

  showAssignment() {
    const { experiment } = this;
    if (!experiment) return;
    const name = VARIABLE_NAMES[experiment.variable];
    $("room-assignment-text").textContent = experiment.assign
      ? `your ${name} is ${this.value ?? "…"}, for ${experiment.epochs} epochs`
      : `pick a ${name}, train ${experiment.epochs} epochs`;
  }

  showVote({ vote, open, votes, tally }) {
    $("room-vote").hidden = !vote;
    if (!vote) return;
    $("room-vote-question").textContent = vote.question;
    const student = this.room.mode !== "host";
    $("room-vote-options").replaceChildren(...vote.options.map((option, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = tally ? `${option}: ${tally[i]}` : option;
      button.disabled = !open || !student;
      button.addEventListener("click", () => {
        this.room.send({ type: "ballot", option: i });
        for (const b of $("room-vote-options").children) b.classList.toggle("chosen", b === button);
      });
      return button;
    }));
    $("room-vote-note").textContent = open ? `${votes} vote${votes === 1 ? "" : "s"} — revealed after the run` : "revealed";
  }
}
