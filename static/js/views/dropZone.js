// Photos picked with file inputs or dropped on an element: the upload surface of the photo labs.

/**
 * Calls `onFiles(files)` with the files picked with any of `inputs` or dropped on `zone`; the zone
 * has the class "dragging" while files are dragged over it.
 * @param {HTMLElement} zone
 * @param {HTMLInputElement[]} inputs `<input type="file">`s, emptied after each pick so that the
 *   same file can be picked again
 * @param {(files: FileList) => void} onFiles
 */
export function acceptFiles(zone, inputs, onFiles) {
  for (const input of inputs) {
    input.addEventListener("change", () => {
      onFiles(input.files);
      input.value = "";
    });
  }
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    onFiles(e.dataTransfer.files);
  });
}
