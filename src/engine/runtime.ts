// The one module that talks to onnxruntime. Everything above it sees sessions that take and
// return plain typed arrays; no onnxruntime type leaks into the rest of distill.

import ort from "onnxruntime-node";
import os from "node:os";
import type { DType, Shape, Tensor } from "./graph.js";

export type { Tensor };
export type TypedArray = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export interface RuntimeOptions {
  /** Threads for one operator; defaults to the number of cores (onnxruntime's own default). */
  threads?: number;
}

export function defaultThreads(): number {
  const env = Number(process.env["DISTILL_THREADS"]);
  return env > 0 ? env : Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

function toOrt(t: Tensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as never, t.shape);
}

/**
 * An onnxruntime session over one model. `run` is synchronous-in-spirit: onnxruntime-node already
 * executes on the calling thread, so one step is one native call with no extra scheduling.
 */
export class Session {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly inputNames: readonly string[],
    readonly outputNames: readonly string[],
  ) {}

  static async create(model: Uint8Array | string, options: RuntimeOptions = {}): Promise<Session> {
    const threads = options.threads ?? defaultThreads();
    // DISTILL_PROFILE=<prefix> writes onnxruntime's per-op timing JSON (for performance work).
    const profile = process.env["DISTILL_PROFILE"];
    const s = await ort.InferenceSession.create(model as never, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      executionMode: "sequential",
      ...(profile ? { enableProfiling: true, profileFilePrefix: profile } : {}),
    });
    return new Session(s, s.inputNames, s.outputNames);
  }

  inputShapes(): Record<string, Shape> {
    const out: Record<string, Shape> = {};
    const meta = (this.session as unknown as { inputMetadata?: { name: string; shape?: (number | string)[] }[] }).inputMetadata ?? [];
    for (const m of meta) out[m.name] = (m.shape ?? []) as Shape;
    return out;
  }

  /**
   * Runs the model. `into` optionally names pre-allocated host buffers for outputs; onnxruntime
   * writes results into them, which avoids a fresh allocation per step for large outputs.
   */
  async run(feeds: Record<string, Tensor>, into?: Record<string, Tensor>, fetch?: readonly string[]): Promise<Record<string, Tensor>> {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = toOrt(v);
    let fetches: Record<string, ort.Tensor | null> | undefined;
    if (into || fetch) {
      fetches = {};
      for (const name of fetch ?? this.outputNames) fetches[name] = into?.[name] ? toOrt(into[name]) : null;
    }
    const res = fetches ? await this.session.run(ortFeeds, fetches as never) : await this.session.run(ortFeeds);
    const out: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(res)) {
      const target = into?.[k];
      if (target) {
        // onnxruntime-node writes into the pre-allocated buffer (checked by test/runtime.test.ts).
        out[k] = target;
      } else {
        out[k] = { dtype: (t as ort.Tensor).type as DType, shape: (t as ort.Tensor).dims.slice(), data: (t as ort.Tensor).data } as Tensor;
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (process.env["DISTILL_PROFILE"]) this.session.endProfiling();
    await this.session.release();
  }
}
