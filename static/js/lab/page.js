// The parts of templates/base.html every lab shares: its error banner, its status line, the copy-link
// button, presentation mode (large type and a projector or dark theme, for a class) and the controls
// an instructor hides for a lesson (the Customise button).

export const $ = (id) => document.getElementById(id);

/**
 * The page's one error banner. Each source (a request kind, the link, the server) keeps its latest
 * message until it succeeds again (`clear`) or the user dismisses the banner.
 */
class ErrorBanner {
  constructor() {
    this.messages = new Map();
    $("error-close").addEventListener("click", () => {
      this.messages.clear();
      this.render();
    });
  }

  show(message, source = "page") {
    if (message) this.messages.set(source, message);
    else this.messages.delete(source);
    this.render();
  }

  clear(source) {
    this.show("", source);
  }

  render() {
    const text = [...new Set(this.messages.values())].join(" ");
    $("error-text").textContent = text;
    $("error-banner").hidden = !text;
  }
}

export const errors = new ErrorBanner();

/** The status line: a live lab's connection ("connecting" | "connected" | "disconnected"). */
export function showStatus(status, text) {
  const line = $("connection");
  line.hidden = false;
  line.textContent = text;
  line.dataset.status = status;
}

/** The values a <select> offers: the page renders them from the lab's choices (the API's enums). */
export function choicesOf(select) {
  return [...select.options].map((option) => option.value);
}

const COPIED_MS = 1500;

/** Copies the page's URL (after `flush` wrote the newest state into it). */
export async function copyLink(flush) {
  flush();
  try {
    await navigator.clipboard.writeText(location.href);
    $("copy-link").textContent = "✓ Copied";
    setTimeout(() => { $("copy-link").textContent = "Copy link"; }, COPIED_MS);
  } catch {
    // No clipboard (plain http on a LAN, or denied): let the user copy the selected text.
    const field = $("link-text");
    Object.assign(field, { hidden: false, value: location.href });
    field.select();
  }
}

/**
 * Presentation mode and theme, as the link asks: `present` enlarges type, lines and the drawings and
 * hides the navigation and secondary controls; `theme` "dark" is the dark one.
 */
export function showPresentation({ present, theme }) {
  const root = document.documentElement;
  const was = root.classList.contains("present");
  root.classList.toggle("present", present);
  root.dataset.theme = theme;
  // The drawings size and colour themselves from CSS variables: tell them the page changed.
  const newTheme = root.dataset.shownTheme !== theme;
  if (was !== present || newTheme) window.dispatchEvent(new Event("resize"));
  if (newTheme) window.dispatchEvent(new Event(THEME_CHANGE));
  root.dataset.shownTheme = theme;
}

/** The event on `window` after the theme changed (views whose colours come from CSS redraw). */
export const THEME_CHANGE = "themechange";

/** The theme's colours, from the page's CSS variables (light values where one is unset). */
export function themeColors() {
  const css = getComputedStyle(document.documentElement);
  const read = (name, light) => css.getPropertyValue(name).trim() || light;
  return { bg: read("--bg", "#fff"), ink: read("--ink", "#1b1f24"), muted: read("--muted", "#57606a"),
    grid: read("--grid", "#eee") };
}

/** A Plotly layout's background and text in the theme, `font` given in its own size and family. */
export function plotlyTheme(font) {
  const { bg, ink } = themeColors();
  return { font: { ...font, color: ink }, paper_bgcolor: bg, plot_bgcolor: bg };
}

/** Elements that cannot hold a hide/show button: it goes right after them. */
const LEAF = new Set(["INPUT", "SELECT", "TEXTAREA", "BUTTON"]);

/**
 * The control groups a lesson can hide, by name, in document order: each `[data-control="name"]`
 * element, and each `[data-prop]` control outside those with what shows it — the <label> around
 * it or the one `for` it, or the button group (role="group") it belongs to.
 * @param {HTMLElement} root
 * @returns {Map<string, HTMLElement[]>} each group's elements, in document order.
 */
export function controlGroups(root) {
  const groups = new Map();
  const add = (name, el) => {
    const list = groups.get(name) ?? [];
    if (!list.includes(el)) list.push(el);
    groups.set(name, list);
  };
  for (const el of root.querySelectorAll("[data-control], [data-prop]")) {
    if (el.dataset.control) add(el.dataset.control, el);
    else if (!el.closest("[data-control]")) {
      const box = el.closest("label, [role=group]");
      const label = el.id ? root.querySelector(`label[for="${CSS.escape(el.id)}"]`) : null;
      for (const part of box ? [box] : [label, el]) if (part) add(el.dataset.prop, part);
    }
  }
  return groups;
}

/**
 * Hides the control groups a lesson does without (TF Playground's "use it in classroom"). The
 * Customise button gives each group a Hide/Show button; `onChange(names)` reports the new hidden
 * set, which the link keeps (lab/state.js's `hide`); `show(names)` shows a hidden set.
 */
export class ControlHider {
  /**
   * @param {HTMLElement|null} root Where the controls are (a page without a lab has none).
   * @param {(hidden: string[]) => void} onChange
   */
  constructor(root, onChange) {
    this.groups = root ? controlGroups(root) : new Map();
    this.names = [...this.groups.keys()];
    this.hidden = [];
    this.onChange = onChange;
    this.toggles = [];
    this.button = $("customise");
    this.button?.addEventListener("click", () => this.customise(!this.toggles.length));
    if (this.button) this.button.disabled = !this.names.length; // off until the lab has started
  }

  show(hidden) {
    this.hidden = hidden;
    for (const [name, elements] of this.groups) {
      for (const el of elements) el.classList.toggle("control-hidden", hidden.includes(name));
    }
    for (const toggle of this.toggles) this.label(toggle);
  }

  /** Customise mode: hidden groups show faded, each group with its Hide/Show button. */
  customise(on) {
    document.documentElement.classList.toggle("customise", on);
    this.button.setAttribute("aria-pressed", String(on));
    this.button.textContent = on ? "✓ Done" : "Customise";
    for (const toggle of this.toggles) toggle.remove();
    this.toggles = on ? [...this.groups].map(([name, [first]]) => this.addToggle(name, first)) : [];
  }

  addToggle(name, host) {
    const toggle = document.createElement("button");
    Object.assign(toggle, { type: "button", className: "hide-toggle" });
    toggle.dataset.hide = name;
    toggle.addEventListener("click", (e) => {
      e.preventDefault(); // inside a <label>: not a click on its control
      const hide = !this.hidden.includes(name);
      this.onChange(this.names.filter((n) => (n === name ? hide : this.hidden.includes(n))));
    });
    if (LEAF.has(host.tagName)) {
      toggle.classList.add("beside");
      host.after(toggle);
    } else host.append(toggle);
    this.label(toggle);
    return toggle;
  }

  label(toggle) {
    const hidden = this.hidden.includes(toggle.dataset.hide);
    toggle.textContent = hidden ? "Show" : "Hide";
    toggle.classList.toggle("hidden-group", hidden);
    toggle.setAttribute("aria-label", `${toggle.textContent} ${toggle.dataset.hide.replaceAll("_", " ")}`);
  }
}

/** Whether a key press belongs to the control that has focus (typing, choosing) and not to the page. */
export function isForControl(event) {
  return Boolean(event.target.closest?.("input, select, textarea, [contenteditable]")) ||
    event.ctrlKey || event.metaKey || event.altKey;
}
