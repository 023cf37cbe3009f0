// Classes made of your photos: each class a name and its photos (picked, several at once, or dropped
// on the class). The data set is made on the server at the first photo; photos go one at a time to
// POST /api/cnn/datasets/{id}/images?label=NAME, whose answer (the set's classes and counts) is shown.
import { postFile, postJSON } from "../../lab/api.js";
import { errors } from "../../lab/page.js";
import { acceptFiles } from "../../views/dropZone.js";

export class UploadClasses {
  /**
   * @param {HTMLOListElement} list
   * @param {(dataset: object) => void} onChange the set's description after each photo
   */
  constructor(list, onChange) {
    this.list = list;
    this.onChange = onChange;
    this.id = null;
    this.count = 0;
    this.queue = Promise.resolve();
    this.add();
    this.add();
  }

  /** A new, empty class. */
  add() {
    this.count += 1;
    const li = document.createElement("li");
    li.className = "upload-class";
    li.innerHTML = `<input type="text" class="class-name" maxlength="40" aria-label="Class name">
      <label class="file-button">Add photos<input type="file" accept="image/*" multiple></label>
      <span class="class-count">0 photos · drop photos here</span><div class="class-samples"></div>`;
    const name = li.querySelector(".class-name");
    name.value = `class ${this.count}`;
    acceptFiles(li, [li.querySelector("input[type=file]")], (files) => this.upload(li, files));
    this.list.append(li);
    return li;
  }

  /** Sends the photos, one after another, to the class `li` names. */
  upload(li, files) {
    const photos = [...files].filter((f) => !f.type || f.type.startsWith("image/"));
    if (photos.length < files.length) errors.show("Only image files can be added.", "upload");
    const name = li.querySelector(".class-name");
    const label = name.value.trim();
    if (!label || !photos.length) return;
    name.readOnly = true; // the server knows the class by this name now
    const status = li.querySelector(".class-count");
    this.queue = this.queue.then(async () => {
      try {
        this.id ??= (await postJSON("/api/cnn/datasets", {})).id;
        for (const [n, file] of photos.entries()) {
          status.textContent = `uploading ${n + 1} of ${photos.length}…`;
          const url = `/api/cnn/datasets/${this.id}/images?label=${encodeURIComponent(label)}`;
          this.show(await postFile(url, file));
        }
        errors.clear("upload");
      } catch (err) {
        errors.show(`${label}: ${err.message}`, "upload");
        if (err.status === 404) this.id = null; // the server forgot the set: the next photo starts one
      }
      this.refreshCounts();
    });
  }

  /** The server's description of the set: counts and thumbnails by class. */
  show(dataset) {
    this.dataset = dataset;
    this.refreshCounts();
    this.onChange(dataset);
  }

  refreshCounts() {
    const byName = new Map((this.dataset?.classes ?? []).map((c) => [c.name, c]));
    for (const li of this.list.children) {
      const found = byName.get(li.querySelector(".class-name").value.trim());
      li.querySelector(".class-count").textContent = `${found?.photos ?? 0} photos · drop photos here`;
      li.querySelector(".class-samples").replaceChildren(...(found?.samples ?? []).map((src) =>
        Object.assign(document.createElement("img"), { src, alt: "" })));
    }
  }
}
