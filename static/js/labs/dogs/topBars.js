// The most probable classes of a photo as labelled bars: name, a bar as long as the probability,
// the percentage. The same list in the gallery and beside a wrong preprocessing's result.

/** A probability as the page writes it: "83 %", "< 1 %". */
export const percent = (p) => (p >= 0.995 ? "100 %" : p >= 0.01 ? `${Math.round(p * 100)} %` : "< 1 %");

export class TopBars {
  /** @param {HTMLElement} element An <ol> (or <ul>); the view fills it. */
  constructor(element) {
    this.element = element;
    element.classList.add("top-bars");
  }

  /**
   * @param {{name: string, probability: number}[]} entries Most probable first.
   * @param {Set<string>} [marked] Names to mark (e.g. those a correct preprocessing also ranks).
   */
  update(entries, marked = null) {
    this.element.replaceChildren(...entries.map(({ name, probability }) => {
      const item = document.createElement("li");
      if (marked && !marked.has(name)) item.classList.add("changed");
      const label = document.createElement("span");
      label.className = "bar-name";
      label.textContent = name;
      const track = document.createElement("span");
      track.className = "bar-track";
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.max(0.5, probability * 100)}%`;
      track.append(bar);
      const value = document.createElement("span");
      value.className = "bar-value";
      value.textContent = percent(probability);
      item.append(label, track, value);
      item.setAttribute("aria-label", `${name}: ${percent(probability)}`);
      return item;
    }));
  }

  reset() {
    this.element.replaceChildren();
  }
}
