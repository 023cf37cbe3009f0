// Small pictures sent as data URLs (the first conv layer's filters, feature maps, photos as fed):
// a grid of <img>s kept and refilled, so a new set every second does not rebuild the page.

export class PictureGrid {
  /** @param {HTMLElement} element @param {string} className each picture's class */
  constructor(element, className) {
    this.element = element;
    this.className = className;
  }

  /** @param {{src: string, title?: string, caption?: string}[]} pictures */
  update(pictures) {
    const figures = [...this.element.children];
    while (figures.length > pictures.length) figures.pop().remove();
    pictures.forEach((p, i) => {
      let figure = figures[i];
      if (!figure) {
        figure = document.createElement("figure");
        figure.className = this.className;
        figure.append(Object.assign(document.createElement("img"), { alt: "" }));
        this.element.append(figure);
      }
      const img = figure.firstChild;
      if (img.src !== p.src) img.src = p.src;
      img.title = p.title ?? "";
      img.alt = p.title ?? "";
      let caption = figure.querySelector("figcaption");
      if (p.caption && !caption) caption = figure.appendChild(document.createElement("figcaption"));
      if (caption) caption.textContent = p.caption ?? "";
    });
  }
}
