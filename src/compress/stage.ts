// `compress:` in a run's config: the realistic path, "distil, then quantize", as the run's last
// stage. The distilled student (first seed) is quantized each way asked for; the variants are then
// evaluated beside the other models (test accuracy, agreement with the teacher, size, latency).

import type { SampleSet } from "../data/sample-set.js";
import { UserError } from "../errors.js";
import { calibrate } from "./calibrate.js";
import { sampleBatch } from "./check.js";
import { calibrationTensors, convertFp16, quantizeDynamic, quantizeStatic } from "./quantize.js";

export const QUANTIZE_MODES = ["dynamic", "static", "fp16"] as const;
export type QuantizeStageMode = (typeof QUANTIZE_MODES)[number];

/** The role (and file stem) a variant gets in results.json: student-int8, student-int8-static, student-fp16. */
export function variantRole(mode: QuantizeStageMode): string {
  return { dynamic: "student-int8", static: "student-int8-static", fp16: "student-fp16" }[mode];
}

/**
 * The student quantized one way. Static int8 calibrates activation ranges (percentile 99.99) on the
 * first `calibrationSamples` training samples — data the student has seen, never the test set.
 */
export async function quantizeStudent(bytes: Uint8Array, where: string, mode: QuantizeStageMode, calibration: { set: SampleSet; indices: Int32Array; samples: number; sampleShape: number[]; inputName: string }): Promise<Uint8Array> {
  if (mode === "dynamic") return quantizeDynamic(bytes, where, "auto").bytes;
  if (mode === "fp16") return convertFp16(bytes, where).bytes;
  if (calibration.set.kind === "tokens") throw new UserError("compress.quantize", "static int8 calibrates activations on float inputs; a text student takes token ids: use dynamic");
  const n = Math.min(calibration.samples, calibration.indices.length);
  const batch = sampleBatch(calibration.set, calibration.indices.subarray(0, n), n, calibration.sampleShape);
  const ranges = await calibrate(bytes, where, calibrationTensors(bytes, where), { inputName: calibration.inputName, sampleShape: calibration.sampleShape, samples: batch.data as Float32Array, count: n }, "percentile", 99.99);
  return quantizeStatic(bytes, where, ranges, `percentile 99.99, ${n} training samples`).bytes;
}
