// What a distillation method is (after Keras's loss strategies and mdistiller's one-file
// distillers): a loss term built on the student's training graph. It owns its settings' schema and
// declares what it needs — labels, the teacher's logits, teacher and student taps (layer outputs) —
// and the trainer gathers those and hands them over; a method never reaches into the training loop.
// Adding a method = one file here + one line in index.ts + one test.

import type { z } from "zod";
import type { Shape, Value } from "../../engine/graph.js";
import type { LossContext } from "../../nn/train-step.js";

export interface MethodNeeds {
  /** Hard labels [N] (int64); a method that only can work with them sets `labels: "required"`. */
  labels?: "optional" | "required";
  /**
   * The term copes with batch rows that have no label (data.unlabeled mixed in: such rows carry
   * MISSING_LABEL) by leaving them out of its hard-label part, scaled by `labeledShare`.
   */
  partialLabels?: boolean;
  /** The teacher's logits [N, K]. */
  teacherLogits?: boolean;
  /** Teacher tap names (layer names for our models, tensor names for an .onnx teacher). */
  teacherTaps?: string[];
  /** Student tap names (layer names). */
  studentTaps?: string[];
}

export interface TermInputs<S> {
  ctx: LossContext;
  settings: S;
  /** Unique per term; prefix for anything the term declares on the graph (adapter weights…). */
  id: string;
  /** The stage's seed, for initialising what the term declares. */
  seed: number;
  labels?: Value;
  /** Share of each batch's rows that carry a label (absent: 1, every row; below 1 when unlabelled data is mixed in). */
  labeledShare?: number;
  teacherLogits?: Value;
  /** The declared teacher taps, as fed from the teacher-outputs provider ([N, …]). */
  teacherTaps: Map<string, Value>;
  /** The declared student taps, from the student's graph. */
  studentTaps: Map<string, Value>;
}

export interface TermResult {
  /** The term's loss (its weight is applied by the trainer). */
  loss: Value;
  /** Named parts logged per epoch (loss_ce, loss_kd…); default: { loss_<method>: loss }. */
  parts?: Record<string, Value>;
}

/** Tap shapes (batch dimension symbolic) for checks before training. */
export interface TapShapes {
  teacher: Map<string, Shape>;
  student: Map<string, Shape>;
  studentLogits: Shape;
}

export interface DistillMethod<S = Record<string, unknown>> {
  /** Name used in configs and logs. */
  name: string;
  /** Paper and equation, shown in docs and the report. */
  reference: string;
  /** The method's own settings (a strict zod object with defaults; `method` and `weight` are the config's). */
  settings: z.ZodType<S>;
  /**
   * Whether the term already contains the hard-label cross-entropy (logit KD's (1−α)·CE, DKD's CE).
   * `kd: {method: m}` for a method without it adds a cross-entropy term, as every mdistiller distiller does.
   */
  includesCrossEntropy: boolean;
  /**
   * The term's weight when the config gives none (default 1): a feature term's loss is on its own
   * scale (an attention map's squared error is ~1e-3), so weight 1 would leave it without effect.
   */
  defaultWeight?: number;
  needs(settings: S): MethodNeeds;
  /** Shape problems a config can have (unbridgeable taps), as one line naming the setting; checked before training. */
  checkShapes?(settings: S, shapes: TapShapes): string | undefined;
  loss(inputs: TermInputs<S>): TermResult;
}

/** Types a method object against its settings schema. */
export function defineMethod<S>(m: DistillMethod<S>): DistillMethod<S> {
  return m;
}
