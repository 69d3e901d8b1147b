// The training loss of a stage: Σ weight · term over the configured terms (Keras's Distiller with
// several distillation losses). Gathers what the terms declare they need — labels, teacher logits,
// teacher taps as per-batch inputs, student taps from the student's graph — builds each term, and
// names each term's parts for the per-epoch log.

import type { KdTerm } from "../config/schema.js";
import type { Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import type { Tensor } from "../engine/runtime.js";
import type { LossContext, LossResult } from "../nn/train-step.js";
import { methodNamed, type DistillMethod } from "./methods/index.js";
import type { TeacherOutputs } from "./teacher-outputs.js";

const LABELS = "labels";
const TEACHER_LOGITS = "teacher_logits";
const teacherTapInput = (tap: string) => `teacher_tap.${tap}`;

export class WeightedTerms {
  readonly terms: { term: KdTerm; method: DistillMethod<KdTerm>; label: string }[];
  readonly usesLabels: boolean;
  readonly usesTeacherLogits: boolean;
  readonly teacherTaps: string[];
  readonly studentTaps: string[];
  /** Terms that need a label on every row (they cannot train on batches mixing unlabelled samples). */
  readonly needEveryLabel: string[];

  /** `labeledShare`: the share of each batch's rows that carry a label (below 1 when unlabelled samples are mixed in). */
  constructor(terms: KdTerm[], labeled: boolean, readonly labeledShare = 1) {
    const active = terms.filter((t) => t.weight > 0);
    const counts = new Map<string, number>();
    this.terms = active.map((term) => {
      const n = (counts.get(term.method) ?? 0) + 1;
      counts.set(term.method, n);
      return { term, method: methodNamed(term.method), label: n > 1 ? `${term.method}#${n}` : term.method };
    });
    const needs = this.terms.map(({ term, method }) => method.needs(term));
    this.usesLabels = labeled && needs.some((n) => n.labels !== undefined);
    this.usesTeacherLogits = needs.some((n) => n.teacherLogits);
    this.teacherTaps = [...new Set(needs.flatMap((n) => n.teacherTaps ?? []))];
    this.studentTaps = [...new Set(needs.flatMap((n) => n.studentTaps ?? []))];
    this.needEveryLabel = this.terms.filter((_, i) => labeled && needs[i]!.labels !== undefined && !needs[i]!.partialLabels).map((t) => t.label);
  }

  get usesTeacher(): boolean {
    return this.usesTeacherLogits || this.teacherTaps.length > 0;
  }

  /** Builds Σ weight · term on the student's graph; a lone term keeps its parts' plain names (loss_ce, loss_kd). */
  build(ctx: LossContext, o: { seed: number; numClasses: number; teacherTapShapes: Map<string, number[]> }): LossResult {
    const labels = this.usesLabels ? ctx.input(LABELS, ["N"], "int64") : undefined;
    const teacherLogits = this.usesTeacherLogits ? ctx.input(TEACHER_LOGITS, ["N", o.numClasses]) : undefined;
    const teacherTaps = new Map(this.teacherTaps.map((t) => [t, ctx.input(teacherTapInput(t), ["N", ...o.teacherTapShapes.get(t)!])]));
    const studentTaps = new Map(this.studentTaps.map((t) => [t, ctx.taps.get(t)!]));
    let total: Value | undefined;
    const logged: Record<string, Value> = {};
    for (const { term, method, label } of this.terms) {
      const r = ctx.graph.withScope(label, () => method.loss({ ctx, settings: term, id: `kd.${label}`, seed: o.seed, labels, labeledShare: this.labeledShare, teacherLogits, teacherTaps, studentTaps }));
      const weighted = F.scale(r.loss, term.weight);
      total = total ? F.add(total, weighted) : weighted;
      for (const [part, v] of Object.entries(r.parts ?? { [`loss_${term.method}`]: r.loss })) logged[this.terms.length > 1 ? `${label}.${part}` : part] = v;
    }
    if (!total) throw new Error("no loss term has a weight above 0");
    return { loss: total, terms: logged };
  }

  /** The per-batch inputs the terms declared, for the examples `indices`. */
  feeds(indices: ArrayLike<number>, labels: BigInt64Array, teacher: TeacherOutputs | undefined): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    if (this.usesLabels) feeds[LABELS] = { dtype: "int64", shape: [labels.length], data: labels };
    if (!this.usesTeacher) return feeds;
    if (!teacher) throw new Error("the loss needs the teacher's outputs, but none were provided");
    if (this.usesTeacherLogits) feeds[TEACHER_LOGITS] = teacher.gather(teacher.logits!, indices);
    for (const t of this.teacherTaps) feeds[teacherTapInput(t)] = teacher.gather(teacher.taps.get(t)!, indices);
    return feeds;
  }
}
