// Teachers trained here are trained once per cache folder, not once per run: a trained teacher is
// kept under <cache>/teachers/<key>/ (its .onnx as exported, and teacher.json: the key's fields,
// the .onnx's size and SHA-256, history, accuracy, wall time, code version, date), and any later run,
// example, tune trial or shrink rung whose teacher has the same key reuses it without an epoch.
//
// The key hashes everything that determines the teacher's weights and file: its model and train
// specs, its seed, the values and labels it trains and validates on (in order, as the soft-target
// keys hash values: another copy of the same data gives the same key), the class labels, the input
// statistics and vocabulary its graph embeds, onnxruntime's version, and TEACHER_TRAINING_VERSION.
// Not the config's name or the git commit: a commit that changes nothing must not retrain.
//
// Two processes that want one teacher meet on a lock (util/cache-file.ts): one trains, the other
// waits and reuses. teacher.json is written last and names the .onnx's size and digest, so a
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
 * the exporter changes the weights or the .onnx that a given teacher config trains to: every cached
 * teacher is then trained again. Changes elsewhere (reports, students, the CLI) leave it alone.
 */
export const TEACHER_TRAINING_VERSION = "teacher-training-v1";

/** Layout of teacher.json. */
const RECORD_FORMAT = 1;

/** What determines a teacher trained here. */
export interface TeacherKeyInput {
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

export interface TeacherKey {
  key: string;
  /** The key's inputs in words and digests, kept in teacher.json for a reader. */
  fields: Record<string, unknown>;
}

export interface TeacherCacheRecord {
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

export interface CachedTeacher {
  dir: string;
  onnxPath: string;
  bytes: Uint8Array;
  record: TeacherCacheRecord;
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

export function teacherKey(k: TeacherKeyInput): TeacherKey {
  const fields = {
    version: TEACHER_TRAINING_VERSION,
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
  return { key: createHash("sha256").update(canonical(fields)).digest("hex").slice(0, 32), fields };
}

export function teacherCacheDir(cacheDir: string, key: string): string {
  return join(cacheDir, "teachers", key);
}

/** The entry for `key`, checked: teacher.json readable and for this key, the .onnx of the size and digest it names. */
export function readCachedTeacher(cacheDir: string, key: string): CacheLookup<CachedTeacher> {
  const dir = teacherCacheDir(cacheDir, key);
  const recordPath = join(dir, "teacher.json");
  if (!existsSync(recordPath)) return { status: "missing" };
  const damaged = (why: string) => ({ status: "damaged" as const, why: `${dir}: damaged cached teacher (${why})` });
  let record: TeacherCacheRecord;
  try {
    record = JSON.parse(readFileSync(recordPath, "utf8")) as TeacherCacheRecord;
  } catch (e) {
    return damaged(`teacher.json is not valid JSON: ${(e as Error).message}`);
  }
  if (record?.format !== RECORD_FORMAT || record.key !== key || !record.onnx) return damaged(`teacher.json is not a format-${RECORD_FORMAT} record for this key`);
  const onnxPath = join(dir, record.onnx.file);
  if (!existsSync(onnxPath)) return damaged(`${record.onnx.file} is missing`);
  const bytes = new Uint8Array(readFileSync(onnxPath));
  if (bytes.byteLength !== record.onnx.bytes) return damaged(`${record.onnx.file} has ${bytes.byteLength} bytes where ${record.onnx.bytes} were recorded`);
  if (createHash("sha256").update(bytes).digest("hex") !== record.onnx.sha256) return damaged(`${record.onnx.file}: checksum mismatch`);
  return { status: "hit", value: { dir, onnxPath, bytes, record } };
}

export interface TeacherCacheOptions {
  cacheDir: string;
  key: TeacherKey;
  /** The run folder training it (recorded in teacher.json). */
  runDir: string;
  /**
   * Trains the teacher and returns its exported bytes and history. `heartbeat` (call it every
   * epoch) keeps the lock fresh, so a process on another host does not take it for abandoned.
   */
  train: (heartbeat: () => void) => Promise<{ bytes: Uint8Array; history: EpochMetric[] }>;
  onWarning?: (message: string) => void;
  onWait?: (owner: LockOwner) => void;
  signal?: AbortSignal;
}

/** The cached teacher for the key, training (and caching) it when there is none. */
export async function cachedTeacher(o: TeacherCacheOptions): Promise<{ teacher: CachedTeacher; trained: boolean }> {
  const lock = `${teacherCacheDir(o.cacheDir, o.key.key)}.lock`;
  const got = await underLock(lock, {
    read: () => readCachedTeacher(o.cacheDir, o.key.key),
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
      return writeCachedTeacher(o.cacheDir, o.key, bytes, history, o.runDir);
    },
  }, { ...(o.onWarning ? { onWarning: o.onWarning } : {}), ...(o.onWait ? { onWait: o.onWait } : {}), ...(o.signal ? { signal: o.signal } : {}), pollMs: 500 }, true);
  return { teacher: got!.value, trained: got!.computed };
}

/** Writes the .onnx, then teacher.json naming its size and digest (a reader trusts the pair only then). */
function writeCachedTeacher(cacheDir: string, key: TeacherKey, bytes: Uint8Array, history: EpochMetric[], runDir: string): CachedTeacher {
  const dir = teacherCacheDir(cacheDir, key.key);
  const onnxPath = join(dir, "teacher.onnx");
  writeFileAtomic(onnxPath, bytes);
  const last = history[history.length - 1];
  const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
  const record: TeacherCacheRecord = {
    format: RECORD_FORMAT,
    key: key.key,
    fields: key.fields,
    onnx: { file: "teacher.onnx", bytes: bytes.byteLength, sha256: createHash("sha256").update(bytes).digest("hex") },
    epochs: history.length,
    seconds: Math.round(history.reduce((s, m) => s + m.seconds, 0) * 10) / 10,
    validationAccuracy: finite(last?.valAccuracy),
    trainAccuracy: finite(last?.trainAccuracy),
    history,
    codeVersion: codeVersion(),
    trainedAt: new Date().toISOString(),
    trainedIn: runDir,
  };
  writeFileAtomic(join(dir, "teacher.json"), JSON.stringify(record, null, 2) + "\n");
  return { dir, onnxPath, bytes, record };
}
