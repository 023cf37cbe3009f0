// Steps — a pipeline's, or an augmentation batch's — as a link writes them, and as a request sends
// them. In a link: "resize@height:32,width:32;cast;normalize@mode:symmetric;batch", each step its
// op and then only the parameters that differ from their defaults. The catalog (GET
// /api/image-lab/catalog) says which ops and parameters exist, their types and ranges, so a
// hand-edited link is checked here and what is wrong in it is named.

/** Significant digits a number keeps in a link (a slider has fewer). */
const DIGITS = 6;

/** A step of `spec` ({op, params: [{name, default, …}]}) with every parameter at its default. */
export function newStep(spec) {
  return { op: spec.op, params: Object.fromEntries(spec.params.map((p) => [p.name, p.default])) };
}

/** The request's form of steps: `{op, ...params}`. */
export const stepBodies = (steps) => steps.map(({ op, params }) => ({ op, ...params }));

/**
 * A parameter's value from its text in a link, or undefined if the parameter does not allow it.
 * @param {{type: string, min: ?number, max: ?number, choices: ?Array}} param From the catalog.
 */
export function parseParam(param, text) {
  if (param.choices) return param.choices.find((c) => String(c) === text);
  if (param.type === "bool") return { 1: true, true: true, 0: false, false: false }[text];
  const v = Number(text);
  const whole = param.type !== "int" || Number.isInteger(v);
  const inRange = param.min === null || (v >= param.min && v <= param.max);
  return text !== "" && Number.isFinite(v) && whole && inRange ? v : undefined;
}

function formatParam(v) {
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") return String(+v.toPrecision(DIGITS));
  return String(v);
}

/**
 * Steps as a link's text.
 * @param {{op: string, params: object}[]} steps
 * @param {Map<string, object>} specs The catalog's ops (or augmentations), by op.
 */
export function encodeSteps(steps, specs) {
  return steps.map(({ op, params }) => {
    const changed = specs.get(op).params.filter((p) => params[p.name] !== p.default)
      .map((p) => `${p.name}:${formatParam(params[p.name])}`);
    return changed.length ? `${op}@${changed.join(",")}` : op;
  }).join(";");
}

/**
 * Steps from a link's text. A step whose op is unknown is left out, a parameter that is unknown or
 * out of its range keeps its default; each is named in `rejected`.
 * @returns {{steps: {op: string, params: object}[], rejected: string[]}}
 */
export function decodeSteps(text, specs) {
  const steps = [];
  const rejected = [];
  for (const item of text.split(";").filter(Boolean)) {
    const at = item.indexOf("@");
    const op = at < 0 ? item : item.slice(0, at);
    const spec = specs.get(op);
    if (!spec) {
      rejected.push(item);
      continue;
    }
    const step = newStep(spec);
    for (const pair of at < 0 ? [] : item.slice(at + 1).split(",").filter(Boolean)) {
      const [name, value = ""] = pair.split(":");
      const param = spec.params.find((p) => p.name === name);
      const v = param ? parseParam(param, value) : undefined;
      if (v === undefined) rejected.push(`${op}@${pair}`);
      else step.params[name] = v;
    }
    steps.push(step);
  }
  return { steps, rejected };
}
