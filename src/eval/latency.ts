// Inference cost of an exported model: wall-clock latency and throughput under onnxruntime-node
// (or, for sequence models, of any predict function, per word), and on-disk size. Timings are for the process's own machine; they compare models of one run.

import { gzipSync } from "node:zlib";
import { performance } from "node:perf_hooks";
import { Session, type Tensor } from "../engine/runtime.js";

export interface LatencyInput {
  name: string;
  /** "string": raw texts for a model with the tokenizer inside. */
  dtype: "float32" | "int64" | "string";
  shape: number[];
  data: Float32Array | BigInt64Array | string[];
}

export interface MeasureOptions {
  /** Untimed runs before each measurement (lets onnxruntime allocate and caches fill). Default 20. */
  warmup?: number;
  /** Timed batch-1 runs for the latency percentiles. Default 200. */
  runs?: number;
  /** Batch size for throughput. Default 128. */
  throughputBatch?: number;
  /** onnxruntime intra-op threads; defaults to the runtime's default. */
  threads?: number;
}

export interface LatencyResult {
  latencyP50Ms: number;
  latencyP95Ms: number;
  throughput: number; // samples/s
}

/** Linear-interpolated percentile of sorted values (numpy's default method). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError("percentile of no values");
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const THROUGHPUT_REPEATS = 15;

/**
 * The timing protocol of every latency figure: `warmup` untimed batch-1 calls, `runs` timed ones
 * (their p50 and p95), then the median of THROUGHPUT_REPEATS timed calls on a batch of `batch`.
 */
async function timeCalls(one: () => Promise<unknown>, many: () => Promise<unknown>, batch: number, warmup: number, runs: number): Promise<LatencyResult> {
  for (let i = 0; i < warmup; i++) await one();
  const times = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await one();
    times[i] = performance.now() - t0;
  }
  times.sort();

  for (let i = 0; i < Math.max(2, Math.ceil(warmup / 2)); i++) await many();
  // Median of several batch timings: one GC pause or scheduler hiccup should not set the figure.
  const batchTimes = new Float64Array(THROUGHPUT_REPEATS);
  for (let i = 0; i < THROUGHPUT_REPEATS; i++) {
    const t0 = performance.now();
    await many();
    batchTimes[i] = performance.now() - t0;
  }
  batchTimes.sort();
  // A floor of 1 µs keeps a sub-resolution timing from turning into an infinite throughput.
  const batchMs = Math.max(percentile(batchTimes, 0.5), 1e-3);

  return {
    latencyP50Ms: percentile(times, 0.5),
    latencyP95Ms: percentile(times, 0.95),
    throughput: (batch * 1000) / batchMs,
  };
}

function counts(opts: MeasureOptions): { warmup: number; runs: number; batch: number } {
  const warmup = opts.warmup ?? 20;
  const runs = opts.runs ?? 200;
  const batch = opts.throughputBatch ?? 128;
  if (!(runs >= 1) || !(batch >= 1)) throw new RangeError(`runs and throughputBatch must be ≥ 1 (got ${runs}, ${batch})`);
  return { warmup, runs, batch };
}

export async function measureOnnx(
  modelBytes: Uint8Array,
  makeInput: (batch: number) => LatencyInput,
  opts: MeasureOptions = {},
): Promise<LatencyResult> {
  const { warmup, runs, batch } = counts(opts);
  const session = await Session.create(modelBytes, opts.threads ? { threads: opts.threads } : {});
  try {
    // Inputs are built once, outside the timed region: we time the model, not makeInput.
    const feed = (b: number): Record<string, Tensor> => {
      const x = makeInput(b);
      return { [x.name]: { dtype: x.dtype, shape: x.shape, data: x.data } as Tensor };
    };
    const one = feed(1);
    const many = feed(batch);
    return await timeCalls(() => session.run(one), () => session.run(many), batch, warmup, runs);
  } finally {
    await session.dispose();
  }
}

/**
 * Latency per word of a sequence model, through whatever turns words into outputs (encoder plus
 * greedy or beam decoding, several sessions, a lookup): p50/p95 of one-word calls, and words per
 * second in batches of throughputBatch. `words` are used in turn, so every call sees real input.
 */
export async function measurePerWord(
  predict: (words: readonly string[]) => Promise<readonly unknown[]> | readonly unknown[],
  words: readonly string[],
  opts: Omit<MeasureOptions, "threads"> = {},
): Promise<LatencyResult> {
  const { warmup, runs, batch } = counts(opts);
  if (words.length === 0) throw new RangeError("no words to time");
  const call = async (input: string[]) => {
    const out = await predict(input);
    if (out.length !== input.length) throw new RangeError(`predict returned ${out.length} outputs for ${input.length} words`);
  };
  // One-word calls walk through the words (a one-element array costs nothing next to a decode);
  // the throughput batch, the first `batch` words (wrapping round), is built once, outside the timing.
  let next = 0;
  const batchWords = Array.from({ length: batch }, (_, i) => words[i % words.length]!);
  return timeCalls(() => call([words[next++ % words.length]!]), () => call(batchWords), batch, warmup, runs);
}

/** Raw and gzip -9 size of a model: gzip approximates what a download or a package costs. */
export function sizeOf(modelBytes: Uint8Array): { onnxBytes: number; onnxGzipBytes: number } {
  return { onnxBytes: modelBytes.byteLength, onnxGzipBytes: gzipSync(modelBytes, { level: 9 }).byteLength };
}

/** A duration for people: µs below 1 ms (0.042 ms reads worse than 42 µs), else ms. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : 1)} µs`;
  return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
}
