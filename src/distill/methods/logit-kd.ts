// Logit distillation, Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural
// Network", §2: (1−α)·CE(labels, s) + α·T²·KL(softmax(t/T) ‖ softmax(s/T)), batch-mean. Without
// labels (unlabeled transfer set) only the soft term remains.

import type { Value } from "../../engine/graph.js";
import { kdLossGraph } from "../../nn/losses.js";
import type { DistillMethod } from "./types.js";

export const logitKdMethod: DistillMethod = {
  name: "logit-kd",
  reference: "Hinton, Vinyals & Dean (2015), Distilling the Knowledge in a Neural Network, §2",
  usesTeacher: true,
  usesLabels: true,
  loss({ ctx, labels, teacherLogits, settings }) {
    if (!teacherLogits) throw new Error("logit-kd needs the teacher's logits");
    const alpha = labels ? settings.alpha : 1;
    const t = kdLossGraph(ctx.logits, teacherLogits, labels, settings.temperature, alpha);
    const terms: Record<string, Value> = labels ? { loss_ce: t.ce, loss_kd: t.kd } : { loss_kd: t.kd };
    return { loss: t.loss, terms };
  },
};
