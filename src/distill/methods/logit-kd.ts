// Logit distillation, Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural
// Network", §2: (1−α)·CE(labels, s) + α·T²·KL(softmax(t/T) ‖ softmax(s/T)), batch-mean. Without
// labels (unlabeled transfer set) only the soft term remains.

import type { Value } from "../../engine/graph.js";
import { obj, positiveNumber, unitClosed } from "../../config/fields.js";
import { kdLossGraph } from "../../nn/losses.js";
import { defineMethod } from "./types.js";

export const logitKdMethod = defineMethod({
  name: "logit-kd",
  reference: "Hinton, Vinyals & Dean (2015), Distilling the Knowledge in a Neural Network, §2",
  settings: obj({ temperature: positiveNumber().default(4), alpha: unitClosed().default(0.9) }),
  includesCrossEntropy: true,
  needs: () => ({ labels: "optional", partialLabels: true, teacherLogits: true }),
  loss({ ctx, labels, labeledShare, teacherLogits, settings }) {
    const alpha = labels ? settings.alpha : 1;
    const t = kdLossGraph(ctx.logits, teacherLogits!, labels, settings.temperature, alpha, labeledShare);
    const parts: Record<string, Value> = labels ? { loss_ce: t.ce, loss_kd: t.kd } : { loss_kd: t.kd };
    return { loss: t.loss, parts };
  },
});
