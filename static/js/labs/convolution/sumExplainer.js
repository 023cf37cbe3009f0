// Writes out one output pixel's multiply-and-sum: every input value under the kernel times its
// weight, the products, and their total next to the value TensorFlow returned.

import { formatWeight } from "./kernelEditor.js";

const CHANNEL_NAMES = { 1: [""], 3: ["red", "green", "blue"] };

export class SumExplainer {
  /** @param {HTMLElement} element container that receives the explanation. */
  constructor(element) {
    this.element = element;
    this.placeholder = element.textContent;
  }

  /**
   * @param {{title: string, patch: (number|null)[][][], kernel: number[][], result: number,
   *          note?: string}} data
   *   patch[c][r][k]: input value under kernel cell (r, k) in channel c, null in the padding;
   *   kernel: the weights as slid over the input; result: the output TensorFlow computed.
   */
  update({ title, patch, kernel, result, note = "" }) {
    const names = CHANNEL_NAMES[patch.length] ?? patch.map((_, c) => `channel ${c + 1}`);
    const heading = document.createElement("p");
    heading.className = "explain-title";
    heading.textContent = title;
    // One channel: every product written out in a line; several: a table and a sum per channel.
    const blocks = patch.map((ch, c) => this.channelTable(ch, kernel, names[c], patch.length === 1));
    const row = document.createElement("div");
    row.className = "explain-channels";
    row.append(...blocks.map((b) => b.node));
    const sums = blocks.map((b) => b.sum);
    const total = document.createElement("p");
    total.className = "explain-total";
    const parts = sums.length > 1 ? `${sums.map(fmt).join(" + ")} = ` : "";
    total.innerHTML = `Sum: ${parts}<strong>${fmt(sums.reduce((a, b) => a + b, 0))}</strong>` +
      ` · TensorFlow: <strong>${fmt(result)}</strong>`;
    const children = [heading, row, total];
    if (note) {
      const p = document.createElement("p");
      p.className = "explain-note";
      p.textContent = note;
      children.push(p);
    }
    this.element.replaceChildren(...children);
  }

  reset() {
    this.element.textContent = this.placeholder;
  }

  channelTable(channel, kernel, name, writeOut) {
    const table = document.createElement("table");
    table.className = "explain-grid";
    if (name) table.createCaption().textContent = name;
    let sum = 0;
    const terms = [];
    channel.forEach((row, r) => {
      const tr = table.insertRow();
      row.forEach((value, k) => {
        const x = value ?? 0;
        const product = x * kernel[r][k];  // the sum is redone here from the numbers shown
        sum += product;
        const w = kernel[r][k];
        terms.push(`${fmt(x)}·${w < 0 ? `(${formatWeight(w)})` : formatWeight(w)}`);
        const td = tr.insertCell();
        td.className = value === null ? "pad" : "";
        td.innerHTML = `<span class="x">${value === null ? "0 pad" : fmt(x)}</span>` +
          `<span class="w">× ${formatWeight(kernel[r][k])}</span>`;
      });
    });
    const node = document.createElement("div");
    node.className = "explain-channel";
    const line = document.createElement("p");
    line.className = "explain-line";
    line.textContent = writeOut ? `${terms.join(" + ")} = ${fmt(sum)}` : `sum = ${fmt(sum)}`;
    node.append(table, line);
    return { node, sum };
  }
}

function fmt(v) {
  return String(Number(v.toFixed(3)));
}
