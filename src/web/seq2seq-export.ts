// `distill export-web` for a sequence run: a page with a text box where each of the run's models
// (teacher.onnx, student*.onnx, written by exportSeq2SeqOnnx) converts what is typed, greedy and
// by beam search, through the same driver distill runs in Node (OnnxSeq2Seq), with its per-word
// latency and size. onnxruntime-web does not expose a model's metadata, so model.json carries the
// metadata entries the driver reads.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { decodeModel } from "../engine/onnx.js";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { SEQ2SEQ_PAGE_FILES, pageFile } from "./page.js";

/** The metadata entries the driver's seq2seqMetadata reads. */
export const DRIVER_METADATA_KEYS = ["distill.task", "distill.seq2seq", "distill.source_vocabulary", "distill.target_vocabulary", "distill.special_ids"] as const;

export interface Seq2SeqWebModel {
  /** The file's name without .onnx: "teacher", "student", "student-seed1". */
  name: string;
  file: string;
  bytes: number;
  gzipBytes: number;
  parameters: number | null;
  metadata: Record<string, string>;
}

export interface Seq2SeqWebManifest {
  kind: "seq2seq";
  run: string;
  models: Seq2SeqWebModel[];
  /** The beam width the page offers beside greedy. */
  beam: number;
  runtime: { files: { name: string; bytes: number; gzipBytes: number }[] };
}

/** The run's sequence models: teacher.onnx first, then student*.onnx in name order; those whose metadata says distill.task seq2seq. */
export function sequenceModelFiles(runDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(runDir);
  } catch {
    return [];
  }
  const candidates = names.filter((f) => /^(teacher|student[\w.-]*)\.onnx$/.test(f)).sort((a, b) => Number(b === "teacher.onnx") - Number(a === "teacher.onnx") || (a < b ? -1 : a > b ? 1 : 0));
  return candidates.filter((f) => {
    try {
      return decodeModel(readFileSync(join(runDir, f))).metadata["distill.task"] === "seq2seq";
    } catch {
      return false;
    }
  });
}

export function exportSeq2SeqWeb(runDir: string, files: string[], o: { output: string; runName: string; beam: number; ortDist: string; ortFiles: readonly string[] }): { dir: string; manifest: Seq2SeqWebManifest } {
  if (!(Number.isInteger(o.beam) && o.beam >= 2)) throw new UserError("--beam", `expected a whole number ≥ 2, got ${o.beam}`);
  const out = o.output;
  mkdirSync(join(out, "models"), { recursive: true });
  mkdirSync(join(out, "ort"), { recursive: true });
  const models = files.map((f): Seq2SeqWebModel => {
    const bytes = readFileSync(join(runDir, f));
    const md = decodeModel(bytes).metadata;
    const missing = DRIVER_METADATA_KEYS.find((k) => md[k] === undefined);
    if (missing) throw new UserError(join(runDir, f), `metadata ${missing} is missing: not a sequence model exported by distill`);
    writeFileAtomic(join(out, "models", f), bytes);
    return {
      name: basename(f, ".onnx"), file: `models/${f}`, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
      parameters: md["distill.parameters"] ? Number(md["distill.parameters"]) : null,
      metadata: Object.fromEntries(DRIVER_METADATA_KEYS.map((k) => [k, md[k]!])),
    };
  });
  const runtime = o.ortFiles.map((f) => {
    const bytes = readFileSync(join(o.ortDist, f));
    copyFileSync(join(o.ortDist, f), join(out, "ort", f));
    return { name: `ort/${f}`, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes, { level: 6 }).byteLength };
  });
  const manifest: Seq2SeqWebManifest = { kind: "seq2seq", run: o.runName, models, beam: o.beam, runtime: { files: runtime } };
  writeFileAtomic(join(out, "model.json"), JSON.stringify(manifest) + "\n");
  for (const [written, asset] of SEQ2SEQ_PAGE_FILES) writeFileSync(join(out, written), pageFile(asset));
  return { dir: out, manifest };
}
