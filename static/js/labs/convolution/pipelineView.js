// The simple CNN as a row of stages (input → conv2d → activation → pooling → flatten → dense →
// softmax), each drawn with its tensor shape: maps as small canvases, vectors as strips and bars.

import { FeatureMap, divergingCss, maxAbs } from "./featureMap.js";

const MAP_SIZE = 96;
const STRIP_WIDTH = 64; // flattened values drawn this many per line

export class PipelineView {
  /** @param {HTMLElement} element container of the stage row. */
  constructor(element) {
    this.element = element;
  }

  /**
   * @param {{stages: {name: string, shape: number[], maps?: number[][], values?: number[]}[]}} data
   *   maps[c]: channel c of the first batch item, row by row (shape[1] × shape[2]);
   *   values: the first item's vector for flat stages.
   */
  update({ stages }) {
    const nodes = [];
    stages.forEach((stage, i) => {
      if (i > 0) nodes.push(arrow());
      nodes.push(this.stageNode(stage, i === 0));
    });
    this.element.replaceChildren(...nodes);
  }

  reset() {
    this.element.replaceChildren();
  }

  stageNode(stage, isInput) {
    const node = document.createElement("section");
    node.className = "stage";
    node.dataset.stage = stage.name;
    const title = document.createElement("h3");
    title.textContent = stage.name;
    const shape = document.createElement("p");
    shape.className = "stage-shape value";
    shape.textContent = `(${stage.shape.join(", ")})`;
    const body = document.createElement("div");
    body.className = "stage-body";
    node.append(title, shape, body);
    if (stage.maps) drawMaps(body, stage, isInput);
    else if (stage.name === "flatten") drawStrip(body, stage.values);
    else drawBars(body, stage.values, stage.name === "softmax");
    return node;
  }
}

function drawMaps(body, { shape, maps }, isInput) {
  const [, height, width] = shape;
  if (isInput) {
    // One picture: gray, or the three channels interleaved back into RGB.
    const values = maps.length === 3
      ? maps[0].flatMap((_, i) => [maps[0][i], maps[1][i], maps[2][i]])
      : maps[0];
    new FeatureMap(body, { size: MAP_SIZE, label: "input image" })
      .update({ values, height, width, channels: maps.length === 3 ? 3 : 1, kind: "image" });
    return;
  }
  maps.forEach((values, c) => {
    new FeatureMap(body, { size: MAP_SIZE, label: `channel ${c + 1}` })
      .update({ values, height, width, caption: `#${c + 1}` });
  });
}

function drawStrip(body, values) {
  const canvas = document.createElement("canvas");
  canvas.className = "strip";
  canvas.width = Math.min(STRIP_WIDTH, values.length);
  canvas.height = Math.ceil(values.length / canvas.width);
  const ctx = canvas.getContext("2d");
  const scale = maxAbs(values);
  values.forEach((v, i) => {
    ctx.fillStyle = divergingCss(v / scale);
    ctx.fillRect(i % canvas.width, Math.floor(i / canvas.width), 1, 1);
  });
  const note = document.createElement("p");
  note.className = "stage-note";
  note.textContent = `${values.length} numbers in one vector, drawn ${canvas.width} per line`;
  body.append(canvas, note);
}

function drawBars(body, values, probabilities) {
  const scale = probabilities ? 1 : maxAbs(values);
  const list = document.createElement("ol");
  list.className = "bars";
  for (const v of values) {
    const item = document.createElement("li");
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(2, (Math.abs(v) / scale) * 100)}%`;
    bar.style.background = divergingCss(probabilities ? 1 : v / scale);
    const label = document.createElement("span");
    label.className = "value";
    label.textContent = probabilities ? `${(v * 100).toFixed(1)}\u00a0%` : v.toFixed(3);
    item.append(bar, label);
    list.append(item);
  }
  body.append(list);
}

function arrow() {
  const a = document.createElement("span");
  a.className = "stage-arrow";
  a.setAttribute("aria-hidden", "true");
  a.textContent = "→";
  return a;
}
