// Normalizations side by side (POST /api/image-lab/normalizations): each one's picture, call, values
// and histogram, one line on why a network wants it, and how hard a tiny network's first training step
// kicks its first layer with that input — on a log scale, where 1 (a step as large as the weights)
// is marked.
import { htmlElement } from "../../views/svg.js";
import { StageView } from "./stageView.js";

/** The update-ratio bar's log scale: 10^LOW … 10^HIGH. */
const LOW = -3;
const HIGH = 2;
const PICTURE_SIDE = 200;

const logShare = (v) => Math.min(1, Math.max(0, (Math.log10(Math.max(v, 1e-12)) - LOW) / (HIGH - LOW)));

/** A positive number for a reader: 3 significant digits, thousands separated. */
function plain(v) {
  return Number(v.toPrecision(3)).toLocaleString("en", { maximumFractionDigits: 3 });
}

export class NormalizationView {
  /** @param {{grid: HTMLElement, network: HTMLElement}} elements */
  constructor({ grid, network }) {
    Object.assign(this, { grid, network });
    this.cards = new Map();
  }

  /** @param {object} d A NormalizationsResponse. */
  update(d) {
    const modes = d.rows.map((r) => r.mode).join();
    if (modes !== [...this.cards.keys()].join()) {
      this.cards = new Map(d.rows.map((row) => [row.mode, this.card(row)]));
      this.grid.replaceChildren(...[...this.cards.values()].map((c) => c.element));
    }
    const unit = d.rows.find((r) => r.mode === "unit")?.gradient.grad_norm;
    for (const row of d.rows) this.show(this.cards.get(row.mode), row, unit);
    this.network.textContent = `The tiny network: ${d.network}`;
  }

  card(row) {
    const element = htmlElement("article", "norm-card");
    element.dataset.mode = row.mode;
    const view = new StageView(htmlElement("div"), { side: PICTURE_SIDE, stats: false });
    const why = htmlElement("p", "why");
    const gradient = htmlElement("div", "gradient");
    element.append(htmlElement("h3", "", row.title), view.element, why, gradient);
    return { element, view, why, gradient };
  }

  show(card, row, unit) {
    card.view.update(row.stage);
    card.why.textContent = row.why;
    const g = row.gradient;
    const times = unit && row.mode !== "unit" ? ` (${plain(g.grad_norm / unit)}× the [0, 1] row)` : "";
    const norm = htmlElement("p", "grad-norm");
    norm.append("‖∂loss/∂W₁‖ ", htmlElement("span", "value", plain(g.grad_norm)), times);
    const overshoots = g.update_ratio >= 1;
    const bar = htmlElement("div", `ratio-bar${overshoots ? " overshoots" : ""}`);
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", `first step: ${plain(g.update_ratio * 100)} % of the weights' size`);
    const fill = htmlElement("span", "ratio-fill");
    fill.style.width = `${(logShare(g.update_ratio) * 100).toFixed(1)}%`;
    const one = htmlElement("span", "ratio-one");
    one.style.left = `${(logShare(1) * 100).toFixed(1)}%`;
    one.title = "a step as large as the weights themselves";
    bar.append(fill, one);
    const step = htmlElement("p", "grad-step");
    step.append("first SGD step moves W₁ by ", htmlElement("span", "value", `${plain(g.update_ratio * 100)} %`),
      ` of its size${overshoots ? ": it overshoots" : ""}`);
    const inputs = htmlElement("p", "grad-inputs",
      `mean |input| ${plain(g.input_abs_mean)} · pre-activation std ${plain(g.preactivation_std)} · ` +
      `loss ${plain(g.loss)}`);
    card.gradient.replaceChildren(norm, bar, step, inputs);
  }
}
