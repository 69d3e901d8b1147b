// The baseline: the student trained on hard labels alone (no teacher), with the same budget.

import { crossEntropy } from "../../nn/losses.js";
import type { DistillMethod } from "./types.js";

export const crossEntropyMethod: DistillMethod = {
  name: "cross-entropy",
  reference: "hard-label training (the no-distillation baseline)",
  usesTeacher: false,
  usesLabels: true,
  loss({ ctx, labels }) {
    if (!labels) throw new Error("cross-entropy needs labels");
    const ce = crossEntropy(ctx.logits, labels);
    return { loss: ce, terms: { loss_ce: ce } };
  },
};
