// Building SVG and HTML elements in code: the diagrams draw themselves this way.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes and, if given, its text. */
export function svgElement(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null && text !== undefined) node.textContent = text;
  return node;
}

/** An HTML element with a class and, if given, its text. */
export function htmlElement(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
