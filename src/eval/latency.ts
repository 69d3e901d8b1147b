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
  /** Untimed runs before timing, at least (lets onnxruntime allocate and caches fill). Default 20. */
  warmup?: number;
  /**
   * And untimed runs for at least this long, in ms. Default 150: V8 optimises the run path and the
   * CPU raises its clock only after some milliseconds of work, so a count alone left the first model
   * timed in a process about a third slower than the same architecture timed later.
   */
  warmupMs?: number;
  /** Timed batch-1 runs per model for the latency percentiles, spread evenly over the rounds. Default 200. */
  runs?: number;
  /** Rounds; each times every model in turn (A B C, A B C, …), so a change of load hits all alike. Default 5. */
  rounds?: number;
  /** Batch size for throughput. Default 128. */
  throughputBatch?: number;
  /** onnxruntime intra-op threads; defaults to the runtime's default. */
  threads?: number;
  /** The clock, in ms; performance.now by default (tests give a scripted one). */
  clock?: () => number;
}

export interface LatencyResult {
  latencyP50Ms: number;
  latencyP95Ms: number;
  throughput: number; // samples/s
}

export interface TimedLatency extends LatencyResult {
  /** The p50 of each round's batch-1 runs: how far the figure moves between rounds. */
  roundP50Ms: number[];
}

/** A model to time, and its inputs at a given batch size. */
export interface TimedModel {
  bytes: Uint8Array;
  makeInput: (batch: number) => LatencyInput;
}

/** Linear-interpolated percentile of sorted values (numpy's default method). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) throw new RangeError("percentile of no values");
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Batch runs timed per model per round (their median sets the throughput). */
const THROUGHPUT_REPEATS_PER_ROUND = 3;

const sorted = (xs: number[]) => Float64Array.from(xs).sort();

/** One model's batch-1 latency and throughput; see measureInterleaved. */
export async function measureOnnx(modelBytes: Uint8Array, makeInput: (batch: number) => LatencyInput, opts: MeasureOptions = {}): Promise<LatencyResult> {
  const [t] = await measureInterleaved([{ bytes: modelBytes, makeInput }], opts);
  return { latencyP50Ms: t!.latencyP50Ms, latencyP95Ms: t!.latencyP95Ms, throughput: t!.throughput };
}

/**
 * Batch-1 latency percentiles and batch throughput of several models, timed together: every model
 * is warmed up first, then each round times every model in turn. Timing models one after another
 * let the first pay for the process's warm-up and let load changes favour some over others.
 */
export async function measureInterleaved(models: TimedModel[], opts: MeasureOptions = {}): Promise<TimedLatency[]> {
  const warmup = opts.warmup ?? 20;
  const warmupMs = opts.warmupMs ?? 150;
  const runs = opts.runs ?? 200;
  const rounds = opts.rounds ?? 5;
  const batch = opts.throughputBatch ?? 128;
  const clock = opts.clock ?? (() => performance.now());
  if (!(runs >= 1) || !(rounds >= 1) || !(batch >= 1)) throw new RangeError(`runs, rounds and throughputBatch must be ≥ 1 (got ${runs}, ${rounds}, ${batch})`);
  const runsPerRound = Math.ceil(runs / rounds);
  const sessions: Session[] = [];
  try {
    for (const m of models) sessions.push(await Session.create(m.bytes, opts.threads ? { threads: opts.threads } : {}));
    // Inputs are built once, outside the timed region: we time the model, not makeInput.
    const feed = (m: TimedModel, b: number): Record<string, Tensor> => {
      const x = m.makeInput(b);
      return { [x.name]: { dtype: x.dtype, shape: x.shape, data: x.data } as Tensor };
    };
    const ones = models.map((m) => feed(m, 1));
    const manys = models.map((m) => feed(m, batch));
    for (const [i, session] of sessions.entries()) {
      for (let n = 0; n < Math.max(2, Math.ceil(warmup / 10)); n++) await session.run(manys[i]!);
      const started = warmupMs > 0 ? clock() : 0;
      for (let n = 0; n < warmup || (warmupMs > 0 && clock() - started < warmupMs); n++) await session.run(ones[i]!);
    }
    const times = models.map(() => [] as number[]);
    const roundP50 = models.map(() => [] as number[]);
    const batchTimes = models.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++)
      for (const [i, session] of sessions.entries()) {
        const round: number[] = [];
        for (let n = 0; n < runsPerRound; n++) {
          const t0 = clock();
          await session.run(ones[i]!);
          round.push(clock() - t0);
        }
        times[i]!.push(...round);
        roundP50[i]!.push(percentile(sorted(round), 0.5));
        for (let n = 0; n < THROUGHPUT_REPEATS_PER_ROUND; n++) {
          const t0 = clock();
          await session.run(manys[i]!);
          batchTimes[i]!.push(clock() - t0);
        }
      }
    return models.map((_, i) => {
      const all = sorted(times[i]!);
      // Median of the batch timings: one GC pause or scheduler hiccup should not set the figure. A
      // floor of 1 µs keeps a sub-resolution timing from turning into an infinite throughput.
      const batchMs = Math.max(percentile(sorted(batchTimes[i]!), 0.5), 1e-3);
      return { latencyP50Ms: percentile(all, 0.5), latencyP95Ms: percentile(all, 0.95), throughput: (batch * 1000) / batchMs, roundP50Ms: roundP50[i]! };
    });
  } finally {
    for (const s of sessions) await s.dispose();
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
  const warmup = opts.warmup ?? 20;
  const runs = opts.runs ?? 200;
  const batch = opts.throughputBatch ?? 128;
  const clock = opts.clock ?? (() => performance.now());
  if (!(runs >= 1) || !(batch >= 1)) throw new RangeError(`runs and throughputBatch must be ≥ 1 (got ${runs}, ${batch})`);
  if (words.length === 0) throw new RangeError("no words to time");
  const call = async (input: string[]) => {
    const out = await predict(input);
    if (out.length !== input.length) throw new RangeError(`predict returned ${out.length} outputs for ${input.length} words`);
  };
  // One-word calls walk through the words (a one-element array costs nothing next to a decode);
  // the throughput batch, the first `batch` words (wrapping round), is built once, outside the timing.
  let next = 0;
  const batchWords = Array.from({ length: batch }, (_, i) => words[i % words.length]!);
  const one = () => call([words[next++ % words.length]!]);
  for (let i = 0; i < warmup; i++) await one();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = clock();
    await one();
    times.push(clock() - t0);
  }
  for (let i = 0; i < Math.max(2, Math.ceil(warmup / 2)); i++) await call(batchWords);
  const batchTimes: number[] = [];
  for (let i = 0; i < THROUGHPUT_REPEATS_PER_ROUND * 5; i++) {
    const t0 = clock();
    await call(batchWords);
    batchTimes.push(clock() - t0);
  }
  const all = sorted(times);
  const batchMs = Math.max(percentile(sorted(batchTimes), 0.5), 1e-3);
  return { latencyP50Ms: percentile(all, 0.5), latencyP95Ms: percentile(all, 0.95), throughput: (batch * 1000) / batchMs };
}

/**
 * measurePerWord for several models at once, interleaved as measureInterleaved does: every
 * predictor is warmed up first, then each of `rounds` rounds times every predictor in turn (one-word
 * calls, then batch calls for the throughput), so a change of load or the process's warm-up hits
 * all models alike.
 */
export async function measurePerWordInterleaved(
  predictors: ((words: readonly string[]) => Promise<readonly unknown[]>)[],
  words: readonly string[],
  opts: Omit<MeasureOptions, "threads"> = {},
): Promise<LatencyResult[]> {
  const warmup = opts.warmup ?? 20;
  const warmupMs = opts.warmupMs ?? 150;
  const runs = opts.runs ?? 200;
  const rounds = opts.rounds ?? 5;
  const batch = opts.throughputBatch ?? 128;
  const clock = opts.clock ?? (() => performance.now());
  if (!(runs >= 1) || !(rounds >= 1) || !(batch >= 1)) throw new RangeError(`runs, rounds and throughputBatch must be ≥ 1 (got ${runs}, ${rounds}, ${batch})`);
  if (words.length === 0) throw new RangeError("no words to time");
  const batchWords = Array.from({ length: batch }, (_, i) => words[i % words.length]!);
  const call = async (predict: (typeof predictors)[number], input: readonly string[]) => {
    const out = await predict(input);
    if (out.length !== input.length) throw new RangeError(`predict returned ${out.length} outputs for ${input.length} words`);
  };
  let next = 0;
  const oneWord = () => [words[next++ % words.length]!];
  for (const predict of predictors) {
    for (let n = 0; n < 2; n++) await call(predict, batchWords);
    const started = warmupMs > 0 ? clock() : 0;
    for (let n = 0; n < warmup || (warmupMs > 0 && clock() - started < warmupMs); n++) await call(predict, oneWord());
  }
  const runsPerRound = Math.ceil(runs / rounds);
  const times = predictors.map(() => [] as number[]);
  const batchTimes = predictors.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++)
    for (const [i, predict] of predictors.entries()) {
      // Every predictor sees the same words in the same round.
      const first = next;
      for (let n = 0; n < runsPerRound; n++) {
        const input = [words[(first + n) % words.length]!];
        const t0 = clock();
        await call(predict, input);
        times[i]!.push(clock() - t0);
      }
      for (let n = 0; n < THROUGHPUT_REPEATS_PER_ROUND; n++) {
        const t0 = clock();
        await call(predict, batchWords);
        batchTimes[i]!.push(clock() - t0);
      }
      if (i === predictors.length - 1) next = first + runsPerRound;
    }
  return predictors.map((_, i) => {
    const all = sorted(times[i]!);
    const batchMs = Math.max(percentile(sorted(batchTimes[i]!), 0.5), 1e-3);
    return { latencyP50Ms: percentile(all, 0.5), latencyP95Ms: percentile(all, 0.95), throughput: (batch * 1000) / batchMs };
  });
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
