// A 2-D grid of numbers drawn on a canvas, one canvas pixel per value, scaled up crisply by CSS.
// Feature maps use a diverging scale (orange < 0 < blue, white at 0); images draw as gray or RGB.
// Pointer, touch and arrow keys report the cell under the cursor; outlined boxes mark cells.

/** Okabe-Ito colours, as in playground.css: safe for colour-blind viewers. */
const POSITIVE = [0, 114, 178];
const NEGATIVE = [230, 159, 0];
const OUTLINE = "#1b1f24";
const OUTLINE_HALO = "#ffffff";

/** Colour of t in [-1, 1]: white at 0, blue towards +1, orange towards -1. */
export function divergingColor(t) {
  const a = Math.min(1, Math.abs(t));
  const end = t >= 0 ? POSITIVE : NEGATIVE;
  return end.map((c) => Math.round(255 + (c - 255) * a));
}

/** CSS colour string of divergingColor(t). */
export function divergingCss(t) {
  return `rgb(${divergingColor(t).join(",")})`;
}

/** Largest |v| of an array, at least a tiny epsilon so a flat map stays white. */
export function maxAbs(values) {
  let m = 0;
  for (const v of values) m = Math.max(m, Math.abs(v));
  return m || 1e-9;
}

export class FeatureMap {
  /**
   * @param {HTMLElement} element container; the view fills it with a figure.
   * @param {{size?: number, label?: string}} options size: CSS pixels of the longer side.
   */
  constructor(element, { size = 192, label = "feature map" } = {}) {
    this.size = size;
    this.figure = document.createElement("figure");
    this.figure.className = "fmap";
    this.stack = document.createElement("div");
    this.stack.className = "fmap-stack";
    this.canvas = document.createElement("canvas");
    this.canvas.className = "fmap-pixels";
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", label);
    this.overlay = document.createElement("canvas");
    this.overlay.className = "fmap-overlay";
    this.overlay.setAttribute("aria-hidden", "true");
    this.caption = document.createElement("figcaption");
    this.stack.append(this.canvas, this.overlay);
    this.figure.append(this.stack, this.caption);
    element.append(this.figure);
    this.onHover = null;
    this.cursor = null;
    this.grid = null;
    this.boxes = [];
    this.canvas.addEventListener("pointermove", (e) => this.pointAt(e));
    this.canvas.addEventListener("pointerdown", (e) => this.pointAt(e));
    this.canvas.addEventListener("keydown", (e) => this.keyMove(e));
    this.canvas.addEventListener("pointerleave", () => this.onHover?.(null));
  }

  /**
   * Draws a grid.
   * @param {{values: number[], height: number, width: number, channels?: number,
   *          kind?: "diverging"|"image", scale?: number, caption?: string}} data
   *   values row by row, channels innermost; scale: |value| drawn at full colour (diverging).
   */
  update({ values, height, width, channels = 1, kind = "diverging", scale, caption = "" }) {
    if (values.length !== height * width * channels) {
      throw Error(`expected ${height}×${width}×${channels} values, got ${values.length}`);
    }
    this.grid = { height, width };
    this.canvas.width = width;
    this.canvas.height = height;
    const k = this.size / Math.max(height, width);
    this.stack.style.width = `${Math.round(width * k)}px`;
    this.stack.style.height = `${Math.round(height * k)}px`;
    const image = new ImageData(width, height);
    const s = scale ?? maxAbs(values);
    for (let i = 0; i < height * width; i++) {
      let rgb;
      if (kind === "diverging") rgb = divergingColor(values[i] / s);
      else if (channels === 3) rgb = [0, 1, 2].map((c) => values[i * 3 + c] * 255);
      else rgb = Array(3).fill(values[i] * 255);
      image.data.set([...rgb, 255], i * 4);
    }
    this.canvas.getContext("2d").putImageData(image, 0, 0);
    this.caption.textContent = caption;
    this.drawBoxes();
  }

  /**
   * Outlines cell rectangles, e.g. the input patch under a kernel; cells may lie in the padding.
   * @param {{top: number, left: number, height: number, width: number}[]} boxes
   */
  highlight(boxes) {
    this.boxes = boxes;
    this.drawBoxes();
  }

  reset() {
    this.grid = null;
    this.boxes = [];
    this.cursor = null;
    this.canvas.width = this.canvas.height = 0;
    this.caption.textContent = "";
    this.drawBoxes();
  }

  drawBoxes() {
    const ratio = window.devicePixelRatio || 1;
    const w = this.stack.clientWidth;
    const h = this.stack.clientHeight;
    this.overlay.width = Math.round(w * ratio);
    this.overlay.height = Math.round(h * ratio);
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    if (!this.grid) return;
    const cw = w / this.grid.width;
    const ch = h / this.grid.height;
    for (const b of this.boxes) {
      const rect = [b.left * cw, b.top * ch, b.width * cw, b.height * ch];
      ctx.lineWidth = 5;
      ctx.strokeStyle = OUTLINE_HALO;
      ctx.strokeRect(...rect);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = b.color ?? OUTLINE;
      ctx.strokeRect(...rect);
    }
  }

  pointAt(event) {
    if (!this.grid) return;
    const r = this.canvas.getBoundingClientRect();
    const x = Math.floor(((event.clientX - r.left) / r.width) * this.grid.width);
    const y = Math.floor(((event.clientY - r.top) / r.height) * this.grid.height);
    if (x < 0 || y < 0 || x >= this.grid.width || y >= this.grid.height) return;
    this.cursor = { y, x };
    this.onHover?.(this.cursor);
  }

  keyMove(event) {
    const steps = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (!this.grid || !(event.key in steps)) return;
    event.preventDefault();
    const [dy, dx] = steps[event.key];
    const { y, x } = this.cursor ?? { y: 0, x: 0 };
    const clamp = (v, n) => Math.max(0, Math.min(n - 1, v));
    this.cursor = { y: clamp(y + dy, this.grid.height), x: clamp(x + dx, this.grid.width) };
    this.onHover?.(this.cursor);
  }
}
