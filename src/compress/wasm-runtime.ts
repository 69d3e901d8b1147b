// onnxruntime-web's WebAssembly backend, run inside Node: the same kernels a browser page gets, so a
// quantized model's web speed can be measured without a browser. Kept apart from engine/runtime.ts
// (onnxruntime-node, the training runtime) because only compression measurements need it.

import { performance } from "node:perf_hooks";
import { percentile, type LatencyResult } from "../eval/latency.js";

type OrtWeb = typeof import("onnxruntime-web");
let loaded: Promise<OrtWeb> | undefined;

/** The wasm runtime, single-threaded (what a page gets without cross-origin isolation). */
async function ortWeb(): Promise<OrtWeb> {
  loaded ??= import("onnxruntime-web").then((ort) => {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    return ort;
  });
  return loaded;
}

/** Pixels, token ids or raw strings; the dtype follows from the array. */
export type WasmInput = Float32Array | BigInt64Array | string[];

/** `Output` is the output's array type: Float32Array for logits, BigInt64Array for token ids. */
export interface WasmSession<Output extends Float32Array | BigInt64Array = Float32Array> {
  run(input: WasmInput, shape: number[]): Promise<Output>;
  dispose(): Promise<void>;
}

const dtypeOf = (input: WasmInput) => (Array.isArray(input) ? "string" : input instanceof BigInt64Array ? "int64" : "float32");

export async function createWasmSession<Output extends Float32Array | BigInt64Array = Float32Array>(bytes: Uint8Array, inputName: string, outputName: string): Promise<WasmSession<Output>> {
  const ort = await ortWeb();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  return {
    async run(input, shape) {
      const out = await session.run({ [inputName]: new ort.Tensor(dtypeOf(input), input, shape) }, [outputName]);
      return out[outputName]!.data as Output;
    },
    dispose: () => session.release(),
  };
}

/** Batch-1 latency percentiles and batch-`batch` throughput under the wasm backend (same protocol as measureOnnx). */
export async function measureWasm(bytes: Uint8Array, inputName: string, outputName: string, makeInput: (batch: number) => { data: WasmInput; shape: number[] }, opts: { runs?: number; warmup?: number; batch?: number } = {}): Promise<LatencyResult> {
  const runs = opts.runs ?? 100, warmup = opts.warmup ?? 10, batch = opts.batch ?? 128;
  const s = await createWasmSession(bytes, inputName, outputName);
  try {
    const one = makeInput(1);
    for (let i = 0; i < warmup; i++) await s.run(one.data, one.shape);
    const times = new Float64Array(runs);
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run(one.data, one.shape);
      times[i] = performance.now() - t0;
    }
    times.sort();
    const many = makeInput(batch);
    for (let i = 0; i < 2; i++) await s.run(many.data, many.shape);
    const batchTimes = new Float64Array(7);
    for (let i = 0; i < batchTimes.length; i++) {
      const t0 = performance.now();
      await s.run(many.data, many.shape);
      batchTimes[i] = performance.now() - t0;
    }
    batchTimes.sort();
    return { latencyP50Ms: percentile(times, 0.5), latencyP95Ms: percentile(times, 0.95), throughput: (batch * 1000) / Math.max(percentile(batchTimes, 0.5), 1e-3) };
  } finally {
    await s.dispose();
  }
}
