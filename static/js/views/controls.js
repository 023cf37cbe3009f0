// The page's form controls, bound to state props by data attributes in the template, so the glue
// needs no handler per control:
//   <input type="range" data-prop="noise">            a number (min/max/step from the element);
//   <input type="number" data-prop="x">               both report while dragged or typed, not final
//   <input type="range" data-prop="…" data-ladder="0.001,0.003,…">  one notch per ladder value
//   <input type="range" data-prop="…" data-scale="log">  the slider moves log10 of the value
//   <select data-prop="activation">                   option values; numeric values are numbers
//   <select data-prop="pair" data-index="1">          item 1 of a list prop
//   <input type="checkbox" data-prop="show_test">     a boolean
//   <button data-prop="dataset" data-value="xor">     a choice among buttons (aria-pressed)
//   <output data-for="noise" data-format="percent">   shows the prop's value

/** Formats for <output data-format>; the default shows the number as it is. */
const FORMATS = {
  percent: (v) => `${Math.round(v * 100)} %`,
  fixed2: (v) => v.toFixed(2),
  precision3: (v) => String(+v.toPrecision(3)),
  degrees: (v) => `${v}°`,
  number: (v) => String(v),
};
/** Significant digits a log-scale slider's value keeps (a slider has no more). */
const LOG_DIGITS = 3;

const isNumeric = (text) => text !== "" && Number.isFinite(Number(text));

/** The ladder index whose value is nearest to v (on a log scale where it can be). */
function nearestNotch(ladder, v) {
  const distance = (a) => (a > 0 && v > 0 ? Math.abs(Math.log(a / v)) : Math.abs(a - v));
  return ladder.reduce((best, a, i) => (distance(a) < distance(ladder[best]) ? i : best), 0);
}

/**
 * Two-way binding of every `[data-prop]` control under a root element.
 *
 * `update(state)` shows `state` in the controls; user input calls
 * `onChange(name, value, final)`, `final` false while a slider is still being dragged.
 */
export class Controls {
  /**
   * @param {HTMLElement} root Element holding the controls.
   * @param {(name: string, value: *, final: boolean) => void} onChange
   */
  constructor(root, onChange) {
    this.root = root;
    this.elements = [...root.querySelectorAll("[data-prop]")];
    for (const el of this.elements) {
      const emit = (final) => onChange(el.dataset.prop, this.readProp(el), final);
      if (el.tagName === "BUTTON") el.addEventListener("click", () => emit(true));
      else if (el.type === "range" || el.type === "number") {
        el.addEventListener("input", () => emit(false));
        el.addEventListener("change", () => emit(true));
      } else el.addEventListener("change", () => emit(true));
    }
  }

  /** The prop's new value: the element's, or for an item of a list the list with it replaced. */
  readProp(el) {
    const value = this.read(el);
    if (el.dataset.index === undefined) return value;
    const list = [...this.state[el.dataset.prop]];
    list[Number(el.dataset.index)] = value;
    return list;
  }

  read(el) {
    if (el.tagName === "BUTTON") return el.dataset.value;
    if (el.type === "checkbox") return el.checked;
    if (el.dataset.ladder) return this.ladder(el)[Number(el.value)];
    if (el.dataset.scale === "log") return +(10 ** Number(el.value)).toPrecision(LOG_DIGITS);
    if (el.type === "range" || el.type === "number" || isNumeric(el.value)) return Number(el.value);
    return el.value;
  }

  ladder(el) {
    return el.dataset.ladder.split(",").map(Number);
  }

  update(state) {
    this.state = state;
    for (const el of this.elements) {
      const { prop, index } = el.dataset;
      const v = index === undefined ? state[prop] : state[prop][Number(index)];
      if (el.tagName === "BUTTON") el.setAttribute("aria-pressed", String(el.dataset.value === v));
      else if (el.type === "checkbox") el.checked = v;
      else if (el.dataset.ladder) el.value = nearestNotch(this.ladder(el), v);
      else if (el.dataset.scale === "log") el.value = Math.log10(v);
      else if (el.tagName === "SELECT" && ![...el.options].some((o) => o.value === String(v))) {
        // A value only a hand-written link can hold (e.g. speed=37): offer it, labelled plainly.
        el.add(new Option(String(v), String(v)));
        el.value = String(v);
      } else el.value = String(v);
    }
    for (const out of this.root.querySelectorAll("output[data-for]")) {
      out.value = (FORMATS[out.dataset.format] ?? FORMATS.number)(state[out.dataset.for]);
    }
  }
}
