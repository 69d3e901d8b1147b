// The teacher's logits on the transfer set, computed once and cached on disk as float32. The key
// hashes everything the logits depend on — the teacher file's bytes, the images, and how they
// are fed (raw 0–255 pixels, unshifted) — so every stage, epoch, seed and later run reuses them,
// and any change to teacher or data computes them afresh.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ImageSet } from "../data/datasets.js";
import { writeFileAtomic } from "../util/fs.js";
import type { OnnxClassifier } from "../eval/evaluate.js";

/** Bumped when the way inputs are fed to the teacher changes (invalidates old caches). */
const FEED_VERSION = "raw-pixels-0-255-unshifted-v1";

export interface SoftTargets {
  /** [count, classes] row i = teacher logits of example indices[i]. */
  logits: Float32Array;
  classes: number;
  key: string;
  /** Teacher forward passes this call ran: indices.length on a miss, 0 on a hit. */
  computedSamples: number;
  file: string;
}

export function softTargetKey(teacherBytes: Uint8Array, set: ImageSet, indices: Int32Array): string {
  const h = createHash("sha256");
  h.update(FEED_VERSION);
  h.update(createHash("sha256").update(teacherBytes).digest());
  h.update(`${set.height}x${set.width}:${indices.length}`);
  h.update(new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength));
  // The pixels themselves, not the file names: a different copy of the data gets a different key.
  const pixels = set.height * set.width;
  const images = createHash("sha256");
  for (let i = 0; i < indices.length; i++) images.update(set.images.subarray(indices[i]! * pixels, (indices[i]! + 1) * pixels));
  h.update(images.digest());
  return h.digest("hex").slice(0, 32);
}

/** Default cache folder: $DISTILL_CACHE, else .cache/distill under the working directory. */
export function defaultCacheDir(): string {
  return process.env["DISTILL_CACHE"] ?? join(process.cwd(), ".cache", "distill");
}

export async function teacherSoftTargets(o: {
  teacher: OnnxClassifier;
  set: ImageSet;
  indices: Int32Array;
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
}): Promise<SoftTargets> {
  const key = softTargetKey(o.teacher.bytes, o.set, o.indices);
  const k = o.teacher.numClasses;
  const file = join(o.cacheDir, "soft-targets", `${key}.f32`);
  const expectedBytes = o.indices.length * k * 4;
  if (existsSync(file)) {
    const buf = readFileSync(file);
    // A wrong size means a foreign or damaged file: recompute rather than trust it.
    if (buf.byteLength === expectedBytes) {
      const logits = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      return { logits, classes: k, key, computedSamples: 0, file };
    }
  }
  const before = o.teacher.samplesRun;
  const logits = await o.teacher.logits(o.set, o.indices, 500, (done) => o.onProgress?.(done, o.indices.length));
  for (let i = 0; i < logits.length; i++)
    if (!Number.isFinite(logits[i]!)) throw new Error(`teacher ${o.teacher.where} produced a non-finite logit for example ${o.indices[Math.floor(i / k)]}`);
  writeFileAtomic(file, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength));
  return { logits, classes: k, key, computedSamples: o.teacher.samplesRun - before, file };
}
