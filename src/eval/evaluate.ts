// Running an ONNX classifier over an image set, and the full test-set evaluation of one model:
// quality (accuracy, F1, NLL, calibration, agreement with the teacher) and cost (size, latency).
// Models take raw pixels 0–255 (normalisation is inside the graph, as distill exports them).

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { decodeModel } from "../engine/onnx.js";
import { Session } from "../engine/runtime.js";
import { UserError } from "../errors.js";
import type { ImageSet } from "../data/datasets.js";
import { allIndices, firstN } from "../data/split.js";
import { DATASET_NAMES, loadDataset, type DatasetName } from "../data/datasets.js";
import { accuracy, errorCount, expectedCalibrationError, macroF1, meanNll, topOneAgreement } from "./metrics.js";
import { formatMs, measureOnnx, sizeOf } from "./latency.js";
import type { ModelMetrics } from "./types.js";

/** A model file's bytes; a missing or unreadable file is a UserError naming it. */
export function readModelFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`);
  }
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
    readonly numClasses: number,
    readonly initializerCount: number,
    /** The model's metadata_props (distill writes distill.* keys: labels, layout, dataset…). */
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Parameters as distill counts them: the exporter's figure when recorded, else the initializers' size. */
  get parameterCount(): number {
    const recorded = Number(this.metadata["distill.parameters"]);
    return Number.isInteger(recorded) && recorded > 0 ? recorded : this.initializerCount;
  }

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
      throw new UserError(where, `not a readable ONNX model (${(e as Error).message.split("\n")[0]}); is the file truncated?`);
    }
    if (decoded.inputs.length !== 1) throw new UserError(where, `expected a model with one input (images), it has ${decoded.inputs.length}`);
    const input = decoded.inputs[0]!;
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
    let params = 0;
    for (const t of decoded.initializers.values()) params += t.data.length;
    return new OnnxClassifier(where, bytes, session, input.name, output.name, sampleShape, k, params, decoded.metadata);
  }

  /** Checks the model can read `set`'s images: one channel of height × width pixels. */
  checkFits(set: ImageSet, setName: string): void {
    const pixels = this.sampleShape.reduce((a, b) => a * b, 1);
    if (pixels !== set.height * set.width)
      throw new UserError(this.where, `input ${this.inputName} takes [${this.sampleShape.join(", ")}] per sample, but the ${setName} are ${set.height}×${set.width} pixels, one channel`);
  }

  /** Logits [indices.length, K] in order. One forward pass per sample. */
  async logits(set: ImageSet, indices: Int32Array, batchSize = 500, onBatch?: (done: number) => void): Promise<Float32Array> {
    const pixels = set.height * set.width;
    const k = this.numClasses;
    const out = new Float32Array(indices.length * k);
    const input = new Float32Array(Math.min(batchSize, indices.length) * pixels);
    for (let start = 0; start < indices.length; start += batchSize) {
      const n = Math.min(batchSize, indices.length - start);
      const x = n * pixels === input.length ? input : new Float32Array(n * pixels);
      for (let i = 0; i < n; i++) {
        const idx = indices[start + i]!;
        for (let p = 0; p < pixels; p++) x[i * pixels + p] = set.images[idx * pixels + p]!;
      }
      const res = await this.session.run({ [this.inputName]: { dtype: "float32", shape: [n, ...this.sampleShape], data: x } }, undefined, [this.outputName]);
      out.set(res[this.outputName]!.data as Float32Array, start * k);
      this.samplesRun += n;
      this.digest ??= createHash("sha256").update(this.bytes).digest("hex");
      const perModel = forwardLog.get(set.images) ?? new Map<string, number>();
      forwardLog.set(set.images, perModel.set(this.digest, (perModel.get(this.digest) ?? 0) + n));
      onBatch?.(start + n);
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

// Forward passes per image array and model (sha256 of its bytes), over every classifier in the
// process: a test counts a teacher's passes wherever and however often the pipeline loads it.
const forwardLog = new WeakMap<Uint8Array, Map<string, number>>();

/** Samples of `set` that any classifier of the model `bytes` has run forward in this process. */
export function forwardPassesOn(set: ImageSet, bytes: Uint8Array): number {
  return forwardLog.get(set.images)?.get(createHash("sha256").update(bytes).digest("hex")) ?? 0;
}

export interface EvaluationInput {
  classifier: OnnxClassifier;
  set: ImageSet;
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
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) labels[i] = set.labels[indices[i]!]!;
  const pixels = set.height * set.width;
  const latency = await measureOnnx(c.bytes, (batch) => {
    const data = new Float32Array(batch * pixels);
    for (let i = 0; i < batch; i++) data.set(set.images.subarray(indices[i % indices.length]! * pixels, (indices[i % indices.length]! + 1) * pixels), i * pixels);
    return { name: c.inputName, dtype: "float32", shape: [batch, ...c.sampleShape], data };
  }, { runs: e.latencyRuns ?? 200 });
  const metrics: ModelMetrics = {
    accuracy: accuracy(logits, labels, k),
    errors: errorCount(logits, labels, k),
    total: indices.length,
    macroF1: macroF1(logits, labels, k),
    nll: meanNll(logits, labels, k),
    ece: expectedCalibrationError(logits, labels, k),
    agreement: e.teacherLogits ? topOneAgreement(logits, e.teacherLogits, k) : null,
    params: e.params ?? c.parameterCount,
    ...sizeOf(c.bytes),
    ...latency,
  };
  return { metrics, logits };
}

/** The dataset a model was trained on, from its metadata; a UserError saying to pass --data when absent. */
export function datasetOfModel(c: OnnxClassifier): DatasetName {
  const named = c.metadata["distill.dataset"];
  if (named && (DATASET_NAMES as readonly string[]).includes(named)) return named as DatasetName;
  throw new UserError(c.where, `its metadata names no dataset${named ? ` distill knows (it says ${JSON.stringify(named)})` : ""}; say which test set to use with --data ${DATASET_NAMES.join("|")}`);
}

/** `distill eval <model.onnx> [--data mnist]`: prints the metrics (a table, or JSON). */
export async function evalCommand(modelPath: string, opts: { data?: DatasetName; limit?: number; json: boolean }): Promise<void> {
  const classifier = await OnnxClassifier.fromFile(modelPath);
  try {
    const data = opts.data ?? datasetOfModel(classifier);
    const dataset = loadDataset(data);
    classifier.checkFits(dataset.test, `${data} test set`);
    if (classifier.numClasses !== dataset.classLabels.length)
      throw new UserError(modelPath, `outputs ${classifier.numClasses} classes, but ${data} has ${dataset.classLabels.length}`);
    const indices = firstN(allIndices(dataset.test.count), opts.limit);
    const { metrics } = await evaluateClassifier({ classifier, set: dataset.test, indices });
    if (opts.json) {
      process.stdout.write(JSON.stringify({ model: modelPath, data, ...metrics }) + "\n");
      return;
    }
    const rows: [string, string][] = [
      ["accuracy", `${(metrics.accuracy * 100).toFixed(2)}% (${metrics.errors} errors of ${metrics.total})`],
      ["macro-F1", metrics.macroF1.toFixed(4)],
      ["NLL", metrics.nll.toFixed(4)],
      ["ECE", metrics.ece.toFixed(4)],
      ["parameters", String(metrics.params)],
      ["size", `${metrics.onnxBytes} bytes (${metrics.onnxGzipBytes} gzipped)`],
      ["latency b1", `p50 ${formatMs(metrics.latencyP50Ms)}, p95 ${formatMs(metrics.latencyP95Ms)}`],
      ["throughput b128", `${Math.round(metrics.throughput)} samples/s`],
    ];
    process.stdout.write(`${modelPath} on ${data} test\n` + rows.map(([a, b]) => `  ${a.padEnd(16)} ${b}`).join("\n") + "\n");
  } finally {
    await classifier.dispose();
  }
}
