// Relational KD, Park, Kim, Lu & Cho (2019), CVPR: the student's embeddings should keep the
// teacher's relations between samples, not its values. Distance-wise (Eq. 4): pairwise Euclidean
// distances, each normalised by their mean over the off-diagonal pairs; angle-wise (Eq. 6): the
// cosine of the angle at every anchor of every triple. Smooth-L1 (β = 1, mean over all entries)
// for both, as mdistiller's rkd_loss. Embeddings of different widths need no adapter.

import type { Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";
import { nonNegativeNumber, obj, str } from "../../config/fields.js";
import { flattenSamples, smoothL1Mean } from "./feature-math.js";
import { defineMethod } from "./types.js";

/** Pairwise differences e_j − e_i [N, N, D] and a mask [N, N] of the pairs that differ (off-diagonal). */
function pairs(e: Value): { diff: Value; sq: Value; offDiagonal: Value } {
  const diff = F.sub(F.unsqueeze(e, [0]), F.unsqueeze(e, [1]));
  const sq = F.reduceSum(F.mul(diff, diff), [2]);
  // x − x is exactly 0 in floating point, so this is the off-diagonal mask without knowing N.
  const offDiagonal = F.greater(sq, e.graph.constFloat([0]));
  return { diff, sq, offDiagonal };
}

/** Distances normalised by their off-diagonal mean (Eq. 4's μ); the diagonal stays 0, with finite gradients. */
function normalisedDistances(e: Value): Value {
  const g = e.graph;
  const { sq, offDiagonal } = pairs(e);
  const d = F.where(offDiagonal, F.sqrt(F.where(offDiagonal, sq, g.constFloat([1]))), g.constFloat([0]));
  const count = F.reduceSum(F.cast(offDiagonal, "float32"), [0, 1]);
  return F.div(d, F.div(F.reduceSum(d, [0, 1]), count));
}

/** cos ∠(e_j − e_i, e_k − e_i) for all i, j, k: [N, N, N]. */
function angles(e: Value): Value {
  const g = e.graph;
  const { diff, sq, offDiagonal } = pairs(e);
  const norm = F.sqrt(F.where(offDiagonal, sq, g.constFloat([1])));
  const unit = F.div(diff, F.unsqueeze(norm, [2]));
  return F.matmul(unit, F.transpose(unit, [0, 2, 1]));
}

export function rkdTerms(student: Value, teacher: Value): { distance: Value; angle: Value } {
  const s = flattenSamples(student), t = flattenSamples(teacher);
  return { distance: smoothL1Mean(normalisedDistances(s), normalisedDistances(t)), angle: smoothL1Mean(angles(s), angles(t)) };
}

export const rkdMethod = defineMethod({
  name: "rkd",
  reference: "Park, Kim, Lu & Cho (2019), Relational Knowledge Distillation, CVPR, Eqs. (4) and (6)",
  settings: obj({
    teacher: str("a teacher tap name"),
    student: str("a student tap name"),
    distanceWeight: nonNegativeNumber().default(25),
    angleWeight: nonNegativeNumber().default(50),
  }),
  includesCrossEntropy: false,
  needs: (s) => ({ teacherTaps: [s.teacher], studentTaps: [s.student] }),
  loss({ settings, studentTaps, teacherTaps }) {
    const { distance, angle } = rkdTerms(studentTaps.get(settings.student)!, teacherTaps.get(settings.teacher)!);
    const loss = F.add(F.scale(distance, settings.distanceWeight), F.scale(angle, settings.angleWeight));
    return { loss, parts: { loss_rkd_distance: distance, loss_rkd_angle: angle } };
  },
});
