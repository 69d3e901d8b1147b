// Checking a compressed model against its source on a test set: accuracy, top-1 agreement with the
// source, size, and speed under onnxruntime-node and (optionally) onnxruntime-web's wasm backend.

import { decodeModel } from "../engine/onnx.js";
import { gatherSamples, type SampleSet } from "../data/sample-set.js";
import { evaluateClassifier, OnnxClassifier } from "../eval/evaluate.js";
import type { LatencyResult } from "../eval/latency.js";
import type { ModelMetrics } from "../eval/types.js";
import { UserError } from "../errors.js";
import { measureWasm } from "./wasm-runtime.js";

export interface VariantCheck {
  /** Test metrics of the variant; `agreement` is with the source model. */
  metrics: ModelMetrics;
  /** The same under onnxruntime-web (wasm, 1 thread), when asked for. */
  wasm?: LatencyResult;
}

export interface CheckOptions {
  set: SampleSet;
  indices: Int32Array;
  /** Also time the model under onnxruntime-web's wasm backend. */
  wasm?: boolean;
  latencyRuns?: number;
  /** Parameter count to report (a quantized file has few float initializers left). */
  params?: number;
  /** Logits of the reference (fp32 source) on `indices`, for agreement. */
  referenceLogits?: Float32Array;
}

/** Test metrics (and logits) of one model file's bytes. */
export async function checkModel(bytes: Uint8Array, where: string, o: CheckOptions): Promise<VariantCheck & { logits: Float32Array }> {
  const c = await OnnxClassifier.fromBytes(bytes, where);
  try {
    c.checkFits(o.set, "the test set");
    const { metrics, logits } = await evaluateClassifier({
      classifier: c, set: o.set, indices: o.indices, latencyRuns: o.latencyRuns ?? 200,
      ...(o.params !== undefined ? { params: o.params } : {}), ...(o.referenceLogits ? { teacherLogits: o.referenceLogits } : {}),
    });
    const out: VariantCheck & { logits: Float32Array } = { metrics, logits };
    if (o.wasm) out.wasm = await measureWasm(bytes, c.inputName, c.outputName, (b) => sampleBatch(o.set, o.indices, b, c.sampleShape), { runs: Math.min(100, o.latencyRuns ?? 100) });
    return out;
  } finally {
    await c.dispose();
  }
}

/** The first `batch` samples of `indices` (cycled) as a feed batch of `sampleShape` samples. */
export function sampleBatch(set: SampleSet, indices: Int32Array, batch: number, sampleShape: number[]): { data: Float32Array | BigInt64Array; shape: number[] } {
  return { data: gatherSamples(set, Int32Array.from({ length: batch }, (_, i) => indices[i % indices.length]!)), shape: [batch, ...sampleShape] };
}

/** The model's trainable parameters, counted as everywhere in distill (countParameters in engine/onnx.ts). */
export function parameterCountOf(bytes: Uint8Array, where: string): number {
  try {
    return decodeModel(bytes).parameters;
  } catch (e) {
    throw new UserError(where, `not a readable ONNX model (${(e as Error).message.split("\n")[0]})`);
  }
}
