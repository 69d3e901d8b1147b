// Per-example image copies into a float batch buffer: plain, or shifted by whole pixels — the
// ±2-pixel jitter Hinton et al. (2015) trained their MNIST teacher with.

/** Copies one h×w uint8 image to float32 (values stay 0–255). */
export function copyInto(src: Uint8Array, srcOffset: number, h: number, w: number, dst: Float32Array, dstOffset: number): void {
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
  dst: Float32Array,
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

/** A shift in [−max, max] on each axis, uniform over integers. */
export function randomShift(rng: { int(n: number): number }, max: number): [dx: number, dy: number] {
  return [rng.int(2 * max + 1) - max, rng.int(2 * max + 1) - max];
}
