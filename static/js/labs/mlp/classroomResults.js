// The class experiment's live plot, the same for everyone in the room: each student's final test
// loss against their hidden size or learning rate (a diverged run is a red ✕ at the top), or a
// histogram of the final test losses over seeds.
import { LineChart } from "../../views/lineChart.js";

const BINS = 10;
const AXES = {
  hidden_size: { title: "hidden layer size" },
  learning_rate: { title: "learning rate", log: true },
};

export class ClassResults {
  constructor(element) {
    this.element = element;
    this.chart = null;
    this.experiment = null;
    this.results = new Map(); // student number → their result
  }

  /** A new experiment (or none) and the results gathered so far. */
  start(experiment, results) {
    this.experiment = experiment;
    this.results = new Map(results.map((r) => [r.number, r]));
    this.element.hidden = !experiment && !results.length;
    if (!this.element.hidden) this.draw();
  }

  add(result) {
    this.results.set(result.number, result);
    this.element.hidden = false;
    this.draw();
  }

  draw() {
    const variable = this.experiment?.variable ?? "hidden_size";
    const runs = [...this.results.values()];
    const seeds = variable === "seed";
    this.chart ??= new LineChart(this.element, {
      x: {}, y: {}, fontSize: 14, margin: { l: 56, r: 12, t: 12, b: 44 },
      hint: "Each student's final test loss appears here as their run ends.",
    });
    if (seeds) return this.chart.update({ ...histogram(runs), y: { title: "students", fromZero: true } });
    const done = runs.filter((r) => !r.diverged).sort((a, b) => a.value - b.value);
    const top = Math.max(0.1, ...done.map((r) => r.test_loss));
    this.chart.update({
      series: [{
        name: "final test loss", x: done.map((r) => r.value), y: done.map((r) => r.test_loss),
        markers: 10, width: 0, hover: "%{x}: test loss %{y:.3f}<extra></extra>",
      }],
      crosses: runs.filter((r) => r.diverged).map((r) => ({ x: r.value, y: top, hover: `${r.value}: diverged` })),
      x: AXES[variable],
      y: { title: "final test loss", fromZero: true },
    });
  }
}

/** Final test losses in BINS bars (diverged runs in a bar of their own). */
function histogram(runs) {
  const losses = runs.filter((r) => !r.diverged).map((r) => r.test_loss);
  const hi = Math.max(1e-6, ...losses);
  const width = hi / BINS;
  const counts = new Array(BINS).fill(0);
  for (const loss of losses) counts[Math.min(BINS - 1, Math.floor(loss / width))] += 1;
  const x = counts.map((_, i) => ((i + 0.5) * width).toFixed(3));
  const diverged = runs.length - losses.length;
  return {
    series: [{
      name: "students", bars: true, x: diverged ? [...x, "diverged"] : x,
      y: diverged ? [...counts, diverged] : counts,
      colors: [...counts.map(() => "#1b1f24"), "#b42318"].slice(0, counts.length + (diverged ? 1 : 0)),
    }],
    x: { title: "final test loss", category: true },
  };
}
