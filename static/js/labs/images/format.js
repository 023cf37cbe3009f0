// How the images lab writes shapes, values and code.
import { htmlElement } from "../../views/svg.js";
import { formatValue } from "../../views/tensorSteps.js";

/** "(224, 224, 3)". */
export const formatShape = (shape) => `(${shape.join(", ")})`;

/** A value as views/tensorSteps.js writes it (3 significant digits), with a true minus sign. */
export const formatNumber = (v) => formatValue(v).replace("-", "−");

/**
 * Code that may wrap after a dot or an underscore, never inside a name's word:
 * tf.image.stateless_random_crop.
 */
export function codeElement(className, text) {
  const code = htmlElement("code", className);
  code.append(...text.split(/(?<=[._,(])/).flatMap((part) => [part, htmlElement("wbr")]).slice(0, -1));
  return code;
}
