// Attention transfer, Zagoruyko & Komodakis (2017), "Paying More Attention to Attention", ICLR,
// Eq. (2): the attention map of a feature map [N, C, H, W] is the mean over channels of |f|^p,
// flattened and L2-normalised per sample; the loss is the mean squared difference of the student's
// and teacher's maps (mdistiller's at_loss; maps of different H×W are pooled to the smaller).
// Channel counts may differ: the maps are per position, so no adapter is needed.

import { formatShape, type Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";
import { obj, positiveNumber, str } from "../../config/fields.js";
import { mse } from "../../nn/losses.js";
import { flattenSamples, l2NormalizeRows, matchSpatial, spatialMismatch } from "./feature-math.js";
import { defineMethod } from "./types.js";

export function attentionMap(f: Value, p: number): Value {
  const a = F.reduceMean(F.pow(F.unary("Abs", f), p), [1]);
  return l2NormalizeRows(flattenSamples(a));
}

export function attentionTransfer(student: Value, teacher: Value, p: number): Value {
  const [s, t] = matchSpatial(student, teacher);
  return mse(attentionMap(s, p), attentionMap(t, p));
}

export const attentionMethod = defineMethod({
  name: "attention",
  reference: "Zagoruyko & Komodakis (2017), Paying More Attention to Attention, ICLR, Eq. (2)",
  settings: obj({ teacher: str("a teacher tap name"), student: str("a student tap name"), p: positiveNumber().default(2) }),
  includesCrossEntropy: false,
  // Chosen by `distill tune examples/fashion-mnist-attention-tune.yaml` on validation (mdistiller's
  // CIFAR 1000 left two seeds of five 0.6–0.9 points behind on test; docs/methods.md).
  defaultWeight: 300,
  needs: (s) => ({ teacherTaps: [s.teacher], studentTaps: [s.student] }),
  checkShapes(s, shapes) {
    const st = shapes.student.get(s.student)!, te = shapes.teacher.get(s.teacher)!;
    if (st.length !== 4 || te.length !== 4) return `student: ${s.student} ${formatShape(st)} and teacher: ${s.teacher} ${formatShape(te)} must both be conv feature maps [N, C, H, W]`;
    const why = spatialMismatch(st, te);
    return why ? `student: ${s.student} and teacher: ${s.teacher}: ${why}` : undefined;
  },
  loss({ settings, studentTaps, teacherTaps }) {
    const at = attentionTransfer(studentTaps.get(settings.student)!, teacherTaps.get(settings.teacher)!, settings.p);
    return { loss: at, parts: { loss_at: at } };
  },
});
