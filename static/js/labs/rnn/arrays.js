// A frame's binary message read as its `arrays` describe it (docs/protocol.md, the RNN section):
// float32 arrays as Float32Array views, uint8 ones kept as bytes (the heatmaps paint them directly)
// with their values `lo + q / 255 · (hi − lo)` one call away.

/**
 * @param {{arrays: object[], frame_bytes: number}} frame
 * @param {Uint8Array} bytes The binary message that followed the frame.
 * @returns {Object<string, {shape: number[], values?: Float32Array, q?: Uint8Array,
 *   lo?: number, hi?: number, at: function(number): number}>} each array by name.
 */
export function readArrays(frame, bytes) {
  if (bytes.length !== frame.frame_bytes) {
    throw Error(`frame announced ${frame.frame_bytes} bytes, got ${bytes.length}`);
  }
  const out = {};
  for (const { name, dtype, shape, offset, lo, hi } of frame.arrays) {
    const n = shape.reduce((a, b) => a * b, 1);
    const start = bytes.byteOffset + offset;
    if (dtype === "float32") {
      // The server aligns every float32 array to 4 bytes; a copy keeps it valid past this frame.
      const values = new Float32Array(bytes.buffer.slice(start, start + 4 * n));
      out[name] = { shape, values, at: (i) => values[i] };
    } else {
      const q = bytes.subarray(offset, offset + n);
      out[name] = { shape, q, lo, hi, at: (i) => lo + (q[i] / 255) * (hi - lo) };
    }
  }
  return out;
}

/** Row `t` of a (T, U) array as plain numbers. */
export function row(array, t) {
  const units = array.shape[1];
  return Array.from({ length: units }, (_, j) => array.at(t * units + j));
}
