// What a distillation method is: a loss built on the student's graph from the batch's labels and
// the teacher's cached outputs. Adding a method = one file here + its entry in index.ts + one test.

import type { Value } from "../../engine/graph.js";
import type { LossContext, LossResult } from "../../nn/train-step.js";

export interface MethodSettings {
  temperature: number;
  alpha: number;
}

export interface MethodInputs {
  ctx: LossContext;
  /** Hard labels [N] (int64), absent when the transfer set is unlabeled. */
  labels?: Value;
  /** Teacher logits [N, K], absent for methods that do not use a teacher. */
  teacherLogits?: Value;
  settings: MethodSettings;
}

export interface DistillMethod {
  /** Name used in configs and logs. */
  name: string;
  /** Where it comes from (paper), shown in docs and the report. */
  reference: string;
  usesTeacher: boolean;
  usesLabels: boolean;
  /** Builds the loss; named terms (ce, kd…) are logged per epoch, mdistiller-style. */
  loss(inputs: MethodInputs): LossResult;
}
