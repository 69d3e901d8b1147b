// Does a transfer set look like the data the teacher knows? Before unlabeled data is labelled by
// the teacher, compare it with the labelled training data through the teacher's eyes — its
// confidence and entropy — and through the raw inputs (mean pixel intensity per image), with
// two-sample Kolmogorov–Smirnov tests. A teacher labelling out-of-domain inputs is unsure (or,
// worse, confidently wrong), and a student distilled on those labels learns the wrong thing.

import { DATASET_NAMES, loadDataset, type DatasetName } from "../data/datasets.js";
import { describeSamples, imageShape, sampleSize, type SampleSet } from "../data/sample-set.js";
import { readIdx } from "../data/idx.js";
import { allIndices, firstN } from "../data/split.js";
import { UserError } from "../errors.js";
import { dataOfModel } from "../data/load.js";
import { OnnxClassifier } from "./evaluate.js";
import { softmaxRows } from "./metrics.js";

export interface Distribution {
  mean: number;
  /** Share of samples per bin of [0, 1] (confidence) or [0, ln K] (entropy), 10 bins. */
  histogram: number[];
}

export interface KsTest {
  /** largest gap between the two empirical CDFs */
  statistic: number;
  /** asymptotic two-sided p-value */
  pValue: number;
}

export interface ShiftReport {
  reference: { samples: number; confidence: Distribution; entropy: Distribution; lowConfidenceShare: number };
  transfer: { samples: number; confidence: Distribution; entropy: Distribution; lowConfidenceShare: number };
  confidenceTest: KsTest;
  entropyTest: KsTest;
  /** KS test on a per-sample input statistic (`inputStatistic`): a shift in the inputs themselves. */
  inputTest: KsTest;
  /** What inputTest compares: "mean pixel value" for images, "unknown-word share" for texts. */
  inputStatistic?: string;
  lowConfidenceThreshold: number;
  warning: string | null;
}

/** Two-sample KS statistic and its asymptotic p-value (Numerical Recipes §14.3, with Stephens' correction). */
export function ksTest(a: ArrayLike<number>, b: ArrayLike<number>): KsTest {
  const x = Float64Array.from(a).sort(), y = Float64Array.from(b).sort();
  if (x.length === 0 || y.length === 0) throw new RangeError("ksTest needs two non-empty samples");
  let i = 0, j = 0, d = 0;
  while (i < x.length && j < y.length) {
    const v = Math.min(x[i]!, y[j]!);
    while (i < x.length && x[i]! <= v) i++;
    while (j < y.length && y[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / x.length - j / y.length));
  }
  const ne = (x.length * y.length) / (x.length + y.length);
  const lambda = (Math.sqrt(ne) + 0.12 + 0.11 / Math.sqrt(ne)) * d;
  return { statistic: d, pValue: kolmogorovQ(lambda) };
}

/** Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2 j² λ²}, clamped to [0, 1]. */
function kolmogorovQ(lambda: number): number {
  if (lambda < 1e-3) return 1;
  let sum = 0;
  for (let j = 1; j <= 100; j++) {
    const term = 2 * (j % 2 ? 1 : -1) * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return Math.min(1, Math.max(0, sum));
}

function distribution(values: Float64Array, max: number): Distribution {
  const histogram = new Array<number>(10).fill(0);
  let sum = 0;
  for (const v of values) {
    sum += v;
    histogram[Math.min(9, Math.floor((v / max) * 10))]! += 1 / values.length;
  }
  return { mean: sum / values.length, histogram };
}

/** Per-sample top-1 probability and entropy (nats) of the teacher's softmax. */
export function confidenceAndEntropy(logits: Float32Array, k: number): { confidence: Float64Array; entropy: Float64Array } {
  const p = softmaxRows(logits, k);
  const n = p.length / k;
  const confidence = new Float64Array(n), entropy = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let top = 0, h = 0;
    for (let c = 0; c < k; c++) {
      const q = p[i * k + c]!;
      top = Math.max(top, q);
      if (q > 0) h -= q * Math.log(q);
    }
    confidence[i] = top;
    entropy[i] = h;
  }
  return { confidence, entropy };
}

export interface ShiftInput {
  classes: number;
  referenceLogits: Float32Array;
  transferLogits: Float32Array;
  /** A per-sample input statistic: the mean pixel value of each image (0–255), by default. */
  referenceInputMeans: Float64Array;
  transferInputMeans: Float64Array;
  inputStatistic?: string;
  /** A sample is "unsure" below this top-1 probability. Default 0.5. */
  lowConfidenceThreshold?: number;
}

/**
 * The warning rule (chosen, stated in the report): the teacher is less sure on the transfer set and its
 * confidence distributions differ by a KS statistic ≥ 0.15 at p < 0.001, or the share of unsure transfer samples is ≥ 10% and at least
 * twice the reference's. An input-statistics shift alone is reported, not warned about: brightness
 * can change without the teacher minding.
 */
export function domainShift(s: ShiftInput): ShiftReport {
  const threshold = s.lowConfidenceThreshold ?? 0.5;
  const side = (logits: Float32Array) => {
    const { confidence, entropy } = confidenceAndEntropy(logits, s.classes);
    const low = confidence.reduce((n, c) => n + (c < threshold ? 1 : 0), 0) / confidence.length;
    return { confidence, entropy, summary: { samples: confidence.length, confidence: distribution(confidence, 1), entropy: distribution(entropy, Math.log(s.classes)), lowConfidenceShare: low } };
  };
  const ref = side(s.referenceLogits), tr = side(s.transferLogits);
  const confidenceTest = ksTest(ref.confidence, tr.confidence);
  const entropyTest = ksTest(ref.entropy, tr.entropy);
  const inputTest = ksTest(s.referenceInputMeans, s.transferInputMeans);
  const reasons: string[] = [];
  // One-sided: a transfer set the teacher is surer about (e.g. its own training images) is no risk.
  const lessSure = tr.summary.confidence.mean < ref.summary.confidence.mean;
  if (lessSure && confidenceTest.statistic >= 0.15 && confidenceTest.pValue < 1e-3)
    reasons.push(`the teacher's confidence differs (KS ${confidenceTest.statistic.toFixed(3)}, p ${confidenceTest.pValue.toExponential(1)}; mean ${tr.summary.confidence.mean.toFixed(3)} vs ${ref.summary.confidence.mean.toFixed(3)})`);
  if (tr.summary.lowConfidenceShare >= 0.1 && tr.summary.lowConfidenceShare >= 2 * ref.summary.lowConfidenceShare)
    reasons.push(`${(tr.summary.lowConfidenceShare * 100).toFixed(1)}% of transfer samples get top-1 probability below ${threshold} (reference ${(ref.summary.lowConfidenceShare * 100).toFixed(1)}%)`);
  return {
    reference: ref.summary,
    transfer: tr.summary,
    confidenceTest,
    entropyTest,
    inputTest,
    inputStatistic: s.inputStatistic ?? "mean pixel value",
    lowConfidenceThreshold: threshold,
    warning: reasons.length ? `the transfer set looks out of domain for this teacher: ${reasons.join("; ")}` : null,
  };
}

/** Mean pixel value of each image in `images` ([count, pixels] row-major). */
export function imageMeans(images: Uint8Array, pixels: number, indices?: Int32Array): Float64Array {
  const count = indices ? indices.length : images.length / pixels;
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    const idx = indices ? indices[i]! : i;
    let s = 0;
    for (let p = 0; p < pixels; p++) s += images[idx * pixels + p]!;
    out[i] = s / pixels;
  }
  return out;
}

/** Per text: the share of its words (non-padding ids) that the vocabulary does not know (id 1). */
export function unknownWordShares(ids: Int32Array, maxTokens: number, indices: Int32Array): Float64Array {
  const out = new Float64Array(indices.length);
  indices.forEach((idx, i) => {
    let words = 0, unknown = 0;
    for (let t = 0; t < maxTokens; t++) {
      const id = ids[idx * maxTokens + t]!;
      if (id === 0) continue;
      words++;
      if (id === 1) unknown++;
    }
    out[i] = words ? unknown / words : 1;
  });
  return out;
}

/** The per-sample input statistic the shift check compares, for a set's kind. */
export function inputStatistic(set: SampleSet, indices: Int32Array): { name: string; values: Float64Array } | undefined {
  if (set.kind === "image") return { name: "mean pixel value", values: imageMeans(set.inputs as Uint8Array, sampleSize(set), indices) };
  if (set.kind === "tokens") return { name: "unknown-word share", values: unknownWordShares(set.inputs as Int32Array, set.sampleShape[0]!, indices) };
  return undefined;
}

// ---- `distill shift`: check a transfer set against a teacher before distilling -----------------

export interface ShiftCommandOptions {
  /** A named dataset (its training images) or an IDX images file (raw or .gz). */
  transfer: string;
  /** The teacher's own data (default: the data its metadata records); its test images, which the
   * teacher has not seen, show how sure it is on in-domain data. */
  reference?: DatasetName;
  /** Invert the transfer images (255 − x): a quick way to see what a shift looks like. */
  invert?: boolean;
  limit: number;
  json: boolean;
}

function transferImages(spec: string, invert: boolean, limit: number): SampleSet {
  let images: Uint8Array, height: number, width: number;
  if ((DATASET_NAMES as readonly string[]).includes(spec)) {
    const set = loadDataset(spec as DatasetName).train;
    images = set.inputs as Uint8Array;
    ({ height, width } = imageShape(set));
  } else {
    const idx = readIdx(spec);
    if (idx.dims.length !== 3) throw new UserError(spec, `expected IDX images [count, rows, cols], got dimensions ${idx.dims.join("×")}`);
    [, height, width] = idx.dims as [number, number, number];
    images = idx.data;
  }
  const count = Math.min(limit, images.length / (height * width));
  let slice = images.subarray(0, count * height * width);
  if (invert) slice = slice.map((v) => 255 - v);
  return { kind: "image", inputs: slice, labels: new Uint8Array(count), count, sampleShape: [1, height, width] };
}

export async function shiftCommand(teacherPath: string, o: ShiftCommandOptions): Promise<ShiftReport> {
  const teacher = await OnnxClassifier.fromFile(teacherPath);
  try {
    const data = await dataOfModel(teacher.metadata, o.reference, teacherPath, "its test images show how sure the teacher is on its own data", "--reference");
    const referenceName = data.name, reference = data.test;
    if (reference.kind !== "image") throw new UserError(teacherPath, `distill shift compares images, but the teacher's data (${referenceName}) are ${describeSamples(reference)}`);
    const transfer = transferImages(o.transfer, o.invert === true, o.limit);
    teacher.checkFits(reference, `${referenceName} test images`);
    teacher.checkFits(transfer, `transfer images`);
    const refIdx = firstN(allIndices(reference.count), o.limit);
    const trIdx = allIndices(transfer.count);
    const pixels = sampleSize(reference);
    const report = domainShift({
      classes: teacher.numClasses,
      referenceLogits: await teacher.logits(reference, refIdx),
      transferLogits: await teacher.logits(transfer, trIdx),
      referenceInputMeans: imageMeans(reference.inputs as Uint8Array, pixels, refIdx),
      transferInputMeans: imageMeans(transfer.inputs as Uint8Array, pixels, trIdx),
    });
    if (o.json) process.stdout.write(JSON.stringify(report) + "\n");
    else {
      const side = (name: string, s: ShiftReport["reference"]) =>
        `  ${name.padEnd(10)} ${String(s.samples).padStart(6)} samples  confidence ${s.confidence.mean.toFixed(3)}  entropy ${s.entropy.mean.toFixed(3)} nats  below ${report.lowConfidenceThreshold}: ${(s.lowConfidenceShare * 100).toFixed(1)}%`;
      const ks = (name: string, t: KsTest) => `  KS ${name.padEnd(11)} D = ${t.statistic.toFixed(3)}, p = ${t.pValue.toExponential(1)}`;
      process.stdout.write([`${o.transfer}${o.invert ? " (inverted)" : ""} against ${referenceName} through ${teacherPath}`, side(referenceName, report.reference), side("transfer", report.transfer), ks("confidence", report.confidenceTest), ks("entropy", report.entropyTest), ks("pixel mean", report.inputTest), report.warning ? `warning: ${report.warning}` : "no shift warning"].join("\n") + "\n");
    }
    return report;
  } finally {
    await teacher.dispose();
  }
}
