// Calibration for static quantization: run the float model on sample images with the activations
// of interest exposed as extra outputs, and pick each one's range — min/max, or a percentile of the
// values, which ignores rare outliers that would otherwise stretch the 256 levels thin (Wu et al. 2020,
// "Integer Quantization for Deep Learning Inference", §4: percentile calibration).

import onnxProto from "onnx-proto";
import { Session } from "../engine/runtime.js";
import { DT, readModelProto, writeModelProto } from "./onnx-model.js";

export type CalibrationMethod = "minmax" | "percentile";
export type ActivationRanges = Map<string, { lo: number; hi: number }>;

export interface CalibrationInput {
  inputName: string;
  sampleShape: number[];
  /** Raw samples, count × prod(sampleShape) floats (pixels 0–255 for distill's models). */
  samples: Float32Array;
  count: number;
}

/** Values kept per tensor for percentiles; evenly strided beyond that (the tails stay represented). */
const MAX_KEPT = 1 << 21;

export async function calibrate(bytes: Uint8Array, where: string, tensors: string[], input: CalibrationInput, method: CalibrationMethod, percentile = 99.99, batch = 64): Promise<ActivationRanges> {
  const m = readModelProto(bytes, where);
  const existing = new Set((m.graph!.output ?? []).map((o) => o.name));
  for (const name of tensors)
    if (!existing.has(name))
      m.graph!.output!.push(onnxProto.onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: DT.FLOAT } } }));
  const session = await Session.create(writeModelProto(m));
  const per = input.sampleShape.reduce((a, b) => a * b, 1);
  const min = new Map<string, number>(), max = new Map<string, number>();
  const kept = new Map<string, Float32Array[]>();
  try {
    for (let start = 0; start < input.count; start += batch) {
      const n = Math.min(batch, input.count - start);
      const data = input.samples.subarray(start * per, (start + n) * per);
      const out = await session.run({ [input.inputName]: { dtype: "float32", shape: [n, ...input.sampleShape], data } }, undefined, tensors);
      for (const name of tensors) {
        const v = out[name]!.data as Float32Array;
        let lo = min.get(name) ?? Infinity, hi = max.get(name) ?? -Infinity;
        for (let i = 0; i < v.length; i++) {
          const x = v[i]!;
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
        min.set(name, lo);
        max.set(name, hi);
        if (method === "percentile") kept.set(name, [...(kept.get(name) ?? []), Float32Array.from(v)]);
      }
    }
  } finally {
    await session.dispose();
  }
  const ranges: ActivationRanges = new Map();
  for (const name of tensors) {
    if (method === "minmax") ranges.set(name, { lo: min.get(name)!, hi: max.get(name)! });
    else ranges.set(name, percentileRange(kept.get(name)!, percentile));
  }
  return ranges;
}

/** [p_low, p_high] with p_low = 100 − p: the central p % of the values (both tails trimmed). */
export function percentileRange(chunks: Float32Array[], p: number): { lo: number; hi: number } {
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const stride = Math.max(1, Math.ceil(total / MAX_KEPT));
  const sample = new Float32Array(Math.ceil(total / stride));
  let k = 0, i = 0;
  for (const c of chunks)
    for (let j = 0; j < c.length; j++, i++) if (i % stride === 0) sample[k++] = c[j]!;
  const sorted = sample.subarray(0, k).sort();
  const at = (q: number) => sorted[Math.min(k - 1, Math.max(0, Math.round((k - 1) * q)))]!;
  return { lo: at(1 - p / 100), hi: at(p / 100) };
}
