// Fine-tuning a structurally pruned model of a run with the distillation loss against the run's own
// teacher (its cached soft targets): the pruned network is rebuilt from the run's config with the
// surviving widths, its weights loaded from the pruned .onnx, and trained a few epochs with Hinton's
// loss (nn/losses kdLoss, same T and α as the run) on the run's transfer set.

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { ModelSpec } from "../config/schema.js";
import { loadConfig } from "../config/load.js";
import { validationSize } from "../config/schema.js";
import { Batches } from "../data/batches.js";
import { loadData } from "../data/load.js";
import { feedDType } from "../data/sample-set.js";
import { allIndices, firstN, splitTrainValidation } from "../data/split.js";
import { defaultCacheDir, teacherSoftTargets } from "../distill/soft-targets.js";
import { decodeModel } from "../engine/onnx.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { exportOnnx } from "../nn/model.js";
import { kdLossGraph } from "../nn/losses.js";
import { ParameterSet } from "../nn/module.js";
import { buildModel, dataGeometry } from "../nn/spec.js";
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

/** Fine-tunes `prunedBytes` (a structured pruning of `runDir`'s teacher) with KD; returns the new .onnx bytes. */
export async function finetunePruned(runDir: string, prunedBytes: Uint8Array, where: string, o: FinetuneOptions): Promise<Uint8Array> {
  const configPath = join(runDir, "config.yaml");
  if (!existsSync(configPath)) throw new UserError(runDir, "not a run folder (no config.yaml); fine-tuning needs the run's data, teacher and recipe");
  const config = loadConfig(configPath);
  if (!config.teacher.model) throw new UserError(configPath, "teacher.model: the run's teacher came from an .onnx file, so its architecture is unknown and the pruned model cannot be rebuilt for training");
  const dataset = await loadData(config.data);
  // The run's split, exactly as the pipeline makes it.
  const pool = firstN(allIndices(dataset.train.count), config.data.trainLimit ?? undefined);
  const split = splitTrainValidation(pool.length, validationSize(config.data, pool.length), 0);
  const trainIndices = Int32Array.from(split.train, (p) => pool[p]!);
  const teacher = await OnnxClassifier.fromFile(join(runDir, "teacher.onnx"));
  let soft;
  try {
    soft = await teacherSoftTargets({ teacher, set: dataset.train, indices: trainIndices, cacheDir: o.cacheDir ?? defaultCacheDir() });
  } finally {
    await teacher.dispose();
  }
  const decoded = decodeModel(prunedBytes);
  const spec = prunedSpec(config.teacher.model, decoded, prunedBytes, where);
  const model = buildModel(spec, dataset.classLabels, dataGeometry(dataset.train));
  const fresh = model.initParameters(0);
  const values = new Map(fresh.decls.map((d) => {
    const t = decoded.initializers.get(d.name);
    if (!t || t.data.length !== d.shape.reduce((a, b) => a * b, 1)) throw new UserError(where, `parameter ${d.name} is missing or has another shape than the rebuilt pruned model's [${d.shape.join(", ")}]`);
    return [d.name, { shape: d.shape, data: Float32Array.from(t.data) }];
  }));
  const k = model.numClasses;
  // The run's logit-KD term sets T and α; a run without one (other methods) gets Hinton's T = 4, α = 0.9.
  const logitKd = config.kd.terms.find((t) => t.method === "logit-kd");
  const temperature = typeof logitKd?.["temperature"] === "number" ? logitKd["temperature"] : 4;
  const alpha = typeof logitKd?.["alpha"] === "number" ? logitKd["alpha"] : 0.9;
  const trainer = await ModelTrainer.create({
    model, params: new ParameterSet(fresh.decls, values), optimizer: { kind: "adam" }, seed: 0,
    loss: (ctx) => {
      const t = kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", k]), ctx.input("labels", ["N"], "int64"), temperature, alpha);
      return { loss: t.loss };
    },
  });
  try {
    const batchSize = o.batchSize ?? 128, lr0 = o.lr ?? 3e-3;
    const batches = new Batches(dataset.train, trainIndices, { batchSize, shuffle: true, seed: 0, dropLast: true });
    const rowOf = new Map<number, number>();
    trainIndices.forEach((idx, row) => rowOf.set(idx, row));
    const teacherBatch = new Float32Array(batchSize * k);
    const steps = o.epochs * batches.batchCount;
    let step = 0;
    for (let epoch = 0; epoch < o.epochs; epoch++) {
      let lossSum = 0, seen = 0;
      for (const batch of batches.epoch(epoch)) {
        for (let i = 0; i < batch.size; i++) {
          const row = rowOf.get(batch.indices[i]!)!;
          teacherBatch.set(soft.logits.subarray(row * k, row * k + k), i * k);
        }
        // Cosine decay from lr0 to 0 over the fine-tune.
        const lr = 0.5 * lr0 * (1 + Math.cos((Math.PI * step++) / steps));
        const r = await trainer.step({
          input: { dtype: feedDType(dataset.train), shape: [batch.size, ...model.input.shape], data: batch.input },
          labels: { dtype: "int64", shape: [batch.size], data: batch.labels },
          teacher_logits: { dtype: "float32", shape: [batch.size, k], data: teacherBatch.subarray(0, batch.size * k) },
        }, lr);
        lossSum += r.loss * batch.size;
        seen += batch.size;
      }
      o.onEpoch?.(epoch + 1, lossSum / seen);
    }
    const source = metadataOf(readModelProto(prunedBytes, where));
    const keep = Object.fromEntries(Object.entries(source).filter(([key]) => key.startsWith("distill.") && !key.startsWith("distill.input") && !key.startsWith("distill.output")));
    return exportOnnx(model, trainer.parameters(), { probabilitiesName: "probabilities", metadata: { ...keep, "distill.finetune": JSON.stringify({ loss: "kd", temperature, alpha, epochs: o.epochs, teacher: "teacher.onnx" }) } });
  } finally {
    await trainer.dispose();
  }
}
