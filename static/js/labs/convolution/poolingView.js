// Pooling on one feature map: the map, the pooled map, and for the output under the cursor the
// window it summarises and (max pooling) the input value it came from.

import { FeatureMap, maxAbs } from "./featureMap.js";

const SOURCE_COLOR = "#d55e00";

export class PoolingView {
  /** @param {HTMLElement} element container for the two maps and the caption line. */
  constructor(element) {
    const row = document.createElement("div");
    row.className = "map-row";
    this.input = new FeatureMap(row, { size: 256, label: "map before pooling" });
    this.output = new FeatureMap(row, { size: 256, label: "map after pooling" });
    this.info = document.createElement("p");
    this.info.className = "pool-info";
    this.info.setAttribute("aria-live", "polite");
    element.append(row, this.info);
    this.output.onHover = (cell) => cell && this.explain(cell);
    this.data = null;
  }

  /**
   * @param {{input: {values: number[], height: number, width: number},
   *          output: {values: number[], height: number, width: number},
   *          argmax: number[]|null, pool: string, window: number, stride: number}} data
   *   argmax[i]: flat index y * width + x in `input` of output i's value (max pooling only).
   */
  update(data) {
    this.data = data;
    const scale = maxAbs(data.input.values);
    const shape = (m) => `${m.height}×${m.width}`;
    this.input.update({ ...data.input, scale, caption: `before: ${shape(data.input)}` });
    this.output.update({
      ...data.output,
      scale,
      caption: `${data.pool} pool ${data.window}×${data.window}, stride ${data.stride}: ` +
        shape(data.output),
    });
    this.explain(this.output.cursor ?? { y: 0, x: 0 });
  }

  explain({ y, x }) {
    const d = this.data;
    if (!d || y >= d.output.height || x >= d.output.width) return;
    const top = y * d.stride;
    const left = x * d.stride;
    const win = { top, left, height: d.window, width: d.window };
    const value = d.output.values[y * d.output.width + x];
    const rows = `rows ${top + 1}–${top + d.window}, columns ${left + 1}–${left + d.window}`;
    this.output.highlight([{ top: y, left: x, height: 1, width: 1 }]);
    if (d.argmax) {
      const src = d.argmax[y * d.output.width + x];
      const sy = Math.floor(src / d.input.width);
      const sx = src % d.input.width;
      this.input.highlight([win, { top: sy, left: sx, height: 1, width: 1, color: SOURCE_COLOR }]);
      this.info.textContent = `Output (${y + 1}, ${x + 1}) = ${fmt(value)}: the largest value of ` +
        `the window at ${rows}, found at row ${sy + 1}, column ${sx + 1}.`;
    } else {
      this.input.highlight([win]);
      this.info.textContent = `Output (${y + 1}, ${x + 1}) = ${fmt(value)}: the average of the ` +
        `${d.window * d.window} values at ${rows}.`;
    }
  }

  reset() {
    this.data = null;
    this.input.reset();
    this.output.reset();
    this.info.textContent = "";
  }
}

function fmt(v) {
  return String(Number(v.toFixed(3)));
}
