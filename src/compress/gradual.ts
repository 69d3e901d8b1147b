// Gradual magnitude pruning during KD fine-tuning (Zhu & Gupta 2018, "To prune, or not to prune",
// §3): the sparsity rises from 0 to the target along s_t = s_f·(1 − (1 − t/n)³) over the first part
// of training — fast while many redundant weights remain, slowly near the end — and the remaining
// steps train at the final mask. Every `interval` steps the smallest-magnitude weights are masked;
// between updates the masks hold (masked weights are set back to 0 after every step), so the
// network adapts to each cut with the distillation loss against the run's own teacher.

import { UserError } from "../errors.js";
import type { ParameterSet } from "../nn/module.js";
import { exportOnnx } from "../nn/model.js";
import type { ModelTrainer } from "../nn/train-step.js";
import { finetuneJob, kdFinetune, type FinetuneOptions } from "./finetune.js";

/** Zhu & Gupta's schedule: the sparsity after `step` of `rampSteps` (s_i = 0), then `target`. */
export function cubicSparsity(step: number, rampSteps: number, target: number): number {
  if (rampSteps <= 0 || step >= rampSteps) return target;
  return target * (1 - (1 - step / rampSteps) ** 3);
}

/** Weight tensors pruned: rank ≥ 2 parameters (linear, conv, embedding), not biases or norms. */
function prunableNames(params: ParameterSet): string[] {
  return params.decls.filter((d) => d.role === "param" && d.shape.length >= 2).map((d) => d.name);
}

/**
 * 0/1 keep-masks zeroing the `sparsity` share of smallest |w|, over all tensors at once (global) or
 * in each; ties at the threshold are cut in tensor order until the count is met, so the share is exact.
 */
export function magnitudeMasks(tensors: Map<string, Float32Array>, sparsity: number, scope: "global" | "layer"): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  const cut = (groups: [string, Float32Array][]) => {
    const magnitudes = new Float32Array(groups.reduce((n, [, t]) => n + t.length, 0));
    let at = 0;
    for (const [, t] of groups) for (const v of t) magnitudes[at++] = Math.abs(v);
    let count = Math.floor(magnitudes.length * sparsity);
    const threshold = count > 0 ? magnitudes.sort()[count - 1]! : -1;
    for (const [name, t] of groups) {
      const keep = new Uint8Array(t.length).fill(1);
      for (let i = 0; i < t.length; i++) if (Math.abs(t[i]!) < threshold) (keep[i] = 0), count--;
      masks.set(name, keep);
    }
    for (const [name, t] of groups) {
      const keep = masks.get(name)!;
      for (let i = 0; i < t.length && count > 0; i++) if (Math.abs(t[i]!) === threshold) (keep[i] = 0), count--;
    }
  };
  const all = [...tensors];
  if (scope === "global") cut(all);
  else for (const entry of all) cut([entry]);
  return masks;
}

export interface GradualOptions extends FinetuneOptions {
  sparsity: number;
  scope: "global" | "layer";
  /** Share of the fine-tune over which the sparsity ramps up (default 0.75: the last quarter trains at the final mask). */
  rampShare?: number;
  /** Optimizer steps between mask updates (default 50). */
  interval?: number;
}

export interface GradualResult {
  bytes: Uint8Array;
  /** The sparsity each mask update reached, in order (the last is the target). */
  schedule: { step: number; sparsity: number }[];
  role: "teacher" | "student";
}

/**
 * Prunes `bytes` — the teacher or a distilled student of `runDir` — gradually to `sparsity` while
 * fine-tuning it with KD against the run's teacher; returns the exported model (its file stays dense:
 * the zeros pay off in gzip and sparse kernels, not in dense onnxruntime kernels).
 */
export async function pruneGradually(runDir: string, bytes: Uint8Array, where: string, o: GradualOptions): Promise<GradualResult> {
  if (!(o.sparsity > 0 && o.sparsity < 1)) throw new UserError(where, `--sparsity: expected a share between 0 and 1, got ${o.sparsity}`);
  if (o.rampShare !== undefined && !(o.rampShare > 0 && o.rampShare <= 1)) throw new RangeError(`rampShare must be in (0, 1], got ${o.rampShare}`);
  let role: "teacher" | "student" = "student";
  const job = await finetuneJob(runDir, bytes, where, (config, configPath, decoded, build) => {
    // Which of the run's models this is: the one whose parameters it has, name for name and shape for shape.
    for (const [name, spec] of [["student", config.student.model], ["teacher", config.teacher?.model]] as const) {
      if (!spec) continue;
      const decls = build(spec).initParameters(0).decls;
      if (decls.every((d) => decoded.initializers.get(d.name)?.dims.join("x") === d.shape.join("x"))) {
        role = name;
        return spec;
      }
    }
    throw new UserError(where, `is neither the student nor the teacher of ${configPath} (its parameters match neither architecture); gradual pruning fine-tunes one of the run's own models`);
  }, o.cacheDir);
  const names = prunableNames(job.params);
  const interval = o.interval ?? 50;
  const schedule: { step: number; sparsity: number }[] = [];
  let masks = new Map<string, Uint8Array>();
  let ramp = 1;
  const afterStep = (trainer: ModelTrainer, step: number, total: number) => {
    if (step === 0) {
      ramp = Math.max(1, Math.round(total * (o.rampShare ?? 0.75)));
      return;
    }
    if (step <= ramp && (step % interval === 0 || step === ramp)) {
      const sparsity = cubicSparsity(step, ramp, o.sparsity);
      const current = trainer.parameters();
      masks = magnitudeMasks(new Map(names.map((n) => [n, current.get(n).data])), sparsity, o.scope);
      schedule.push({ step, sparsity });
    }
    for (const [n, keep] of masks) trainer.maskParameter(n, keep);
  };
  const params = await kdFinetune(job, { ...o, afterStep });
  const exported = exportOnnx(job.model, params, {
    probabilitiesName: "probabilities",
    metadata: { ...job.metadata, "distill.pruning": JSON.stringify({ kind: "gradual", scope: o.scope, sparsity: o.sparsity, epochs: o.epochs, interval, teacher: "teacher.onnx", temperature: job.temperature, alpha: job.alpha }) },
  });
  return { bytes: exported, schedule, role };
}
