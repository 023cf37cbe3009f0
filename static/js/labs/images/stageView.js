// What a student reads about one tensor (a StageReport of the images lab's API): its picture, the
// TensorFlow call that made it, its shape, dtype and value range, how the picture maps values to
// grey levels, per-channel min/max/mean/std, a histogram, and what to notice.
import { htmlElement } from "../../views/svg.js";
import { codeElement, formatNumber, formatShape } from "./format.js";
import { Histogram } from "./histogram.js";

const formatBytes = (n) => `${n.toLocaleString("en")} bytes`;

/**
 * The largest size of a `width`×`height` picture inside a `side`² box: shrunk to fit, or enlarged
 * up to `zoom` times (a 32×32 tensor is shown with its pixels visible, not as a dot).
 */
export function fitted(width, height, side, zoom = 8) {
  const scale = Math.min(side / width, side / height, zoom);
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A picture that shows a new image only once it is loaded and only if no newer one was asked for. */
export class Picture {
  /** @param {HTMLElement} element Where the <img> goes. @param {number} side Its box, CSS px. */
  constructor(element, side) {
    this.img = htmlElement("img", "picture");
    this.img.alt = "";
    this.side = side;
    this.asked = null;
    element.append(this.img);
  }

  /** @param {{src: string, width: number, height: number, alt: string}} picture */
  async show({ src, width, height, alt }) {
    this.asked = src;
    const size = fitted(width, height, this.side);
    const next = new Image();
    next.src = src;
    try {
      await next.decode();
    } catch {
      return; // expired or superseded: the last picture stays
    }
    if (this.asked !== src) return;
    Object.assign(this.img, { src, alt, width: size.width, height: size.height });
    this.img.classList.toggle("zoomed", size.width > width);
  }
}

/** How a picture maps values to grey levels: "0 ▭ 255", or "−1 ▭ 0 ▭ 1" (0 mid-grey) if diverging. */
export function scaleLegend(display) {
  const legend = htmlElement("span", `scale-legend ${display.kind}`);
  const bar = htmlElement("span", "scale-bar");
  if (display.kind === "diverging") {
    legend.append(formatNumber(display.low), bar, "0", bar.cloneNode(), formatNumber(display.high));
    legend.title = "Drawn on a diverging scale: zero is mid-grey, below zero darker, above lighter.";
  } else {
    legend.append(formatNumber(display.low), bar, formatNumber(display.high));
    legend.title = `Drawn from ${formatNumber(display.low)} (black) to ${formatNumber(display.high)} (white).`;
  }
  return legend;
}

export class StageView {
  /**
   * @param {HTMLElement} element The view's box.
   * @param {{side?: number, stats?: boolean}} options side: the picture's box in CSS pixels;
   *   stats: whether the per-channel table is shown.
   */
  constructor(element, { side = 240, stats = true } = {}) {
    this.element = element;
    element.classList.add("stage-view");
    const figure = htmlElement("div", "stage-picture");
    this.picture = new Picture(figure, side);
    this.legend = htmlElement("p", "stage-scale");
    figure.append(this.legend);
    this.call = htmlElement("code", "stage-call");
    this.shape = htmlElement("p", "stage-shape");
    this.notes = htmlElement("ul", "notes stage-notes");
    this.stats = stats ? htmlElement("table", "stage-stats") : null;
    const histogram = htmlElement("div", "stage-histogram");
    this.histogram = new Histogram(histogram);
    const facts = htmlElement("div", "stage-facts");
    const numbers = htmlElement("div", "stage-numbers");
    numbers.append(...(stats ? [wrapped(this.stats)] : []), histogram);
    facts.append(this.call, this.shape, numbers, this.notes);
    this.waiting = htmlElement("p", "stage-waiting", "Not computed yet.");
    element.append(this.waiting, figure, facts);
    element.classList.add("empty");
  }

  /** @param {object} stage A StageReport. */
  update(stage) {
    this.element.classList.remove("empty");
    const range = `${formatNumber(stage.value_min)} … ${formatNumber(stage.value_max)}`;
    this.picture.show({
      src: stage.preview, width: stage.preview_width, height: stage.preview_height,
      alt: `${stage.op}: shape ${formatShape(stage.shape)}, ${stage.dtype}, values ${range}`,
    });
    this.legend.replaceChildren("drawn ", scaleLegend(stage.display));
    this.call.replaceChildren(...codeElement("", stage.call).childNodes);
    const shape = htmlElement("span", "value stage-shape-text", formatShape(stage.shape));
    const dtype = htmlElement("span", "value stage-dtype", stage.dtype);
    const values = htmlElement("span", "value stage-range", range);
    this.shape.replaceChildren(shape, " ", dtype, " · values ", values);
    if (stage.jpeg_bytes !== null && stage.jpeg_bytes !== undefined) {
      this.shape.append(" · JPEG file ", htmlElement("span", "value stage-jpeg", formatBytes(stage.jpeg_bytes)));
    }
    if (this.stats) this.stats.replaceChildren(statsHead(), ...stage.channels.map(statsRow));
    this.histogram.update(stage);
    const notes = stage.note ? [stage.note] : [];
    if (stage.non_finite) notes.push(`${stage.non_finite.toLocaleString("en")} NaN or infinite values (magenta)`);
    this.notes.replaceChildren(...notes.map((n) => htmlElement("li", "", n)));
  }
}

/** A table in a box that scrolls sideways rather than widen the page (a phone). */
function wrapped(table) {
  const box = htmlElement("div", "table-box");
  box.append(table);
  return box;
}

function statsHead() {
  const row = htmlElement("tr");
  for (const h of ["", "min", "max", "mean", "std"]) row.append(htmlElement("th", "", h));
  return row;
}

function statsRow(c) {
  const row = htmlElement("tr");
  const name = htmlElement("th", `channel channel-${c.name}`, c.name);
  name.scope = "row";
  row.append(name, ...[c.min, c.max, c.mean, c.std].map((v) => htmlElement("td", "", formatNumber(v))));
  return row;
}
