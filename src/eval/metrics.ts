// Test-set metrics over raw logits. Everything is computed in float64 from float32 logits so the
// numbers do not depend on the model's precision, and nothing here touches onnxruntime.

import type { MeanStd, MetricName, MetricSummary, ModelMetrics } from "./model-metrics.js";

export type Labels = Uint8Array | Int32Array | readonly number[];

function rowsOf(logits: Float32Array, k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`class count must be a positive integer, got ${k}`);
  if (logits.length % k !== 0) throw new RangeError(`logits length ${logits.length} is not a multiple of ${k} classes`);
  return logits.length / k;
}

function checkLabels(labels: Labels, n: number, k: number): void {
  if (labels.length !== n) throw new RangeError(`${labels.length} labels for ${n} rows of logits`);
  if (n === 0) throw new RangeError("no samples");
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= k) throw new RangeError(`label ${y} at row ${i} is outside 0..${k - 1}`);
  }
}

/** Arg-max of each row; ties go to the lowest class index (as numpy/onnx ArgMax do). */
export function predictions(logits: Float32Array, k: number): Int32Array {
  const n = rowsOf(logits, k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let best = 0;
    let bestV = logits[o]!;
    for (let c = 1; c < k; c++) {
      const v = logits[o + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax, max-shifted so large logits do not overflow. */
export function softmaxRows(logits: Float32Array, k: number): Float64Array {
  const n = rowsOf(logits, k);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, logits[o + c]!);
    let s = 0;
    for (let c = 0; c < k; c++) s += out[o + c] = Math.exp(logits[o + c]! - m);
    for (let c = 0; c < k; c++) out[o + c]! /= s;
  }
  return out;
}

/**
 * Mean entropy (nats) of softmax(logits / temperature) over the rows: how soft a teacher's soft
 * targets are at that temperature (log K when they are uniform).
 */
export function meanSoftmaxEntropy(logits: Float32Array, k: number, temperature: number): number {
  const n = rowsOf(logits, k);
  if (n === 0) return NaN;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, logits[o + c]! / temperature);
    // H = log Σ e^(z−m) − Σ p·(z−m), with p = e^(z−m) / Σ e^(z−m)
    let s = 0, weighted = 0;
    for (let c = 0; c < k; c++) {
      const z = logits[o + c]! / temperature - m;
      const e = Math.exp(z);
      s += e;
      weighted += e * z;
    }
    total += Math.log(s) - weighted / s;
  }
  return total / n;
}

export function errorCount(logits: Float32Array, labels: Labels, k: number): number {
  const pred = predictions(logits, k);
  checkLabels(labels, pred.length, k);
  let wrong = 0;
  for (let i = 0; i < pred.length; i++) if (pred[i] !== labels[i]) wrong++;
  return wrong;
}

/** Fraction of rows whose arg-max is the label, 0..1. */
export function accuracy(logits: Float32Array, labels: Labels, k: number): number {
  return 1 - errorCount(logits, labels, k) / labels.length;
}

/**
 * Unweighted mean of per-class F1 = 2·TP / (2·TP + FP + FN). A class that is neither predicted
 * nor present has no defined F1 and is left out rather than counted as 0 or 1.
 */
export function macroF1(logits: Float32Array, labels: Labels, k: number): number {
  const pred = predictions(logits, k);
  checkLabels(labels, pred.length, k);
  const tp = new Float64Array(k), fp = new Float64Array(k), fn = new Float64Array(k);
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!, y = labels[i]!;
    if (p === y) tp[y]!++;
    else {
      fp[p]!++;
      fn[y]!++;
    }
  }
  let sum = 0, classes = 0;
  for (let c = 0; c < k; c++) {
    const denom = 2 * tp[c]! + fp[c]! + fn[c]!;
    if (denom === 0) continue;
    sum += (2 * tp[c]!) / denom;
    classes++;
  }
  return sum / classes;
}

/**
 * Two-class quality of the positive class (index `positive`): precision, recall and F1 of the
 * arg-max decision, and ROC-AUC of the score z_pos − z_neg (monotone in p(pos), so the same curve
 * as the probability's) by the rank-sum statistic, ties counted half. A metric with no defined
 * value (no positive predictions, no positive or negative samples) is null.
 */
export function binaryMetrics(logits: Float32Array, labels: Labels, positive = 1): { precision: number | null; recall: number | null; f1: number | null; rocAuc: number | null } {
  const n = rowsOf(logits, 2);
  checkLabels(labels, n, 2);
  const neg = 1 - positive;
  let tp = 0, fp = 0, fn = 0;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    scores[i] = logits[2 * i + positive]! - logits[2 * i + neg]!;
    // Ties go to class 0, as predictions() does.
    const predicted = logits[2 * i + 1]! > logits[2 * i]! ? 1 : 0;
    const isPos = labels[i] === positive;
    if (predicted === positive && isPos) tp++;
    else if (predicted === positive) fp++;
    else if (isPos) fn++;
  }
  const precision = tp + fp ? tp / (tp + fp) : null;
  const recall = tp + fn ? tp / (tp + fn) : null;
  const f1 = 2 * tp + fp + fn ? (2 * tp) / (2 * tp + fp + fn) : null;
  return { precision, recall, f1, rocAuc: rocAuc(scores, Array.from(labels, (y) => y === positive)) };
}

/** P(score of a random positive > score of a random negative) + ½ P(tie): Mann–Whitney U / (n₊·n₋). */
export function rocAuc(scores: ArrayLike<number>, isPositive: boolean[]): number | null {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0, rankSum = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    while (end + 1 < order.length && scores[order[end + 1]!] === scores[order[start]!]) end++;
    const averageRank = (start + end) / 2 + 1; // 1-based ranks, ties share their mean
    for (let j = start; j <= end; j++) if (isPositive[order[j]!]) {
      pos++;
      rankSum += averageRank;
    }
    start = end + 1;
  }
  const negatives = order.length - pos;
  if (pos === 0 || negatives === 0) return null;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * negatives);
}

/** F1 of each class from a confusion matrix [true][predicted]; null for a class neither present nor predicted. */
export function perClassF1(confusion: number[][]): (number | null)[] {
  return confusion.map((row, c) => {
    const tp = row[c]!;
    const denom = row.reduce((a, b) => a + b, 0) + confusion.reduce((a, r) => a + r[c]!, 0);
    return denom ? (2 * tp) / denom : null;
  });
}

/** Mean −log p(label), via log-sum-exp so ±1e4 logits stay finite. */
export function meanNll(logits: Float32Array, labels: Labels, k: number): number {
  const n = rowsOf(logits, k);
  checkLabels(labels, n, k);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let m = -Infinity;
    for (let c = 0; c < k; c++) m = Math.max(m, logits[o + c]!);
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(logits[o + c]! - m);
    total += m + Math.log(s) - logits[o + labels[i]!]!;
  }
  return total / n;
}

/**
 * Expected calibration error (Guo et al., 2017): rows are put in `bins` equal-width bins of
 * confidence (max softmax probability), bin b holding (b/bins, (b+1)/bins]; the result is
 * Σ_b (|B_b| / n) · |accuracy(B_b) − mean confidence(B_b)|.
 */
export function expectedCalibrationError(logits: Float32Array, labels: Labels, k: number, bins = 15): number {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`bins must be a positive integer, got ${bins}`);
  const probs = softmaxRows(logits, k);
  const n = probs.length / k;
  checkLabels(labels, n, k);
  const count = new Float64Array(bins), correct = new Float64Array(bins), conf = new Float64Array(bins);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[o + c]! > probs[o + best]!) best = c;
    const p = probs[o + best]!;
    // Right-closed bins, as in the paper; confidence is ≥ 1/k > 0 so bin 0 is never below range.
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(p * bins) - 1));
    count[b]!++;
    conf[b]! += p;
    if (best === labels[i]) correct[b]!++;
  }
  let ece = 0;
  for (let b = 0; b < bins; b++) {
    if (count[b] === 0) continue;
    ece += Math.abs(correct[b]! - conf[b]!) / n; // = (|B|/n)·|acc − conf|
  }
  return ece;
}

/** Fraction of rows on which two models pick the same class (e.g. student vs teacher). */
export function topOneAgreement(logitsA: Float32Array, logitsB: Float32Array, k: number): number {
  const a = predictions(logitsA, k), b = predictions(logitsB, k);
  if (a.length !== b.length) throw new RangeError(`agreement over ${a.length} and ${b.length} rows`);
  if (a.length === 0) throw new RangeError("no samples");
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

/** Mean and sample standard deviation (n − 1); std is 0 for one value. */
export function meanStd(values: number[]): MeanStd {
  if (values.length === 0) throw new RangeError("meanStd of no values");
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  const std = values.length > 1 ? Math.sqrt(ss / (values.length - 1)) : 0;
  return { mean, std, values: values.slice() };
}

// Written as an object so the compiler fails here when ModelMetrics gains or loses a field.
const METRIC_KEYS: Record<MetricName, true> = {
  accuracy: true,
  errors: true,
  total: true,
  macroF1: true,
  nll: true,
  ece: true,
  agreement: true,
  precision: true,
  recall: true,
  f1: true,
  rocAuc: true,
  params: true,
  onnxBytes: true,
  onnxGzipBytes: true,
  latencyP50Ms: true,
  latencyP95Ms: true,
  throughput: true,
};
export const METRIC_NAMES = Object.keys(METRIC_KEYS) as MetricName[];

/**
 * Per-metric mean ± std over seeds. Null values (the teacher's agreement, binary metrics of a
 * multi-class model) are left out; when all are null the key is absent — never a made-up 0, and
 * never NaN (which JSON cannot hold).
 */
export function summarize(perSeed: ModelMetrics[]): MetricSummary {
  if (perSeed.length === 0) throw new RangeError("summarize needs at least one seed");
  const out: Partial<Record<MetricName, MeanStd>> = {};
  for (const key of METRIC_NAMES) {
    const values = perSeed.map((m) => m[key]).filter((v): v is number => v !== null);
    if (values.length) out[key] = meanStd(values);
  }
  return out as MetricSummary;
}
