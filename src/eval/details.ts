// What the report shows beyond the comparison table: each model's confusion matrix on the test set,
// the test examples where the student and the teacher disagree (with their pixels, for thumbnails),
// and the machine the timings were taken on. Computed in one extra test-set pass per model file.

import { availableParallelism, cpus, loadavg } from "node:os";
import { imageShape, sampleSize, type SampleSet } from "../data/sample-set.js";
import { OnnxClassifier } from "./evaluate.js";
import { perClassF1, predictions } from "./metrics.js";
import type { Disagreement, MachineFacts, RunDetails } from "./types.js";

/** confusion[true][predicted] counts. */
export function confusionMatrix(pred: Int32Array, labels: ArrayLike<number>, k: number): number[][] {
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < pred.length; i++) m[labels[i]!]![pred[i]!]!++;
  return m;
}

function addInto(total: number[][] | undefined, m: number[][]): number[][] {
  if (!total) return m.map((row) => row.slice());
  for (let r = 0; r < m.length; r++) for (let c = 0; c < m.length; c++) total[r]![c]! += m[r]![c]!;
  return total;
}

/** Up to `max` test examples where the two models' top-1 predictions differ, in test order. */
export function disagreements(teacher: Int32Array, student: Int32Array, set: SampleSet, indices: Int32Array, max: number): Disagreement[] {
  const out: Disagreement[] = [];
  const size = sampleSize(set);
  for (let i = 0; i < indices.length && out.length < max; i++) {
    if (teacher[i] === student[i]) continue;
    const idx = indices[i]!;
    out.push({
      index: idx,
      label: set.labels[idx]!,
      teacher: teacher[i]!,
      student: student[i]!,
      ...(set.kind === "image" ? { pixels: Buffer.from(set.inputs.subarray(idx * size, (idx + 1) * size)).toString("base64") } : {}),
      ...(set.texts ? { text: set.texts[idx]! } : {}),
    });
  }
  return out;
}

export function machineFacts(): MachineFacts {
  const cpu = cpus()[0];
  return {
    cpus: availableParallelism(),
    cpuModel: cpu?.model.trim() ?? "unknown",
    // distill leaves onnxruntime's intra-op pool at its default: one thread per core.
    onnxThreads: availableParallelism(),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export interface DetailsInput {
  /** Model files per role, one per seed (first seed first). The first role is the teacher. */
  files: { role: string; perSeed: string[] }[];
  set: SampleSet;
  indices: Int32Array;
  classLabels: string[];
  /** Disagreement examples kept (student's first seed vs the teacher). */
  maxExamples?: number;
}

/** Confusion matrices summed over seeds, and the student's disagreements with the teacher. */
export async function runDetails(d: DetailsInput): Promise<RunDetails> {
  const k = d.classLabels.length;
  const labels = Array.from(d.indices, (i) => d.set.labels[i]!);
  const confusion: Record<string, number[][]> = {};
  const f1: Record<string, (number | null)[]> = {};
  const firstPredictions = new Map<string, Int32Array>();
  for (const { role, perSeed } of d.files) {
    let total: number[][] | undefined;
    for (const [s, file] of perSeed.entries()) {
      const c = await OnnxClassifier.fromFile(file);
      try {
        const pred = predictions(await c.logits(d.set, d.indices), k);
        if (s === 0) firstPredictions.set(role, pred);
        total = addInto(total, confusionMatrix(pred, labels, k));
      } finally {
        await c.dispose();
      }
    }
    if (total) {
      confusion[role] = total;
      f1[role] = perClassF1(total);
    }
  }
  const teacher = firstPredictions.get("teacher");
  const student = firstPredictions.get("student");
  return {
    classLabels: d.classLabels,
    confusion,
    perClassF1: f1,
    ...(d.set.kind === "image" ? { image: imageShape(d.set) } : {}),
    disagreements: teacher && student ? disagreements(teacher, student, d.set, d.indices, d.maxExamples ?? 24) : [],
    disagreementCount: teacher && student ? teacher.reduce((n, t, i) => n + (t === student[i] ? 0 : 1), 0) : 0,
  };
}
