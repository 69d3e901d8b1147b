// `distill quantize`: one model file in, one quantized file out, checked against its source on the
// test set of its dataset (accuracy, agreement, size, speed under onnxruntime-node and -web).

import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { DatasetName } from "../data/datasets.js";
import { dataOfModel } from "../data/load.js";
import type { Dataset } from "../data/sample-set.js";
import { allIndices, firstN } from "../data/split.js";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { calibrate, type CalibrationMethod } from "./calibrate.js";
import { checkModel, parameterCountOf, sampleBatch, type VariantCheck } from "./check.js";
import { metadataOf, readModelProto } from "./onnx-model.js";
import { checkPrunable, keepForParams, measureSparsity, pruneStructured, pruneUnstructured, structuredFloor, type PruneReport } from "./prune.js";
import { calibrationTensors, convertFp16, quantizeDynamic, quantizeStatic, type DynamicFormat, type QuantizeReport } from "./quantize.js";

export type QuantizeMode = "dynamic" | "static" | "fp16";

export interface QuantizeOptions {
  mode: QuantizeMode;
  output: string;
  format?: DynamicFormat;
  /** Dataset for calibration (its training images) and the check (its test images); default: the model's distill.dataset. */
  data?: DatasetName;
  method?: CalibrationMethod;
  percentile?: number;
  calibrationSamples?: number;
  /** Test images for the check; 0 skips it. */
  limit?: number;
  check?: boolean;
  wasm?: boolean;
}

export interface QuantizeResult {
  source: string;
  output: string;
  report: QuantizeReport;
  check?: { source: VariantCheck; quantized: VariantCheck; data: string; testSamples: number };
}

function readModel(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`);
  }
}

function datasetFor(modelPath: string, bytes: Uint8Array, given: DatasetName | undefined, why: string): Promise<Dataset> {
  return dataOfModel(metadataOf(readModelProto(bytes, modelPath)), given, modelPath, why);
}

/** Quantizes `modelPath` as asked, writes the result atomically, and (by default) checks it. */
export async function quantizeFile(modelPath: string, o: QuantizeOptions): Promise<QuantizeResult> {
  if (resolve(modelPath) === resolve(o.output)) throw new UserError(o.output, "the output would overwrite the source model; choose another -o");
  const source = readModel(modelPath);
  const sampleShape = inputSampleShape(source, modelPath);
  let quantized: { bytes: Uint8Array; report: QuantizeReport };
  let data: Dataset | undefined;
  if (o.mode === "dynamic") quantized = quantizeDynamic(source, modelPath, o.format ?? "auto");
  else if (o.mode === "fp16") quantized = convertFp16(source, modelPath);
  else {
    data = await datasetFor(modelPath, source, o.data, "static quantization calibrates on its training images");
    if (data.train.kind === "tokens") throw new UserError(modelPath, "static quantization calibrates activations on float inputs; a text model takes token ids: use --mode dynamic");
    const n = Math.min(o.calibrationSamples ?? 512, data.train.count);
    const batch = sampleBatch(data.train, firstN(allIndices(data.train.count), n), n, sampleShape.shape);
    const method = o.method ?? "percentile";
    const ranges = await calibrate(source, modelPath, calibrationTensors(source, modelPath), { inputName: sampleShape.inputName, sampleShape: sampleShape.shape, samples: batch.data as Float32Array, count: n }, method, o.percentile ?? 99.99);
    quantized = quantizeStatic(source, modelPath, ranges, `${method}${method === "percentile" ? ` ${o.percentile ?? 99.99}` : ""}, ${n} training images`);
  }
  if (Object.keys(quantized.report.quantized).length === 0)
    throw new UserError(modelPath, `nothing to quantize: no Conv, Gemm or MatMul with a constant weight${quantized.report.skipped.length ? ` (${quantized.report.skipped.join("; ")})` : ""}`);
  writeFileAtomic(o.output, quantized.bytes);
  const result: QuantizeResult = { source: modelPath, output: o.output, report: quantized.report };
  if (o.check === false || o.limit === 0) return result;
  data ??= await datasetFor(modelPath, source, o.data, "the check measures it on its test images; or pass --no-check");
  const test = data.test;
  const indices = firstN(allIndices(test.count), o.limit);
  const ref = await checkModel(source, modelPath, { set: test, indices, wasm: o.wasm === true });
  const q = await checkModel(quantized.bytes, o.output, { set: test, indices, wasm: o.wasm === true, referenceLogits: ref.logits, params: parameterCountOf(source, modelPath) });
  result.check = { source: { metrics: ref.metrics, ...(ref.wasm ? { wasm: ref.wasm } : {}) }, quantized: { metrics: q.metrics, ...(q.wasm ? { wasm: q.wasm } : {}) }, data: data.name, testSamples: indices.length };
  writeFileAtomic(`${o.output}.json`, JSON.stringify(result, null, 2) + "\n");
  return result;
}

/** The model's single input name and per-sample shape. */
function inputSampleShape(bytes: Uint8Array, where: string): { inputName: string; shape: number[] } {
  const m = readModelProto(bytes, where);
  const inits = new Set((m.graph!.initializer ?? []).map((t) => t.name));
  const inputs = (m.graph!.input ?? []).filter((i) => !inits.has(i.name));
  if (inputs.length !== 1) throw new UserError(where, `expected a model with one input (images), it has ${inputs.length}`);
  const dims = (inputs[0]!.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => Number(d.dimValue ?? NaN));
  if (dims.some((d) => !(d > 0))) throw new UserError(where, `input ${inputs[0]!.name}: expected a fixed per-sample shape`);
  return { inputName: inputs[0]!.name ?? "input", shape: dims };
}

/** A printable summary of a QuantizeResult. */
export function formatQuantizeResult(r: QuantizeResult): string {
  const parts = Object.entries(r.report.quantized).map(([op, n]) => `${n} ${op}`).join(", ");
  const lines = [`${r.output}: ${r.report.mode}${r.report.format ? ` (${r.report.format})` : ""}, rewrote ${parts}`];
  for (const s of r.report.skipped) lines.push(`  left in float: ${s}`);
  if (r.check) {
    const { source: s, quantized: q } = r.check;
    const row = (name: string, v: VariantCheck) =>
      `  ${name.padEnd(10)} ${(v.metrics.accuracy * 100).toFixed(2).padStart(6)} % ${v.metrics.agreement === null ? "       —" : (v.metrics.agreement * 100).toFixed(2).padStart(7) + "%"} ${String(v.metrics.onnxBytes).padStart(10)} ${v.metrics.latencyP50Ms.toFixed(3).padStart(8)} ${v.metrics.latencyP95Ms.toFixed(3).padStart(8)} ${String(Math.round(v.metrics.throughput)).padStart(9)}` +
      (v.wasm ? ` ${v.wasm.latencyP50Ms.toFixed(3).padStart(8)} ${String(Math.round(v.wasm.throughput)).padStart(9)}` : "");
    lines.push(`  check on ${r.check.testSamples} ${r.check.data} test images (agreement: top-1 with the source):`);
    lines.push(`  ${"model".padEnd(10)} ${"accuracy".padStart(8)} ${"agree".padStart(8)} ${"bytes".padStart(10)} ${"p50 ms".padStart(8)} ${"p95 ms".padStart(8)} ${"b128 /s".padStart(9)}` + (s.wasm ? ` ${"wasm p50".padStart(8)} ${"wasm /s".padStart(9)}` : ""));
    lines.push(row("source", s), row(r.report.mode, q));
    lines.push(`  ${(s.metrics.onnxBytes / q.metrics.onnxBytes).toFixed(2)}× smaller, accuracy ${((q.metrics.accuracy - s.metrics.accuracy) * 100).toFixed(2)} points`);
  }
  return lines.join("\n") + "\n";
}

export interface PruneOptions {
  output: string;
  /** Unstructured: share of weights zeroed. */
  sparsity?: number;
  scope?: "global" | "layer";
  /** Structured: share of channels kept, or a parameter budget. */
  keep?: number;
  params?: number;
  data?: DatasetName;
  limit?: number;
  check?: boolean;
  /**
   * Fine-tune with KD against this run folder's teacher for `finetuneEpochs`: after structured pruning,
   * or — with `sparsity` — while pruning gradually (the model must be the run's teacher or student).
   */
  finetune?: string;
  finetuneEpochs?: number;
  /** Gradual: share of the fine-tune over which sparsity ramps up, and steps between mask updates. */
  ramp?: number;
  interval?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface PruneResult {
  source: string;
  output: string;
  report: PruneReport;
  check?: { source: VariantCheck; pruned: VariantCheck; data: string; testSamples: number };
}

/** `distill prune`: exactly one of sparsity (unstructured), keep or params (structured). */
export async function pruneFile(modelPath: string, o: PruneOptions): Promise<PruneResult> {
  const given = [o.sparsity, o.keep, o.params].filter((v) => v !== undefined).length;
  if (!o.finetune && (o.ramp !== undefined || o.interval !== undefined)) throw new UserError("distill prune", "--ramp and --interval shape gradual pruning, which needs --sparsity and --finetune <run-dir>");
  if (given !== 1) throw new UserError("distill prune", "give exactly one of --sparsity (unstructured), --keep or --params (structured)");
  if (resolve(modelPath) === resolve(o.output)) throw new UserError(o.output, "the output would overwrite the source model; choose another -o");
  const source = readModel(modelPath);
  checkPrunable(source, modelPath);
  let pruned: { bytes: Uint8Array; report: PruneReport };
  if (o.sparsity !== undefined && o.finetune) {
    const { pruneGradually } = await import("./gradual.js");
    const g = await pruneGradually(o.finetune, source, modelPath, {
      sparsity: o.sparsity, scope: o.scope ?? "global", epochs: o.finetuneEpochs ?? 2,
      ...(o.ramp !== undefined ? { rampShare: o.ramp } : {}), ...(o.interval !== undefined ? { interval: o.interval } : {}), ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}),
    });
    // Measured on the result: its zeros per layer and overall.
    pruned = { bytes: g.bytes, report: { ...measureSparsity(g.bytes, modelPath), gradual: { schedule: g.schedule, role: g.role } } };
  } else if (o.sparsity !== undefined) pruned = pruneUnstructured(source, modelPath, o.sparsity, o.scope ?? "global");
  else {
    if (o.params !== undefined) {
      const floor = structuredFloor(source, modelPath);
      if (o.params < floor) throw new UserError(modelPath, `--params ${o.params}: structured pruning leaves at least ${floor} parameters (one channel or unit in every layer it narrows); ask for ${floor} or more`);
    }
    const keep = o.keep ?? keepForParams(source, modelPath, o.params!);
    pruned = pruneStructured(source, modelPath, keep);
    if (Object.keys(pruned.report.layers).length === 0) throw new UserError(modelPath, "no layer can lose channels: structured pruning needs a Conv/Gemm whose output feeds another one");
    if (o.finetune) {
      const { finetunePruned } = await import("./finetune.js");
      pruned.bytes = await finetunePruned(o.finetune, pruned.bytes, modelPath, { epochs: o.finetuneEpochs ?? 2, ...(o.onEpoch ? { onEpoch: o.onEpoch } : {}) });
    }
  }
  writeFileAtomic(o.output, pruned.bytes);
  const result: PruneResult = { source: modelPath, output: o.output, report: pruned.report };
  if (o.check === false) return result;
  const data = await datasetFor(modelPath, source, o.data, "the check measures it on its test images; or pass --no-check");
  const test = data.test;
  const indices = firstN(allIndices(test.count), o.limit);
  const ref = await checkModel(source, modelPath, { set: test, indices });
  const p = await checkModel(pruned.bytes, o.output, { set: test, indices, referenceLogits: ref.logits });
  result.check = { source: { metrics: ref.metrics }, pruned: { metrics: p.metrics }, data: data.name, testSamples: indices.length };
  writeFileAtomic(`${o.output}.json`, JSON.stringify(result, null, 2) + "\n");
  return result;
}

export function formatPruneResult(r: PruneResult): string {
  const layers = Object.entries(r.report.layers).map(([k, [a, b]]) => `${k} ${a}/${b}`).join(", ");
  const g = r.report.gradual;
  const lines = [`${r.output}: ${g ? "gradual " : ""}${r.report.kind}, sparsity ${(r.report.sparsity * 100).toFixed(1)} %, parameters ${r.report.paramsBefore} → ${r.report.paramsAfter} (${r.report.kind === "structured" ? "channels kept" : "zeros"}: ${layers})`];
  if (g) lines.push(`  pruned while fine-tuning the run's ${g.role} with KD: ${g.schedule.length} mask updates, sparsity ${g.schedule.map((x) => (x.sparsity * 100).toFixed(0)).join(" → ")} %`);
  if (r.check) {
    const s = r.check.source.metrics, p = r.check.pruned.metrics;
    const row = (name: string, v: typeof s) => `  ${name.padEnd(8)} ${(v.accuracy * 100).toFixed(2).padStart(6)} % ${String(v.onnxBytes).padStart(9)} ${String(v.onnxGzipBytes).padStart(9)} ${v.latencyP50Ms.toFixed(3).padStart(8)} ${String(Math.round(v.throughput)).padStart(9)}`;
    lines.push(`  check on ${r.check.testSamples} ${r.check.data} test images; agreement with the source ${((p.agreement ?? 0) * 100).toFixed(2)} %`);
    lines.push(`  ${"model".padEnd(8)} ${"accuracy".padStart(8)} ${"bytes".padStart(9)} ${"gzip".padStart(9)} ${"p50 ms".padStart(8)} ${"b128 /s".padStart(9)}`, row("source", s), row("pruned", p));
  }
  return lines.join("\n") + "\n";
}
