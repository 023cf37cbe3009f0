// Every lab's state ⇄ the URL hash, driven by one declarative PROPS table per lab (as TF Playground's
// state.ts), so a copied link reproduces the same experiment. Hash names are the wire's snake_case
// names. This is the only module that reads or writes location.hash.
import { $, ControlHider, copyLink, errors, isForControl, showPresentation } from "./page.js";

/** How a prop's value is written in the hash and checked when read. */
export const Type = Object.freeze({
  ENUM: "enum",         // one of `options`
  STRING: "string",     // any text
  NUMBER: "number",     // a finite number, clamped to `range` if it has one
  INT: "int",           // an integer clamped to `range` if it has one, or one of `options` (speed=epoch)
  BOOLEAN: "boolean",   // "1" / "0"; "true" / "false" are read too (older links)
  LIST: "list",         // comma-separated, no repeats, each one of `options`; `length` [min, max] items
  NUMBERS: "numbers",   // comma-separated numbers, `length` [min, max] items; `integer`: each an INT
});

/**
 * Props every lab has, written only when set: presentation mode for a projector, the theme, and the
 * controls hidden for a lesson (`hide=noise,batch_size`: the names of the page's control groups,
 * lab/page.js's `controlGroups`, known once the page is there).
 */
const commonProps = (groups) => [
  { name: "present", type: Type.BOOLEAN, default: false, omitDefault: true },
  { name: "theme", type: Type.ENUM, options: ["light", "dark"], default: "light", omitDefault: true },
  { name: "hide", type: Type.LIST, options: groups, length: [0, groups.length], default: [], omitDefault: true },
];
/** Keys that switch a common prop: P presentation mode, D the dark theme. */
const KEYS = {
  p: (c) => ({ present: !c.present }),
  d: (c) => ({ theme: c.theme === "dark" ? "light" : "dark" }),
};
/** The URL is rewritten this long after the last change (browsers throttle history updates). */
const HASH_DELAY_MS = 250;

const clamp = (v, range) => (range ? Math.min(range[1], Math.max(range[0], v)) : v);
const isInt = (s) => /^-?\d+$/.test(s);
const isNumber = (s) => s !== "" && Number.isFinite(Number(s));

/** The prop's value read from its hash text, or undefined when the text is not valid. */
function parseValue(prop, text) {
  if (text === undefined) return undefined;
  switch (prop.type) {
    case Type.ENUM:
      return prop.options.includes(text) ? text : undefined;
    case Type.STRING:
      return text;
    case Type.NUMBER:
      return isNumber(text) ? clamp(Number(text), prop.range) : undefined;
    case Type.INT:
      if (prop.options?.includes(text)) return text;
      return isInt(text) ? clamp(Number(text), prop.range) : undefined;
    case Type.BOOLEAN:
      return { 1: true, true: true, 0: false, false: false }[text];
    case Type.LIST: {
      const items = text === "" ? [] : text.split(",");
      const ok = items.every((s) => prop.options.includes(s)) && new Set(items).size === items.length;
      return ok && fits(items, prop.length ?? [1, prop.options.length]) ? items : undefined;
    }
    case Type.NUMBERS: {
      const items = text === "" ? [] : text.split(",");
      if (!fits(items, prop.length ?? [1, Infinity])) return undefined;
      if (!items.every(prop.integer ? isInt : isNumber)) return undefined;
      return items.map((s) => clamp(Number(s), prop.range));
    }
    default:
      throw Error(`unknown prop type ${prop.type}`);
  }
}

const fits = (items, [min, max]) => items.length >= min && items.length <= max;

/** A value as the hash writes it: lists comma-separated, booleans 1/0, text URL-encoded. */
function formatValue(v, digits) {
  if (Array.isArray(v)) return v.map((x) => formatValue(x, digits)).join(",");
  if (typeof v === "boolean") return v ? "1" : "0";
  if (typeof v === "number") return String(digits ? +v.toPrecision(digits) : v);
  // , ; : @ stay readable: they separate the parts of a value (kernels=sobel_x;c:1,0,-1…).
  return encodeURIComponent(v).replace(/%(2C|3B|3A|40)/g, (code) => decodeURIComponent(code));
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
export function defaultState(props) {
  return Object.fromEntries(props.map((p) => [p.name, structuredClone(p.default)]));
}

/**
 * Reads a state from a URL hash ("#dataset=circle&hidden=3,2&…"); missing props keep their default.
 * @returns {{state: object, rejected: string[]}} `rejected` lists the "name=value" parts ignored.
 */
export function parseHash(props, hash) {
  const state = defaultState(props);
  const rejected = [];
  const byName = new Map(props.map((p) => [p.name, p]));
  for (const part of hash.replace(/^#/, "").split("&").filter(Boolean)) {
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const text = eq < 0 ? "" : safeDecode(part.slice(eq + 1));
    const value = byName.has(name) ? parseValue(byName.get(name), text) : undefined;
    if (value === undefined) rejected.push(part);
    else state[name] = value;
  }
  return { state, rejected };
}

const sameValue = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** The hash (without "#") that parseHash reads back into `state`; a null value is left out. */
export function serializeHash(props, state) {
  const unset = (p) => state[p.name] === null || state[p.name] === undefined ||
    (p.omitDefault && sameValue(state[p.name], p.default));
  return props.filter((p) => !unset(p))
    .map((p) => `${p.name}=${formatValue(state[p.name], p.digits)}`).join("&");
}

/** The hash (without "#") of plain values, for a link to another lab: hashOf({dataset: "xor"}). */
export function hashOf(values) {
  return Object.entries(values).map(([name, v]) => `${name}=${formatValue(v)}`).join("&");
}

/**
 * The props of a live lab's config fields: each one's default and range come from its protocol
 * mirror (CONFIG_DEFAULTS, LIMITS), so they are written once, on the server.
 */
export function configProps({ CONFIG_DEFAULTS, LIMITS }, props) {
  return props.map((p) => ({ default: CONFIG_DEFAULTS[p.name], range: LIMITS[p.name], ...p }));
}

/**
 * A lab's state in the page's URL: read at load and when the user edits the URL, written as it
 * changes. It also keeps the props every lab shares (presentation mode, theme, hidden controls),
 * switched by their keys and the Customise button, and copies the link.
 */
export class LinkState {
  /** @param {object[]} props The lab's PROPS table; the props every lab shares are added. */
  constructor(props) {
    this.hider = new ControlHider($("lab"), (hide) => this.setCommon({ hide }));
    this.commonProps = commonProps(this.hider.names);
    this.props = [...props, ...this.commonProps];
    this.common = defaultState(this.commonProps);
    this.current = {};
    this.timer = null;
    $("copy-link").addEventListener("click", () => copyLink(() => this.write(this.current)));
    document.addEventListener("keydown", (e) => {
      const toggle = KEYS[e.key.toLowerCase()];
      if (!toggle || isForControl(e)) return;
      this.setCommon(toggle(this.common));
    });
  }

  /** @returns {{state: object, rejected: string[]}} the state in the URL and the parts ignored. */
  read() {
    const read = parseHash(this.props, location.hash);
    this.current = read.state;
    this.setCommon(Object.fromEntries(this.commonProps.map((p) => [p.name, read.state[p.name]])), false);
    return read;
  }

  /** Writes `state` (and the shared props) into the URL now. */
  write(state) {
    clearTimeout(this.timer);
    this.current = state;
    history.replaceState(null, "", `#${serializeHash(this.props, { ...state, ...this.common })}`);
  }

  /** Writes `state` into the URL once changes pause (a dragged slider writes once). */
  writeSoon(state) {
    clearTimeout(this.timer);
    this.current = state;
    this.timer = setTimeout(() => this.write(state), HASH_DELAY_MS);
  }

  /** Calls `onEdit({state, rejected})` when the user edits the URL's hash by hand. */
  listen(onEdit) {
    window.addEventListener("hashchange", () => onEdit(this.read()));
  }

  /**
   * Reads the URL into `state` now and whenever the user edits it, saying in the error banner
   * what it ignored; then calls `onRead(edited)` (`edited`: false for the first read).
   */
  follow(state, onRead) {
    const read = (edited) => {
      const { state: values, rejected } = this.read();
      Object.assign(state, values);
      if (rejected.length) errors.show(`Ignored in the link: ${rejected.join(", ")}`, "link");
      onRead(edited);
    };
    read(false);
    this.listen(() => read(true));
  }

  setCommon(changes, write = true) {
    Object.assign(this.common, changes);
    showPresentation(this.common);
    this.hider.show(this.common.hide);
    if (write) this.write(this.current);
  }
}
