// Learning rate as a function of training progress. Evaluated per step from (epoch, batch), so a
// resumed run gets exactly the rates an uninterrupted one would.

import type { ScheduleSpec } from "../config/schema.js";

/**
 * `epoch` is 0-based and `fraction` ∈ [0, 1) is how far into it the step is.
 * Linear warm-up over `warmupEpochs` (from lr/10 000-ish to lr), then constant, step decay
 * (× gamma every `stepEvery` epochs) or cosine to 0 over the remaining epochs.
 */
export function learningRate(baseLr: number, s: ScheduleSpec, epochs: number, epoch: number, fraction: number): number {
  const progress = epoch + fraction;
  if (s.warmupEpochs > 0 && progress < s.warmupEpochs) return baseLr * Math.max(progress / s.warmupEpochs, 1e-4);
  switch (s.kind) {
    case "constant":
      return baseLr;
    case "step":
      return baseLr * Math.pow(s.gamma ?? 0.1, Math.floor(epoch / (s.stepEvery ?? epochs)));
    case "cosine": {
      const span = Math.max(epochs - s.warmupEpochs, 1e-9);
      const p = Math.min(Math.max((progress - s.warmupEpochs) / span, 0), 1);
      return baseLr * 0.5 * (1 + Math.cos(Math.PI * p));
    }
  }
}
