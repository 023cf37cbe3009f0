// A square picture of the input plane [-domain, domain]²: the output's uint8 grid painted as a
// colour map (views/grid.js), the data points and the neurons' separation lines drawn on a second
// canvas on top. Points are coloured by class, or for regression by their value on the same scale.
import { clipLine, colorScale, cssColor, mix, paintGrid } from "../../views/grid.js";

/** Colour of grid value 128 (p = 0.5, activation 0), between the two class colours. */
const MID_COLOR = [247, 247, 247];
/** Sizes of what is drawn over the grid, in CSS pixels; `labelInset`: a line's label from its edge. */
const PX = Object.freeze({
  point: 4.5, testOutline: 2, line: 2.5, halo: 6, arrow: 16, label: 11, labelInset: 16,
});
const LABEL_FONT = "bold 14px 'DejaVu Sans', sans-serif";
const PRESENT_LABEL_FONT = "bold 22px 'DejaVu Sans', sans-serif";
const INK = "#1b1f24";
/** A regression point's outline: its fill can be as pale as the background. */
const VALUE_OUTLINE = "#57606a";

/** The decision picture's colours: p = 0 orange (--neg), p = 0.5 near white, p = 1 blue (--pos). */
export function classScale(strength = 1) {
  return colorScale({ low: cssColor("--neg"), mid: MID_COLOR, high: cssColor("--pos"), strength });
}

/** A value in [-1, 1] as the CSS colour of the full-strength scale (-1 orange, 0 pale, +1 blue). */
function valueColor(v, low, high) {
  const t = Math.max(-1, Math.min(1, v));
  return `rgb(${mix(MID_COLOR, t < 0 ? low : high, Math.abs(t)).join(",")})`;
}

/**
 * The output's decision picture: background grid, train/test points, and per-neuron lines.
 *
 * `update(data)` takes any subset of
 * - `grid`: Uint8Array of `size`² values (docs/protocol.md layout), and `size`;
 * - `train`, `test`: arrays of [x1, x2, label]; `problem`: "classification" (labels 0/1) or
 *   "regression" (values in [-1, 1]); `showTest`: draw the test points too;
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
    this.scale = classScale(strength);
    this.ends = [cssColor("--neg"), cssColor("--pos")];
    this.classColors = this.ends.map((rgb) => `rgb(${rgb.join(",")})`);
    this.grid = document.createElement("canvas");
    this.grid.className = "heatmap-grid";
    this.overlay = document.createElement("canvas");
    this.overlay.className = "heatmap-overlay";
    this.overlay.setAttribute("aria-hidden", "true");
    element.append(this.grid, this.overlay);
    this.data = { domain, train: [], test: [], problem: "classification", showTest: false, lines: [] };
    new ResizeObserver(() => this.drawOverlay()).observe(element);
    this.reset();
  }

  update(data) {
    Object.assign(this.data, data);
    if (data.grid) paintGrid(this.grid, data.size, data.grid, this.scale);
    if (["train", "test", "problem", "showTest", "lines", "domain"].some((k) => k in data)) this.drawOverlay();
  }

  /** Blank background (p = 0.5 everywhere) and no lines; the points stay. */
  reset() {
    paintGrid(this.grid, 1, new Uint8Array(1).fill(128), this.scale);
    this.data.lines = [];
    this.drawOverlay();
  }

  drawOverlay() {
    // Presentation mode thickens what is drawn (the page's --line-scale).
    const k = Number(getComputedStyle(this.element).getPropertyValue("--line-scale")) || 1;
    this.px = Object.fromEntries(Object.entries(PX).map(([name, v]) => [name, v * k]));
    const { clientWidth: w, clientHeight: h } = this.element;
    const ratio = window.devicePixelRatio || 1;
    if (this.overlay.width !== Math.round(w * ratio)) this.overlay.width = Math.round(w * ratio);
    if (this.overlay.height !== Math.round(h * ratio)) this.overlay.height = Math.round(h * ratio);
    const ctx = this.overlay.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const d = this.data.domain;
    const toPx = ([x1, x2]) => [((x1 + d) / (2 * d)) * w, ((d - x2) / (2 * d)) * h];
    const regression = this.data.problem === "regression";
    this.drawPoints(ctx, this.data.train, toPx, regression ? VALUE_OUTLINE : "#fff", 1);
    if (this.data.showTest) this.drawPoints(ctx, this.data.test, toPx, INK, this.px.testOutline);
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
    const fill = this.data.problem === "regression"
      ? (label) => valueColor(label, ...this.ends)
      : (label) => this.classColors[label];
    for (const p of points) {
      const [x, y] = toPx(p);
      ctx.beginPath();
      ctx.arc(x, y, this.px.point, 0, 2 * Math.PI);
      ctx.fillStyle = fill(p[2]);
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
    const labelAt = along(index % 2 === 0 ? this.px.labelInset / len : 1 - this.px.labelInset / len);
    return { a: [ax, ay], b: [bx, by], arrowAt: along((index + 1) / (count + 1)), u, label, labelAt };
  }

  strokeLine(ctx, { a: [ax, ay], b: [bx, by], arrowAt: [mx, my], u: [ux, uy] }) {
    const [tx, ty] = [mx + ux * this.px.arrow, my + uy * this.px.arrow];
    ctx.lineCap = "round";
    for (const [color, width] of [["rgba(255,255,255,.85)", this.px.halo], [INK, this.px.line]]) {
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
    ctx.arc(lx, ly, this.px.label, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = this.px.label > PX.label ? PRESENT_LABEL_FONT : LABEL_FONT;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(label), lx, ly + 1);
  }
}
