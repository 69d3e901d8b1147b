// The teacher's logits on the transfer set, computed once and cached on disk as float32. The key
// hashes everything the logits depend on — the teacher file's bytes, the images, and how they
// are fed (raw 0–255 pixels, unshifted) — so every stage, epoch, seed and later run reuses them,
// and any change to teacher or data computes them afresh. Several processes may share one cache
// folder: the file is checksummed and written under a lock (src/util/cache-file.ts).

import { createHash } from "node:crypto";
import { join } from "node:path";
import { sampleSize, type SampleSet } from "../data/sample-set.js";
import { UserError } from "../errors.js";
import { cachedPayload } from "../util/cache-file.js";
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

export function softTargetKey(teacherBytes: Uint8Array, set: SampleSet, indices: Int32Array): string {
  const h = createHash("sha256");
  h.update(FEED_VERSION);
  h.update(createHash("sha256").update(teacherBytes).digest());
  // One-channel images keep the key format caches were made with before other kinds existed.
  const { kind, sampleShape } = set;
  h.update(kind === "image" && sampleShape[0] === 1 ? `${sampleShape[1]}x${sampleShape[2]}:${indices.length}` : `${kind}:${sampleShape.join("x")}:${indices.length}`);
  h.update(new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength));
  // The decoded values themselves, not the file names: a different copy of the data gets a different key.
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

export async function teacherSoftTargets(o: {
  teacher: OnnxClassifier;
  set: SampleSet;
  indices: Int32Array;
  cacheDir: string;
  onProgress?: (done: number, total: number) => void;
  /** Damaged cache files and waits on another process's computation are reported here. */
  onWarning?: (message: string) => void;
  /** Sub-folder of the cache (default soft-targets; the teacher report's validation logits keep to their own). */
  folder?: string;
}): Promise<SoftTargets> {
  const key = softTargetKey(o.teacher.bytes, o.set, o.indices);
  const k = o.teacher.numClasses;
  const file = join(o.cacheDir, o.folder ?? "soft-targets", `${key}.bin`);
  const before = o.teacher.samplesRun;
  let waited = false;
  const { payload, computed } = await cachedPayload(file, o.indices.length * k * 4, async () => {
    const logits = await o.teacher.logits(o.set, o.indices, 500, (done) => o.onProgress?.(done, o.indices.length));
    for (let i = 0; i < logits.length; i++)
      if (!Number.isFinite(logits[i]!))
        throw new UserError(o.teacher.where, `the teacher's output ${o.teacher.outputName} is ${logits[i]} (not a finite logit) for training example ${o.indices[Math.floor(i / k)]}; fix or replace the teacher`);
    return new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength);
  }, {
    onWarning: o.onWarning,
    onWait: (owner) => {
      if (!waited) o.onWarning?.(`${file}: process ${owner.pid} on ${owner.host} is computing these soft targets; waiting for it`);
      waited = true;
    },
  });
  const logits = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
  return { logits, classes: k, key, computedSamples: computed ? o.teacher.samplesRun - before : 0, file };
}
