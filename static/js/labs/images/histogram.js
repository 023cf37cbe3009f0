// A small histogram of an image's values, one line per channel (R, G, B in their colours, gray in
// the ink, alpha dashed), on a canvas sized to its box and the screen's pixel density. Its x axis is
// the value axis the server binned on: 0…255 for uint8, −m…m on a diverging scale with 0 marked.
import { THEME_CHANGE } from "../../lab/page.js";
import { formatNumber } from "./format.js";

/** R, G and B take the theme's --channel-* colours (images.css); gray and alpha its ink. */
const CHANNEL_VARIABLES = { R: "--channel-r", G: "--channel-g", B: "--channel-b" };
const LABEL_EM = 0.68; // the axis labels' size, in the page's rem (larger in presentation mode)

export class Histogram {
  /** @param {HTMLElement} element The view's box; its CSS sets the height. */
  constructor(element) {
    this.element = element;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "histogram-canvas";
    this.canvas.setAttribute("role", "img");
    this.canvas.title = "Each line's height is the square root of how many values fall there.";
    element.append(this.canvas);
    this.data = null;
    new ResizeObserver(() => this.draw()).observe(element);
    window.addEventListener(THEME_CHANGE, () => this.draw());
  }

  /**
   * @param {{histogram: {low: number, high: number, counts: number[][]},
   *   channels: {name: string}[], dtype: string}} data A StageReport's parts.
   */
  update(data) {
    this.data = data;
    const names = data.channels.map((c) => c.name).join(", ");
    this.canvas.setAttribute("aria-label", `Histogram of ${names} from ` +
      `${formatNumber(data.histogram.low)} to ${formatNumber(data.histogram.high)}`);
    this.draw();
  }

  draw() {
    const { data, canvas } = this;
    const width = this.element.clientWidth;
    const height = this.element.clientHeight;
    if (!data || !width || !height) return;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const css = getComputedStyle(this.element);
    const ink = css.getPropertyValue("--ink").trim() || "#1b1f24";
    const muted = css.getPropertyValue("--muted").trim() || "#57606a";
    const font = Math.round(parseFloat(getComputedStyle(document.documentElement).fontSize) * LABEL_EM);
    const plot = height - font - 4;
    const { low, high, counts } = data.histogram;
    // Heights are √count: a spike (a transparent background, a clipped white) leaves the rest visible.
    const top = Math.sqrt(Math.max(1, ...counts.flat()));
    const x = (v) => ((v - low) / (high - low)) * (width - 1);

    ctx.strokeStyle = muted;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, plot + 0.5);
    ctx.lineTo(width, plot + 0.5);
    if (low < 0 && high > 0) { // zero, where a diverging picture is mid-grey
      ctx.moveTo(Math.round(x(0)) + 0.5, 0);
      ctx.lineTo(Math.round(x(0)) + 0.5, plot);
    }
    ctx.stroke();

    counts.forEach((row, c) => {
      const name = data.channels[c]?.name ?? "";
      const colour = CHANNEL_VARIABLES[name] && css.getPropertyValue(CHANNEL_VARIABLES[name]).trim();
      ctx.strokeStyle = colour || (name === "alpha" || name === "A" ? muted : ink);
      ctx.setLineDash(name === "alpha" || name === "A" ? [4, 3] : []);
      ctx.lineWidth = 2;
      ctx.globalAlpha = 0.9;
      ctx.beginPath();
      const bin = (width - 1) / row.length;
      row.forEach((n, i) => { // a step line: each bin flat across its width
        const y = plot - (Math.sqrt(n) / top) * (plot - 2);
        if (i === 0) ctx.moveTo(0, y);
        else ctx.lineTo(i * bin, y);
        ctx.lineTo((i + 1) * bin, y);
      });
      ctx.stroke();
    });
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;

    ctx.fillStyle = muted;
    ctx.font = `${font}px ${css.fontFamily}`;
    ctx.textBaseline = "bottom";
    const label = (text, at, align) => {
      ctx.textAlign = align;
      ctx.fillText(text, at, height);
    };
    label(formatNumber(low), 0, "left");
    // Whole numbers: the last bin's right edge (256) is one past the largest value it holds.
    label(formatNumber(data.dtype.includes("int") ? high - 1 : high), width, "right");
    if (low < 0 && high > 0) label("0", x(0), "center");
  }
}
