// Mini-batches over a subset of a SampleSet. Order and augmentations (jitter, flips, mixup) are
// functions of (seed, epoch, batch) only, so a resumed run replays exactly the batches the
// interrupted one would have seen.

import { Rng } from "../util/random.js";
import { flipRowsInPlace, jitterInto, mixRows, randomShift } from "./augment.js";
import { copySample, imageShape, inputBuffer, sampleSize, type SampleSet } from "./sample-set.js";

/**
 * The label fed for a sample without one: outside every class, so its one-hot row is all zeros
 * (ONNX OneHot) and hard-label losses skip it.
 */
export const MISSING_LABEL = 1n << 30n;

export interface Batch {
  /** [size, ...sampleShape]: float32 raw pixels 0–255 or feature values, or int64 token ids. */
  input: Float32Array | BigInt64Array;
  labels: BigInt64Array;
  /** Which examples of the set (indices into it) this batch holds, in batch order. */
  indices: Int32Array;
  size: number;
  /**
   * Mixup: row i of `input` is λ·x_i + (1 − λ)·x_partner[i] (partner: rows of this batch); the
   * loss weighs row i's label by λ and its partner's by 1 − λ. Absent without mixup.
   */
  mix?: { lambda: number; partner: Int32Array };
}

export interface BatchOptions {
  batchSize: number;
  shuffle: boolean;
  seed: number;
  /** Images: largest shift in pixels on each axis (uniform integer in [−jitter, jitter]); 0 = off. */
  jitter?: number;
  /** Images: each one mirrored left–right with probability 1/2 (after the jitter). */
  flip?: boolean;
  /**
   * Images: mixup (Zhang et al. 2018) with λ ~ Beta(mixup, mixup), one λ per batch as in the
   * authors' code, each image mixed with a partner from a shuffle of the same batch (after jitter
   * and flips). Absent or 0: off.
   */
  mixup?: number;
  /** Skip the last batch when it is smaller than batchSize. */
  dropLast?: boolean;
}

interface Buffers {
  input: Float32Array | BigInt64Array;
  labels: BigInt64Array;
  indices: Int32Array;
  /** Mixup: the batch's partner rows, and the unmixed images they are mixed from. */
  partner?: Int32Array;
  unmixed?: Float32Array;
}

export class Batches {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly jitter: number;
  readonly flip: boolean;
  readonly mixup: number;
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
    const mixup = opts.mixup ?? 0;
    if (!(mixup >= 0 && Number.isFinite(mixup))) throw new RangeError(`mixup must be a finite number ≥ 0, got ${mixup}`);
    if ((opts.flip || mixup > 0) && set.kind !== "image") throw new RangeError(`${opts.flip ? "flips" : "mixup"} augment images; this set holds ${set.kind}`);
    for (let i = 0; i < indices.length; i++)
      if (indices[i]! < 0 || indices[i]! >= set.count) throw new RangeError(`index ${indices[i]} at position ${i} is outside the set of ${set.count} examples`);
    this.batchSize = opts.batchSize;
    this.shuffle = opts.shuffle;
    this.seed = opts.seed;
    this.jitter = jitter;
    this.flip = opts.flip ?? false;
    this.mixup = mixup;
    this.dropLast = opts.dropLast ?? false;
  }

  /** In-order batches for evaluation: no shuffle, no augmentation, the last partial batch kept. */
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
      // A stream per (epoch, batch) and augmentation: the draws don't depend on whether earlier
      // batches were drawn, and turning one augmentation on or off leaves the order and the others alone.
      const rng = this.jitter > 0 ? new Rng(this.seed, `jitter:${epochIndex}:${b}`) : undefined;
      for (let i = 0; i < size; i++) {
        const idx = order[start + i]!;
        buf.indices[i] = idx;
        buf.labels[i] = this.labelAt(i, idx, labels);
        if (rng) this.jitterSample(idx, randomShift(rng, this.jitter), buf.input as Float32Array, i);
        else copySample(this.set, idx, buf.input, i);
      }
      if (this.flip) this.flipRows(buf.input as Float32Array, size, new Rng(this.seed, `flip:${epochIndex}:${b}`));
      const mix = this.mixup > 0 ? this.mixRows(buf, size, new Rng(this.seed, `mixup:${epochIndex}:${b}`)) : undefined;
      yield { input: buf.input, labels: buf.labels, indices: buf.indices, size, ...(mix ? { mix } : {}) };
    }
  }

  /** Mirrors each of the first `size` images left–right with probability 1/2, one draw per image in row order. */
  private flipRows(input: Float32Array, size: number, rng: Rng): void {
    const { channels, height, width } = imageShape(this.set);
    for (let i = 0; i < size; i++) if (rng.next() < 0.5) flipRowsInPlace(input, i * channels * height, channels * height, width);
  }

  /** Mixup in place: λ ~ Beta(α, α), then a shuffle of the rows gives each its partner. */
  private mixRows(buf: Buffers, size: number, rng: Rng): { lambda: number; partner: Int32Array } {
    const lambda = rng.beta(this.mixup, this.mixup);
    const partner = (buf.partner ??= new Int32Array(size));
    for (let i = 0; i < size; i++) partner[i] = i;
    rng.shuffle(partner);
    const unmixed = (buf.unmixed ??= new Float32Array(buf.input.length));
    unmixed.set(buf.input as Float32Array);
    mixRows(unmixed, partner, lambda, sampleSize(this.set), buf.input as Float32Array);
    return { lambda, partner };
  }

  /** The label fed for the example at position `row` of a batch. */
  protected labelAt(_row: number, index: number, labels: SampleSet["labels"]): bigint {
    return BigInt(labels[index]!);
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

/**
 * Batches that mix labelled and unlabelled examples in a fixed proportion (semi-supervised
 * distillation): each batch holds `labeledPerBatch` labelled examples first, then unlabelled ones
 * fed with MISSING_LABEL. An epoch is as many full batches as both lists fill together; each list
 * is visited in its own seeded order and starts over (freshly shuffled) when used up, so the
 * smaller one repeats within an epoch when the proportion asks for more of it.
 */
export class MixedBatches extends Batches {
  constructor(
    set: SampleSet,
    readonly labeled: Int32Array,
    readonly unlabeled: Int32Array,
    readonly labeledPerBatch: number,
    opts: Omit<BatchOptions, "dropLast">,
  ) {
    super(set, concat(labeled, unlabeled), { ...opts, dropLast: true });
    if (!Number.isInteger(labeledPerBatch) || labeledPerBatch < 1 || labeledPerBatch >= opts.batchSize)
      throw new RangeError(`labeledPerBatch must be an integer from 1 to ${opts.batchSize - 1}, got ${labeledPerBatch}`);
    if (labeled.length === 0 || unlabeled.length === 0) throw new RangeError("MixedBatches needs labelled and unlabelled examples");
  }

  override order(epochIndex: number): Int32Array {
    const b = this.batchSize, lp = this.labeledPerBatch;
    const labeled = new Stream(this.labeled, this.seed, `labeled:${epochIndex}`);
    const unlabeled = new Stream(this.unlabeled, this.seed, `unlabeled:${epochIndex}`);
    const order = new Int32Array(this.batchCount * b);
    for (let batch = 0; batch < this.batchCount; batch++)
      for (let i = 0; i < b; i++) order[batch * b + i] = i < lp ? labeled.next() : unlabeled.next();
    return order;
  }

  protected override labelAt(row: number, index: number, labels: SampleSet["labels"]): bigint {
    return row < this.labeledPerBatch ? BigInt(labels[index]!) : MISSING_LABEL;
  }
}

/** An endless walk through `indices`, reshuffled (seeded) at every pass. */
class Stream {
  private order: Int32Array;
  private at = 0;
  private pass = 0;
  constructor(
    private readonly indices: Int32Array,
    private readonly seed: number,
    private readonly stream: string,
  ) {
    this.order = this.shuffled();
  }
  next(): number {
    if (this.at === this.order.length) {
      this.pass++;
      this.order = this.shuffled();
      this.at = 0;
    }
    return this.order[this.at++]!;
  }
  private shuffled(): Int32Array {
    const order = this.indices.slice();
    new Rng(this.seed, `${this.stream}:${this.pass}`).shuffle(order);
    return order;
  }
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
