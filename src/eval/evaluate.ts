// Running an ONNX classifier over a sample set, and the full test-set evaluation of one model:
// quality (accuracy, F1, NLL, calibration, agreement with the teacher) and cost (size, latency).
// Models take what the user has — raw pixels 0–255, raw feature values, token ids — with
// normalisation inside the graph, as distill exports them.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { decodeModel } from "../engine/onnx.js";
import { Session, type Tensor } from "../engine/runtime.js";
import { UserError } from "../errors.js";
import { tensorOf } from "../engine/graph.js";
import { describeSamples, feedDType, gatherLabels, gatherSamples, sampleSize, type SampleSet } from "../data/sample-set.js";
import { allIndices, firstN } from "../data/split.js";
import { DATASET_NAMES, type DatasetName } from "../data/datasets.js";
import { dataOfModel, loadData } from "../data/load.js";
import { loadConfig } from "../config/load.js";
import { accuracy, binaryMetrics, errorCount, expectedCalibrationError, macroF1, meanNll, topOneAgreement } from "./metrics.js";
import { averageSoftTargets } from "../distill/teacher-ensemble.js";
import { formatMs, measureOnnx, sizeOf, type LatencyInput } from "./latency.js";
import type { ModelMetrics } from "./model-metrics.js";
import { isSeq2SeqFile, seq2seqEvalCommand } from "./seq2seq-eval.js";

/** A model file's bytes; a missing or unreadable file is a UserError naming it. */
export function readModelFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`);
  }
}

/**
 * Why bytes that do not decode are not a model. An .onnx file is binary protobuf (it begins with the
 * ir_version field's tag, 0x08); text there is another file given in its place — a config, say —
 * which is not a truncated model and should not be called one.
 */
export function unreadableModel(bytes: Uint8Array, decodeError: string): string {
  const head = bytes.subarray(0, 512);
  const text = head.length > 0 && head.every((b) => b >= 0x20 || b === 0x09 || b === 0x0a || b === 0x0d);
  if (!text) return `not a readable ONNX model (${decodeError}); is the file truncated?`;
  const firstLine = Buffer.from(head).toString("utf8").split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  return `not a readable ONNX model: it is a text file (it begins ${JSON.stringify(firstLine.slice(0, 40))}), and an ONNX model is binary`;
}

/** A loaded classifier: its session and how it wants its input. */
export class OnnxClassifier {
  private constructor(
    readonly where: string,
    readonly bytes: Uint8Array,
    private readonly session: Session,
    readonly inputName: string,
    readonly outputName: string,
    /** Per-sample input shape (batch excluded), e.g. [784] or [1, 28, 28]. */
    readonly sampleShape: number[],
    /** What the input holds: numbers (pixels, features) or token ids. */
    readonly inputDType: "float32" | "int64" | "string",
    readonly numClasses: number,
    /** Trainable parameters, counted as everywhere in distill (countParameters in engine/onnx.ts). */
    readonly parameterCount: number,
    /** The model's metadata_props (distill writes distill.* keys: labels, layout, dataset…). */
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Samples this classifier has run forward (so tests can count teacher passes). */
  samplesRun = 0;
  private digest?: string;

  static async fromFile(path: string, threads?: number): Promise<OnnxClassifier> {
    return OnnxClassifier.fromBytes(readModelFile(path), path, threads);
  }

  /** `where` names the model in errors (its file). */
  static async fromBytes(bytes: Uint8Array, where: string, threads?: number): Promise<OnnxClassifier> {
    let decoded;
    try {
      decoded = decodeModel(bytes);
    } catch (e) {
      throw new UserError(where, unreadableModel(bytes, (e as Error).message.split("\n")[0]!));
    }
    if (decoded.inputs.length !== 1) throw new UserError(where, `expected a model with one input, it has ${decoded.inputs.length}`);
    const input = decoded.inputs[0]!;
    const inputDType = ({ 1: "float32", 7: "int64", 8: "string" } as const)[input.elemType as 1 | 7 | 8];
    if (!inputDType) throw new UserError(where, `input ${input.name}: expected float32 values, int64 token ids or strings (ONNX element type 1, 7 or 8), got element type ${input.elemType}`);
    const output = decoded.outputs.find((o) => o.name === (decoded.metadata["distill.output_name"] ?? o.name)) ?? decoded.outputs[0];
    if (!output) throw new UserError(where, "the model has no outputs");
    const k = output.shape[output.shape.length - 1];
    if (output.shape.length !== 2 || typeof k !== "number" || k < 2)
      throw new UserError(where, `output ${output.name}: expected class scores [batch, classes], got [${output.shape.join(", ")}]`);
    const sampleShape = input.shape.slice(1).map((d) => (typeof d === "number" ? d : NaN));
    if (sampleShape.some((d) => !(d > 0))) throw new UserError(where, `input ${input.name}: expected a fixed per-sample shape, got [${input.shape.join(", ")}]`);
    let session: Session;
    try {
      session = await Session.create(bytes, threads ? { threads } : {});
    } catch (e) {
      throw new UserError(where, `onnxruntime cannot load it (${(e as Error).message.split("\n")[0]})`);
    }
    return new OnnxClassifier(where, bytes, session, input.name, output.name, sampleShape, inputDType, k, decoded.parameters, decoded.metadata);
  }

  /** Checks the model can read `set`'s samples: as many values per sample, of the type it takes. */
  checkFits(set: SampleSet, setName: string): void {
    if (this.inputDType === "string") {
      if (!set.texts) throw new UserError(this.where, `input ${this.inputName} takes raw texts, but the ${setName} are ${describeSamples(set)}`);
      return;
    }
    const values = this.sampleShape.reduce((a, b) => a * b, 1);
    const wanted = this.inputDType === "int64" ? "token ids" : "numbers";
    if (values !== sampleSize(set) || (this.inputDType === "int64") !== (set.kind === "tokens"))
      throw new UserError(this.where, `input ${this.inputName} takes [${this.sampleShape.join(", ")}] ${wanted} per sample, but the ${setName} are ${describeSamples(set)}`);
  }

  /** The samples `indices` of `set` as this model's input tensor. */
  feed(set: SampleSet, indices: ArrayLike<number>): Record<string, Tensor> {
    return { [this.inputName]: this.inputTensor(set, indices) };
  }

  /** A model that takes raw strings gets the texts; any other the stored values (token ids, pixels, features). */
  inputTensor(set: SampleSet, indices: ArrayLike<number>): Tensor {
    if (this.inputDType === "string") return { dtype: "string", shape: [indices.length], data: Array.from(indices, (i) => set.texts![i]!) };
    return tensorOf([indices.length, ...this.sampleShape], gatherSamples(set, indices));
  }

  /** Logits [indices.length, K] in order. One forward pass per sample. */
  async logits(set: SampleSet, indices: Int32Array, batchSize = 500, onBatch?: (done: number) => void): Promise<Float32Array> {
    const k = this.numClasses;
    const out = new Float32Array(indices.length * k);
    for (let start = 0; start < indices.length; start += batchSize) {
      const n = Math.min(batchSize, indices.length - start);
      const res = await this.session.run(this.feed(set, indices.subarray(start, start + n)), undefined, [this.outputName]);
      out.set(res[this.outputName]!.data as Float32Array, start * k);
      this.countForward(set, n);
      onBatch?.(start + n);
    }
    return out;
  }

  /** Records `n` forward passes of this model on `set`, wherever they ran (here, or a worker thread with its own session). */
  countForward(set: SampleSet, n: number): void {
    this.samplesRun += n;
    this.digest ??= createHash("sha256").update(this.bytes).digest("hex");
    const perModel = forwardLog.get(set.inputs) ?? new Map<string, number>();
    forwardLog.set(set.inputs, perModel.set(this.digest, (perModel.get(this.digest) ?? 0) + n));
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

// Forward passes per image array and model (sha256 of its bytes), over every classifier in the
// process: a test counts a teacher's passes wherever and however often the pipeline loads it.
const forwardLog = new WeakMap<SampleSet["inputs"], Map<string, number>>();

/** Samples of `set` that any classifier of the model `bytes` has run forward in this process. */
export function forwardPassesOn(set: SampleSet, bytes: Uint8Array): number {
  return forwardLog.get(set.inputs)?.get(createHash("sha256").update(bytes).digest("hex")) ?? 0;
}

export interface EvaluationInput {
  classifier: OnnxClassifier;
  set: SampleSet;
  indices: Int32Array;
  /** Trainable parameter count when known (distill's own models); else the initializers' size. */
  params?: number;
  /** Teacher logits on the same samples, for top-1 agreement. */
  teacherLogits?: Float32Array;
  /** Timed batch-1 runs for latency percentiles. */
  latencyRuns?: number;
}

/** Test-set metrics of one model, and its logits (so the teacher's can feed the others' agreement). */
export async function evaluateClassifier(e: EvaluationInput): Promise<{ metrics: ModelMetrics; logits: Float32Array }> {
  const { classifier: c, set, indices } = e;
  const k = c.numClasses;
  const logits = await c.logits(set, indices);
  const labels = gatherLabels(set, indices);
  const latency = await measureOnnx(c.bytes, (batch) => {
    const rows = Int32Array.from({ length: batch }, (_, i) => indices[i % indices.length]!);
    return { name: c.inputName, ...c.inputTensor(set, rows) } as LatencyInput;
  }, { runs: e.latencyRuns ?? 200 });
  const metrics: ModelMetrics = {
    accuracy: accuracy(logits, labels, k),
    errors: errorCount(logits, labels, k),
    total: indices.length,
    macroF1: macroF1(logits, labels, k),
    nll: meanNll(logits, labels, k),
    ece: expectedCalibrationError(logits, labels, k),
    agreement: e.teacherLogits ? topOneAgreement(logits, e.teacherLogits, k) : null,
    ...(k === 2 ? binaryMetrics(logits, labels) : { precision: null, recall: null, f1: null, rocAuc: null }),
    params: e.params ?? c.parameterCount,
    ...sizeOf(c.bytes),
    ...latency,
  };
  return { metrics, logits };
}

export interface EvalOptions {
  /** A preset name or a config file; default: the data named in the model's metadata. */
  data?: string;
  limit?: number;
  json: boolean;
  /** Where the table or JSON lines go (the CLI's stdout). */
  write: (text: string) => void;
  /** Sequence models: the beam width of the beam decoding (greedy is scored too); default 4. */
  beam?: number;
}

/**
 * `distill eval`: each model's metrics on its test set and, given several models, also those of
 * their ensemble (the mean of their probabilities, as kd.teachers averages teachers).
 */
export async function evalCommand(modelPaths: string[], opts: EvalOptions): Promise<void> {
  const given = opts.data;
  if (given !== undefined && !(DATASET_NAMES as readonly string[]).includes(given) && !/\.ya?ml$/i.test(given))
    throw new UserError("--data", `expected ${DATASET_NAMES.join(", ")} or a config file (.yaml) with a data: block, got ${JSON.stringify(given)}`);
  // Sequence models (distill.task: seq2seq) are scored on their test split with sequence metrics.
  const kinds = modelPaths.map((path) => isSeq2SeqFile(readMetadata(path)));
  if (kinds.some((k) => k)) {
    const other = kinds.findIndex((k) => !k);
    if (other >= 0) throw new UserError(modelPaths[other]!, `not a sequence model, unlike ${modelPaths[kinds.indexOf(true)]}: evaluate classifiers and sequence models separately`);
    await seq2seqEvalCommand(modelPaths, { data: given, limit: opts.limit, beam: opts.beam ?? 4, json: opts.json, write: opts.write });
    return;
  }
  const classifiers: OnnxClassifier[] = [];
  try {
    for (const path of modelPaths) classifiers.push(await OnnxClassifier.fromFile(path));
    const dataset = given !== undefined && /\.ya?ml$/i.test(given)
      ? await loadData(loadConfig(given).data)
      : await dataOfModel(classifiers[0]!.metadata, given as DatasetName | undefined, modelPaths[0]!, "the test set to evaluate on");
    const data = dataset.name;
    for (const [i, classifier] of classifiers.entries()) {
      classifier.checkFits(dataset.test, `${data} test set`);
      if (classifier.numClasses !== dataset.classLabels.length)
        throw new UserError(modelPaths[i]!, `outputs ${classifier.numClasses} classes, but ${data} has ${dataset.classLabels.length}`);
    }
    const indices = firstN(allIndices(dataset.test.count), opts.limit);
    const labels = gatherLabels(dataset.test, indices);
    const k = dataset.classLabels.length;
    const scored: Float32Array[] = [];
    for (const [i, classifier] of classifiers.entries()) {
      const { metrics, logits } = await evaluateClassifier({ classifier, set: dataset.test, indices });
      scored.push(logits);
      if (opts.json) {
        opts.write(JSON.stringify({ model: modelPaths[i], data, ...metrics }) + "\n");
        continue;
      }
      opts.write(metricsTable(`${modelPaths[i]} on ${data} test`, [
        ["accuracy", `${(metrics.accuracy * 100).toFixed(2)}% (${metrics.errors} errors of ${metrics.total})`],
        ["macro-F1", metrics.macroF1.toFixed(4)],
        ["NLL", metrics.nll.toFixed(4)],
        ["ECE", metrics.ece.toFixed(4)],
        ["parameters", String(metrics.params)],
        ["size", `${metrics.onnxBytes} bytes (${metrics.onnxGzipBytes} gzipped)`],
        ["latency b1", `p50 ${formatMs(metrics.latencyP50Ms)}, p95 ${formatMs(metrics.latencyP95Ms)}`],
        ["throughput b128", `${Math.round(metrics.throughput)} samples/s`],
      ]));
    }
    if (classifiers.length < 2) return;
    // Log of the mean probability: the argmax, NLL and calibration of the averaged prediction.
    const mixed = averageSoftTargets(scored, scored.map(() => 1), k, 1);
    const ensemble = { accuracy: accuracy(mixed, labels, k), errors: errorCount(mixed, labels, k), total: indices.length, macroF1: macroF1(mixed, labels, k), nll: meanNll(mixed, labels, k), ece: expectedCalibrationError(mixed, labels, k) };
    if (opts.json) {
      opts.write(JSON.stringify({ ensemble: modelPaths, combine: "mean of probabilities", data, ...ensemble }) + "\n");
      return;
    }
    opts.write(metricsTable(`ensemble of the ${classifiers.length} (mean of probabilities) on ${data} test`, [
      ["accuracy", `${(ensemble.accuracy * 100).toFixed(2)}% (${ensemble.errors} errors of ${ensemble.total})`],
      ["macro-F1", ensemble.macroF1.toFixed(4)],
      ["NLL", ensemble.nll.toFixed(4)],
      ["ECE", ensemble.ece.toFixed(4)],
    ]));
  } finally {
    for (const c of classifiers) await c.dispose();
  }
}

/** A model file's metadata, or none when it cannot be read or decoded (the classifier path then says why, its way). */
function readMetadata(path: string): Record<string, string> {
  try {
    return decodeModel(readFileSync(path)).metadata;
  } catch {
    return {};
  }
}

function metricsTable(title: string, rows: [string, string][]): string {
  return `${title}\n` + rows.map(([a, b]) => `  ${a.padEnd(16)} ${b}`).join("\n") + "\n";
}
