// The confusion matrix as a table of buttons: rows the true class, columns the model's answer; a
// cell's shade is its share of the row. Choosing a cell calls onSelect(true index, predicted index).

export class ConfusionMatrix {
  /** @param {HTMLTableElement} table @param {(i: number, j: number) => void} onSelect */
  constructor(table, onSelect) {
    this.table = table;
    this.onSelect = onSelect;
  }

  /** @param {{classes: string[], confusion: number[][]}} evaluation */
  update({ classes, confusion }) {
    const head = document.createElement("tr");
    head.append(cell("th", "true ↓ · answer →"), ...classes.map((c) => cell("th", c, "col")));
    const rows = confusion.map((row, i) => {
      const tr = document.createElement("tr");
      const total = row.reduce((a, b) => a + b, 0) || 1;
      tr.append(cell("th", classes[i], "row"));
      row.forEach((count, j) => {
        const td = document.createElement("td");
        const button = document.createElement("button");
        Object.assign(button, { type: "button", textContent: String(count) });
        button.dataset.cell = `${i},${j}`;
        button.className = i === j ? "right" : count ? "wrong" : "";
        button.style.setProperty("--share", String(count / total));
        button.setAttribute("aria-label", `${count} ${classes[i]} photos answered ${classes[j]}`);
        button.addEventListener("click", () => {
          this.table.querySelectorAll("button[aria-pressed]").forEach((b) => b.removeAttribute("aria-pressed"));
          button.setAttribute("aria-pressed", "true");
          this.onSelect(i, j);
        });
        td.append(button);
        tr.append(td);
      });
      return tr;
    });
    this.table.replaceChildren(head, ...rows);
  }
}

function cell(tag, text, scope) {
  const el = document.createElement(tag);
  el.textContent = text;
  if (scope) el.scope = scope;
  return el;
}
