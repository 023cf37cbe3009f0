// A heat map over the photo: the model's input (the photo's central square, as the server crops it)
// in grey, with a coarse grid of values drawn on it, smoothly enlarged. Positive values are warm
// (dark red to yellow, more opaque the larger), negative ones blue: Grad-CAM is never negative; an
// occlusion map is negative where hiding a part makes the class more probable.

import { mix } from "../../views/grid.js";

const SIDE = 448; // canvas pixels: sharp at twice a 224-pixel CSS size
const WARM = [[120, 0, 0], [230, 30, 0], [255, 160, 0], [255, 240, 60]]; // 0, ⅓, ⅔, 1
const COOL = [0, 114, 178];
const ALPHA = 0.85;
const PHOTO_FILTER = "grayscale(1) contrast(0.75) brightness(1.1)"; // the colours are the map's

/** The warm colour of t in [0, 1]. */
function warm(t) {
  const x = t * (WARM.length - 1);
  const i = Math.min(WARM.length - 2, Math.floor(x));
  return mix(WARM[i], WARM[i + 1], x - i);
}

export class HeatmapOverlay {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    canvas.width = canvas.height = SIDE;
    this.photo = null;
    this.map = null;
  }

  /** The photo (an ImageBitmap or image); its central square is what the model saw. */
  setPhoto(photo) {
    this.photo = photo;
    this.map = null;
    this.draw();
  }

  /**
   * @param {{rows: number, cols: number, values: ArrayLike<number>, extent?: number[]}} map
   *   Row-major values, scaled so that 1 is the strongest; `extent` [x0, y0, x1, y1] is the part
   *   of the input the grid covers, in fractions of its side (all of it by default).
   */
  update(map) {
    this.map = map;
    this.draw();
  }

  reset() {
    this.map = null;
    this.draw();
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    ctx.clearRect(0, 0, SIDE, SIDE);
    if (!this.photo) return;
    const { width, height } = this.photo;
    const side = Math.min(width, height);
    ctx.filter = PHOTO_FILTER;
    ctx.drawImage(this.photo, (width - side) / 2, (height - side) / 2, side, side, 0, 0, SIDE, SIDE);
    ctx.filter = "none";
    if (!this.map) return;
    const { rows, cols, values, extent = [0, 0, 1, 1] } = this.map;
    const grid = new OffscreenCanvas(cols, rows);
    const gctx = grid.getContext("2d");
    const image = gctx.createImageData(cols, rows);
    for (let i = 0; i < rows * cols; i++) {
      const t = Math.max(-1, Math.min(1, values[i]));
      const color = t >= 0 ? warm(t) : COOL;
      image.data.set([...color, Math.round(255 * ALPHA * Math.sqrt(Math.abs(t)))], i * 4);
    }
    gctx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    const [x0, y0, x1, y1] = extent.map((f) => f * SIDE);
    ctx.drawImage(grid, x0, y0, x1 - x0, y1 - y0);
  }
}
