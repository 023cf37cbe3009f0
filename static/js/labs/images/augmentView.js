// Augmentation (POST /api/image-lab/augment): which random augmentations a batch gets and their
// ranges, and the batch itself — each image with the seed it was given and the values each
// tf.image.stateless_random_* call drew, so that any image can be replayed.
import { htmlElement } from "../../views/svg.js";
import { codeElement, formatShape } from "./format.js";
import { ParamControls } from "./paramControls.js";
import { Picture } from "./stageView.js";
import { newStep } from "./steps.js";

const PICTURE_SIDE = 176;

/**
 * A drawn value for a reader: flags yes/no, sizes 119×179×3, factors ×1.13, other numbers signed
 * (a shift) or whole, to 3 significant digits.
 */
function drawnValue(name, v) {
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.join("×");
  if (Number.isInteger(v)) return String(v);
  const text = String(+v.toPrecision(3)).replace("-", "−");
  return name.endsWith("_factor") ? `×${text}` : `${v > 0 ? "+" : ""}${text}`;
}

/**
 * What one augmentation drew: "brightness +0.047", or each value named when it drew several
 * ("crop: size 119×179×3, at (7, 41)": an offset is written as a position).
 */
function drawnText(title, { offset_height: top, offset_width: left, ...drawn }) {
  const entries = Object.entries(drawn);
  const at = top === undefined ? [] : [`at (${top}, ${left})`];
  if (entries.length === 1 && !at.length) return `${title} ${drawnValue(...entries[0])}`;
  const parts = entries.map(([k, v]) => `${k.replaceAll("_", " ")} ${drawnValue(k, v)}`);
  return `${title}: ${[...parts, ...at].join(", ")}`;
}

/** The augmentations to apply, in the catalog's order, each with its ranges. */
export class AugmentChoices {
  /**
   * @param {HTMLElement} element
   * @param {object[]} specs The catalog's augmentations ({op, title, tf_function, params}).
   * @param {(chosen: {op: string, params: object}[], final: boolean) => void} onChange
   */
  constructor(element, specs, onChange) {
    this.specs = specs;
    this.chosen = new Map(); // op → its step, for the ticked ones
    this.unticked = new Map(); // the ranges of an unticked augmentation, kept if ticked again
    this.items = specs.map((spec) => {
      const box = htmlElement("fieldset", "aug-choice");
      const legend = htmlElement("legend");
      const label = htmlElement("label", "param-check");
      const tick = htmlElement("input");
      Object.assign(tick, { type: "checkbox", id: `aug-${spec.op}` });
      label.htmlFor = tick.id;
      label.append(tick, spec.title);
      legend.append(label);
      box.append(legend, codeElement("stage-fn", spec.tf_function));
      const holder = htmlElement("div");
      box.append(holder);
      const controls = spec.params.length
        ? new ParamControls(holder, spec.params, {
          id: `aug-${spec.op}`, labels: new Map(),
          onChange: (name, value, final) => {
            this.step(spec).params[name] = value;
            onChange(this.list(), final);
          },
        })
        : null;
      tick.addEventListener("change", () => {
        const step = this.step(spec);
        if (tick.checked) this.chosen.set(spec.op, step);
        else {
          this.unticked.set(spec.op, step);
          this.chosen.delete(spec.op);
        }
        box.classList.toggle("off", !tick.checked);
        onChange(this.list(), true);
      });
      element.append(box);
      return { spec, box, tick, controls };
    });
  }

  step(spec) {
    if (!this.chosen.has(spec.op) && !this.unticked.has(spec.op)) this.unticked.set(spec.op, newStep(spec));
    return this.chosen.get(spec.op) ?? this.unticked.get(spec.op);
  }

  /** The ticked augmentations as a request lists them. */
  list() {
    return this.specs.filter((s) => this.chosen.has(s.op)).map((s) => this.chosen.get(s.op));
  }

  /** @param {{op: string, params: object}[]} chosen */
  update(chosen) {
    this.chosen = new Map(chosen.map((step) => [step.op, step]));
    for (const { spec, box, tick, controls } of this.items) {
      tick.checked = this.chosen.has(spec.op);
      box.classList.toggle("off", !tick.checked);
      controls?.update(this.step(spec).params);
    }
  }
}

/** The augmented batch: one figure per image. */
export class AugmentGrid {
  /**
   * @param {HTMLElement} element
   * @param {Map<string, string>} titles Each augmentation's title, by op.
   */
  constructor(element, titles) {
    Object.assign(this, { element, titles });
    this.figures = [];
  }

  /** @param {object} d An AugmentResponse. */
  update(d) {
    while (this.figures.length < d.images.length) this.figures.push(this.figure());
    this.figures.length = d.images.length;
    this.element.replaceChildren(...this.figures.map((f) => f.element));
    d.images.forEach((image, i) => this.show(this.figures[i], image));
  }

  figure() {
    const element = htmlElement("figure", "aug-figure");
    const picture = new Picture(element, PICTURE_SIDE);
    const caption = htmlElement("figcaption");
    const seed = htmlElement("p", "aug-seed");
    const draws = htmlElement("ul", "aug-draws");
    caption.append(seed, draws);
    element.append(caption);
    return { element, picture, seed, draws };
  }

  show(figure, image) {
    figure.picture.show({
      src: image.preview, width: image.preview_width, height: image.preview_height,
      alt: `Augmented image ${image.index + 1}, ${formatShape(image.shape)}`,
    });
    figure.seed.textContent = `#${image.index + 1} · seed (${image.seed.join(", ")})`;
    figure.draws.replaceChildren(...image.draws.map((draw) => {
      const title = (this.titles.get(draw.op) ?? draw.op).replace(/^random /, "");
      const item = htmlElement("li", "", drawnText(title, draw.drawn));
      item.title = draw.call; // the stateless call with its seed: replayable
      return item;
    }));
  }
}
