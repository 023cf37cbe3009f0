// A layer's feature maps for one photo: a grid of small pictures, one per channel, on one colour
// scale for the whole layer (white at zero, blue above, orange below), so channels compare.

import { colorScale, cssColor, paintGrid } from "../../views/grid.js";

export class FeatureGrid {
  /** @param {HTMLElement} element The grid; the view fills it with one figure per channel. */
  constructor(element) {
    this.element = element;
  }

  /**
   * @param {{shape: number[], values: Float32Array, channels: number[]}} maps `shape` is
   *   (channels, height, width), square maps, values row-major.
   */
  update({ shape: [count, height, width], values, channels }) {
    const scale = colorScale({ low: cssColor("--neg"), mid: [255, 255, 255], high: cssColor("--pos") });
    let peak = 0;
    for (const v of values) peak = Math.max(peak, Math.abs(v));
    peak ||= 1;
    const size = height * width;
    this.element.replaceChildren(...Array.from({ length: count }, (_, k) => {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `channel ${channels[k]}`);
      const cells = new Uint8Array(size);
      for (let i = 0; i < size; i++) cells[i] = Math.round(127.5 + 127.5 * (values[k * size + i] / peak));
      paintGrid(canvas, width, cells, scale);
      const caption = document.createElement("figcaption");
      caption.textContent = `channel ${channels[k]}`;
      figure.append(canvas, caption);
      return figure;
    }));
  }

  reset() {
    this.element.replaceChildren();
  }
}
