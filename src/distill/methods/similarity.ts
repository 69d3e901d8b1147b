// Similarity-preserving KD, Tung & Mori (2019), ICCV, Eqs. (1)–(4): inputs that the teacher
// activates similarly should activate the student similarly. G = A·Aᵀ over the batch (A: [N, …]
// flattened per sample), each row L2-normalised; the loss is ‖G_t − G_s‖²_F / N² (mdistiller's
// sp_loss). The two layers may have any widths: only the N×N similarities are compared.

import type { Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";
import { obj, str } from "../../config/fields.js";
import { flattenSamples, l2NormalizeRows } from "./feature-math.js";
import { defineMethod } from "./types.js";

function similarities(a: Value): Value {
  const f = flattenSamples(a);
  return l2NormalizeRows(F.matmul(f, F.transpose(f, [1, 0])));
}

export function similarityPreserving(student: Value, teacher: Value): Value {
  const d = F.sub(similarities(teacher), similarities(student));
  return F.reduceMean(F.mul(d, d), [0, 1]); // Σ / N²
}

export const similarityMethod = defineMethod({
  name: "similarity",
  reference: "Tung & Mori (2019), Similarity-Preserving Knowledge Distillation, ICCV, Eq. (4)",
  settings: obj({ teacher: str("a teacher tap name"), student: str("a student tap name") }),
  includesCrossEntropy: false,
  // mdistiller's weight: −19.6 errors against the baseline at the full budget (docs/methods.md).
  defaultWeight: 3000,
  needs: (s) => ({ teacherTaps: [s.teacher], studentTaps: [s.student] }),
  loss({ settings, studentTaps, teacherTaps }) {
    const sp = similarityPreserving(studentTaps.get(settings.student)!, teacherTaps.get(settings.teacher)!);
    return { loss: sp, parts: { loss_sp: sp } };
  },
});
