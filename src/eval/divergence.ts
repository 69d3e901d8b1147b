// Divergence of a training stage, read from its per-epoch training loss. A non-finite loss already
// stops training (train-stage.ts); a finite one that explodes (2.7e30 was seen) used to finish
// silently with a useless model. The training loop warns as it happens and the report shows it.

import type { EpochMetric } from "./types.js";

/** A classifier's mean loss (any of distill's objectives) this large means the weights blew up. */
export const DIVERGED_LOSS = 1e6;
/** Nor does a healthy run's epoch loss climb to this many times its best earlier epoch's. */
export const DIVERGED_RISE = 100;

export interface Divergence {
  stage: string;
  seed: number;
  /** The first epoch (1-based) whose training loss diverged, and that loss. */
  epoch: number;
  loss: number;
  /** The lowest training loss of the epochs before it (NaN for the first epoch). */
  bestBefore: number;
}

/** The first diverged epoch of one stage and seed's history (in epoch order), if any. */
export function findDivergence(history: EpochMetric[]): Divergence | undefined {
  let best = NaN;
  for (const e of history) {
    const loss = e.trainLoss;
    if (!Number.isFinite(loss) || loss > DIVERGED_LOSS || (best > 0 && loss > DIVERGED_RISE * best))
      return { stage: e.stage, seed: e.seed, epoch: e.epoch, loss, bestBefore: best };
    if (!(loss >= best)) best = loss;
  }
  return undefined;
}

/** Every stage and seed of a metrics log that diverged, in the log's order. */
export function divergences(epochs: EpochMetric[]): Divergence[] {
  const byRun = new Map<string, EpochMetric[]>();
  for (const e of epochs) {
    const key = `${e.stage}\u0000${e.seed}`;
    byRun.set(key, [...(byRun.get(key) ?? []), e]);
  }
  return [...byRun.values()].map((h) => findDivergence([...h].sort((a, b) => a.epoch - b.epoch))).filter((d): d is Divergence => d !== undefined);
}

/** One line for people: which stage, where, and what to change. */
export function divergenceWarning(d: Divergence): string {
  const rise = Number.isFinite(d.bestBefore) ? ` (its best earlier epoch: ${d.bestBefore.toPrecision(3)})` : "";
  // Every stage but the teacher trains with the student's settings.
  const train = `${d.stage === "teacher" ? "teacher" : "student"}.train`;
  return `${d.stage} (seed ${d.seed}) diverged: training loss ${d.loss.toPrecision(3)} at epoch ${d.epoch}${rise}; its model is not usable. Lower ${train}.optimizer.lr or set ${train}.clipGradNorm`;
}
