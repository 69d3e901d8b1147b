// The teacher's logits on the transfer set, computed once and cached on disk as float32, in
// chunks of CHUNK_SAMPLES consecutive transfer samples. Each chunk is its own content-addressed
// file: its key hashes the teacher file's bytes, the chunk's decoded values in order, and how
// they are fed (raw values, unshifted, in batches of LABEL_BATCH from the chunk's start). Nothing
// else is stored, so a chunk made by any process on any machine is as good as one made here:
// `distill label --shard i/N` writes some chunks, the folders are merged by copying files, and a
// later run reads them all. A call reads the chunks that exist and computes only the missing
// ones, one chunk at a time (memory for inputs and logits in flight is bounded by a chunk).
// Several processes may share one cache folder: each file is checksummed and written under a
// lock (src/util/cache-file.ts); a chunk another process is computing is skipped and collected
// at the end, so two processes split the work instead of waiting on each other.

import { createHash } from "node:crypto";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { defaultThreads, type Tensor } from "../engine/runtime.js";
import { sampleSize, type SampleSet } from "../data/sample-set.js";
import { UserError } from "../errors.js";
import { cachedPayload, cachedPayloadUnlessBusy } from "../util/cache-file.js";
import type { OnnxClassifier } from "../eval/evaluate.js";
import type { Shard } from "./shard.js";

export { parseShard, type Shard } from "./shard.js";

/** Transfer samples per cache file. Part of every key (through the values hashed), so changing it only makes new files. */
export const CHUNK_SAMPLES = 8192;
/** Samples per teacher call. Batching could in principle change the float results, so it is part of the feed version. */
export const LABEL_BATCH = 512;
/** Bumped when the way inputs are fed to the teacher changes (invalidates old caches). */
const FEED_VERSION = `raw-values-unshifted-chunked-batch${LABEL_BATCH}-v2`;

/**
 * What the teacher labels, chunk by chunk. `rows` hands back the samples at transfer positions
 * [start, start + n) as a set and indices into it; a source may build each chunk on demand
 * (read from disk, generate) so the whole transfer set never has to be in memory at once.
 */
export interface TransferSource {
  count: number;
  kind: SampleSet["kind"];
  sampleShape: number[];
  rows(start: number, n: number): { set: SampleSet; indices: Int32Array };
  /** How a sample is named in errors, by transfer position: "training example 1234". */
  describe(position: number): string;
}

/** The rows `indices` of a set held in memory (the run's dataset.train at its transfer indices). */
export function residentSource(set: SampleSet, indices: Int32Array): TransferSource {
  return {
    count: indices.length,
    kind: set.kind,
    sampleShape: set.sampleShape,
    rows: (start, n) => ({ set, indices: indices.subarray(start, start + n) }),
    describe: (position) => `training example ${indices[position]}`,
  };
}


export function chunkCount(samples: number): number {
  return Math.ceil(samples / CHUNK_SAMPLES);
}

/** The chunk numbers shard `shard` labels, of a transfer set of `samples` samples. */
export function shardChunks(samples: number, shard: Shard = { index: 0, count: 1 }): number[] {
  const out: number[] = [];
  for (let c = shard.index; c < chunkCount(samples); c += shard.count) out.push(c);
  return out;
}

/** The cache key of one chunk: the teacher's digest, the feed version, and the chunk's values in order. */
export function chunkKey(teacherDigest: Buffer, set: SampleSet, indices: Int32Array): string {
  const h = createHash("sha256");
  h.update(FEED_VERSION);
  h.update(teacherDigest);
  h.update(`${set.kind}:${set.sampleShape.join("x")}:${indices.length}`);
  // The decoded values themselves, not the file names: a different copy of the data gets a different key.
  const size = sampleSize(set);
  for (let i = 0; i < indices.length; i++) {
    const row = set.inputs.subarray(indices[i]! * size, (indices[i]! + 1) * size);
    h.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
  }
  return h.digest("hex").slice(0, 32);
}

/**
 * One key for a whole transfer set (the teacher taps' cache is named by it). Unlike the chunk
 * keys it also hashes the indices; kept as it was so tap caches stay valid.
 */
export function softTargetKey(teacherBytes: Uint8Array, set: SampleSet, indices: Int32Array): string {
  const h = createHash("sha256");
  h.update("raw-pixels-0-255-unshifted-v1");
  h.update(createHash("sha256").update(teacherBytes).digest());
  // One-channel images keep the key format caches were made with before other kinds existed.
  const { kind, sampleShape } = set;
  h.update(kind === "image" && sampleShape[0] === 1 ? `${sampleShape[1]}x${sampleShape[2]}:${indices.length}` : `${kind}:${sampleShape.join("x")}:${indices.length}`);
  h.update(new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength));
  const size = sampleSize(set);
  const values = createHash("sha256");
  for (let i = 0; i < indices.length; i++) {
    const row = set.inputs.subarray(indices[i]! * size, (indices[i]! + 1) * size);
    values.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
  }
  h.update(values.digest());
  return h.digest("hex").slice(0, 32);
}

export { defaultCacheDir } from "../util/cache-file.js";

export interface LabelResult {
  /** [count, classes] row i = teacher logits of transfer sample i; absent when not collected. */
  logits?: Float32Array;
  classes: number;
  /** Hash of the chunk keys in order: names this teacher on this transfer set (or shard of it). */
  key: string;
  /** Samples labelled by this call's shard (all of them without one). */
  samples: number;
  /** Teacher forward passes this call ran (0 when every chunk came from the cache). */
  computedSamples: number;
  /** The chunk files, in chunk order. */
  files: string[];
}

export interface LabelOptions {
  teacher: OnnxClassifier;
  source: TransferSource;
  cacheDir: string;
  /** Sub-folder of the cache (default soft-targets; the teacher report's validation logits keep to their own). */
  folder?: string;
  /** Label only this shard's chunks (default: all). */
  shard?: Shard;
  /** Keep the logits in memory and return them (default true; `distill label` only writes files). */
  collect?: boolean;
  /**
   * Worker threads, each with a one-thread session of the teacher, labelling chunks side by side
   * (default 1: the teacher's own session, with its intra-op threads, in this thread). Used only
   * when more than one chunk is to be labelled.
   */
  workers?: number;
  /** Samples labelled so far (from the cache or computed) of this call's total. */
  onProgress?: (done: number, total: number) => void;
  /** Damaged cache files and waits on another process's computation are reported here. */
  onWarning?: (message: string) => void;
}

/** Labels a transfer source chunk by chunk, reading what the cache has and computing the rest. */
export async function labelTransferSet(o: LabelOptions): Promise<LabelResult> {
  const k = o.teacher.numClasses;
  const { source } = o;
  const digest = createHash("sha256").update(o.teacher.bytes).digest();
  const chunks = shardChunks(source.count, o.shard);
  const collect = o.collect ?? true;
  const logits = collect ? new Float32Array(source.count * k) : undefined;
  const keys = new Map<number, string>();
  const files: string[] = [];
  const total = chunks.reduce((a, c) => a + chunkLength(source.count, c), 0);
  let done = 0;
  let computedSamples = 0;

  const fileOf = (key: string) => join(o.cacheDir, o.folder ?? "soft-targets", `${key}.bin`);
  // One chunk is labelled in this thread: starting workers would cost more than it saves.
  const workers = chunks.length > 1 ? Math.max(1, Math.floor(o.workers ?? 1)) : 1;
  // Started at the first chunk to compute: a pass that finds every chunk cached starts none.
  let pool: Promise<WorkerPool> | undefined;
  const compute = async (c: number, rows = source.rows(c * CHUNK_SAMPLES, chunkLength(source.count, c))): Promise<Uint8Array> => {
    const start = c * CHUNK_SAMPLES;
    const { set, indices } = rows;
    let out: Float32Array;
    if (workers > 1) {
      pool ??= WorkerPool.start(o.teacher, workers);
      out = await (await pool).run(o.teacher.inputTensor(set, indices));
      o.teacher.countForward(set, indices.length);
    } else out = await o.teacher.logits(set, indices, LABEL_BATCH, (d) => o.onProgress?.(done + d, total));
    for (let i = 0; i < out.length; i++)
      if (!Number.isFinite(out[i]!))
        throw new UserError(o.teacher.where, `the teacher's output ${o.teacher.outputName} is ${out[i]} (not a finite logit) for ${source.describe(start + Math.floor(i / k))}; fix or replace the teacher`);
    computedSamples += indices.length;
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  };
  const take = (c: number, payload: Uint8Array) => {
    logits?.set(new Float32Array(payload.buffer, payload.byteOffset, payload.byteLength / 4), c * CHUNK_SAMPLES * k);
    done += chunkLength(source.count, c);
    o.onProgress?.(done, total);
  };

  try {
    // First pass: every chunk this process can have now, `workers` chunks at a time. A chunk
    // locked by another live process is left for the second pass, by when it is most likely written.
    const queue = chunks.slice();
    const busy: number[] = [];
    let failed = false;
    const lane = async () => {
      for (let c = queue.shift(); c !== undefined && !failed; c = queue.shift()) {
        const rows = source.rows(c * CHUNK_SAMPLES, chunkLength(source.count, c));
        const key = chunkKey(digest, rows.set, rows.indices);
        keys.set(c, key);
        const at = c;
        const got = await cachedPayloadUnlessBusy(fileOf(key), rows.indices.length * k * 4, () => compute(at, rows), { onWarning: o.onWarning });
        if (got) take(c, got.payload);
        else busy.push(c);
      }
    };
    // Every lane ends (its lock released) before an error is passed on and the workers stop.
    const lanes = await Promise.allSettled(Array.from({ length: workers }, () => lane().catch((e) => ((failed = true), Promise.reject(e)))));
    const error = lanes.find((l): l is PromiseRejectedResult => l.status === "rejected");
    if (error) throw error.reason;
    for (const c of busy.sort((a, b) => a - b)) {
      const file = fileOf(keys.get(c)!);
      let waited = false;
      const got = await cachedPayload(file, chunkLength(source.count, c) * k * 4, () => compute(c), {
        onWarning: o.onWarning,
        onWait: (owner) => {
          if (!waited) o.onWarning?.(`${file}: process ${owner.pid} on ${owner.host} is computing these soft targets; waiting for it`);
          waited = true;
        },
      });
      take(c, got.payload);
    }
  } finally {
    await pool?.then((p) => p.close(), () => undefined);
  }
  const whole = createHash("sha256");
  for (const c of chunks) {
    whole.update(keys.get(c)!);
    files.push(fileOf(keys.get(c)!));
  }
  return { ...(logits ? { logits } : {}), classes: k, key: whole.digest("hex").slice(0, 32), samples: total, computedSamples, files };
}

/** Worker threads with a one-thread session of the teacher each (label-worker.ts); a job goes to the first free one. */
class WorkerPool {
  private readonly idle: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  private constructor(private readonly all: Worker[]) {
    this.idle.push(...all);
  }

  static async start(teacher: OnnxClassifier, count: number): Promise<WorkerPool> {
    const workers = Array.from({ length: count }, () => new Worker(new URL("./label-worker.js", import.meta.url), {
      workerData: { bytes: teacher.bytes, inputName: teacher.inputName, outputName: teacher.outputName },
    }));
    try {
      await Promise.all(workers.map((w) => new Promise<void>((res, rej) => {
        w.once("message", () => res());
        w.once("error", rej);
      })));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WorkerPool(workers);
  }

  async run(input: Tensor): Promise<Float32Array> {
    const worker = this.idle.pop() ?? (await new Promise<Worker>((res) => this.waiting.push(res)));
    try {
      const reply = await new Promise<{ logits?: Float32Array; error?: string }>((res, rej) => {
        const onError = (e: Error) => rej(e);
        worker.once("error", onError);
        worker.once("message", (m: { logits?: Float32Array; error?: string }) => {
          worker.off("error", onError);
          res(m);
        });
        // The feed buffer is fresh (gathered for this chunk): handed over, not copied.
        worker.postMessage({ input, batch: LABEL_BATCH }, Array.isArray(input.data) ? [] : [input.data.buffer as ArrayBuffer]);
      });
      if (reply.error !== undefined) throw new Error(`labelling worker: ${reply.error}`);
      return reply.logits!;
    } finally {
      const next = this.waiting.shift();
      if (next) next(worker);
      else this.idle.push(worker);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}

function chunkLength(samples: number, c: number): number {
  return Math.min(CHUNK_SAMPLES, samples - c * CHUNK_SAMPLES);
}

/**
 * Worker threads for a labelling pass: one per core (DISTILL_THREADS overrides, as for sessions).
 * Chunks side by side on one-thread sessions beat one session's intra-op threads on the shared
 * 2-core machine (docs/results.md, "Labelling ahead of the run, in shards").
 */
export function labelWorkers(): number {
  return defaultThreads();
}

export interface SoftTargets {
  /** [count, classes] row i = teacher logits of example indices[i]. */
  logits: Float32Array;
  classes: number;
  key: string;
  /** Teacher forward passes this call ran: the samples of the chunks that were not cached. */
  computedSamples: number;
  /** The chunk files, in order. */
  files: string[];
}

/** The teacher's logits on `set` at `indices`, from the chunked cache where it has them. */
export async function teacherSoftTargets(o: {
  teacher: OnnxClassifier;
  set: SampleSet;
  indices: Int32Array;
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
  folder?: string;
}): Promise<SoftTargets> {
  const r = await labelTransferSet({
    teacher: o.teacher, source: residentSource(o.set, o.indices), cacheDir: o.cacheDir, workers: labelWorkers(),
    ...(o.folder ? { folder: o.folder } : {}), ...(o.onProgress ? { onProgress: o.onProgress } : {}), ...(o.onWarning ? { onWarning: o.onWarning } : {}),
  });
  return { logits: r.logits!, classes: r.classes, key: r.key, computedSamples: r.computedSamples, files: r.files };
}
