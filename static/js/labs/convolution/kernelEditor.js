// One kernel of the filter bank: a grid of number inputs, a preset menu, Random and Remove.
// It reports edits through callbacks and never talks to the server.

/** Random weights are drawn from [-RANDOM_RANGE, RANDOM_RANGE], rounded to one decimal. */
const RANDOM_RANGE = 1;
const CUSTOM = "custom";

/** Shortest readable form of a weight: 0.1111111 -> "0.111", 2 -> "2". */
export function formatWeight(w) {
  return String(Number(w.toFixed(3)));
}

export class KernelEditor {
  /**
   * @param {HTMLElement} element container; the editor appends its own fieldset.
   * @param {{presets: {name: string, title: string, weights: Object<string, number[][]>}[],
   *          onChange: function(): void, onRemove: function(): void}} options
   *   onChange runs after every edit; weights() is null while a cell is not a number.
   */
  constructor(element, { presets, onChange, onRemove }) {
    this.presets = presets;
    this.onChange = onChange;
    this.size = 3;
    this.root = document.createElement("fieldset");
    this.root.className = "kernel";
    this.legend = document.createElement("legend");
    const bar = document.createElement("div");
    bar.className = "kernel-bar";
    this.select = document.createElement("select");
    this.select.append(new Option("Custom", CUSTOM));
    for (const p of presets) this.select.append(new Option(p.title, p.name));
    this.select.addEventListener("change", () => {
      if (this.select.value !== CUSTOM) this.setWeights(this.preset(this.select.value));
      this.onChange();
    });
    const random = button("Random", () => {
      const n = this.size;
      const r = () => Math.round((Math.random() * 2 - 1) * RANDOM_RANGE * 10) / 10;
      this.setWeights(Array.from({ length: n }, () => Array.from({ length: n }, r)));
      this.onChange();
    });
    this.remove = button("✕", onRemove);
    this.remove.className = "remove";
    bar.append(this.select, random, this.remove);
    this.grid = document.createElement("div");
    this.grid.className = "kernel-grid";
    this.root.append(this.legend, bar, this.grid);
    element.append(this.root);
  }

  /**
   * @param {{index: number, weights: number[][], removable: boolean}} data
   *   index: 0-based position in the bank, used in labels.
   */
  update({ index, weights, removable }) {
    this.index = index;
    this.legend.textContent = `Kernel ${index + 1}`;
    this.select.setAttribute("aria-label", `Kernel ${index + 1} preset`);
    this.remove.disabled = !removable;
    this.remove.setAttribute("aria-label", `Remove kernel ${index + 1}`);
    this.remove.title = `Remove kernel ${index + 1}`;
    this.setWeights(weights);
  }

  /** The weights as numbers, or null while a cell does not hold a finite number. */
  weights() {
    const cells = [...this.grid.querySelectorAll("input")];
    const number = (c) => (c.value.trim() === "" ? NaN : Number(c.value));
    // A cell shows 3 decimals but keeps its exact weight (1/9, 1/256) until it is edited.
    const values = cells.map((c) => (c.dataset.exact === undefined ? number(c) : Number(c.dataset.exact)));
    cells.forEach((c, i) => c.classList.toggle("invalid", !Number.isFinite(values[i])));
    if (!values.every(Number.isFinite)) return null;
    return Array.from({ length: this.size }, (_, r) => values.slice(r * this.size, (r + 1) * this.size));
  }

  /** Name of the preset these weights equal, or "custom". */
  presetName() {
    const w = this.weights();
    const same = (p) => w && JSON.stringify(p.map((row) => row.map(formatWeight))) ===
      JSON.stringify(w.map((row) => row.map(formatWeight)));
    return this.presets.find((p) => same(p.weights[this.size]))?.name ?? CUSTOM;
  }

  /** Marks the editor as the kernel whose multiply-and-sum is being explained. */
  highlight(active) {
    this.root.classList.toggle("active", active);
  }

  reset() {
    this.grid.replaceChildren();
    this.highlight(false);
  }

  preset(name) {
    return this.presets.find((p) => p.name === name).weights[this.size];
  }

  /** Marks the cell at row r, column c as refused (until it is edited). */
  markInvalid(r, c) {
    this.grid.querySelectorAll("input")[r * this.size + c]?.classList.add("invalid");
  }

  setWeights(weights) {
    this.size = weights.length;
    this.grid.style.gridTemplateColumns = `repeat(${this.size}, auto)`;
    this.grid.classList.toggle("wide", this.size > 3);
    this.grid.replaceChildren(
      ...weights.flatMap((row, r) =>
        row.map((w, c) => {
          const cell = document.createElement("input");
          cell.type = "number";
          cell.step = "0.1";
          cell.value = formatWeight(w);
          cell.dataset.exact = String(w);
          cell.setAttribute("aria-label", `Kernel ${this.index + 1} row ${r + 1} column ${c + 1}`);
          cell.addEventListener("input", () => {
            delete cell.dataset.exact;
            this.select.value = this.presetName();
            this.onChange();
          });
          return cell;
        }),
      ),
    );
    this.select.value = this.presetName();
  }
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

/** Draws weights read-only as a small table, e.g. a kernel and its 180° flip side by side. */
export function renderKernelTable(element, weights) {
  const table = document.createElement("table");
  table.className = "kernel-table";
  for (const row of weights) {
    const tr = table.insertRow();
    for (const w of row) tr.insertCell().textContent = formatWeight(w);
  }
  element.replaceChildren(table);
}
