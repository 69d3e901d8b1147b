// Per-example image copies into a batch buffer: plain, or shifted by whole pixels — the ±2-pixel
// jitter Hinton et al. (2015) trained their MNIST teacher with — left–right mirrors and mixup of a
// batch's rows (train.flip, train.mixup), and whole jittered copies of a set, for a transfer set
// the teacher labels once (data.jitteredCopies).

import { Rng } from "../util/random.js";
import { imageShape, sampleSize, type SampleSet } from "./sample-set.js";

/** Copies one h×w uint8 image to float32 (values stay 0–255). */
export function copyInto(src: Uint8Array, srcOffset: number, h: number, w: number, dst: Float32Array | Uint8Array, dstOffset: number): void {
  // TypedArray.set converts element-wise uint8 → float32 in native code.
  dst.set(src.subarray(srcOffset, srcOffset + h * w), dstOffset);
}

/**
 * Copies one h×w uint8 image to float32, shifted right by dx and down by dy pixels (negative:
 * left/up); pixels shifted in from outside are 0. dst must not overlap the image's own bytes.
 */
export function jitterInto(
  src: Uint8Array,
  srcOffset: number,
  h: number,
  w: number,
  dx: number,
  dy: number,
  dst: Float32Array | Uint8Array,
  dstOffset: number,
): void {
  if (dx === 0 && dy === 0) return copyInto(src, srcOffset, h, w, dst, dstOffset);
  // Destination columns [x0, x1) read source columns [x0 − dx, x1 − dx); the rest are fill.
  const x0 = Math.max(0, dx), x1 = Math.min(w, w + dx);
  for (let y = 0; y < h; y++) {
    const row = dstOffset + y * w;
    const sy = y - dy;
    if (sy < 0 || sy >= h || x0 >= x1) {
      dst.fill(0, row, row + w);
      continue;
    }
    dst.fill(0, row, row + x0);
    const from = srcOffset + sy * w + x0 - dx;
    dst.set(src.subarray(from, from + (x1 - x0)), row + x0);
    dst.fill(0, row + x1, row + w);
  }
}

/** Reverses `rows` consecutive rows of `width` values each, starting at row `firstRow` (a left–right mirror of image planes). */
export function flipRowsInPlace(data: Float32Array, firstRow: number, rows: number, width: number): void {
  for (let r = firstRow; r < firstRow + rows; r++) data.subarray(r * width, (r + 1) * width).reverse();
}

/**
 * Mixup of rows of `size` values: out row i = λ·src row i + (1 − λ)·src row partner[i], computed in
 * double precision and rounded once to float32. `out` must not be `src`.
 */
export function mixRows(src: Float32Array, partner: Int32Array, lambda: number, size: number, out: Float32Array): void {
  for (let i = 0; i < partner.length; i++) {
    const a = i * size, b = partner[i]! * size;
    for (let k = 0; k < size; k++) out[a + k] = lambda * src[a + k]! + (1 - lambda) * src[b + k]!;
  }
}

/** A shift in [−max, max] on each axis, uniform over integers. */
export function randomShift(rng: { int(n: number): number }, max: number): [dx: number, dy: number] {
  return [rng.int(2 * max + 1) - max, rng.int(2 * max + 1) - max];
}

/** Every non-zero shift of at most `max` pixels on each axis: (2·max + 1)² − 1 of them. */
export function nonZeroShifts(max: number): [dx: number, dy: number][] {
  const shifts: [number, number][] = [];
  for (let dy = -max; dy <= max; dy++) for (let dx = -max; dx <= max; dx++) if (dx !== 0 || dy !== 0) shifts.push([dx, dy]);
  return shifts;
}

/**
 * `set` with `copies` shifted copies of each of its images `indices` appended (same label, same id
 * plus "@dx,dy"), each copy of one image shifted differently (drawn without replacement from the
 * non-zero shifts, seeded: the same set every run). Returns the grown set and the copies' indices
 * in it, copy-major: [all images' first copies, all second copies, …].
 */
export function appendJitteredCopies(set: SampleSet, indices: Int32Array, copies: number, jitter: number, seed = 0): { set: SampleSet; indices: Int32Array } {
  const { channels, height: h, width: w } = imageShape(set);
  const shifts = nonZeroShifts(jitter);
  if (!Number.isInteger(copies) || copies < 1 || copies > shifts.length) throw new RangeError(`copies must be an integer from 1 to ${shifts.length} (the non-zero shifts of at most ${jitter} pixels), got ${copies}`);
  const size = sampleSize(set), pixels = h * w, added = indices.length * copies;
  const inputs = new Uint8Array((set.count + added) * size);
  inputs.set(set.inputs as Uint8Array);
  const labels = new (set.labels.constructor as Uint8ArrayConstructor | Int32ArrayConstructor)(set.count + added);
  labels.set(set.labels);
  const ids = set.ids ? [...set.ids] : undefined;
  const out = new Int32Array(added);
  const rng = new Rng(seed, "jittered-copies");
  const order = Int32Array.from(shifts, (_, i) => i);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]!;
    // A partial Fisher–Yates shuffle: the first `copies` entries are this image's distinct shifts.
    for (let c = 0; c < copies; c++) {
      const j = c + rng.int(order.length - c);
      [order[c], order[j]] = [order[j]!, order[c]!];
    }
    for (let c = 0; c < copies; c++) {
      const idx = set.count + c * indices.length + i;
      const [dx, dy] = shifts[order[c]!]!;
      for (let ch = 0; ch < channels; ch++) jitterInto(set.inputs as Uint8Array, (src * channels + ch) * pixels, h, w, dx, dy, inputs, (idx * channels + ch) * pixels);
      labels[idx] = set.labels[src]!;
      if (ids) ids[idx] = `${set.ids![src]}@${dx},${dy}`;
      out[c * indices.length + i] = idx;
    }
  }
  return { set: { ...set, inputs, labels, count: set.count + added, ...(ids ? { ids } : {}) }, indices: out };
}
