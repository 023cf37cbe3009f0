// The lab's two heatmaps, painted by the shared grid painter (views/grid.js): a state over the
// sequence (units × time, one column per step, for the example drawn) and ‖∂ℓ/∂h_t‖ over training
// (time × moments of training, newest at the bottom, on a log colour scale).
import { colorScale, cssColor, packRGB, paintGrid } from "../../views/grid.js";

const PALE = [247, 247, 247];
const WHITE = [255, 255, 255];
/** Gates are in [0, 1]: white (closed) to green (open). */
const GATE = [0, 158, 115];
/** Gradient norms: pale yellow (small) to dark purple (large), readable without colour vision. */
const GRAD_LOW = [255, 247, 188];
const GRAD_MID = [204, 121, 167];
const GRAD_HIGH = [61, 20, 89];
/** Moments of training the gradient heatmap keeps (rows). */
const HISTORY_ROWS = 120;
/** Norms this small count as this: log10 of 0 would be −∞ (and float32 overflow is 3.4e38). */
const FLOOR = 1e-30;

/** The colour scales of the arrays a state heatmap shows: signed ones diverge, gates run 0 → 1. */
export function stateScales() {
  const signed = colorScale({ low: cssColor("--neg"), mid: PALE, high: cssColor("--pos") });
  const gate = colorScale({ low: WHITE, mid: GATE.map((c) => Math.round((c + 255) / 2)), high: GATE });
  return { signed, gate };
}

/** The scale an array of a frame is painted with: gates (lo 0) one way, signed values the other. */
export const scaleOf = (array, scales) => (array.lo === 0 ? scales.gate : scales.signed);

/**
 * A (T, U) uint8 array as U rows (units) by T columns (time steps), with a cursor at the chosen step;
 * a click picks a step (`onPick(t)`).
 */
export class StateHeatmap {
  constructor(canvas, cursor, onPick) {
    this.canvas = canvas;
    this.cursor = cursor;
    this.steps = 1;
    canvas.addEventListener("click", (e) => {
      const box = canvas.getBoundingClientRect();
      onPick(Math.min(this.steps - 1, Math.floor(((e.clientX - box.left) / box.width) * this.steps)));
    });
    this.reset();
  }

  /** Blank until the next frame's states. */
  reset() {
    paintGrid(this.canvas, 1, () => packRGB(WHITE));
    this.cursor.hidden = true;
  }

  /** @param {{q: Uint8Array, shape: number[]}} array @param {Uint32Array} scale */
  update(array, scale) {
    const [steps, units] = array.shape;
    this.steps = steps;
    const { q } = array;
    // Row j (unit j), column t: element (t, j) of the row-major (T, U) array.
    paintGrid(this.canvas, steps, (i) => scale[q[(i % steps) * units + Math.floor(i / steps)]], null, units);
    this.canvas.style.aspectRatio = `${Math.max(steps, 1)} / ${Math.min(Math.max(units, 8), steps)}`;
  }

  setCursor(t) {
    this.cursor.hidden = false;
    this.cursor.style.left = `${((t + 0.5) / this.steps) * 100}%`;
    this.cursor.style.width = `${Math.max(100 / this.steps, 0.4)}%`;
  }
}

/** ‖∂ℓ/∂h_t‖ per step, a row per moment of training: where gradients vanish or explode, over time. */
export class GradientHistory {
  constructor(canvas) {
    this.canvas = canvas;
    this.scale = colorScale({ low: GRAD_LOW, mid: GRAD_MID, high: GRAD_HIGH });
    this.reset();
  }

  reset() {
    this.rows = [];
    paintGrid(this.canvas, 1, () => packRGB(WHITE));
  }

  /**
   * Adds one moment's norms (a row) and repaints.
   * @returns {[number, number] | null} the log10 range the colours span.
   */
  push(norms) {
    if (this.rows.length && this.rows[0].length !== norms.length) this.rows = [];
    this.rows.push(Array.from(norms, (v) => Math.log10(Math.max(v, FLOOR))));
    if (this.rows.length > HISTORY_ROWS) this.rows.shift();
    const all = this.rows.flat();
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    const span = hi - lo || 1;
    const steps = norms.length;
    const rows = this.rows;
    paintGrid(this.canvas, steps, (i) => {
      const v = rows[Math.floor(i / steps)][i % steps];
      return this.scale[Math.round(((v - lo) / span) * 255)];
    }, null, rows.length);
    return [lo, hi];
  }
}
