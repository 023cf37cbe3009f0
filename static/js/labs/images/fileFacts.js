// What a file is and what tf.io.decode_image makes of it (POST /api/image-lab/describe): format,
// bytes, mode, frames, EXIF orientation, shape (H, W, C), dtype, value range, batch shape — and the
// photo as TensorFlow decodes it beside the photo turned upright, since tf.io.decode_image never
// reads EXIF.
import { htmlElement } from "../../views/svg.js";
import { formatNumber, formatShape } from "./format.js";
import { Picture } from "./stageView.js";

const PICTURE_SIDE = 220;

export class FileFacts {
  /**
   * @param {{facts: HTMLElement, notes: HTMLElement, figures: HTMLElement, exif: HTMLElement,
   *   working: HTMLElement}} elements
   */
  constructor(elements) {
    this.elements = elements;
    this.figures = [0, 1].map(() => {
      const figure = htmlElement("figure", "orientation-figure");
      const picture = new Picture(figure, PICTURE_SIDE);
      const caption = htmlElement("figcaption");
      figure.append(caption);
      return { figure, picture, caption };
    });
  }

  /** @param {object} d A DescribeResponse. */
  update(d) {
    const { file, tensorflow: tf, decoded, upright } = d;
    const frames = file.frames > 1
      ? `${file.frames} frames: tf.io.decode_image(data) gives them all, ${formatShape(tf.shape)}`
      : "1";
    const rows = [
      ["Format", `${file.format} · ${file.bytes.toLocaleString("en")} bytes`],
      ["Mode", `${file.mode}: ${file.mode_meaning} (${file.bit_depth} bits a channel` +
        `${file.has_alpha ? ", with transparency" : ""})`],
      ["Stored", `${file.width} × ${file.height} pixels (width × height)`],
      ["Frames", frames],
      ["EXIF orientation", `${file.orientation}: ${file.orientation_meaning}`],
      ["Shape (H, W, C)", formatShape(decoded.shape), "facts-shape"],
      ["dtype", `${tf.dtype}: values ${tf.value_range[0]} to ${tf.value_range[1]}`],
      ["Value range", `${formatNumber(decoded.value_min)} … ${formatNumber(decoded.value_max)} in this image`],
      ["Batch shape (N, H, W, C)",
        `${formatShape(tf.batch_shape)}: tf.expand_dims(x, 0), what a model's input takes`],
    ];
    this.elements.facts.replaceChildren(...rows.flatMap(([term, text, name]) => {
      const value = htmlElement("dd", name ?? "", text);
      return [htmlElement("dt", "", term), value];
    }));
    // An EXIF orientation's note is said beside the two pictures instead.
    const notes = upright ? tf.notes.filter((n) => !n.includes("ignored by tf.io.decode_image")) : tf.notes;
    this.elements.notes.replaceChildren(...notes.map((n) => htmlElement("li", "", n)));
    this.elements.working.textContent = d.working_copy.note;

    const [raw, turned] = this.figures;
    raw.picture.show({
      src: decoded.preview, width: decoded.preview_width, height: decoded.preview_height,
      alt: `The image as tf.io.decode_image gives it, ${formatShape(decoded.shape)}`,
    });
    raw.caption.replaceChildren(upright ? "As TensorFlow decodes it (EXIF ignored) " : "As TensorFlow decodes it ",
      htmlElement("span", "value", formatShape(decoded.shape)));
    this.elements.figures.replaceChildren(raw.figure, ...(upright ? [turned.figure] : []));
    if (upright) {
      turned.picture.show({
        src: upright.preview, width: upright.preview_width, height: upright.preview_height,
        alt: `The image turned upright by its EXIF orientation, ${formatShape(upright.shape)}`,
      });
      turned.caption.replaceChildren("Upright: ", htmlElement("code", "", upright.call), " ",
        htmlElement("span", "value", formatShape(upright.shape)));
    }
    this.elements.exif.textContent = upright
      ? `tf.io.decode_image ignores EXIF: the tensor holds the pixels as the camera stored them ` +
        `(left), where a photo viewer would first ${file.orientation_meaning}. Turned upright ` +
        `(right) by ${upright.call}; in your pipeline the decode step's apply_exif does it.`
      : "tf.io.decode_image ignores EXIF orientation; this file needs none, so its tensor is upright.";
    this.elements.exif.classList.toggle("warning", Boolean(upright));
  }
}
