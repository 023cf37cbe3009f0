// Per parameter, the gradient three ways: the chain-rule product (once the student has derived it),
// tf.GradientTape and central finite differences, and whether they agree. Fed plain objects:
//   update({ rows: [{ param, chain, tape, finite_difference, agree, derived }], tolerance })

import { formatValue } from "./chainSteps.js";

const DIGITS = 10; // enough to see finite differences differ around the 1e-10 place

export class GradientTable {
  constructor(table) {
    if (!(table instanceof HTMLTableElement)) throw Error("GradientTable needs a <table> element");
    this.body = table.tBodies[0] ?? table.createTBody();
  }

  reset() {
    this.body.replaceChildren();
  }

  update({ rows, tolerance }) {
    this.reset();
    for (const row of rows) {
      const tr = document.createElement("tr");
      tr.dataset.param = row.param;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = `∂loss/∂${row.param}`;
      tr.append(name);
      tr.append(this.cell("chain", row.derived ? formatValue(row.chain, DIGITS) : "—"));
      tr.append(this.cell("tape", formatValue(row.tape, DIGITS)));
      tr.append(this.cell("finite_difference", formatValue(row.finite_difference, DIGITS)));
      const mark = !row.derived ? "" : row.agree ? "✓" : "✗";
      const verdict = this.cell("agree", mark);
      verdict.classList.add(row.agree ? "bp-ok" : "bp-bad");
      if (row.derived) {
        verdict.title = row.agree
          ? `all three agree to ${tolerance}`
          : `they differ by more than ${tolerance} (relative above 1)`;
      }
      tr.append(verdict);
      this.body.append(tr);
    }
  }

  cell(column, text) {
    const td = document.createElement("td");
    td.dataset.col = column;
    td.textContent = text;
    return td;
  }
}
