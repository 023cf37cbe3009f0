// The parts of templates/base.html every lab shares: its error banner, its status line, the copy-link
// button and presentation mode (large type and a projector or dark theme, for a class).

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
  // The drawings size themselves from CSS variables: tell them the page changed.
  if (was !== present || root.dataset.shownTheme !== theme) window.dispatchEvent(new Event("resize"));
  root.dataset.shownTheme = theme;
}

/** Whether a key press belongs to the control that has focus (typing, choosing) and not to the page. */
export function isForControl(event) {
  return Boolean(event.target.closest?.("input, select, textarea, [contenteditable]")) ||
    event.ctrlKey || event.metaKey || event.altKey;
}
