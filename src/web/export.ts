// `distill export-web <run-dir>`: a static page (plain ES modules, no bundler) that runs the run's
// teacher, distilled student and int8 student in the browser with onnxruntime-web's WebAssembly
// backend. The page learns each model's labels, input shape and preprocessing from model.json, a
// sidecar written here from the models' ONNX metadata (onnxruntime-web does not expose metadata).

import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { quantizeDynamic } from "../compress/quantize.js";
import { loadConfig } from "../config/load.js";
import { loadData } from "../data/load.js";
import { describeSamples, imageShape, sampleSize } from "../data/sample-set.js";
import { decodeModel } from "../engine/onnx.js";
import { UserError } from "../errors.js";
import type { RunResults } from "../eval/types.js";
import { writeFileAtomic } from "../util/fs.js";
import { PAGE_FILES, pageFile } from "./page.js";
import { exportSeq2SeqWeb, sequenceModelFiles, type Seq2SeqWebManifest } from "./seq2seq-export.js";

/** onnxruntime-web files the page needs: the wasm-only ES module build and its single-file wasm runtime. */
export const ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];

export interface WebModelEntry {
  name: string;
  file: string;
  bytes: number;
  gzipBytes: number;
  inputName: string;
  outputName: string;
  probabilitiesName: string | null;
  /** Per-sample input shape, batch excluded: [784] (flat) or [1, 28, 28] (NCHW). */
  inputShape: number[];
  classLabels: string[];
  /** How the model turns raw pixels into its input (informative: the graph does it). */
  preprocessing: unknown;
}

export interface WebManifest {
  run: string;
  dataset: string;
  models: WebModelEntry[];
  runtime: { files: { name: string; bytes: number; gzipBytes: number }[] };
  /** Test images the page offers to pick: 0–255 pixels, row-major. */
  samples: { index: number; label: number; pixels: number[] }[];
  height: number;
  width: number;
}

function ortDist(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve("onnxruntime-web")), "");
  } catch {
    throw new UserError("onnxruntime-web", "npm package not found; install it with `npm install onnxruntime-web`");
  }
}

function modelEntry(name: string, file: string, bytes: Uint8Array): WebModelEntry {
  const d = decodeModel(bytes);
  const md = d.metadata;
  const input = d.inputs[0]!;
  const outputName = md["distill.output_name"] ?? d.outputs[0]!.name;
  return {
    name, file, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes, { level: 9 }).byteLength,
    inputName: input.name, outputName,
    probabilitiesName: md["distill.probabilities_name"] ?? null,
    inputShape: input.shape.slice(1).map(Number),
    classLabels: md["distill.class_labels"] ? (JSON.parse(md["distill.class_labels"]) as string[]) : [],
    preprocessing: md["distill.input_preprocessing"] ? JSON.parse(md["distill.input_preprocessing"]) : null,
  };
}

export interface ExportWebOptions {
  output?: string;
  /** Test images offered on the page. */
  samples?: number;
  /** Sequence runs: the beam width the page offers beside greedy (default 4). */
  beam?: number;
}

export async function exportWeb(runDir: string, o: ExportWebOptions = {}): Promise<{ dir: string; manifest: WebManifest | Seq2SeqWebManifest }> {
  const resultsPath = join(runDir, "results.json");
  if (!existsSync(resultsPath)) throw new UserError(runDir, "no results.json: not a finished run folder (finish it with `distill resume`)");
  const results = JSON.parse(readFileSync(resultsPath, "utf8")) as RunResults;
  // A sequence run is known by its models' metadata (distill.task seq2seq), not by its config.
  const sequenceModels = sequenceModelFiles(runDir);
  if (sequenceModels.length)
    return exportSeq2SeqWeb(runDir, sequenceModels, { output: o.output ?? join(runDir, "web"), runName: results.name ?? basename(runDir), beam: o.beam ?? 4, ortDist: ortDist(), ortFiles: ORT_FILES });
  const config = loadConfig(join(runDir, "config.yaml"));
  // The page's drawing pad and sample strip show one-channel images; other data has no pad to draw on.
  const { name, test } = await loadData(config.data);
  if (test.kind !== "image" || test.sampleShape[0] !== 1)
    throw new UserError(join(runDir, "config.yaml"), `data: export-web builds a drawing page for one-channel images; this run's data is ${describeSamples(test)}`);
  const out = o.output ?? join(runDir, "web");
  mkdirSync(join(out, "models"), { recursive: true });
  mkdirSync(join(out, "ort"), { recursive: true });
  const models: WebModelEntry[] = [];
  const add = (name: string, file: string, bytes: Uint8Array) => {
    writeFileAtomic(join(out, "models", file), bytes);
    models.push(modelEntry(name, `models/${file}`, bytes));
  };
  const read = (rel: string) => readFileSync(join(runDir, rel));
  const teacher = results.models.find((m) => m.role === "teacher");
  const student = results.models.find((m) => m.role === "student");
  if (!student) throw new UserError(resultsPath, "the run has no distilled student");
  if (teacher) add("teacher", "teacher.onnx", read(teacher.file));
  add("student", "student.onnx", read(student.file));
  const int8Path = join(runDir, "compressed", "student-int8.onnx");
  add("student int8", "student-int8.onnx", existsSync(int8Path) ? readFileSync(int8Path) : quantizeDynamic(read(student.file), student.file, "auto").bytes);

  const dist = ortDist();
  const runtime = ORT_FILES.map((f) => {
    const bytes = readFileSync(join(dist, f));
    copyFileSync(join(dist, f), join(out, "ort", f));
    return { name: `ort/${f}`, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes, { level: 6 }).byteLength };
  });
  const pixels = sampleSize(test);
  const samples = Array.from({ length: Math.min(o.samples ?? 24, test.count) }, (_, i) => ({
    index: i, label: test.labels[i]!, pixels: Array.from(test.inputs.subarray(i * pixels, (i + 1) * pixels)),
  }));
  const { height, width } = imageShape(test);
  const manifest: WebManifest = { run: results.name, dataset: name, models, runtime: { files: runtime }, samples, height, width };
  writeFileAtomic(join(out, "model.json"), JSON.stringify(manifest) + "\n");
  for (const f of PAGE_FILES) writeFileSync(join(out, f), pageFile(f));
  return { dir: out, manifest };
}
