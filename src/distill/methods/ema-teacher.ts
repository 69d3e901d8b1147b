// Self-distillation from a mean teacher, Tarvainen & Valpola (2017), "Mean teachers are better role
// models", §2: the teacher is an exponential moving average of the student's own weights,
// ema ← d·ema + (1−d)·θ after every optimizer step, with no separate teacher and no gradient
// through it. The student learns from its soft targets with logit KD's loss (Hinton et al. 2015, §2):
// (1−α)·CE(labels, s) + α·T²·KL(softmax(ema(x)/T) ‖ softmax(s/T)); without labels only the soft term,
// and in batches mixing unlabelled samples the hard-label part averages over the labelled rows (the
// paper's semi-supervised setting).
//
// The average (parameters and BatchNorm buffers, as timm's ModelEma) is state of the training step
// itself, updated in the step graph (so it rides along the K-steps-per-call Loop and is checkpointed
// with the parameters). It starts at the initial weights; with `rampUp` the decay at step t is
// min(d, 1 − 1/(t+1)), as the authors' code does, so early targets are not those of the random
// initialisation. The teacher runs in eval mode (no dropout, running statistics). The exported model
// is the student, not the average.

import type { Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";
import { bool, obj, positiveNumber, unitClosed, unitOpen } from "../../config/fields.js";
import { kdLossGraph } from "../../nn/losses.js";
import { defineMethod } from "./types.js";

export const emaTeacherMethod = defineMethod({
  name: "ema-teacher",
  reference: "Tarvainen & Valpola (2017), Mean teachers are better role models, §2; loss of Hinton et al. (2015), §2",
  // decay 0.99 and T 2: chosen by `distill tune examples/fashion-mnist-ema-tune.yaml` on validation;
  // on test 845.8 errors against 870.6 at the paper-style 0.999 and T 4 (p = 0.005; docs/methods.md).
  settings: obj({
    decay: unitOpen().default(0.99),
    rampUp: bool().default(true),
    temperature: positiveNumber().default(2),
    alpha: unitClosed().default(0.5),
  }),
  includesCrossEntropy: true,
  needs: () => ({ labels: "optional", partialLabels: true }),
  loss({ ctx, labels, labeledShare, settings, id }) {
    if (!ctx.weights || !ctx.state || !ctx.forwardWith) throw new Error("ema-teacher needs the trainer's weights, state and forward pass (build it through ModelTrainer)");
    const g = ctx.graph;
    // Optimizer steps taken before this one (float32: exact up to 2^24 steps).
    const steps: Value = ctx.state(`${id}.steps`, { dtype: "float32", shape: [], data: new Float32Array(1) }, () => F.add(steps, g.constFloat([1])));
    // (d, 1 − d) of this step, built once, after the update (t = steps + 1; the authors' ramp is 1 − 1/(t + 1)).
    let weightsOfStep: { keep: Value; take: Value } | undefined;
    const decay = () => {
      if (weightsOfStep) return weightsOfStep;
      const one = g.constFloat([1]);
      const d = g.constFloat([settings.decay]);
      const keep = settings.rampUp ? F.emit("Min", [d, F.sub(one, F.div(one, F.add(steps, g.constFloat([2]))))])[0]! : d;
      return (weightsOfStep = { keep, take: F.sub(one, keep) });
    };
    const averaged = new Map<string, Value>();
    for (const [name, w] of ctx.weights) {
      const avg: Value = ctx.state(`${id}.ema.${name}`, w.init, (updated) => {
        const { keep, take } = decay();
        // A buffer that this step did not update (none in train mode today) keeps its value.
        return F.add(F.mul(avg, keep), F.mul(updated.get(name) ?? w.value, take));
      });
      averaged.set(name, avg);
    }
    const teacherLogits = g.withScope("ema", () => ctx.forwardWith!(averaged).logits);
    const alpha = labels ? settings.alpha : 1;
    const t = kdLossGraph(ctx.logits, teacherLogits, labels, settings.temperature, alpha, labeledShare);
    const parts: Record<string, Value> = labels ? { loss_ce: t.ce, loss_kd: t.kd } : { loss_kd: t.kd };
    return { loss: t.loss, parts };
  },
});
