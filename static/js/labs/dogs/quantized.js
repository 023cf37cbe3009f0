// Arrays the dog lab's server sends as bytes: {shape, low, high, data: base64 of uint8}, each value
// low + byte / 255 · (high − low). Pictures and feature maps come this way: a fraction of the JSON.

/** The values of a quantized array, as a Float32Array, with its shape. */
export function dequantize({ shape, low, high, data }) {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const step = (high - low) / 255;
  const values = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) values[i] = low + bytes[i] * step;
  return { shape, values };
}

/** A picture for views/tensorSteps.js from a quantized (height, width, channels) array. */
export function pictureOf(quantized) {
  const { shape: [height, width, channels], values } = dequantize(quantized);
  return { width, height, channels, values };
}
