// The inputs of one step's parameters, built from the catalog's description of them and bound by
// the shared views/controls.js: a slider for a number with a short range, a number field for a size
// or an unbounded value, a <select> for a choice, a checkbox for a flag. Each is named by its keyword
// in the TensorFlow call, so what is moved is what the call shows.
import { Controls } from "../../views/controls.js";
import { htmlElement } from "../../views/svg.js";

/** A number whose range is at most this wide gets a slider; wider ones a number field. */
const SLIDER_SPAN = { int: 100, float: 10 };
/** A slider has about this many notches. */
const NOTCHES = 100;

/** The step of a slider over `span`: 1, 2 or 5 times a power of ten, about span / NOTCHES. */
function niceStep(span) {
  const raw = span / NOTCHES;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw * 0.99);
}

/**
 * The labels of enum values, read from the <select>s the template renders from the lab's choices
 * (`<template id="choice-labels">`): name → value → label.
 * @param {HTMLTemplateElement} template
 * @returns {Map<string, Map<string, string>>}
 */
export function choiceLabels(template) {
  const labels = new Map();
  for (const select of template.content.querySelectorAll("select[data-prop]")) {
    labels.set(select.dataset.prop, new Map([...select.options].map((o) => [o.value, o.text])));
  }
  return labels;
}

export class ParamControls {
  /**
   * @param {HTMLElement} element Where the inputs go.
   * @param {{name: string, type: string, default: *, min: ?number, max: ?number, choices: ?Array,
   *   doc: string}[]} params From the catalog.
   * @param {{id: string, labels: Map, onChange: (name: string, value: *, final: boolean) => void}}
   *   options id: prefix of the inputs' ids; labels: choiceLabels(); onChange: as Controls calls it.
   */
  constructor(element, params, { id, labels, onChange }) {
    this.element = element;
    element.classList.add("params");
    element.replaceChildren(...params.map((p) => this.control(p, `${id}-${p.name}`, labels)));
    this.values = {};
    this.controls = new Controls(element, (name, value, final) => {
      const input = element.querySelector(`[data-prop="${name}"]`);
      // A half-typed number the field does not allow is not sent until it is final: then the
      // server's message says what is wrong.
      if (!final && input.type === "number" && !input.checkValidity()) return;
      this.values = { ...this.values, [name]: value };
      // The value beside a slider follows it (a typed field is left as it is being typed).
      if (input.type === "range") this.controls.update(this.values);
      onChange(name, value, final);
    });
  }

  update(values) {
    this.values = values;
    this.controls.update(values);
  }

  control(param, id, labels) {
    const label = htmlElement("label", "param");
    label.htmlFor = id;
    label.title = param.doc ?? "";
    const name = htmlElement("span", "param-name", param.name);
    let input;
    if (param.choices) {
      input = htmlElement("select");
      const known = labels.get(param.name) ?? new Map();
      for (const c of param.choices) input.add(new Option(known.get(String(c)) ?? String(c), String(c)));
      label.append(name, input);
    } else if (param.type === "bool") {
      input = htmlElement("input");
      input.type = "checkbox";
      label.classList.add("param-check");
      label.append(input, name);
    } else {
      const span = param.max - param.min;
      const slider = span <= SLIDER_SPAN[param.type];
      input = htmlElement("input");
      Object.assign(input, {
        type: slider ? "range" : "number", min: param.min, max: param.max,
        step: param.type === "int" ? 1 : slider ? niceStep(span) : "any",
      });
      label.append(name);
      if (slider) {
        const out = htmlElement("output", "value");
        out.dataset.for = param.name;
        label.append(" ", out);
        label.classList.add("param-slider");
      }
      label.append(input);
    }
    input.id = id;
    input.dataset.prop = param.name;
    return label;
  }
}
