// The training loss of a stage: Σ weight · term over the configured terms (Keras's Distiller with
// several distillation losses). Gathers what the terms declare they need — labels, teacher logits,
// teacher taps as per-batch inputs, student taps from the student's graph — builds each term, and
// names each term's parts for the per-epoch log.
// With mixup (train.mixup) a batch row is a blend λ·x_i + (1 − λ)·x_j, and its hard-label loss is
// λ·L(y_i) + (1 − λ)·L(y_j) (Zhang et al. 2018, the authors' mixup_criterion): each term that reads
// labels is built twice, once on the rows' labels and once on their partners', and blended by λ; a
// term without labels is built once. The teacher's logits and taps come as per-batch inputs (cached,
// or from a teacher session per batch), or from the teacher built into the graph (consistent-teacher.ts).

import type { KdTerm } from "../config/schema.js";
import type { Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import type { Tensor } from "../engine/runtime.js";
import type { LossContext, LossResult } from "../nn/train-step.js";
import { methodNamed, type DistillMethod } from "./methods/index.js";
import type { InGraphTeacher } from "./consistent-teacher.js";
import type { Batch } from "../data/batches.js";
import type { TeacherBatch } from "./teacher-outputs.js";

const LABELS = "labels";
const PARTNER_LABELS = "mixup_partner_labels";
const MIXUP_LAMBDA = "mixup_lambda";
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
  /** Mixup batches: the labelled terms are blended over each row's label and its partner's. */
  readonly mixesLabels: boolean;
  private readonly readsLabels: boolean[];

  /**
   * `labeledShare`: the share of each batch's rows that carry a label (below 1 when unlabelled
   * samples are mixed in); `mixup`: the batches are mixed (each carries Batch.mix).
   */
  constructor(terms: KdTerm[], labeled: boolean, readonly labeledShare = 1, opts: { mixup?: boolean } = {}) {
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
    this.readsLabels = needs.map((n) => this.usesLabels && n.labels !== undefined);
    this.mixesLabels = (opts.mixup ?? false) && this.usesLabels;
  }

  get usesTeacher(): boolean {
    return this.usesTeacherLogits || this.teacherTaps.length > 0;
  }

  /**
   * Builds Σ weight · term on the student's graph; a lone term keeps its parts' plain names (loss_ce,
   * loss_kd). `teacher`: the teacher built into the graph on the step's input, instead of fed.
   */
  build(ctx: LossContext, o: { seed: number; numClasses: number; teacherTapShapes: Map<string, number[]>; teacher?: InGraphTeacher }): LossResult {
    const labels = this.usesLabels ? ctx.input(LABELS, ["N"], "int64") : undefined;
    const mixup = this.mixesLabels ? { partnerLabels: ctx.input(PARTNER_LABELS, ["N"], "int64"), lambda: ctx.input(MIXUP_LAMBDA, []) } : undefined;
    const { teacherLogits, teacherTaps } = this.teacherValues(ctx, o);
    const studentTaps = new Map(this.studentTaps.map((t) => [t, ctx.taps.get(t)!]));
    let total: Value | undefined;
    const logged: Record<string, Value> = {};
    for (const [i, { term, method, label }] of this.terms.entries()) {
      const termOn = (rowLabels: Value | undefined, as: string) =>
        ctx.graph.withScope(as, () => method.loss({ ctx, settings: term, id: `kd.${as}`, seed: o.seed, labels: rowLabels, labeledShare: this.labeledShare, teacherLogits, teacherTaps, studentTaps }));
      let r = termOn(labels, label);
      if (mixup && this.readsLabels[i]) r = blend(r, termOn(mixup.partnerLabels, `${label}@partner`), mixup.lambda);
      const weighted = F.scale(r.loss, term.weight);
      total = total ? F.add(total, weighted) : weighted;
      for (const [part, v] of Object.entries(r.parts ?? { [`loss_${term.method}`]: r.loss })) logged[this.terms.length > 1 ? `${label}.${part}` : part] = v;
    }
    if (!total) throw new Error("no loss term has a weight above 0");
    return { loss: total, terms: logged };
  }

  /** The teacher's logits and taps: built into the graph from the step's input, or declared as per-batch inputs. */
  private teacherValues(ctx: LossContext, o: { numClasses: number; teacherTapShapes: Map<string, number[]>; teacher?: InGraphTeacher }): { teacherLogits?: Value; teacherTaps: Map<string, Value> } {
    if (!this.usesTeacher) return { teacherTaps: new Map() };
    if (o.teacher) {
      if (!ctx.stepInput) throw new Error("a teacher in the step graph needs the step's input (build the loss through ModelTrainer)");
      const built = o.teacher.build(ctx.graph, ctx.stepInput, this.teacherTaps);
      return { ...(this.usesTeacherLogits ? { teacherLogits: built.logits } : {}), teacherTaps: built.taps };
    }
    return {
      ...(this.usesTeacherLogits ? { teacherLogits: ctx.input(TEACHER_LOGITS, ["N", o.numClasses]) } : {}),
      teacherTaps: new Map(this.teacherTaps.map((t) => [t, ctx.input(teacherTapInput(t), ["N", ...o.teacherTapShapes.get(t)!])])),
    };
  }

  /** What the teacher must give per batch, when it is fed rather than built into the graph. */
  get teacherWants(): { logits: boolean; taps: readonly string[] } {
    return { logits: this.usesTeacherLogits, taps: this.teacherTaps };
  }

  /**
   * The per-batch inputs the terms declared: the batch's labels (and with mixup its partners' and λ),
   * and the teacher's outputs on it unless the teacher is built into the graph (`teacher` undefined then).
   */
  feeds(batch: Pick<Batch, "labels" | "mix">, teacher: TeacherBatch | undefined): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    const { labels } = batch;
    if (this.usesLabels) feeds[LABELS] = { dtype: "int64", shape: [labels.length], data: labels };
    if (this.mixesLabels) {
      if (!batch.mix) throw new Error("the loss blends mixup labels, but the batch was not mixed");
      const { partner, lambda } = batch.mix;
      feeds[PARTNER_LABELS] = { dtype: "int64", shape: [labels.length], data: BigInt64Array.from(partner, (j) => labels[j]!) };
      feeds[MIXUP_LAMBDA] = { dtype: "float32", shape: [], data: Float32Array.of(lambda) };
    }
    if (!this.usesTeacher || !teacher) return feeds;
    if (this.usesTeacherLogits) feeds[TEACHER_LOGITS] = teacher.logits!;
    for (const t of this.teacherTaps) feeds[teacherTapInput(t)] = teacher.taps.get(t)!;
    return feeds;
  }
}

/** λ·a + (1 − λ)·b of a term built on two label sets, loss and each logged part alike. */
function blend(a: { loss: Value; parts?: Record<string, Value> }, b: { loss: Value; parts?: Record<string, Value> }, lambda: Value): { loss: Value; parts?: Record<string, Value> } {
  const mix = (x: Value, y: Value) => F.add(y, F.mul(lambda, F.sub(x, y)));
  return {
    loss: mix(a.loss, b.loss),
    ...(a.parts ? { parts: Object.fromEntries(Object.entries(a.parts).map(([k, v]) => [k, mix(v, b.parts![k]!)])) } : {}),
  };
}
