// What one neuron has learned, over its data: the fitted line through (x, y) points (linear
// regression), or the plane coloured by the class probabilities with the points on top and, for the
// sigmoid neuron, its separating line w·x + b = 0 in yellow.
import { themeColors, THEME_CHANGE } from "../../lab/page.js";
import { clipLine, colorScale, mix, packRGB, paintGrid } from "../../views/grid.js";

/** Okabe-Ito: class 0 orange, class 1 blue, class 2 green; yellow for the separating line. */
export const CLASS_COLORS = [[230, 159, 0], [0, 114, 178], [0, 158, 115]];
const WHITE = [255, 255, 255];
const YELLOW = "#f0e442";
const INK = "#1b1f24";
/** How much of a class colour the background gets at p = 1 (the points must stand out on it). */
const BACKGROUND_STRENGTH = 0.6;
const POINT_RADIUS = 5;
const PAD = { left: 66, right: 14, top: 14, bottom: 46 };
const FONT = "15px 'DejaVu Sans', sans-serif";

const rgb = (c) => `rgb(${c.join(",")})`;

/** A class's probability plane (uint8, 255 = p 1): white → the class's colour. */
export function classMapScale(k) {
  const color = CLASS_COLORS[k];
  return colorScale({ low: WHITE, mid: mix(WHITE, color, 0.5), high: color });
}

/**
 * `update(data)` takes any subset of: `model` ("linear" | "logistic" | "softmax"), `points`
 * ([x, y] or [x1, x2, label] rows), `domain`, `axes` (two axis titles), `grid` (Uint8Array of
 * c planes of `size`²), `size`, `w` (rows of weights), `b` (biases). What is left out is kept.
 */
export class NeuronFit {
  /** @param {HTMLElement} element A container with a size set in CSS; the canvas fills it. */
  constructor(element) {
    this.element = element;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "fit-canvas";
    element.append(this.canvas);
    this.background = document.createElement("canvas");
    this.data = { model: "linear", points: [], domain: 6, axes: ["x", "y"], grid: null, size: 0,
      w: null, b: null };
    new ResizeObserver(() => this.draw()).observe(element);
    window.addEventListener(THEME_CHANGE, () => this.draw());
  }

  update(data) {
    Object.assign(this.data, data);
    if ("points" in data || "model" in data) this.yRange = this.linearYRange();
    if (data.grid) this.paintBackground();
    this.draw();
  }

  /** Drops the learned part (line, background) and keeps the points. */
  reset() {
    Object.assign(this.data, { grid: null, w: null, b: null });
    this.draw();
  }

  /** The y range of the regression plot: the data's, padded, fixed until the data change. */
  linearYRange() {
    const ys = this.data.model === "linear" ? this.data.points.map((p) => p[1]) : [];
    if (!ys.length) return [-this.data.domain, this.data.domain];
    const [lo, hi] = [Math.min(...ys), Math.max(...ys)];
    const pad = Math.max(1, (hi - lo) * 0.15);
    return [lo - pad, hi + pad];
  }

  /** Mixes the class colours by probability: one pixel per grid cell, scaled up when drawn. */
  paintBackground() {
    const { grid, size, model } = this.data;
    const cells = size * size;
    const planes = grid.length / cells;
    paintGrid(this.background, size, (i) => {
      // Logistic: one plane, P(class 1); P(class 0) is the rest.
      const p = planes === 1 ? [1 - grid[i] / 255, grid[i] / 255] :
        Array.from({ length: planes }, (_, k) => grid[k * cells + i] / 255);
      const mixed = [0, 1, 2].map((c) => p.reduce((v, pk, k) => v + pk * CLASS_COLORS[k][c], 0));
      // Where no class is sure (p near 1/c everywhere), the mix fades to white.
      const sure = model === "softmax" ? (Math.max(...p) - 1 / 3) * 1.5 : Math.abs(p[1] - 0.5) * 2;
      return packRGB(mix(WHITE, mixed, BACKGROUND_STRENGTH * Math.min(1, sure)));
    });
  }

  draw() {
    const { clientWidth: width, clientHeight: height } = this.element;
    if (!width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * ratio);
    this.canvas.height = Math.round(height * ratio);
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const { domain: d, model } = this.data;
    const [y0, y1] = model === "linear" ? this.yRange ?? [-d, d] : [-d, d];
    const plot = { x: PAD.left, y: PAD.top, w: width - PAD.left - PAD.right,
      h: height - PAD.top - PAD.bottom };
    const toPx = ([x, y]) => [plot.x + ((x + d) / (2 * d)) * plot.w,
      plot.y + ((y1 - y) / (y1 - y0)) * plot.h];
    if (model !== "linear" && this.data.grid) {
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.background, plot.x, plot.y, plot.w, plot.h);
    } else {
      ctx.fillStyle = themeColors().bg;
      ctx.fillRect(plot.x, plot.y, plot.w, plot.h);
    }
    this.drawAxes(ctx, plot, d, [y0, y1]);
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.x, plot.y, plot.w, plot.h);
    ctx.clip();
    this.drawPoints(ctx, toPx);
    this.drawLearned(ctx, toPx, d, [y0, y1]);
    ctx.restore();
  }

  drawAxes(ctx, plot, d, [y0, y1]) {
    ctx.strokeStyle = "#8c959f";
    ctx.lineWidth = 1;
    ctx.strokeRect(plot.x, plot.y, plot.w, plot.h);
    ctx.fillStyle = themeColors().ink;
    ctx.font = FONT;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const [xTitle, yTitle] = this.data.axes;
    for (const v of [-d, 0, d]) {
      ctx.fillText(String(v), plot.x + ((v + d) / (2 * d)) * plot.w, plot.y + plot.h + 4);
    }
    ctx.fillText(xTitle, plot.x + plot.w / 2, plot.y + plot.h + 24);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [y0, (y0 + y1) / 2, y1]) {
      ctx.fillText(v.toFixed(1), plot.x - 6, plot.y + ((y1 - v) / (y1 - y0)) * plot.h);
    }
    ctx.save();
    ctx.translate(12, plot.y + plot.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(yTitle, 0, 0);
    ctx.restore();
  }

  drawPoints(ctx, toPx) {
    const linear = this.data.model === "linear";
    ctx.lineWidth = 1.2;
    for (const p of this.data.points) {
      const [x, y] = toPx(p);
      ctx.beginPath();
      ctx.arc(x, y, POINT_RADIUS, 0, 2 * Math.PI);
      ctx.fillStyle = rgb(CLASS_COLORS[linear ? 1 : p[2]]);
      ctx.strokeStyle = "#fff";
      ctx.fill();
      ctx.stroke();
    }
  }

  /** The regression line y = w·x + b, or the sigmoid neuron's yellow line w·x + b = 0. */
  drawLearned(ctx, toPx, d) {
    const { model, w, b } = this.data;
    if (!w || model === "softmax") return;
    let ends;
    if (model === "linear") {
      ends = [[-d, w[0][0] * -d + b[0]], [d, w[0][0] * d + b[0]]];
    } else {
      ends = clipLine([w[0][0], w[1][0]], b[0], d);
      if (!ends) return;
    }
    const [[ax, ay], [bx, by]] = ends.map(toPx);
    ctx.lineCap = "round";
    for (const [color, width] of [[INK, 7], [model === "linear" ? "#d55e00" : YELLOW, 3.5]]) {
      ctx.strokeStyle = color;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.moveTo(ax, ay);
      ctx.lineTo(bx, by);
      ctx.stroke();
    }
  }
}
