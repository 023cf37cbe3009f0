// A square picture of the input plane [-domain, domain]²: a uint8 grid painted as a colour map
// (createImageData/putImageData, one canvas pixel per cell, scaled by CSS), the data points and the
// neurons' separation lines drawn on a second canvas on top.

/** Colour of grid value 128 (p = 0.5, activation 0), between the two class colours. */
const MID_COLOR = [247, 247, 247];
const POINT_RADIUS = 4.5;
const TEST_OUTLINE = 2;
const LINE_WIDTH = 2.5;
const HALO_WIDTH = 6;
const ARROW_LENGTH = 16;
const LABEL_RADIUS = 11;
/** Distance of a line's label from the edge it starts at. */
const LABEL_INSET = 16;
const LABEL_FONT = "bold 14px 'DejaVu Sans', sans-serif";
const INK = "#1b1f24";

/** "#rrggbb" of a CSS variable on :root, as [r, g, b]. */
function cssColor(name) {
  const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  if (!/^#[0-9a-f]{6}$/i.test(hex)) throw Error(`CSS variable ${name} must be #rrggbb, got "${hex}"`);
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/**
 * The 256-entry RGBA lookup table of grid values: 0 → negative colour (--neg), 128 → near white,
 * 255 → positive colour (--pos). `strength` < 1 pales both ends (a background points must stand on).
 * @returns {Uint8ClampedArray} 256 × 4 bytes.
 */
export function colorScale(strength = 1) {
  const [neg, pos] = [cssColor("--neg"), cssColor("--pos")];
  const lut = new Uint8ClampedArray(256 * 4);
  for (let v = 0; v < 256; v++) {
    const t = (v / 255) * 2 - 1;
    const end = t < 0 ? neg : pos;
    for (let c = 0; c < 3; c++) {
      lut[v * 4 + c] = MID_COLOR[c] + (end[c] - MID_COLOR[c]) * Math.abs(t) * strength;
    }
    lut[v * 4 + 3] = 255;
  }
  return lut;
}

/** Paints a size² uint8 grid (row-major, row 0 at the top) onto `canvas`, one pixel per cell. */
export function paintGrid(canvas, values, size, lut) {
  if (values.length !== size * size) throw Error(`grid has ${values.length} values, expected ${size}²`);
  if (canvas.width !== size) canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, size);
  // One 32-bit RGBA word per pixel: both views share the platform's byte order.
  const colors = new Uint32Array(lut.buffer);
  const pixels = new Uint32Array(image.data.buffer);
  for (let i = 0; i < values.length; i++) pixels[i] = colors[values[i]];
  ctx.putImageData(image, 0, 0);
}

/** The two ends of the line w·x + b = 0 inside the square [-d, d]², or null when it misses it. */
function clipLine([w1, w2], b, d) {
  const ends = [];
  const add = (x, y) => {
    const inside = Math.abs(x) <= d + 1e-9 && Math.abs(y) <= d + 1e-9;
    if (inside && !ends.some(([u, v]) => Math.hypot(u - x, v - y) < 1e-9)) ends.push([x, y]);
  };
  for (const s of [-d, d]) {
    if (w2 !== 0) add(s, -(b + w1 * s) / w2);
    if (w1 !== 0) add(-(b + w2 * s) / w1, s);
  }
  return ends.length >= 2 ? ends.slice(0, 2) : null;
}

/**
 * The output's decision picture: background grid, train/test points, and per-neuron lines.
 *
 * `update(data)` takes any subset of
 * - `grid`: Uint8Array of `size`² values (docs/protocol.md layout), and `size`;
 * - `train`, `test`: arrays of [x1, x2, label] (label 0/1); `showTest`: draw the test points too;
 * - `lines`: [{w: [w1, w2], b, label}] drawn where w·x + b = 0, with an arrow to the positive side;
 * - `domain`: half-width of the plane.
 * What is left out keeps its previous value.
 */
export class Heatmap {
  /**
   * @param {HTMLElement} element A square container; the two canvases are put in it.
   * @param {{domain?: number, strength?: number}} options Plane half-width; background colour strength.
   */
  constructor(element, { domain = 6, strength = 0.65 } = {}) {
    this.element = element;
    this.lut = colorScale(strength);
    this.classColors = [cssColor("--neg"), cssColor("--pos")].map((rgb) => `rgb(${rgb.join(",")})`);
    this.grid = document.createElement("canvas");
    this.grid.className = "heatmap-grid";
    this.overlay = document.createElement("canvas");
    this.overlay.className = "heatmap-overlay";
    this.overlay.setAttribute("aria-hidden", "true");
    element.append(this.grid, this.overlay);
    this.data = { domain, train: [], test: [], showTest: false, lines: [] };
    new ResizeObserver(() => this.drawOverlay()).observe(element);
    this.reset();
  }

  update(data) {
    Object.assign(this.data, data);
    if (data.grid) paintGrid(this.grid, data.grid, data.size, this.lut);
    if (["train", "test", "showTest", "lines", "domain"].some((k) => k in data)) this.drawOverlay();
  }

  /** Blank background (p = 0.5 everywhere) and no lines; the points stay. */
  reset() {
    paintGrid(this.grid, new Uint8Array(1).fill(128), 1, this.lut);
    this.data.lines = [];
    this.drawOverlay();
  }

  drawOverlay() {
    const { clientWidth: w, clientHeight: h } = this.element;
    const ratio = window.devicePixelRatio || 1;
    if (this.overlay.width !== Math.round(w * ratio)) this.overlay.width = Math.round(w * ratio);
    if (this.overlay.height !== Math.round(h * ratio)) this.overlay.height = Math.round(h * ratio);
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const d = this.data.domain;
    const toPx = ([x1, x2]) => [((x1 + d) / (2 * d)) * w, ((d - x2) / (2 * d)) * h];
    this.drawPoints(ctx, this.data.train, toPx, "#fff", 1);
    if (this.data.showTest) this.drawPoints(ctx, this.data.test, toPx, INK, TEST_OUTLINE);
    const { lines } = this.data;
    const shapes = lines.map((line, i) => this.lineShape(line, toPx, d, i, lines.length))
      .filter(Boolean);
    // Labels last, so no other line's halo covers them.
    for (const shape of shapes) this.strokeLine(ctx, shape);
    for (const shape of shapes) this.drawLabel(ctx, shape);
  }

  drawPoints(ctx, points, toPx, outline, outlineWidth) {
    ctx.lineWidth = outlineWidth;
    ctx.strokeStyle = outline;
    for (const p of points) {
      const [x, y] = toPx(p);
      ctx.beginPath();
      ctx.arc(x, y, POINT_RADIUS, 0, 2 * Math.PI);
      ctx.fillStyle = this.classColors[p[2]];
      ctx.fill();
      ctx.stroke();
    }
  }

  /**
   * Where line `index` of `count` is drawn, in pixels, or null when it misses the plane. Arrows sit
   * at different places along the lines and labels alternate ends, so lines crossing near one
   * point stay readable.
   */
  lineShape({ w, b, label }, toPx, d, index, count) {
    const ends = clipLine(w, b, d);
    if (!ends) return null;
    const [[ax, ay], [bx, by]] = ends.map(toPx).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
    const len = Math.hypot(bx - ax, by - ay);
    const along = (t) => [ax + (bx - ax) * t, ay + (by - ay) * t];
    // The arrow points along w (y flipped on screen): the side where this neuron's w·x + b > 0.
    const norm = Math.hypot(w[0], w[1]);
    const u = [w[0] / norm, -w[1] / norm];
    const labelAt = along(index % 2 === 0 ? LABEL_INSET / len : 1 - LABEL_INSET / len);
    return { a: [ax, ay], b: [bx, by], arrowAt: along((index + 1) / (count + 1)), u, label, labelAt };
  }

  strokeLine(ctx, { a: [ax, ay], b: [bx, by], arrowAt: [mx, my], u: [ux, uy] }) {
    const [tx, ty] = [mx + ux * ARROW_LENGTH, my + uy * ARROW_LENGTH];
    ctx.lineCap = "round";
    for (const [color, width] of [["rgba(255,255,255,.85)", HALO_WIDTH], [INK, LINE_WIDTH]]) {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.moveTo(mx, my);
      ctx.lineTo(tx, ty);
      ctx.moveTo(tx - ux * 6 - uy * 5, ty - uy * 6 + ux * 5);
      ctx.lineTo(tx, ty);
      ctx.lineTo(tx - ux * 6 + uy * 5, ty - uy * 6 - ux * 5);
      ctx.stroke();
    }
  }

  /** The neuron's number (as in the network drawing) in a dark disc. */
  drawLabel(ctx, { label, labelAt: [lx, ly] }) {
    ctx.fillStyle = INK;
    ctx.beginPath();
    ctx.arc(lx, ly, LABEL_RADIUS, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = LABEL_FONT;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(label), lx, ly + 1);
  }
}
