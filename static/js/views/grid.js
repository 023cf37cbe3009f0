// The one grid painter: a size² grid of values painted onto a canvas, one canvas pixel per cell
// (createImageData/putImageData), scaled up by CSS. Colours come from a 256-entry colour scale of
// uint8 values, or from a function of the cell for pictures mixing several grids.

/** Whether a Uint32 word's first byte is its lowest: how an RGBA pixel packs into one word. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One canvas pixel as a 32-bit word (the ImageData's byte order). */
export function packRGB([r, g, b]) {
  return LITTLE_ENDIAN ? ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 : ((r << 24) | (g << 16) | (b << 8) | 255) >>> 0;
}

/** "#rrggbb" of a CSS variable on :root, as [r, g, b]. */
export function cssColor(name) {
  const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  if (!/^#[0-9a-f]{6}$/i.test(hex)) throw Error(`CSS variable ${name} must be #rrggbb, got "${hex}"`);
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/** The colour a share `t` in [0, 1] of the way from `from` to `to`. */
export const mix = (from, to, t) => from.map((c, i) => Math.round(c + (to[i] - c) * t));

/**
 * A 256-entry colour scale of uint8 grid values: 0 → `low`, 128 → `mid`, 255 → `high` (linear in
 * between). `strength` < 1 pales both ends toward `mid` (a background points must stand on).
 * @returns {Uint32Array} 256 packed pixels.
 */
export function colorScale({ low, mid, high, strength = 1 }) {
  return Uint32Array.from({ length: 256 }, (_, v) => {
    const t = (v / 255) * 2 - 1;
    return packRGB(mix(mid, t < 0 ? low : high, Math.abs(t) * strength));
  });
}

/**
 * Paints a size² grid (row-major, row 0 at the top) onto `canvas`, one pixel per cell.
 * @param {Uint8Array|function(number): number} colors The cells' uint8 values, read through
 *   `scale`; or a function of the cell index giving its packed pixel (packRGB).
 * @param {Uint32Array} [scale] A colorScale, when `colors` holds values.
 * @param {number} [rows] Rows of `size` cells, for a grid that is not square.
 */
export function paintGrid(canvas, size, colors, scale, rows = size) {
  const pixel = scale ? (i) => scale[colors[i]] : colors;
  if (scale && colors.length !== size * rows) {
    throw Error(`grid has ${colors.length} values, expected ${size}×${rows}`);
  }
  if (canvas.width !== size) canvas.width = size;
  if (canvas.height !== rows) canvas.height = rows;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, rows);
  const pixels = new Uint32Array(image.data.buffer);
  for (let i = 0; i < pixels.length; i++) pixels[i] = pixel(i);
  ctx.putImageData(image, 0, 0);
}

/** The two ends of the line w·x + b = 0 inside the square [-d, d]² a grid shows, or null when it misses it. */
export function clipLine([w1, w2], b, d) {
  const ends = [];
  const add = (x, y) => {
    const inside = Math.abs(x) <= d + 1e-9 && Math.abs(y) <= d + 1e-9;
    if (inside && !ends.some(([u, v]) => Math.hypot(u - x, v - y) < 1e-9)) ends.push([x, y]);
  };
  for (const s of [-d, d]) {
    if (w2 !== 0) add(s, -(b + w1 * s) / w2);
    if (w1 !== 0) add(-(b + w2 * s) / w1, s);
  }
  return ends.length >= 2 ? ends.slice(0, 2) : null;
}
