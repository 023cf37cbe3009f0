// Photos picked with file inputs or dropped on an element: the upload surface of the photo labs.

/**
 * Calls `onFiles(files)` with the files picked with any of `inputs` or dropped on `zone` (a
 * dropped folder gives the files in it, subfolders too); the zone has the class "dragging" while
 * files are dragged over it.
 * @param {HTMLElement} zone
 * @param {HTMLInputElement[]} inputs `<input type="file">`s, emptied after each pick so that the
 *   same file can be picked again
 * @param {(files: FileList | File[]) => void} onFiles
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
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
    onFiles(await droppedFiles(e.dataTransfer));
  });
}

/** The dropped files, a dropped folder's read through its entries (taken before the first await:
 * the drop's items are gone once its handler returns). */
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.some((entry) => entry.isDirectory)) return transfer.files;
  const files = [];
  const walk = async (entry) => {
    if (entry.isFile) files.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    else for (const child of await folderEntries(entry)) await walk(child);
  };
  for (const entry of entries) await walk(entry);
  return files;
}

/** All of a folder's entries: `readEntries` gives them a batch at a time. */
async function folderEntries(folder) {
  const reader = folder.createReader();
  const all = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return all;
    all.push(...batch);
  }
}
