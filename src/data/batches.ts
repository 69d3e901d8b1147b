// Mini-batches over a subset of a SampleSet. Order and jitter are functions of (seed, epoch) only,
// so a resumed run replays exactly the batches the interrupted one would have seen.

import { Rng } from "../nn/random.js";
import { jitterInto, randomShift } from "./augment.js";
import { copySample, imageShape, inputBuffer, type SampleSet } from "./sample-set.js";

export interface Batch {
  /** [size, ...sampleShape]: float32 raw pixels 0–255 or feature values, or int64 token ids. */
  input: Float32Array | BigInt64Array;
  labels: BigInt64Array;
  /** Which examples of the set (indices into it) this batch holds, in batch order. */
  indices: Int32Array;
  size: number;
}

export interface BatchOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  /** Images: largest shift in pixels on each axis (uniform integer in [−jitter, jitter]); 0 = off. */
  jitter?: number;
  /** Skip the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
}

interface Buffers {
  input: Float32Array | BigInt64Array;
  labels: BigInt64Array;
  indices: Int32Array;
}

export class Batches {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly jitter: number;
  readonly dropLast: boolean;
  // One set of buffers per batch size (the full size, and the last partial batch's if any), so
  // every yielded array is exactly batch-sized without allocating per batch.
  private readonly buffers = new Map<number, Buffers>();

  constructor(
    readonly set: SampleSet,
    readonly indices: Int32Array,
    opts: BatchOptions,
  ) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    const jitter = opts.jitter ?? 0;
    if (!Number.isInteger(jitter) || jitter < 0) throw new RangeError(`jitter must be a non-negative integer, got ${jitter}`);
    if (jitter > 0 && set.kind !== "image") throw new RangeError(`jitter shifts images; this set holds ${set.kind}`);
    for (let i = 0; i < indices.length; i++)
      if (indices[i]! < 0 || indices[i]! >= set.count) throw new RangeError(`index ${indices[i]} at position ${i} is outside the set of ${set.count} examples`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle;
    this.seed = opts.seed;
    this.jitter = jitter;
    this.dropLast = opts.dropLast ?? false;
  }

  /** In-order batches for evaluation: no shuffle, no jitter, the last partial batch kept. */
  static sequential(set: SampleSet, indices: Int32Array, batchSize: number): Batches {
    return new Batches(set, indices, { batchSize, shuffle: false, seed: 0, jitter: 0, dropLast: false });
  }

  get exampleCount(): number {
    return this.dropLast ? this.batchCount * this.batchSize : this.indices.length;
  }

  get batchCount(): number {
    const n = this.indices.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The order examples are visited in during epoch `epochIndex` (a fresh array). */
  order(epochIndex: number): Int32Array {
    const order = this.indices.slice();
    if (this.shuffle) new Rng(this.seed, "epoch:" + epochIndex).shuffle(order);
    return order;
  }

  /**
   * The batches of one epoch, starting at batch `fromBatch` (to resume mid-epoch). The yielded
   * arrays are reused: the next batch overwrites them, so copy anything that must outlive it.
   */
  *epoch(epochIndex: number, fromBatch = 0): Generator<Batch, void, undefined> {
    const order = this.order(epochIndex);
    const { labels } = this.set;
    for (let b = fromBatch; b < this.batchCount; b++) {
      const start = b * this.batchSize;
      const size = Math.min(this.batchSize, order.length - start);
      const buf = this.buffersFor(size);
      // A stream per (epoch, batch): the shifts don't depend on whether earlier batches were
      // drawn, and turning jitter on or off leaves the order alone.
      const rng = this.jitter > 0 ? new Rng(this.seed, `jitter:${epochIndex}:${b}`) : undefined;
      for (let i = 0; i < size; i++) {
        const idx = order[start + i]!;
        buf.indices[i] = idx;
        buf.labels[i] = BigInt(labels[idx]!);
        if (rng) this.jitterSample(idx, randomShift(rng, this.jitter), buf.input as Float32Array, i);
        else copySample(this.set, idx, buf.input, i);
      }
      yield { input: buf.input, labels: buf.labels, indices: buf.indices, size };
    }
  }

  /** One image shifted by whole pixels, each channel alike. */
  private jitterSample(index: number, [dx, dy]: [number, number], out: Float32Array, row: number): void {
    const { channels, height: h, width: w } = imageShape(this.set);
    const pixels = h * w;
    for (let c = 0; c < channels; c++) jitterInto(this.set.inputs as Uint8Array, (index * channels + c) * pixels, h, w, dx, dy, out, (row * channels + c) * pixels);
  }

  private buffersFor(size: number): Buffers {
    let buf = this.buffers.get(size);
    if (!buf) {
      buf = { input: inputBuffer(this.set, size), labels: new BigInt64Array(size), indices: new Int32Array(size) };
      this.buffers.set(size, buf);
    }
    return buf;
  }
}
