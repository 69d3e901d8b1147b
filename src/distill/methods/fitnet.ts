// FitNets hints, Romero et al. (2015), "FitNets: Hints for Thin Deep Nets", Eq. (3): ½‖u_h(x) −
// r(v_g(x))‖², the student's guided layer v_g mapped by a learned regressor r onto the teacher's
// hint layer u_h (mean over elements, as mdistiller's F.mse_loss). The regressor is a 1×1
// convolution for two feature maps (both pooled to the smaller H×W first when they differ) and a
// linear map otherwise; it is trained with the student and is not part of the exported student.

import { formatShape, type Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";
import { obj, str } from "../../config/fields.js";
import { mse } from "../../nn/losses.js";
import { Rng } from "../../util/random.js";
import type { LossContext } from "../../nn/train-step.js";
import { flattenSamples, matchSpatial, spatialMismatch } from "./feature-math.js";
import { defineMethod } from "./types.js";

/** A trainable tensor drawn from U(−1/√fanIn, 1/√fanIn) (PyTorch's default for conv and linear). */
function uniformParam(ctx: LossContext, name: string, shape: number[], fanIn: number, seed: number): Value {
  const rng = new Rng(seed, name);
  const bound = 1 / Math.sqrt(fanIn);
  return ctx.param(name, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-bound, bound)));
}

/** The student features mapped onto the teacher's shape, and the teacher features to compare with. */
export function adapt(ctx: LossContext, id: string, seed: number, student: Value, teacher: Value): [Value, Value] {
  if (student.rank === 4 && teacher.rank === 4) {
    const [s, t] = matchSpatial(student, teacher);
    const cs = s.shape[1] as number, ct = t.shape[1] as number;
    const w = uniformParam(ctx, `${id}.adapter.weight`, [ct, cs, 1, 1], cs, seed);
    const b = uniformParam(ctx, `${id}.adapter.bias`, [ct], cs, seed);
    const mapped = F.emit("Conv", [s, w, b], { kernel_shape: { ints: [1, 1] }, strides: { ints: [1, 1] }, pads: { ints: [0, 0, 0, 0] }, group: { i: 1 } })[0]!;
    return [mapped, t];
  }
  const s = flattenSamples(student), t = flattenSamples(teacher);
  const ds = s.shape[1] as number, dt = t.shape[1] as number;
  const w = uniformParam(ctx, `${id}.adapter.weight`, [ds, dt], ds, seed);
  const b = uniformParam(ctx, `${id}.adapter.bias`, [dt], ds, seed);
  return [F.gemm(s, w, { c: b }), t];
}

export const fitnetMethod = defineMethod({
  name: "fitnet",
  reference: "Romero et al. (2015), FitNets: Hints for Thin Deep Nets, ICLR, Eq. (3)",
  settings: obj({ teacher: str("a teacher tap name"), student: str("a student tap name") }),
  includesCrossEntropy: false,
  // mdistiller's FitNets weight; `distill tune examples/fashion-mnist-fitnet-tune.yaml` (docs/methods.md).
  defaultWeight: 100,
  needs: (s) => ({ teacherTaps: [s.teacher], studentTaps: [s.student] }),
  checkShapes(s, shapes) {
    const st = shapes.student.get(s.student)!, te = shapes.teacher.get(s.teacher)!;
    if ([...st.slice(1), ...te.slice(1)].some((d) => typeof d !== "number")) return `student: ${s.student} ${formatShape(st)} and teacher: ${s.teacher} ${formatShape(te)} need static sizes`;
    if (st.length === 4 && te.length === 4) {
      const why = spatialMismatch(st, te);
      if (why) return `student: ${s.student} ${formatShape(st)} cannot be mapped onto teacher: ${s.teacher} ${formatShape(te)}: ${why}`;
    }
    return undefined;
  },
  loss({ ctx, id, seed, settings, studentTaps, teacherTaps }) {
    const [mapped, target] = adapt(ctx, id, seed, studentTaps.get(settings.student)!, teacherTaps.get(settings.teacher)!);
    const hint = mse(mapped, target);
    return { loss: hint, parts: { loss_hint: hint } };
  },
});
