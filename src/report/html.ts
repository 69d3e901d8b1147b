// The run report: one self-contained HTML page (Chart.js inlined, data as JSON) that opens from
// disk with no network, so it can be mailed, archived or attached to CI artifacts as is.

import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import type { EpochMetric, MeanStd, MetricName, ModelResult, RunResults } from "../eval/types.js";

let chartJsSource: string | undefined;

/** Chart.js's UMD build (defines the global `Chart` with every controller registered). */
function chartJs(): string {
  if (chartJsSource === undefined) {
    // "chart.js" resolves to dist/chart.cjs; the UMD bundle sits next to it.
    const dist = dirname(createRequire(import.meta.url).resolve("chart.js"));
    const file = ["chart.umd.js", "chart.umd.min.js"].map((f) => join(dist, f)).find((f) => existsSync(f));
    if (!file) throw new Error(`Chart.js UMD bundle not found in ${dist}`);
    // A literal "</script" inside the bundle would end the inline <script> early.
    chartJsSource = readFileSync(file, "utf8").replace(/<\/(script)/gi, "<\\/$1");
  }
  return chartJsSource;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

/** JSON that is safe inside <script>: "<" never appears raw, so neither "</script" nor "<!--" can. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

// ---- number formatting -------------------------------------------------------------------

const DASH = "—";

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : DASH;
}

function grouped(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : DASH;
}

function bytes(x: number): string {
  if (!Number.isFinite(x)) return DASH;
  if (x < 1024) return `${Math.round(x)} B`;
  if (x < 1024 * 1024) return `${(x / 1024).toFixed(1)} KiB`;
  return `${(x / 1024 / 1024).toFixed(2)} MiB`;
}

/** Significant-figure formatting for timings, which span µs to s across models. */
function sig(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return DASH;
  if (x === 0) return "0";
  const d = Math.max(0, digits - 1 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(d, 6));
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return DASH;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h} h ${m} min ${r} s` : `${m} min ${r} s`;
}

/** ISO timestamps read better as "2025-01-01 00:00 UTC"; anything else is shown as given. */
function created(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

// ---- comparison table --------------------------------------------------------------------

interface Column {
  head: string;
  sub?: string; // second header line (units, or what the "a / b" pair is)
  title: string; // tooltip explaining the column
  metrics: MetricName[]; // one, or two shown as "a / b"
  fmt: (x: number) => string;
  /** How the std prints; defaults to `fmt`. */
  stdFmt?: (x: number) => string;
  /** Size-like metrics are identical across seeds by construction; a "± 0" there is noise. */
  stdOnlyIfNonzero?: boolean;
}

const percent = (x: number) => `${fixed(x * 100, 2)} %`;
const percentPoints = (x: number) => fixed(x * 100, 2);

const COLUMNS: Column[] = [
  { head: "Accuracy", title: "Test accuracy", metrics: ["accuracy"], fmt: percent, stdFmt: percentPoints },
  { head: "Errors", title: "Misclassified test samples / test samples", metrics: ["errors"], fmt: (x) => fixed(x, Number.isInteger(x) ? 0 : 1), stdFmt: (x) => fixed(x, 1) },
  { head: "Macro-F1", title: "Unweighted mean of per-class F1", metrics: ["macroF1"], fmt: (x) => fixed(x, 4) },
  { head: "NLL", sub: "nats", title: "Mean negative log-likelihood of the label", metrics: ["nll"], fmt: (x) => fixed(x, 4) },
  { head: "ECE", title: "Expected calibration error, 15 equal-width confidence bins", metrics: ["ece"], fmt: (x) => fixed(x, 4) },
  { head: "Agreement", sub: "with teacher", title: "Top-1 agreement with the teacher's predictions", metrics: ["agreement"], fmt: percent, stdFmt: percentPoints },
  { head: "Params", title: "Trainable parameters", metrics: ["params"], fmt: grouped, stdOnlyIfNonzero: true },
  { head: "ONNX size", sub: "raw / gzip", title: "Model file size, and after gzip -9", metrics: ["onnxBytes", "onnxGzipBytes"], fmt: bytes, stdOnlyIfNonzero: true },
  { head: "Latency ms", sub: "p50 / p95", title: "Batch-1 latency percentiles under onnxruntime-node", metrics: ["latencyP50Ms", "latencyP95Ms"], fmt: (x) => sig(x) },
  { head: "Throughput", sub: "samples/s", title: "Samples per second at batch 128", metrics: ["throughput"], fmt: grouped },
];

function summaryOf(model: ModelResult, metric: MetricName): MeanStd {
  const s = model.summary?.[metric];
  if (s) return s;
  // Older or hand-written results may lack a summary; derive it from the seeds.
  const values = model.perSeed.map((m) => m[metric]).filter((v): v is number => typeof v === "number");
  const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN;
  const std = values.length > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) : 0;
  return { mean, std, values };
}

function cell(model: ModelResult, col: Column): string {
  const stats = col.metrics.map((m) => summaryOf(model, m));
  // No values at all: the teacher's agreement with itself.
  if (stats.every((s) => s.values.length === 0)) return `<td class="na">${DASH}</td>`;
  let html = escapeHtml(stats.map((s) => col.fmt(s.mean)).join(" / "));
  if (col.metrics[0] === "errors") html += ` <span class="of">/ ${escapeHtml(grouped(summaryOf(model, "total").mean))}</span>`;
  const showStd = model.perSeed.length > 1 && (!col.stdOnlyIfNonzero || stats.some((s) => s.std > 0));
  if (showStd) html += ` <span class="sd">± ${escapeHtml(stats.map((s) => (col.stdFmt ?? col.fmt)(s.std)).join(" / "))}</span>`;
  return `<td>${html}</td>`;
}

function comparisonTable(results: RunResults): string {
  const head = COLUMNS.map((c) => `<th scope="col" title="${escapeHtml(c.title)}">${escapeHtml(c.head)}${c.sub ? `<span class="unit">${escapeHtml(c.sub)}</span>` : ""}</th>`).join("");
  const rows = results.models
    .map((m, i) => {
      const name = `<th scope="row"><span class="swatch" style="background:${color(i)}"></span>${escapeHtml(m.role)}<span class="file">${escapeHtml(m.file)}</span></th>`;
      return `<tr>${name}${COLUMNS.map((c) => cell(m, c)).join("")}</tr>`;
    })
    .join("\n");
  return `<div class="table-wrap"><table id="comparison">
<thead><tr><th scope="col">Model</th>${head}</tr></thead>
<tbody>
${rows}
</tbody></table></div>`;
}

// ---- chart data --------------------------------------------------------------------------

const PALETTE = ["#1f5fbf", "#7a7f87", "#e0701b", "#2a9d5c", "#a23fb0", "#c7323f", "#1a9fb0", "#8c6d1f"];
function color(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

interface Series {
  label: string;
  color: string;
  points: { epoch: number; mean: number; min: number; max: number; n: number }[];
}

/** Per stage and epoch: mean over seeds, with the seed range for the band. */
function curves(epochs: EpochMetric[], stageOrder: string[], pick: (e: EpochMetric) => number): Series[] {
  const byStage = new Map<string, Map<number, number[]>>();
  for (const e of epochs) {
    const v = pick(e);
    if (!Number.isFinite(v)) continue;
    let stage = byStage.get(e.stage);
    if (!stage) byStage.set(e.stage, (stage = new Map()));
    const list = stage.get(e.epoch) ?? [];
    list.push(v);
    stage.set(e.epoch, list);
  }
  return [...byStage.keys()]
    .sort((a, b) => stageIndex(stageOrder, a) - stageIndex(stageOrder, b))
    .map((stage) => ({
      label: stage,
      color: color(stageIndex(stageOrder, stage)),
      points: [...byStage.get(stage)!.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([epoch, vs]) => ({ epoch, mean: vs.reduce((a, b) => a + b, 0) / vs.length, min: Math.min(...vs), max: Math.max(...vs), n: vs.length })),
    }));
}

function stageIndex(order: string[], stage: string): number {
  const i = order.indexOf(stage);
  return i >= 0 ? i : order.length;
}

function chartData(results: RunResults, epochs: EpochMetric[]) {
  // Stages are coloured like their table row; stages without a model row come after.
  const order = results.models.map((m) => m.role);
  for (const e of epochs) if (!order.includes(e.stage)) order.push(e.stage);
  const tradeoff = results.models.map((m, i) => ({
    label: m.role,
    color: color(i),
    latency: summaryOf(m, "latencyP50Ms").mean,
    accuracy: summaryOf(m, "accuracy").mean * 100,
    onnxBytes: summaryOf(m, "onnxBytes").mean,
  }));
  return {
    valAccuracy: curves(epochs, order, (e) => e.valAccuracy * 100),
    trainLoss: curves(epochs, order, (e) => e.trainLoss),
    tradeoff,
  };
}

// ---- page --------------------------------------------------------------------------------

const CSS = `
:root { --fg: #1d232b; --muted: #5f6b7a; --line: #dde2e8; --bg: #fff; --head: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0; padding: 2rem clamp(1rem, 4vw, 3rem) 3rem; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); background: var(--bg); max-width: 1280px; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 2.2rem 0 .6rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.sub { color: var(--muted); margin: 0 0 1.2rem; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .5rem 1.5rem; margin: 0; }
dl.facts div { border-left: 3px solid var(--line); padding-left: .6rem; }
dl.facts dt { font-size: .8rem; color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; white-space: nowrap; font-size: .88rem; width: 100%; }
th, td { padding: .45rem .5rem; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
thead th { background: var(--head); font-size: .82rem; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); cursor: help; }
thead th:first-child, tbody th { text-align: left; }
tbody th { font-weight: 600; white-space: normal; overflow-wrap: anywhere; min-width: 10rem; max-width: 16rem; }
tbody tr:hover { background: #fafbfc; }
.file, .unit, td .sd { display: block; font-weight: 400; font-size: .78rem; color: var(--muted); }
.of, .note .sd { color: var(--muted); font-size: .85em; }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .45rem; vertical-align: baseline; }
td.na { color: var(--muted); text-align: center; }
.note { color: var(--muted); font-size: .85rem; margin: .4rem 0 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1.5rem 2rem; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .4rem; }
.chart-box { position: relative; height: 320px; }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .8rem; }
@media print { body { padding: 0; } .chart-box { height: 260px; } tbody tr:hover { background: none; } }
`;

// Runs in the page. Kept as plain ES2017 so any recent browser opens the report.
const CLIENT = `
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = new Set();
  Chart.register({
    id: "distillRendered",
    afterRender: function (chart) {
      drawn.add(chart.canvas.id);
      document.body.dataset.chartsRendered = String(drawn.size);
    }
  });
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#3b4654";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  // Legend entries only for the mean lines; the seed-range bands are unlabeled.
  var legend = { labels: { filter: function (item, d) { return !d.datasets[item.datasetIndex].band; } } };

  function lineChart(id, series, yTitle, digits) {
    var datasets = [];
    series.forEach(function (s) {
      var seeded = s.points.some(function (p) { return p.n > 1; });
      if (seeded) {
        datasets.push({ band: true, label: s.label + " min", data: s.points.map(function (p) { return { x: p.epoch, y: p.min }; }), borderWidth: 0, pointRadius: 0, backgroundColor: alpha(s.color, 0.15), fill: false });
        datasets.push({ band: true, label: s.label + " max", data: s.points.map(function (p) { return { x: p.epoch, y: p.max }; }), borderWidth: 0, pointRadius: 0, backgroundColor: alpha(s.color, 0.15), fill: "-1" });
      }
      datasets.push({ label: s.label, data: s.points.map(function (p) { return { x: p.epoch, y: p.mean }; }), borderColor: s.color, backgroundColor: s.color, borderWidth: 2, pointRadius: 3, tension: 0 });
    });
    return new Chart(document.getElementById(id), {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: true,
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0, stepSize: 1 } },
          y: { title: { display: true, text: yTitle } }
        },
        plugins: {
          legend: legend,
          tooltip: { filter: function (item) { return !item.dataset.band; }, callbacks: { label: function (c) { return c.dataset.label + ": " + c.parsed.y.toFixed(digits); } } }
        }
      }
    });
  }

  lineChart("chart-curves", data.valAccuracy, "validation accuracy (%)", 2);
  lineChart("chart-loss", data.trainLoss, "train loss", 4);

  var pts = data.tradeoff.filter(function (m) { return m.latency > 0 && isFinite(m.accuracy); });
  var maxSize = Math.max.apply(null, pts.map(function (m) { return m.onnxBytes || 0; }).concat([1]));
  var lats = pts.map(function (m) { return m.latency; });
  // A log axis once latencies differ by more than 20×, else small models pile up at the left.
  var logX = lats.length > 1 && Math.max.apply(null, lats) / Math.min.apply(null, lats) > 20;
  // Log-axis labels only at 1, 2 and 5 × 10^n; Chart.js would label every minor tick.
  function logTick(v) {
    var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
    return [1, 2, 5].some(function (k) { return Math.abs(m - k) < 1e-6; }) ? String(+v.toPrecision(3)) : "";
  }
  function kib(b) { return b < 1048576 ? (b / 1024).toFixed(1) + " KiB" : (b / 1048576).toFixed(2) + " MiB"; }
  new Chart(document.getElementById("chart-tradeoff"), {
    type: "bubble",
    data: {
      datasets: pts.map(function (m) {
        return {
          label: m.label,
          data: [{ x: m.latency, y: m.accuracy, r: Math.max(3, 30 * Math.sqrt((m.onnxBytes || 0) / maxSize)), size: m.onnxBytes }],
          backgroundColor: alpha(m.color, 0.45), borderColor: m.color, borderWidth: 1.5,
          clip: false // a big bubble at the edge may spill past the axes rather than be cut off
        };
      })
    },
    options: {
      layout: { padding: 12 },
      scales: {
        // "grace" does not apply to log axes, so their bounds are padded by hand (×/÷ 1.6).
        x: logX
          ? { type: "logarithmic", min: Math.min.apply(null, lats) / 1.6, max: Math.max.apply(null, lats) * 1.6, ticks: { maxRotation: 0, autoSkip: false, callback: logTick }, title: { display: true, text: "p50 latency, batch 1 (ms, log scale)" } }
          : { type: "linear", beginAtZero: true, grace: "10%", title: { display: true, text: "p50 latency, batch 1 (ms)" } },
        y: { title: { display: true, text: "test accuracy (%)" }, grace: "10%" }
      },
      plugins: {
        tooltip: { callbacks: { label: function (c) { var r = c.raw; return c.dataset.label + ": " + r.y.toFixed(2) + " %, " + r.x.toPrecision(3) + " ms, " + kib(r.size); } } }
      }
    }
  });
})();
`;

export function renderReport(results: RunResults, epochs: EpochMetric[]): string {
  const seeds = results.seeds ?? [];
  const facts: [string, string][] = [
    ["Dataset", results.dataset],
    ["Temperature T", String(results.temperature)],
    ["α (KD weight)", String(results.alpha)],
    ["Seeds", seeds.length ? `${seeds.join(", ")} (${seeds.length})` : DASH],
    ["Epochs", String(results.epochs)],
    ["Wall time", duration(results.wallSeconds)],
    ["Code version", results.codeVersion],
    ["Created", created(results.createdAt)],
  ];
  const factsHtml = facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join("");
  const multi = results.models.some((m) => m.perSeed.length > 1);
  const title = `distill report — ${results.name}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="distill ${escapeHtml(results.codeVersion)}">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(results.name)}</h1>
<p class="sub">Knowledge-distillation run report</p>
<dl class="facts">${factsHtml}</dl>

<h2>Comparison</h2>
${comparisonTable(results)}
<p class="note">Test-set figures${multi ? `; mean <span class="sd">± sample std</span> over seeds` : ""}. Latency and throughput: onnxruntime-node on the machine that ran the training. Hover a column head for its definition.</p>

<h2>Learning curves</h2>
<div class="charts">
<figure><figcaption>Validation accuracy per epoch</figcaption><div class="chart-box"><canvas id="chart-curves" role="img" aria-label="Validation accuracy per epoch for each stage"></canvas></div></figure>
<figure><figcaption>Train loss per epoch</figcaption><div class="chart-box"><canvas id="chart-loss" role="img" aria-label="Train loss per epoch for each stage"></canvas></div></figure>
</div>
${epochs.length ? "" : `<p class="note">No per-epoch metrics were recorded for this run (metrics.jsonl is missing or empty).</p>\n`}<p class="note">Lines are means over seeds${multi ? "; shaded bands span the seeds' min to max" : ""}. Loss objectives differ by stage (distillation losses include the soft-target term), so compare loss shapes, not levels, across stages.</p>

<h2>Accuracy vs latency</h2>
<figure><div class="chart-box"><canvas id="chart-tradeoff" role="img" aria-label="Accuracy against p50 latency; bubble area proportional to ONNX size"></canvas></div></figure>
<p class="note">Bubble area ∝ ONNX file size. Up and to the left is better.</p>

<footer>Generated by distill ${escapeHtml(results.codeVersion)}. Self-contained: no network access needed.</footer>
<script type="application/json" id="report-data">${scriptJson(chartData(results, epochs))}</script>
<script>${chartJs()}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}

// ---- run folder --------------------------------------------------------------------------

function readResults(path: string): RunResults {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "not found (has the run finished?)" : `cannot be read (${code ?? String(e)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UserError(path, `is not valid JSON (${(e as Error).message})`);
  }
  const r = value as Partial<RunResults> | null;
  if (!r || typeof r !== "object" || Array.isArray(r)) throw new UserError(path, "is not a results object");
  if (!Array.isArray(r.models)) throw new UserError(path, "models: missing or not a list");
  r.models.forEach((m, i) => {
    if (!m || typeof m.role !== "string" || !Array.isArray(m.perSeed)) throw new UserError(`${path}: models[${i}]`, "needs a role and a perSeed list");
  });
  for (const key of ["name", "dataset", "codeVersion", "createdAt"] as const) {
    if (typeof r[key] !== "string") throw new UserError(`${path}: ${key}`, "missing or not a string");
  }
  return r as RunResults;
}

function readEpochs(path: string): EpochMetric[] {
  // Curves are optional: a run folder without metrics.jsonl still gets its table and trade-off.
  if (!existsSync(path)) return [];
  const out: EpochMetric[] = [];
  readFileSync(path, "utf8")
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      try {
        out.push(JSON.parse(line) as EpochMetric);
      } catch (e) {
        throw new UserError(`${path}:${i + 1}`, `is not valid JSON (${(e as Error).message})`);
      }
    });
  return out;
}

/** Reads results.json and metrics.jsonl from `runDir` and writes `runDir/report.html`; returns its path. */
export function writeReport(runDir: string): string {
  const results = readResults(join(runDir, "results.json"));
  const epochs = readEpochs(join(runDir, "metrics.jsonl"));
  const out = join(runDir, "report.html");
  writeFileAtomic(out, renderReport(results, epochs));
  return out;
}
