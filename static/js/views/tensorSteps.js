// A strip of the steps from a file to a network's input, each a small picture with its name, shape,
// dtype and value range: "photo (384, 512, 3) uint8 0…255 → resized (224, 224, 3) → scaled
// float32 −1…1". A picture whose values go below zero is drawn on a diverging scale (zero mid-grey),
// so a normalized image looks like itself rather than black, and its legend says so.

/** How values become grey levels: "sequential" low → black, high → white; "diverging" zero mid-grey,
 * −high → black. */
export function displayOf(low, high) {
  if (low < 0) {
    const m = Math.max(-low, high) || 1;
    return { kind: "diverging", low: -m, high: m };
  }
  // The usual ranges keep their meaning: 0…1 floats and 0…255 bytes are drawn as they would be shown.
  const top = high <= 1 ? 1 : high <= 255 ? 255 : high;
  return { kind: "sequential", low: 0, high: top };
}

/** A number as a step's range writes it: integers plainly, others to 3 significant digits. */
export function formatValue(v) {
  if (Number.isInteger(v)) return String(v);
  const text = Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : String(+v.toPrecision(3));
  return text.replace("-", "−");
}

const formatShape = (shape) => `(${shape.join(", ")})`;

/**
 * Draws a picture's values (row-major, channels innermost; 1 channel grey, 3 RGB) on `canvas`, one
 * canvas pixel per value, by `display`.
 */
export function drawValues(canvas, { width, height, channels, values }, display) {
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(width, height);
  const out = image.data;
  const scale = 255 / (display.high - display.low || 1);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) {
      const v = values[i * channels + (channels === 1 ? 0 : c)];
      out[i * 4 + c] = (v - display.low) * scale; // Uint8ClampedArray rounds and clamps
    }
    out[i * 4 + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

export class TensorSteps {
  /** @param {HTMLElement} element The strip; the view fills it with one figure per step. */
  constructor(element) {
    this.element = element;
    element.classList.add("tensor-steps");
  }

  /**
   * @param {object[]} steps Each `{name, shape, dtype, low, high, detail?, picture?, display?}`:
   *   `picture` is `{width, height, channels, values}` (drawn here) or `{src}` (an image already
   *   drawn, e.g. a PNG the server rendered); `display` defaults to `displayOf(low, high)`.
   */
  update(steps) {
    this.element.replaceChildren(...steps.map((step, i) => this.figure(step, i)));
  }

  reset() {
    this.element.replaceChildren();
  }

  figure(step, index) {
    const figure = document.createElement("figure");
    figure.className = "tensor-step";
    const display = step.display ?? displayOf(step.low, step.high);
    figure.dataset.display = display.kind;
    const label = `${step.name}: shape ${formatShape(step.shape)}, ${step.dtype}, values ` +
      `${formatValue(step.low)} to ${formatValue(step.high)}`;
    figure.append(this.picture(step.picture, display, label));
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.textContent = `${index + 1} · ${step.name}`;
    const facts = document.createElement("span");
    facts.className = "tensor-facts";
    facts.textContent = `${formatShape(step.shape)} ${step.dtype}`;
    const range = document.createElement("span");
    range.className = "tensor-range";
    range.textContent = `${formatValue(step.low)} … ${formatValue(step.high)}`;
    caption.append(name, facts, range);
    if (display.kind === "diverging") caption.append(this.legend(display));
    if (step.detail) {
      const detail = document.createElement("span");
      detail.className = "tensor-detail";
      detail.textContent = step.detail;
      caption.append(detail);
    }
    figure.append(caption);
    return figure;
  }

  picture(picture, display, label) {
    if (picture?.src) {
      const img = document.createElement("img");
      Object.assign(img, { src: picture.src, alt: label, className: "tensor-picture" });
      return img;
    }
    const canvas = document.createElement("canvas");
    canvas.className = "tensor-picture";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", label);
    if (picture) drawValues(canvas, picture, display);
    return canvas;
  }

  /** "−1 ◼ 0 ◼ 1": black, mid-grey and white, as the picture maps them. */
  legend(display) {
    const legend = document.createElement("span");
    legend.className = "tensor-legend";
    legend.title = "Below zero is darker than mid-grey, above zero lighter.";
    const bar = document.createElement("span");
    bar.className = "tensor-legend-bar";
    legend.append(formatValue(display.low), bar, "0", bar.cloneNode(), formatValue(display.high));
    return legend;
  }
}
