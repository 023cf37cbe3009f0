// The pipeline a student builds, one card per stage — the decode, then each step — with the step's
// parameters and the tensor it made (stageView.js), and above them every stage at a glance: the shared
// views/tensorSteps.js strip, whose pictures lead to their cards.
import { htmlElement } from "../../views/svg.js";
import { TensorSteps } from "../../views/tensorSteps.js";
import { codeElement } from "./format.js";
import { ParamControls } from "./paramControls.js";
import { StageView } from "./stageView.js";

export class PipelineView {
  /**
   * @param {{strip: HTMLElement, list: HTMLElement}} elements
   * @param {{onParam: (index: number, name: string, value: *, final: boolean) => void,
   *   onMove: (index: number, by: number) => void, onRemove: (index: number) => void}} handlers
   *   `index` is the stage's: 0 the decode, i the step steps[i − 1].
   */
  constructor({ strip, list }, handlers) {
    this.list = list;
    this.handlers = handlers;
    this.strip = new TensorSteps(strip);
    this.stripElement = strip;
    this.cards = [];
    this.titles = [];
    this.stages = [];
    strip.addEventListener("click", (e) => this.reveal(e.target.closest("figure")));
    strip.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.reveal(e.target.closest("figure"));
      }
    });
  }

  /**
   * Builds one card per stage.
   * @param {{op: string, title: string, tf_function: string, params: object[], labels: Map,
   *   values: object}[]} stages Each stage's spec (from the catalog), its choices' labels and its
   *   parameters' values.
   */
  build(stages) {
    this.titles = stages.map((stage) => stage.title);
    this.cards = stages.map((stage, index) => this.card(stage, index, stages.length));
    this.list.replaceChildren(...this.cards.map((c) => c.element));
    this.stages = [];
    this.strip.reset();
  }

  card({ op, title, tf_function: fn, params, labels, values }, index, count) {
    const element = htmlElement("li", "stage-card");
    element.id = `stage-${index}`;
    element.dataset.op = op;
    const head = htmlElement("header", "stage-head");
    const heading = htmlElement("h3", "", `${index + 1} · ${title}`);
    head.append(heading, codeElement("stage-fn", fn));
    if (index > 0) {
      head.append(htmlElement("span", "stage-where", `steps[${index - 1}]`));
      const tools = htmlElement("span", "stage-tools");
      const button = (text, label, action, disabled) => {
        const b = htmlElement("button", "icon", text);
        Object.assign(b, { type: "button", disabled, title: label });
        b.setAttribute("aria-label", `${label}: ${title}`);
        b.addEventListener("click", action);
        return b;
      };
      tools.append(
        button("↑", "Move up", () => this.handlers.onMove(index, -1), index === 1),
        button("↓", "Move down", () => this.handlers.onMove(index, 1), index === count - 1),
        button("✕", "Remove", () => this.handlers.onRemove(index), false),
      );
      head.append(tools);
    }
    const body = htmlElement("div", "stage-body");
    const editor = htmlElement("div", "stage-editor");
    if (params.length) {
      const onChange = (name, value, final) => this.handlers.onParam(index, name, value, final);
      new ParamControls(editor, params, { id: `stage-${index}`, labels, onChange }).update(values);
    } else editor.append(htmlElement("p", "hint", "No parameters."));
    const view = new StageView(htmlElement("div"));
    body.append(editor, view.element);
    element.append(head, body);
    return { element, view };
  }

  /** Shows every stage of a pipeline's answer, unless the steps changed shape since it was asked. */
  showStages(stages) {
    const ops = this.cards.map((c) => c.element.dataset.op);
    if (stages.length !== ops.length || stages.some((s, i) => s.op !== ops[i])) return;
    this.stages = stages;
    stages.forEach((stage, i) => this.cards[i].view.update(stage));
    this.cards.forEach((c) => c.element.classList.remove("stale"));
    this.showStrip();
  }

  /** Shows one stage (a live preview); the stages after it wait for the next full answer. */
  showStage(stage) {
    const card = this.cards[stage.index];
    if (!card || card.element.dataset.op !== stage.op) return;
    card.view.update(stage);
    card.element.classList.remove("stale");
    this.cards.slice(stage.index + 1).forEach((c) => c.element.classList.add("stale"));
    if (this.stages.length > stage.index) {
      this.stages[stage.index] = stage;
      this.showStrip();
    }
  }

  /** The steps could not run (the banner says why): what is shown is not what they make. */
  failed() {
    this.cards.forEach((c) => c.element.classList.add("stale"));
  }

  showStrip() {
    this.strip.update(this.stages.map((s, i) => ({
      name: this.titles[i] ?? s.op,
      shape: s.shape, dtype: s.dtype, low: s.value_min, high: s.value_max, display: s.display,
      picture: { src: s.preview },
    })));
    for (const figure of this.stripElement.children) {
      figure.tabIndex = 0;
      figure.setAttribute("role", "link");
    }
  }

  /** Scrolls to the card of a strip's figure. */
  reveal(figure) {
    if (!figure) return;
    const index = [...this.stripElement.children].indexOf(figure);
    const card = this.cards[index]?.element;
    if (!card) return;
    card.scrollIntoView({ behavior: "smooth", block: "start" });
    card.classList.add("flash");
    setTimeout(() => card.classList.remove("flash"), 1200);
  }
}
