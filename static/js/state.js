// The lab's whole state ⇄ the URL hash, driven by one declarative PROPS table (as TF Playground's
// state.ts), so a copied link reproduces the same run. Hash names are the wire's snake_case names.
import {
  ACTIVATIONS, CONFIG_DEFAULTS, DATASETS, FEATURES, LIMITS, MAX_LAYERS, MAX_NEURONS,
  MAX_STEPS_PER_FRAME, REGULARIZATIONS, SPEEDS,
} from "./protocol.js";

/** How a prop's value is written in the hash and checked when read. */
export const Type = Object.freeze({
  ENUM: "enum",         // one of `options`
  NUMBER: "number",     // float clamped to `range`
  INT: "int",           // integer clamped to `range`
  BOOLEAN: "boolean",   // "true" / "false"
  LIST: "list",         // comma-separated, non-empty, no repeats, each one of `options`
  SIZES: "sizes",       // comma-separated layer sizes 1 … MAX_NEURONS, at most MAX_LAYERS ("" = none)
  SPEED: "speed",       // one of `options` or an integer steps per frame clamped to `range`
});

/**
 * Every setting of the page. `wire: false` props live only in the page (and the link); the others
 * are MlpConfig fields sent to the server, their defaults and ranges taken from protocol.js.
 */
export const PROPS = Object.freeze([
  { name: "dataset", type: Type.ENUM, options: DATASETS },
  { name: "noise", type: Type.NUMBER },
  { name: "train_ratio", type: Type.NUMBER },
  { name: "features", type: Type.LIST, options: FEATURES },
  { name: "hidden", type: Type.SIZES },
  { name: "activation", type: Type.ENUM, options: ACTIVATIONS },
  { name: "learning_rate", type: Type.NUMBER },
  { name: "batch_size", type: Type.INT },
  { name: "regularization", type: Type.ENUM, options: REGULARIZATIONS },
  { name: "regularization_rate", type: Type.NUMBER },
  { name: "seed", type: Type.INT },
  { name: "speed", type: Type.SPEED, options: SPEEDS, range: [1, MAX_STEPS_PER_FRAME] },
  { name: "show_test", type: Type.BOOLEAN, default: false, wire: false },
  { name: "lines", type: Type.BOOLEAN, default: true, wire: false },
].map((p) => Object.freeze({
  wire: true, default: CONFIG_DEFAULTS[p.name], range: LIMITS[p.name], ...p,
})));

const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
const isInt = (s) => /^-?\d+$/.test(s);

/** The prop's value read from its hash text, or undefined when the text is not valid. */
function parseValue(prop, text) {
  if (text === undefined) return undefined;
  switch (prop.type) {
    case Type.ENUM:
      return prop.options.includes(text) ? text : undefined;
    case Type.NUMBER: {
      const v = Number(text);
      return text !== "" && Number.isFinite(v) ? clamp(v, prop.range) : undefined;
    }
    case Type.INT:
      return isInt(text) ? clamp(Number(text), prop.range) : undefined;
    case Type.BOOLEAN:
      return text === "true" ? true : text === "false" ? false : undefined;
    case Type.LIST: {
      const items = text.split(",");
      const ok = items.every((s) => prop.options.includes(s)) && new Set(items).size === items.length;
      return ok ? items : undefined;
    }
    case Type.SIZES: {
      if (text === "") return [];
      const items = text.split(",");
      if (items.length > MAX_LAYERS || !items.every(isInt)) return undefined;
      return items.map((s) => clamp(Number(s), [1, MAX_NEURONS]));
    }
    case Type.SPEED:
      if (prop.options.includes(text)) return text;
      return isInt(text) ? clamp(Number(text), prop.range) : undefined;
    default:
      throw Error(`unknown prop type ${prop.type}`);
  }
}

/** decodeURIComponent, with undefined (a rejected value) instead of a throw on bad "%" escapes. */
function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** A copy of every prop's default value. */
export function defaultState() {
  return Object.fromEntries(PROPS.map((p) => [p.name, structuredClone(p.default)]));
}

/**
 * Reads a state from a URL hash ("#dataset=circle&hidden=3,2&…"); missing props keep their default.
 * @returns {{state: object, rejected: string[]}} `rejected` lists the "name=value" parts ignored.
 */
export function parseHash(hash) {
  const state = defaultState();
  const rejected = [];
  const props = new Map(PROPS.map((p) => [p.name, p]));
  for (const part of hash.replace(/^#/, "").split("&").filter(Boolean)) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const text = eq < 0 ? "" : safeDecode(part.slice(eq + 1));
    const value = props.has(name) ? parseValue(props.get(name), text) : undefined;
    if (value === undefined) rejected.push(part);
    else state[name] = value;
  }
  return { state, rejected };
}

/** The hash (without "#") that parseHash reads back into `state`; every prop is written. */
export function serializeHash(state) {
  return PROPS.map((p) => {
    const v = state[p.name];
    return `${p.name}=${Array.isArray(v) ? v.join(",") : String(v)}`;
  }).join("&");
}

/** The wire config fields of `state` (all of them, or only `names`), ready for a `config` message. */
export function wireConfig(state, names = PROPS.filter((p) => p.wire).map((p) => p.name)) {
  return Object.fromEntries(names.map((n) => [n, structuredClone(state[n])]));
}

/** Whether a prop is sent to the server. */
export function isWire(name) {
  return PROPS.some((p) => p.name === name && p.wire);
}
