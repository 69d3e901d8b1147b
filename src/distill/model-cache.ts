// Models trained here with labels alone — teachers, and the label-only baseline every run compares
// its student with — are trained once per cache folder, not once per run: a trained model is kept
// under <cache>/teachers/<key>/ or <cache>/baselines/<key>/ (its .onnx as exported, and
// teacher.json or baseline.json: the key's fields, the .onnx's size and SHA-256, history, accuracy,
// wall time, code version, date), and any later run, example, tune trial or shrink rung that would
// train the same model reuses it without an epoch. A baseline is worth it: it does not depend on the
// teacher or the kd terms, so a tune's finals or a methods table train each seed's baseline once.
//
// The key hashes everything that determines the model's weights and file: its model and train
// specs, its seed, the values and labels it trains and validates on (in order, as the soft-target
// keys hash values: another copy of the same data gives the same key), the class labels, the input
// statistics and vocabulary its graph embeds, onnxruntime's version, and TRAINING_VERSION.
// Not the config's name or the git commit: a commit that changes nothing must not retrain.
// Not the intra-op thread count either: it may move the last float bits, not what the model is.
//
// Two processes that want one model meet on a lock (util/cache-file.ts): one trains, the other
// waits and reuses. The record is written last and names the .onnx's size and digest, so a
// half-copied or damaged entry is found, reported once, and trained again.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, utimesSync } from "node:fs";
import { join } from "node:path";
import ort from "onnxruntime-node";
import type { TrainSpec } from "../config/schema.js";
import type { ModelSpec } from "../config/model-spec.js";
import { sampleSize, type SampleSet } from "../data/sample-set.js";
import type { Vocabulary } from "../data/tokenizer.js";
import type { EpochMetric } from "../eval/types.js";
import type { DataGeometry } from "../nn/spec.js";
import { underLock, type CacheLookup, type LockOwner } from "../util/cache-file.js";
import { codeVersion } from "../util/code-version.js";
import { writeFileAtomic } from "../util/fs.js";

/**
 * Bump when a change to the engine, the layers, initialisation, optimizers, batching and jitter, or
 * the exporter changes the weights or the .onnx that a given config trains to: every cached model
 * is then trained again. Changes elsewhere (reports, distillation terms, the CLI) leave it alone.
 */
export const TRAINING_VERSION = "teacher-training-v1";

/** What a cache entry holds: a teacher, or the label-only baseline of one seed. */
export type CachedRole = "teacher" | "baseline";

/** Layout of teacher.json and baseline.json. */
const RECORD_FORMAT = 1;

/** What determines a model trained here. */
export interface ModelKeyInput {
  role: CachedRole;
  model: ModelSpec;
  train: TrainSpec;
  seed: number;
  set: SampleSet;
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  classLabels: string[];
  geometry: DataGeometry;
  vocabulary?: Vocabulary | undefined;
}

export interface ModelKey {
  role: CachedRole;
  key: string;
  /** The key's inputs in words and digests, kept in the record for a reader. */
  fields: Record<string, unknown>;
}

export interface ModelCacheRecord {
  format: number;
  key: string;
  fields: Record<string, unknown>;
  onnx: { file: string; bytes: number; sha256: string };
  epochs: number;
  /** Training wall time, summed over its epochs (a resumed training counts each epoch once). */
  seconds: number;
  /** Last epoch's (null without a validation split). */
  validationAccuracy: number | null;
  trainAccuracy: number | null;
  history: EpochMetric[];
  codeVersion: string;
  trainedAt: string;
  /** The run folder that trained it. */
  trainedIn: string;
}

export interface CachedModel {
  dir: string;
  onnxPath: string;
  bytes: Uint8Array;
  record: ModelCacheRecord;
}

/** JSON with sorted keys, so that a spec's key order (YAML as written) does not change the key. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) && !ArrayBuffer.isView(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v);
}

/** SHA-256 of the rows `indices` of `set` and their labels, in order. */
function rowsDigest(set: SampleSet, indices: Int32Array): string {
  const h = createHash("sha256");
  h.update(`${set.kind}:${set.sampleShape.join("x")}:${indices.length}`);
  const size = sampleSize(set);
  const label = new Int32Array(1);
  for (let i = 0; i < indices.length; i++) {
    const row = set.inputs.subarray(indices[i]! * size, (indices[i]! + 1) * size);
    h.update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength));
    label[0] = set.labels[indices[i]!]!;
    h.update(new Uint8Array(label.buffer));
  }
  return h.digest("hex");
}

export function trainedModelKey(k: ModelKeyInput): ModelKey {
  const fields = {
    version: TRAINING_VERSION,
    // A teacher's key has no role field, so that entries cached before baselines were are still found.
    ...(k.role === "teacher" ? {} : { role: k.role }),
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common ?? "unknown",
    model: k.model,
    train: k.train,
    seed: k.seed,
    data: {
      kind: k.set.kind,
      sampleShape: k.set.sampleShape,
      classLabels: k.classLabels,
      geometry: k.geometry,
      ...(k.vocabulary ? { vocabulary: createHash("sha256").update(canonical(k.vocabulary)).digest("hex") } : {}),
      train: { samples: k.trainIndices.length, sha256: rowsDigest(k.set, k.trainIndices) },
      validation: { samples: k.validationIndices.length, sha256: rowsDigest(k.set, k.validationIndices) },
    },
  };
  return { role: k.role, key: createHash("sha256").update(canonical(fields)).digest("hex").slice(0, 32), fields };
}

export function modelCacheDir(cacheDir: string, role: CachedRole, key: string): string {
  return join(cacheDir, `${role}s`, key);
}

/** The entry for `key`, checked: its record readable and for this key, the .onnx of the size and digest it names. */
export function readCachedModel(cacheDir: string, role: CachedRole, key: string): CacheLookup<CachedModel> {
  const dir = modelCacheDir(cacheDir, role, key);
  const recordFile = `${role}.json`;
  const recordPath = join(dir, recordFile);
  if (!existsSync(recordPath)) return { status: "missing" };
  const damaged = (why: string) => ({ status: "damaged" as const, why: `${dir}: damaged cached ${role} (${why})` });
  let record: ModelCacheRecord;
  try {
    record = JSON.parse(readFileSync(recordPath, "utf8")) as ModelCacheRecord;
  } catch (e) {
    return damaged(`${recordFile} is not valid JSON: ${(e as Error).message}`);
  }
  if (record?.format !== RECORD_FORMAT || record.key !== key || !record.onnx) return damaged(`${recordFile} is not a format-${RECORD_FORMAT} record for this key`);
  const onnxPath = join(dir, record.onnx.file);
  if (!existsSync(onnxPath)) return damaged(`${record.onnx.file} is missing`);
  const bytes = new Uint8Array(readFileSync(onnxPath));
  if (bytes.byteLength !== record.onnx.bytes) return damaged(`${record.onnx.file} has ${bytes.byteLength} bytes where ${record.onnx.bytes} were recorded`);
  if (createHash("sha256").update(bytes).digest("hex") !== record.onnx.sha256) return damaged(`${record.onnx.file}: checksum mismatch`);
  return { status: "hit", value: { dir, onnxPath, bytes, record } };
}

export interface ModelCacheOptions {
  cacheDir: string;
  key: ModelKey;
  /** The run folder training it (recorded in the entry). */
  runDir: string;
  /**
   * Trains the model and returns its exported bytes and history. `heartbeat` (call it every
   * epoch) keeps the lock fresh, so a process on another host does not take it for abandoned.
   */
  train: (heartbeat: () => void) => Promise<{ bytes: Uint8Array; history: EpochMetric[] }>;
  onWarning?: (message: string) => void;
  onWait?: (owner: LockOwner) => void;
  signal?: AbortSignal;
}

/** The cached model for the key, training (and caching) it when there is none. */
export async function cachedModel(o: ModelCacheOptions): Promise<{ model: CachedModel; trained: boolean }> {
  const lock = `${modelCacheDir(o.cacheDir, o.key.role, o.key.key)}.lock`;
  const got = await underLock(lock, {
    read: () => readCachedModel(o.cacheDir, o.key.role, o.key.key),
    compute: async () => {
      const heartbeat = () => {
        const now = new Date();
        try {
          utimesSync(lock, now, now);
        } catch {
          // removed by someone who judged it stale: nothing to refresh; our write is still atomic
        }
      };
      const { bytes, history } = await o.train(heartbeat);
      return writeCachedModel(o.cacheDir, o.key, bytes, history, o.runDir);
    },
  }, { ...(o.onWarning ? { onWarning: o.onWarning } : {}), ...(o.onWait ? { onWait: o.onWait } : {}), ...(o.signal ? { signal: o.signal } : {}), pollMs: 500 }, true);
  return { model: got!.value, trained: got!.computed };
}

/** Writes the .onnx, then the record naming its size and digest (a reader trusts the pair only then). */
function writeCachedModel(cacheDir: string, key: ModelKey, bytes: Uint8Array, history: EpochMetric[], runDir: string): CachedModel {
  const dir = modelCacheDir(cacheDir, key.role, key.key);
  const onnxFile = `${key.role}.onnx`;
  const onnxPath = join(dir, onnxFile);
  writeFileAtomic(onnxPath, bytes);
  const last = history[history.length - 1];
  const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
  const record: ModelCacheRecord = {
    format: RECORD_FORMAT,
    key: key.key,
    fields: key.fields,
    onnx: { file: onnxFile, bytes: bytes.byteLength, sha256: createHash("sha256").update(bytes).digest("hex") },
    epochs: history.length,
    seconds: Math.round(history.reduce((s, m) => s + m.seconds, 0) * 10) / 10,
    validationAccuracy: finite(last?.valAccuracy),
    trainAccuracy: finite(last?.trainAccuracy),
    history,
    codeVersion: codeVersion(),
    trainedAt: new Date().toISOString(),
    trainedIn: runDir,
  };
  writeFileAtomic(join(dir, `${key.role}.json`), JSON.stringify(record, null, 2) + "\n");
  return { dir, onnxPath, bytes, record };
}
