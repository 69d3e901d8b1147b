// The run report: one self-contained HTML page (Chart.js inlined, data as JSON) that opens from
// disk with no network, so it can be mailed, archived or attached to CI artifacts as is.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { stringify as toYaml } from "yaml";
import { divergences, divergenceWarning } from "../eval/divergence.js";
import { formatMs } from "../eval/latency.js";
import type { EpochMetric, MeanStd, MetricName, ModelResult, RunDetails, RunResults } from "../eval/types.js";
import { chartJs, inlineAsset, scriptJson } from "./assets.js";
import { binaryByteTicks, byteTickLabel, placeLabels } from "./chart-geometry.js";
import { headline, type PairedDifference } from "./headline.js";

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
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
  /** Shown only in two-class runs. */
  binary?: boolean;
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
  // Two-class runs only (the columns are left out when no model has them).
  { head: "Precision", sub: "positive class", title: "Precision of the positive (second) class", metrics: ["precision"], fmt: (x) => fixed(x, 4), binary: true },
  { head: "Recall", sub: "positive class", title: "Recall of the positive (second) class", metrics: ["recall"], fmt: (x) => fixed(x, 4), binary: true },
  { head: "F1", sub: "positive class", title: "F1 of the positive (second) class", metrics: ["f1"], fmt: (x) => fixed(x, 4), binary: true },
  { head: "ROC-AUC", title: "Area under the ROC curve of the positive class's score", metrics: ["rocAuc"], fmt: (x) => fixed(x, 4), binary: true },
  { head: "Params", title: "Trainable parameters", metrics: ["params"], fmt: grouped, stdOnlyIfNonzero: true },
  { head: "ONNX size", sub: "raw / gzip", title: "Model file size, and after gzip -9", metrics: ["onnxBytes", "onnxGzipBytes"], fmt: bytes, stdOnlyIfNonzero: true },
  { head: "Latency", sub: "p50 / p95", title: "Batch-1 latency percentiles under onnxruntime-node", metrics: ["latencyP50Ms", "latencyP95Ms"], fmt: (x) => formatMs(x) },
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

/** The teacher's cost of a distilled model: images through the teacher per model, and how it taught. */
const TEACHER_PASSES_HEAD = `<th scope="col" title="${escapeHtml("Images run through the teacher to teach one such model. cached: its outputs on the transfer set, computed once and shared by every seed (and later runs) through the cache; consistent: the teacher run on every training batch as the student saw it, every epoch, per seed")}">Teacher passes<span class="unit">per model</span></th>`;

function teacherPassesCell(m: ModelResult): string {
  const p = m.teacherPasses;
  return p ? `<td>${escapeHtml(grouped(p.perModel))} <span class="sd">${p.teaching}</span></td>` : `<td class="na">${DASH}</td>`;
}

function comparisonTable(results: RunResults): string {
  const binary = results.models.some((m) => m.perSeed.some((s) => typeof s.f1 === "number"));
  const columns = COLUMNS.filter((c) => binary || !c.binary);
  const passes = results.models.some((m) => m.teacherPasses);
  const head = columns.map((c) => `<th scope="col" title="${escapeHtml(c.title)}">${escapeHtml(c.head)}${c.sub ? `<span class="unit">${escapeHtml(c.sub)}</span>` : ""}</th>`).join("") + (passes ? TEACHER_PASSES_HEAD : "");
  const rows = results.models
    .map((m, i) => {
      const name = `<th scope="row"><span class="swatch" style="background:${color(i)}"></span>${escapeHtml(m.role)}<span class="file">${escapeHtml(m.file)}</span></th>`;
      return `<tr>${name}${columns.map((c) => cell(m, c)).join("")}${passes ? teacherPassesCell(m) : ""}</tr>`;
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
/** One line per series (a stage, or a loss term): mean, min and max over seeds at each epoch. */
function curves(points: { series: string; epoch: number; value: number }[], stageOrder: string[]): Series[] {
  const byStage = new Map<string, Map<number, number[]>>();
  for (const { series, epoch, value: v } of points) {
    if (!Number.isFinite(v)) continue;
    let stage = byStage.get(series);
    if (!stage) byStage.set(series, (stage = new Map()));
    const list = stage.get(epoch) ?? [];
    list.push(v);
    stage.set(epoch, list);
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
    accuracyStd: summaryOf(m, "accuracy").std * 100,
    onnxBytes: summaryOf(m, "onnxBytes").mean,
  }));
  const d = results.details;
  // Each term its own colour, in the order the terms first appear.
  const termPoints = epochs.filter((e) => e.stage === "student").flatMap((e) => Object.entries(e.terms ?? {}).map(([term, value]) => ({ series: term, epoch: e.epoch, value })));
  return {
    valAccuracy: curves(epochs.map((e) => ({ series: e.stage, epoch: e.epoch, value: e.valAccuracy * 100 })), order),
    valLoss: curves(epochs.map((e) => ({ series: e.stage, epoch: e.epoch, value: e.valLoss })), order),
    // The distilled student's loss, term by term (as logged in metrics.jsonl), to see which part of the objective moves.
    studentTerms: curves(termPoints, [...new Set(termPoints.map((p) => p.series))]),
    tradeoff,
    perClass: d
      ? {
          classLabels: d.classLabels,
          series: results.models.filter((m) => d.confusion[m.role]).map((m) => ({
            label: m.role,
            color: color(results.models.indexOf(m)),
            errors: perSeedConfusion(m, d.confusion[m.role]!).map((row, c) => row.reduce((a, b) => a + b, 0) - row[c]!),
          })),
        }
      : null,
  };
}

// ---- headline, details, setup ------------------------------------------------------------

const signed = (x: number, digits: number) => (x > 0 ? "+" : x < 0 ? "−" : "±") + Math.abs(x).toFixed(digits);
const interval = (d: PairedDifference, digits: number) => (d.ci95 ? `[${signed(d.ci95[0], digits)}, ${signed(d.ci95[1], digits)}]` : "");
const times = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×` : DASH);
/** A ratio's range over the student's seeds, when there are several: timings move between models and runs. */
const spread = (bySeed: number[]) => {
  const finite = bySeed.filter(Number.isFinite);
  return finite.length > 1 ? ` (${times(Math.min(...finite))} to ${times(Math.max(...finite))} over the student's ${finite.length} seeds)` : "";
};

function headlineSection(results: RunResults): string {
  const h = headline(results);
  const role = (r: string) => results.models.find((m) => m.role === r);
  const lines: string[] = [];
  const b = h.baseline;
  if (b) {
    const better = b.errors.mean < 0;
    const verdict = b.significant === null ? "" : b.significant ? (better ? ` <span class="good">Distillation helped: the interval excludes zero.</span>` : ` <span class="bad">Distillation did worse than labels alone: the interval excludes zero.</span>`) : " The interval includes zero: no difference shown at this number of seeds.";
    const ci = b.errors.ci95 ? `; seed-paired 95% interval ${interval(b.errors, 1)} errors over ${b.errors.n} seeds` : ` (one seed: no interval; run with --seeds 3 for one)`;
    lines.push(`<p class="big" id="headline-vs-baseline">Distilled student vs baseline: <strong class="${better ? "good" : "bad"}">${signed(b.errors.mean, 1)} errors</strong> (${signed(b.accuracyPoints.mean, 2)} accuracy points)${escapeHtml(ci)}.${verdict}</p>`);
    // Only when distillation did not pay (report/no-gain.ts): the known causes that apply, or that none does.
    if (results.noGain) lines.push(`<p id="headline-no-gain"><strong>Why no gain:</strong> ${escapeHtml(results.noGain.summary)}</p>`);
    const teacherRow = role("teacher");
    const teacherErr = teacherRow ? summaryOf(teacherRow, "errors").mean : NaN;
    if (teacherRow) lines.push(`<p id="headline-gap">${gapSentence(b.gapClosed, summaryOf(role("baseline")!, "errors").mean, summaryOf(role("student")!, "errors").mean, teacherErr)}</p>`);
  }
  const t = h.vsTeacher;
  if (t) {
    lines.push(`<p id="headline-vs-teacher">Against the teacher the student has <strong>${times(t.params)} fewer parameters</strong>, a ${times(t.onnxBytes)} smaller file, <strong>${times(t.latencyP50)} lower batch-1 latency</strong>${spread(t.latencyP50BySeed)} and ${times(t.throughput)} the batch-128 throughput, for ${signed(t.accuracyPoints, 2)} accuracy points.</p>`);
  }
  return lines.length ? `<section class="headline" id="headline">${lines.join("\n")}</section>` : "";
}

/** The share of the baseline–teacher gap the distilled student closed, in words that fit its sign. */
function gapSentence(gapClosed: number | null, baselineErrors: number, studentErrors: number, teacherErrors: number): string {
  const errors = (x: number) => `${fixed(x, 1)} errors`;
  if (gapClosed === null) return "The teacher is no better than the baseline, so there is no gap to close.";
  if (gapClosed < 0)
    return `Distillation closed none of the gap between the baseline (${errors(baselineErrors)}) and the teacher (${errors(teacherErrors)}): the distilled student made <strong class="bad">${fixed(studentErrors - baselineErrors, 1)} more errors than the baseline</strong> (${errors(studentErrors)}).`;
  if (gapClosed > 1)
    return `The distilled student beats its teacher: <strong class="good">${errors(studentErrors)}</strong> against the teacher's ${errors(teacherErrors)} and the baseline's ${errors(baselineErrors)}.`;
  return `It closes <strong>${fixed(gapClosed * 100, 0)} %</strong> of the gap between the baseline (${errors(baselineErrors)}) and the teacher (${errors(teacherErrors)}).`;
}

/**
 * A role's confusion matrix for one trained model: details hold the sum over the role's seeds, and
 * a teacher trained once beside students summed over three seeds would look three times better.
 */
function perSeedConfusion(model: ModelResult, summed: number[][]): number[][] {
  const seeds = Math.max(1, model.perSeed.length);
  return summed.map((row) => row.map((v) => v / seeds));
}

/** A count that may be a mean over seeds: whole numbers as they are, else one decimal. */
const count = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));

function confusionTable(model: ModelResult, summed: number[][], labels: string[]): string {
  const role = model.role, m = perSeedConfusion(model, summed);
  const seeds = model.perSeed.length;
  const max = Math.max(1, ...m.flatMap((row, r) => row.filter((_, c) => c !== r)));
  const head = labels.map((l) => `<th scope="col" title="predicted ${escapeHtml(l)}">${escapeHtml(l.slice(0, 6))}</th>`).join("");
  const rows = m.map((row, r) => {
    const cells = row.map((v, c) => {
      // Off-diagonal cells shade by their share of the largest confusion; the diagonal stays plain.
      const bg = c === r ? "#eef4ee" : v ? `rgba(199,50,63,${(0.08 + 0.8 * (v / max)).toFixed(2)})` : "transparent";
      return `<td style="background:${bg}">${count(v)}</td>`;
    }).join("");
    const errors = row.reduce((a, b) => a + b, 0) - row[r]!;
    return `<tr><th scope="row" title="true ${escapeHtml(labels[r]!)}">${escapeHtml(labels[r]!.slice(0, 10))}</th>${cells}<td class="row-errors">${count(errors)}</td></tr>`;
  }).join("");
  return `<table class="confusion" data-role="${escapeHtml(role)}"><caption>${escapeHtml(role)}${seeds > 1 ? ` <span class="unit">mean of ${seeds} seeds</span>` : ""}</caption><thead><tr><th>true ↓ / pred →</th>${head}<th>errors</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Teacher quality first: the teacher on the validation split, its confidence, and the weak-teacher check. */
function teacherSection(results: RunResults): string {
  const t = results.teacherReport;
  if (!t) return results.teacherTraining ? `<h2>The teacher</h2>\n${teacherTrainingLine(results)}` : "";
  const peak = Math.max(1, ...t.confidenceHistogram);
  const bars = t.confidenceHistogram.map((n, b) =>
    `<tr><th scope="row">${fixed(b / 10, 1)}–${fixed((b + 1) / 10, 1)}</th><td><span class="bar" style="width:${Math.round((n / peak) * 240)}px"></span> ${grouped(n)}</td></tr>`).join("");
  const versus = t.baselineAccuracy === undefined ? "" : ` The label-only baseline reached ${percent(t.baselineAccuracy)} on the same split (first seed, last epoch)${t.warning ? ": <strong class=\"bad\">the teacher is not better</strong>." : "."}`;
  const va = results.validationAgreement;
  const agreement = va
    ? `<p id="validation-agreement">The teacher is a file of its outputs, with no test row: top-1 agreement with it on the same ${grouped(va.samples)} validation samples instead — ${Object.entries(va.perRole).map(([role, v]) => `${escapeHtml(role)} ${percent(v.reduce((a, b) => a + b, 0) / v.length)}${v.length > 1 ? ` (mean of ${v.length} seeds)` : ""}`).join(", ")}.</p>`
    : "";
  return `<h2>The teacher</h2>
${teacherTrainingLine(results)}<p id="teacher-report">${t.members ? `The ensemble of ${t.members} teachers the student learns from (their softmax outputs averaged with the run's weights), on` : "On"} ${grouped(t.samples)} validation samples (never trained on): accuracy <strong>${percent(t.accuracy)}</strong>, macro-F1 ${fixed(t.macroF1, 4)}, ECE ${fixed(t.ece, 4)}, mean confidence ${fixed(t.meanConfidence, 3)}.${versus}</p>
${agreement}
<div class="table-wrap"><table id="teacher-confidence"><caption>Teacher confidence (max softmax probability) on the validation split</caption><tbody>${bars}</tbody></table></div>`;
}

/** A teacher trained here: in this run, or reused from the teacher cache, and what its training cost. */
function teacherTrainingLine(results: RunResults): string {
  const t = results.teacherTraining;
  if (!t) return "";
  const cost = `${t.epochs} epochs in ${duration(t.seconds)}`;
  const text = t.source === "reused"
    ? `Reused from the teacher cache (${t.cache!.dir}), where it was trained on ${created(t.trainedAt)}: ${cost}. No teacher epoch ran in this run.`
    : `Trained in this run: ${cost}${t.cache ? `; kept in the teacher cache (${t.cache.dir}) for later runs` : " (teacher.cache: false, not cached)"}.`;
  return `<p id="teacher-training">${escapeHtml(text)}</p>
`;
}

/** Unlabelled transfer data against the teacher's labelled reference: confidence side by side, the tests, the warning. */
function transferSection(results: RunResults): string {
  const d = results.domainShift;
  if (!d) return "";
  const ref = d.reference, tr = d.transfer;
  const peak = Math.max(1e-9, ...ref.confidence.histogram, ...tr.confidence.histogram);
  const bar = (share: number, cls: string) => `<span class="bar ${cls}" style="width:${Math.round((share / peak) * 200)}px"></span> ${fixed(share * 100, 1)}%`;
  const rows = ref.confidence.histogram.map((r, b) =>
    `<tr><th scope="row">${fixed(b / 10, 1)}–${fixed((b + 1) / 10, 1)}</th><td>${bar(r, "reference")}</td><td>${bar(tr.confidence.histogram[b]!, "transfer")}</td></tr>`).join("");
  const test = (name: string, t: { statistic: number; pValue: number }) => `<tr><th scope="row">${escapeHtml(name)}</th><td>${fixed(t.statistic, 3)}</td><td>${t.pValue.toExponential(1)}</td></tr>`;
  const sources = d.sources.map((s) => `${escapeHtml(s.source)} (${grouped(s.samples)})`).join(", ");
  const mix = results.data?.unlabeled;
  const mixText = mix ? (mix.labeledPerBatch === null ? " Every sample is unlabelled (data.transfer: unlabeled)." : ` Each distilled batch held ${mix.labeledPerBatch} labelled and ${mix.batchSize - mix.labeledPerBatch} unlabelled samples; the hard-label loss averages over the labelled ones, the soft loss over all.`) : "";
  return `<h2>Transfer data</h2>
<p id="transfer-check">${grouped(tr.samples)} unlabelled samples from ${sources}, labelled by the teacher.${mixText} Before distilling they were checked against the ${d.reference.split} split (${grouped(ref.samples)} labelled samples the teacher did not train on): mean confidence ${fixed(tr.confidence.mean, 3)} vs ${fixed(ref.confidence.mean, 3)}, ${fixed(tr.lowConfidenceShare * 100, 1)}% vs ${fixed(ref.lowConfidenceShare * 100, 1)}% below ${d.lowConfidenceThreshold}; mean entropy ${fixed(tr.entropy.mean, 3)} vs ${fixed(ref.entropy.mean, 3)} nats. ${d.warning ? `<strong class="bad">Out of domain.</strong>` : "No shift warning."}</p>
<div class="table-wrap"><table id="transfer-confidence"><caption>Teacher confidence (max softmax probability): share of samples per bin</caption><thead><tr><th scope="col">confidence</th><th scope="col">${escapeHtml(d.reference.split)} (reference)</th><th scope="col">unlabelled transfer</th></tr></thead><tbody>${rows}</tbody></table></div>
<div class="table-wrap"><table id="transfer-tests"><caption>Two-sample Kolmogorov–Smirnov tests, transfer vs reference</caption><thead><tr><th scope="col">compared</th><th scope="col">D</th><th scope="col">p</th></tr></thead><tbody>${test("teacher confidence", d.confidenceTest)}${test("teacher entropy", d.entropyTest)}${test(d.inputStatistic ?? "mean pixel value", d.inputTest)}</tbody></table></div>
<p class="note">The warning rule: the teacher is less sure on the transfer data and its confidence distribution differs (KS D ≥ 0.15, p &lt; 0.001), or ≥ 10% of transfer samples fall below ${d.lowConfidenceThreshold} confidence and at least twice the reference's share. A shift in the input statistic alone is shown, not warned about.</p>`;
}

/** data.transferOmits: errors overall and on the omitted classes, before and after the bias shifts. */
function omittedClassesSection(results: RunResults): string {
  const b = results.biasShift, d = results.details;
  if (!b || !d) return "";
  const omitted = b.classes.map((label) => d.classLabels.indexOf(label)).filter((c) => c >= 0);
  const rows = results.models.filter((m) => d.confusion[m.role]).map((m) => {
    const c = d.confusion[m.role]!, seeds = m.perSeed.length;
    const onOmitted = omitted.reduce((n, k) => n + c[k]!.reduce((a, v) => a + v, 0) - c[k]![k]!, 0) / seeds;
    return `<tr><th scope="row">${escapeHtml(m.role)}</th><td>${fixed(m.summary.errors.mean, 1)}</td><td>${fixed(onOmitted, 1)}</td></tr>`;
  }).join("");
  const estimated = Object.entries(b.estimated).map(([seed, v]) => `seed ${seed}: ${v.map((x) => fixed(x, 2)).join(", ")}`).join("; ");
  return `<h2>Classes left out of the transfer set</h2>
<p id="omitted-classes">The students never saw ${b.classes.map(escapeHtml).join(", ")} in training. Bias shift of ${b.classes.length > 1 ? "those classes" : "that class"}: ${b.given === null ? "none given" : `given ${fixed(b.given, 2)} (student-bias-given)`}; estimated on ${escapeHtml(b.estimatedOn)} so the student predicts it as often as the teacher: ${escapeHtml(estimated)} (student-bias-estimated).</p>
<div class="table-wrap"><table id="omitted-errors"><thead><tr><th scope="col">model</th><th scope="col">test errors (mean over seeds)</th><th scope="col">on ${b.classes.map(escapeHtml).join(", ")}</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** Per-class F1 of every model (from its confusion matrix summed over seeds). */
function perClassF1Table(d: RunDetails): string {
  const perRole = Object.entries(d.perClassF1 ?? {});
  if (!perRole.length) return "";
  const head = perRole.map(([role]) => `<th scope="col">${escapeHtml(role)}</th>`).join("");
  const rows = d.classLabels.map((label, c) => `<tr><th scope="row">${escapeHtml(label)}</th>${perRole.map(([, f1]) => `<td>${f1[c] === null || f1[c] === undefined ? DASH : fixed(f1[c]!, 4)}</td>`).join("")}</tr>`).join("");
  return `<div class="table-wrap"><table id="per-class-f1"><caption>F1 per class</caption><thead><tr><th scope="col">class</th>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

function detailsSections(results: RunResults, d: RunDetails | undefined): string {
  if (!d) return `<p class="note">This results.json has no per-class details (written by an older distill).</p>`;
  const seeds = Math.max(1, ...results.models.map((m) => m.perSeed.length));
  const matrices = results.models.filter((m) => d.confusion[m.role]).map((m) => confusionTable(m, d.confusion[m.role]!, d.classLabels)).join("\n");
  const label = (c: number) => escapeHtml(d.classLabels[c] ?? String(c));
  const shown = (x: (typeof d.disagreements)[number]) =>
    d.image && x.pixels
      ? `<canvas class="thumb" data-width="${d.image.width}" data-height="${d.image.height}" data-channels="${d.image.channels ?? 1}" data-pixels="${x.pixels}" aria-label="test image ${x.index}"></canvas>`
      : x.text !== undefined ? `<q class="text-example">${escapeHtml(x.text)}</q><br>` : "";
  const examples = d.disagreements.map((x) =>
    `<div class="example">${shown(x)}#${x.index} true ${label(x.label)}<br>teacher ${label(x.teacher)} · student ${label(x.student)}</div>`).join("");
  return `<h2>Per class</h2>
<figure><figcaption>Test errors per true class, per trained model${seeds > 1 ? " (mean over seeds)" : ""}</figcaption><div class="chart-box"><canvas id="chart-per-class" role="img" aria-label="Test errors per class for each model"></canvas></div></figure>
${perClassF1Table(d)}
<div class="confusions">${matrices}</div>
<p class="note">Confusion matrices: rows are true classes, columns predictions; counts of one trained model${seeds > 1 ? ", the mean over its seeds where a model was trained with several" : ""}, so every model stands on the same footing; off-diagonal cells are shaded by count.</p>

${results.models.some((m) => m.role === "teacher") ? `<h2>Where the student and the teacher disagree</h2>
${d.disagreements.length ? `<div class="examples" id="disagreements">${examples}</div>` : `<p id="disagreements">They agree on every test example.</p>`}
<p class="note">${d.disagreementCount} of ${fixed(summaryOf(results.models[0]!, "total").mean, 0)} test examples differ between the teacher and the student (first seed); the first ${d.disagreements.length} are shown.</p>` : teacherFileOf(results) !== undefined
    ? `<p class="note" id="no-teacher">The teacher is a file of its outputs on the training data (${escapeHtml(teacherFileOf(results)!)}), not a model: it cannot be run on the test set, so there is no teacher row and no agreement with it. Its quality on the validation split is under "The teacher".</p>`
    : `<p class="note" id="no-teacher">This run has no separate teacher (its terms learn from the model itself), so there is no teacher row and no agreement with one.</p>`}`;
}

/** teacher.softTargets of the run, when its teacher is a file of soft targets. */
function teacherFileOf(results: RunResults): string | undefined {
  const teacher = results.setup?.["teacher"] as { softTargets?: unknown } | undefined;
  return typeof teacher?.softTargets === "string" ? teacher.softTargets : undefined;
}

function setupSection(results: RunResults): string {
  const sizes = results.data
    ? `<p>Training ${grouped(results.data.train)}, validation ${grouped(results.data.validation)}, test ${grouped(results.data.test)}; transfer set ${grouped(results.data.transfer)} examples (${results.data.unlabeled ? `${grouped(results.data.transfer - results.data.unlabeled.samples)} ${results.data.transferLabeled ? "labelled" : "with labels withheld"} + ${grouped(results.data.unlabeled.samples)} unlabelled` : results.data.transferLabeled ? "labelled" : "labels withheld"})${results.data.jitteredCopies ? `, of which ${grouped(results.data.jitteredCopies.samples)} are copies of the training images shifted by up to ${results.data.jitteredCopies.jitter} pixels (${results.data.jitteredCopies.copies} per image), labelled by the teacher` : ""}.</p>`
    : "";
  const setup = results.setup ? `<pre>${escapeHtml(toYaml(results.setup))}</pre>` : `<p class="note">No setup recorded in results.json.</p>`;
  return `<details class="setup" id="setup"><summary>Data, architectures and training settings</summary>${sizes}${setup}</details>`;
}

function machineNote(results: RunResults): string {
  const m = results.machine;
  if (!m) return "Latency and throughput: onnxruntime-node on the machine that ran the training.";
  return `Latency and throughput: onnxruntime-node, ${m.onnxThreads} intra-op threads on ${m.cpus} cores (${m.cpuModel}); load average ${m.loadAverage.join(", ")} when timing began.`;
}

// ---- page ----------------------------------------------------------------------------------

/** Stages whose training loss exploded: their rows and curves mean nothing, and the reader must see that first. */
function divergenceBanner(epochs: EpochMetric[]): string {
  const found = divergences(epochs);
  return found.length ? `<p class="warning" id="divergence-warning">${found.map((d) => escapeHtml(`Warning: ${divergenceWarning(d)}.`)).join("<br>")}</p>\n` : "";
}

/**
 * The chart geometry the browser script shares with compare.html, inlined from its compiled source
 * (each function is self-contained), so there is one implementation of label placement and ticks.
 */
function chartGeometrySource(): string {
  return [placeLabels, binaryByteTicks, byteTickLabel].map((f) => f.toString()).join("\n");
}

export interface ReportLinks {
  /** `distill compare` has written compare.html next to the report. */
  compare?: boolean;
}

export function renderReport(results: RunResults, epochs: EpochMetric[], links: ReportLinks = {}): string {
  const seeds = results.seeds ?? [];
  const facts: [string, string][] = [
    ["Dataset", results.dataset],
    ["Loss", results.kd ? results.kd.terms.map((t) => `${t.weight === 1 ? "" : `${t.weight} × `}${t.method}`).join(" + ") : "logit-kd"],
    ["Temperature T", results.temperature === null ? DASH : String(results.temperature)],
    ["α (KD weight)", results.alpha === null ? DASH : String(results.alpha)],
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
<style>${inlineAsset("report.css")}</style>
</head>
<body>
<h1>${escapeHtml(results.name)}</h1>
<p class="sub">Knowledge-distillation run report</p>
${results.teacherReport?.warning ? `<p class="warning" id="teacher-warning">${escapeHtml(results.teacherReport.warning)}</p>
` : ""}${results.domainShift?.warning ? `<p class="warning" id="shift-warning">${escapeHtml(results.domainShift.warning)}</p>
` : ""}${divergenceBanner(epochs)}${headlineSection(results)}
<dl class="facts">${factsHtml}</dl>

<h2>Comparison</h2>
${links.compare ? `<p id="compare-link">Quantized and pruned variants, measured side by side: <a href="compare.html">compression comparison</a> (written by <code>distill compare</code>).</p>\n` : ""}
${comparisonTable(results)}
<p class="note">Test-set figures${multi ? `; mean <span class="sd">± sample std</span> over seeds` : ""}. ${escapeHtml(machineNote(results))} Hover a column head for its definition.</p>

<h2>Accuracy against cost</h2>
<div class="charts">
<figure><figcaption>Accuracy vs batch-1 latency</figcaption><div class="chart-box"><canvas id="chart-accuracy-latency" role="img" aria-label="Test accuracy against p50 latency, log scale"></canvas></div></figure>
<figure><figcaption>Accuracy vs model size</figcaption><div class="chart-box"><canvas id="chart-accuracy-size" role="img" aria-label="Test accuracy against ONNX file size, log scale"></canvas></div></figure>
</div>
<p class="note">Log-scaled cost axes. Bars span ± one std over seeds; the dashed line is the Pareto front (no other model is both more accurate and cheaper). Up and to the left is better.</p>

<h2>Learning curves</h2>
<div class="charts">
<figure><figcaption>Validation accuracy per epoch</figcaption><div class="chart-box"><canvas id="chart-val-accuracy" role="img" aria-label="Validation accuracy per epoch for each stage"></canvas></div></figure>
<figure><figcaption>Validation loss per epoch</figcaption><div class="chart-box"><canvas id="chart-val-loss" role="img" aria-label="Validation loss per epoch for each stage"></canvas></div></figure>
<figure><figcaption>The distilled student's training loss, term by term</figcaption><div class="chart-box"><canvas id="chart-student-terms" role="img" aria-label="Training loss terms of the distilled student per epoch"></canvas></div></figure>
</div>
${epochs.length ? "" : `<p class="note">No per-epoch metrics were recorded for this run (metrics.jsonl is missing or empty).</p>\n`}<p class="note">Lines are means over seeds${multi ? "; shaded bands span the seeds' min to max" : ""}. Validation loss is the same quantity for every stage (NLL of the true label), unlike training losses, whose objectives differ.</p>

${teacherSection(results)}
${transferSection(results)}
${omittedClassesSection(results)}
${detailsSections(results, results.details)}

${setupSection(results)}

<footer>Generated by distill ${escapeHtml(results.codeVersion)}. Self-contained: no network access needed.</footer>
<script type="application/json" id="report-data">${scriptJson(chartData(results, epochs))}</script>
<script>${chartJs()}</script>
<script>${chartGeometrySource()}</script>
<script>${inlineAsset("report.js")}</script>
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
  writeFileAtomic(out, renderReport(results, epochs, { compare: existsSync(join(runDir, "compare.html")) }));
  return out;
}
