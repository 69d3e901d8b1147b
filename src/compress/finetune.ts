// Fine-tuning a structurally pruned model of a run with the distillation loss against the run's own
// teacher (its cached soft targets): the pruned network is rebuilt from the run's config with the
// surviving widths, its weights loaded from the pruned .onnx, and trained a few epochs with Hinton's
// loss (nn/losses kdLoss, same T and α as the run) on the run's transfer set.

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ModelSpec } from "../config/schema.js";
import { loadConfig } from "../config/load.js";
import { Batches } from "../data/batches.js";
import { type SampleSet } from "../data/sample-set.js";
import { tensorOf } from "../engine/graph.js";
import { planData } from "../distill/data-plan.js";
import { LOGIT_KD_DEFAULTS } from "../distill/methods/logit-kd.js";
import { defaultCacheDir, teacherSoftTargets } from "../distill/soft-targets.js";
import { decodeModel } from "../engine/onnx.js";
import { UserError } from "../errors.js";
import { loadFileTeacher, type SoftTargetFileSpec } from "../distill/soft-target-file.js";
import { softTargetsCopy } from "../distill/run-folder.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { exportOnnx, type Model } from "../nn/model.js";
import { kdLossGraph } from "../nn/losses.js";
import { ParameterSet } from "../nn/module.js";
import { buildModel } from "../nn/spec.js";
import { ModelTrainer } from "../nn/train-step.js";
import { metadataOf, readModelProto } from "./onnx-model.js";

export interface FinetuneOptions {
  epochs: number;
  lr?: number;
  batchSize?: number;
  /** Soft-target cache folder (default: the pipeline's, $DISTILL_CACHE or .cache/distill). */
  cacheDir?: string;
  onEpoch?: (epoch: number, loss: number) => void;
}

/** The teacher spec of a run with each conv/linear width taken from the pruned model (same layer order). */
function prunedSpec(spec: ModelSpec, pruned: ReturnType<typeof decodeModel>, bytes: Uint8Array, where: string): ModelSpec {
  const m = readModelProto(bytes, where);
  const widths = (m.graph!.node ?? [])
    .filter((n) => n.opType === "Conv" || n.opType === "Gemm")
    .map((n) => pruned.initializers.get(n.input![1]!)?.dims[0]);
  let k = 0;
  const layers = spec.layers.map((l) => {
    if (l.type !== "conv" && l.type !== "linear") return l;
    const w = widths[k++];
    if (w === undefined) throw new UserError(where, "does not match the run's teacher layers (fewer Conv/Gemm nodes than conv/linear layers)");
    return l.type === "conv" ? { ...l, filters: w } : { ...l, units: w };
  });
  return { ...spec, layers };
}

/** A run's model rebuilt around given weights, with the run's transfer set and cached soft targets: what a KD fine-tune needs. */
export interface FinetuneJob {
  config: ReturnType<typeof loadConfig>;
  model: Model;
  params: ParameterSet;
  set: SampleSet;
  trainIndices: Int32Array;
  teacherLogits: Float32Array;
  temperature: number;
  alpha: number;
  /** Metadata of the source .onnx to keep (distill.*, but not its input/output names, parameter count or taps). */
  metadata: Record<string, string>;
}

/**
 * Loads `runDir`'s config, data split (planData, exactly as the run made it) and teacher soft
 * targets, and rebuilds `bytes` as the model `specOf(config)` with its weights.
 */
export async function finetuneJob(
  runDir: string,
  bytes: Uint8Array,
  where: string,
  specOf: (config: ReturnType<typeof loadConfig>, configPath: string, decoded: ReturnType<typeof decodeModel>, build: (spec: ModelSpec) => Model) => ModelSpec,
  cacheDir?: string,
): Promise<FinetuneJob> {
  const configPath = join(runDir, "config.yaml");
  if (!existsSync(configPath)) throw new UserError(runDir, "not a run folder (no config.yaml); fine-tuning needs the run's data, teacher and recipe");
  const config = loadConfig(configPath);
  const data = await planData(config, configPath);
  const { dataset, trainIndices } = data;
  let soft: { logits: Float32Array };
  const file = config.teacher?.softTargets;
  if (file !== undefined) {
    // A file of the teacher's outputs: the run folder's copy, rows as the run matched them.
    soft = { logits: loadFileTeacher({ ...config.teacher!, softTargets: softTargetsCopy(runDir, file) } as SoftTargetFileSpec, dataset.train, dataset.classLabels, trainIndices, "teacher").logits(trainIndices) };
  } else {
    const teacher = await OnnxClassifier.fromFile(join(runDir, "teacher.onnx"));
    try {
      soft = await teacherSoftTargets({ teacher, set: dataset.train, indices: trainIndices, cacheDir: cacheDir ?? defaultCacheDir() });
    } finally {
      await teacher.dispose();
    }
  }
  const decoded = decodeModel(bytes);
  const build = (spec: ModelSpec) => buildModel(spec, dataset.classLabels, data.geometry);
  const model = build(specOf(config, configPath, decoded, build));
  const fresh = model.initParameters(0);
  const values = new Map(fresh.decls.map((d) => {
    const t = decoded.initializers.get(d.name);
    if (!t || t.data.length !== d.shape.reduce((a, b) => a * b, 1)) throw new UserError(where, `parameter ${d.name} is missing or has another shape than the rebuilt model's [${d.shape.join(", ")}]`);
    return [d.name, { dtype: "float32" as const, shape: d.shape, data: Float32Array.from(t.data) }];
  }));
  // The run's logit-KD term sets T and α; a run without one (other methods) gets logit KD's defaults.
  const logitKd = config.kd.terms.find((t) => t.method === "logit-kd");
  const temperature = typeof logitKd?.["temperature"] === "number" ? logitKd["temperature"] : LOGIT_KD_DEFAULTS.temperature;
  const alpha = typeof logitKd?.["alpha"] === "number" ? logitKd["alpha"] : LOGIT_KD_DEFAULTS.alpha;
  const source = metadataOf(readModelProto(bytes, where));
  // Not the parameter count and taps: the exporter records the fine-tuned model's own.
  const metadata = Object.fromEntries(Object.entries(source).filter(([key]) => key.startsWith("distill.") && !key.startsWith("distill.input") && !key.startsWith("distill.output") && key !== "distill.parameters" && key !== "distill.taps"));
  return { config, model, params: new ParameterSet(fresh.decls, values), set: dataset.train, trainIndices, teacherLogits: soft.logits, temperature, alpha, metadata };
}

/**
 * Trains `job.model` with Hinton's loss against the cached soft targets (Adam, cosine decay to 0);
 * `afterStep(trainer, step, steps)` runs after every optimizer step (gradual pruning re-masks there).
 */
export async function kdFinetune(job: FinetuneJob, o: FinetuneOptions & { afterStep?: (trainer: ModelTrainer, step: number, steps: number) => void }): Promise<ParameterSet> {
  const { model, set, trainIndices, temperature, alpha } = job;
  const k = model.numClasses;
  const trainer = await ModelTrainer.create({
    model, params: job.params, optimizer: { kind: "adam" }, seed: 0,
    loss: (ctx) => {
      const t = kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", k]), ctx.input("labels", ["N"], "int64"), temperature, alpha);
      return { loss: t.loss };
    },
  });
  try {
    const batchSize = o.batchSize ?? 128, lr0 = o.lr ?? 3e-3;
    const batches = new Batches(set, trainIndices, { batchSize, shuffle: true, seed: 0, dropLast: true });
    const rowOf = new Map<number, number>();
    trainIndices.forEach((idx, row) => rowOf.set(idx, row));
    const teacherBatch = new Float32Array(batchSize * k);
    const steps = o.epochs * batches.batchCount;
    let step = 0;
    o.afterStep?.(trainer, 0, steps);
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      let lossSum = 0, seen = 0;
      for (const batch of batches.epoch(epoch)) {
        for (let i = 0; i < batch.size; i++) {
          const row = rowOf.get(batch.indices[i]!)!;
          teacherBatch.set(job.teacherLogits.subarray(row * k, row * k + k), i * k);
        }
        // Cosine decay from lr0 to 0 over the fine-tune.
        const lr = 0.5 * lr0 * (1 + Math.cos((Math.PI * step++) / steps));
        const r = await trainer.step({
          input: tensorOf([batch.size, ...model.input.shape], batch.input),
          labels: { dtype: "int64", shape: [batch.size], data: batch.labels },
          teacher_logits: { dtype: "float32", shape: [batch.size, k], data: teacherBatch.subarray(0, batch.size * k) },
        }, lr);
        o.afterStep?.(trainer, step, steps);
        lossSum += r.loss * batch.size;
        seen += batch.size;
      }
      o.onEpoch?.(epoch + 1, lossSum / seen);
    }
    return trainer.parameters();
  } finally {
    await trainer.dispose();
  }
}

/** Fine-tunes `prunedBytes` (a structured pruning of `runDir`'s teacher) with KD; returns the new .onnx bytes. */
export async function finetunePruned(runDir: string, prunedBytes: Uint8Array, where: string, o: FinetuneOptions): Promise<Uint8Array> {
  const job = await finetuneJob(runDir, prunedBytes, where, (config, configPath, decoded) => {
    if (!config.teacher?.model) throw new UserError(configPath, "teacher.model: the run's teacher came from an .onnx file, so its architecture is unknown and the pruned model cannot be rebuilt for training");
    return prunedSpec(config.teacher.model, decoded, prunedBytes, where);
  }, o.cacheDir);
  const params = await kdFinetune(job, o);
  return exportOnnx(job.model, params, { probabilitiesName: "probabilities", metadata: { ...job.metadata, "distill.finetune": JSON.stringify({ loss: "kd", temperature: job.temperature, alpha: job.alpha, epochs: o.epochs, teacher: "teacher.onnx" }) } });
}
