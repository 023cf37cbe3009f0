// The uploaded photos as cards: the photo, its state (uploading, classifying, an error), and once
// classified the top-5 breeds or "this does not look like a dog" with what it looks like instead.
// Choosing a card shows that photo in the panels below.

import { percent, TopBars } from "./topBars.js";

/** One photo of the gallery. */
class Card {
  constructor(file, onSelect) {
    this.file = file;
    this.url = URL.createObjectURL(file);
    this.result = null;
    this.element = document.createElement("li");
    this.element.className = "photo-card";
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "photo-select";
    this.button.setAttribute("aria-pressed", "false");
    this.image = document.createElement("img");
    this.image.alt = file.name || "photo";
    this.image.src = this.url;
    this.button.append(this.image);
    this.button.addEventListener("click", () => onSelect(this));
    this.verdict = document.createElement("p");
    this.verdict.className = "verdict";
    this.status = document.createElement("p");
    this.status.className = "photo-status";
    this.status.setAttribute("aria-live", "polite");
    this.bars = new TopBars(document.createElement("ol"));
    const text = document.createElement("div");
    text.className = "photo-text";
    const name = document.createElement("p");
    name.className = "photo-name";
    name.textContent = file.name || "photo";
    text.append(name, this.status, this.verdict);
    this.element.append(this.button, text, this.bars.element);
  }

  working(text) {
    this.element.dataset.state = "working";
    this.status.textContent = text;
  }

  failed(message) {
    this.element.dataset.state = "error";
    this.status.textContent = message;
  }

  show(result) {
    this.result = result;
    this.element.dataset.state = "done";
    this.element.dataset.dog = String(result.looks_like_dog);
    this.status.textContent = "";
    const dog = percent(result.dog_probability);
    if (result.looks_like_dog) {
      this.verdict.textContent = `A dog (${dog} on dog breeds)`;
      this.bars.update(result.top.map((t) => ({ name: t.breed, probability: t.probability })));
    } else {
      this.verdict.textContent = `This does not look like a dog (${dog} on dog breeds). It looks like:`;
      this.bars.update(result.top_classes);
    }
  }
}

export class Gallery {
  /**
   * @param {HTMLElement} element An <ol> for the cards.
   * @param {{onSelect: function(Card)}} options Called when the user chooses a classified photo.
   */
  constructor(element, { onSelect }) {
    this.element = element;
    this.onSelect = onSelect;
    this.selected = null;
  }

  /** A new card for `file`, first in the gallery. */
  add(file) {
    const card = new Card(file, (c) => c.result && this.onSelect(c));
    this.element.prepend(card.element);
    return card;
  }

  select(card) {
    this.selected?.button.setAttribute("aria-pressed", "false");
    this.selected?.element.classList.remove("selected");
    this.selected = card;
    card.button.setAttribute("aria-pressed", "true");
    card.element.classList.add("selected");
  }
}
