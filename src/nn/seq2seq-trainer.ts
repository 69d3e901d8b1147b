// Training steps for a Seq2SeqModel, one compiled step graph per length bucket. Words are short
// (CMUdict: 7.5 letters on average, 34 at most), so padding every batch to the longest would
// spend most of each step on padding; a batch goes to the smallest bucket that holds it. The
// buckets' sessions share one state: before a step in another bucket, that bucket's session takes
// the parameters, optimizer moments and step count of the last one used.

import { Graph, type Tensor, type Value } from "../engine/graph.js";
import { compileTrainStep, TrainingSession } from "../engine/training.js";
import { type OptimizerConfig, optimizerStateNames } from "../engine/optimizers.js";
import * as F from "../engine/functional.js";
import { ParameterSet } from "./module.js";
import { RANDOM_STREAM, randomStreamValue } from "./random.js";
import { type Seq2SeqModel, tokenCrossEntropy, topKDistillation } from "./seq2seq.js";

/** What a step trains on: gold or teacher targets, and optionally the teacher's top-k distributions. */
export interface Seq2SeqLossSpec {
  labelSmoothing?: number;
  /** Word-level distillation: (1−α)·CE + α·T²·KL to the teacher's top-k per position. */
  wordKd?: { alpha: number; temperature: number; topK: number };
}

export interface Seq2SeqTrainerOptions {
  model: Seq2SeqModel;
  params: ParameterSet;
  optimizer: OptimizerConfig;
  loss: Seq2SeqLossSpec;
  /** [source length, target length] of each bucket, smallest first; the last must be the model's longest. */
  buckets: [number, number][];
  seed: number;
  threads?: number;
  clipGradNorm?: number;
}

/** One batch: ids padded to its bucket's lengths; teacher tensors only with wordKd. */
export interface Seq2SeqFeeds {
  source: Tensor<"int64">;
  targetIn: Tensor<"int64">;
  targetOut: Tensor<"int64">;
  teacherIds?: Tensor<"int64">;
  teacherLogProbs?: Tensor<"float32">;
}

export interface Seq2SeqStepResult {
  loss: number;
  terms: Record<string, number>;
}

export class Seq2SeqTrainer {
  private active = 0;
  private constructor(
    private readonly sessions: TrainingSession[],
    private readonly template: ParameterSet,
    private readonly termNames: string[],
    private readonly random: boolean,
    private readonly seed: number,
    readonly buckets: [number, number][],
  ) {}

  static async create(o: Seq2SeqTrainerOptions): Promise<Seq2SeqTrainer> {
    const last = o.buckets[o.buckets.length - 1];
    if (!last || last[0] !== o.model.spec.sourceLength || last[1] !== o.model.spec.targetLength)
      throw new Error(`the last bucket must be the model's lengths [${o.model.spec.sourceLength}, ${o.model.spec.targetLength}]`);
    const sessions: TrainingSession[] = [];
    let termNames: string[] = [];
    let random = false;
    for (const [ls, lt] of o.buckets) {
      const built = buildStep(o, ls, lt);
      termNames = built.termNames;
      random ||= built.random;
      const initial = new Map<string, Tensor<"float32">>();
      for (const [name, t] of o.params.tensors) initial.set(name, t);
      for (const d of o.params.decls)
        for (const k of optimizerStateNames(o.optimizer)) initial.set(`${d.name}.${k}`, { dtype: "float32", shape: d.shape, data: new Float32Array(d.shape.reduce((a, b) => a * b, 1)) });
      sessions.push(await TrainingSession.create(built.compiled, o.optimizer, initial, { threads: o.threads }));
    }
    return new Seq2SeqTrainer(sessions, o.params, termNames, random, o.seed, o.buckets);
  }

  get stepsTaken(): number {
    return this.sessions[this.active]!.stepsTaken;
  }

  /** The smallest bucket holding sources of `sourceLength` and targets of `targetLength` symbols (<bos>/<eos> counted). */
  bucketFor(sourceLength: number, targetLength: number): number {
    const i = this.buckets.findIndex(([ls, lt]) => sourceLength <= ls && targetLength <= lt);
    if (i < 0) throw new RangeError(`a pair of ${sourceLength} → ${targetLength} symbols is longer than the model takes`);
    return i;
  }

  async step(bucket: number, feeds: Seq2SeqFeeds, lr: number): Promise<Seq2SeqStepResult> {
    const session = this.use(bucket);
    const all: Record<string, Tensor> = { source: feeds.source, target_in: feeds.targetIn, target_out: feeds.targetOut };
    if (feeds.teacherIds) all["teacher_ids"] = feeds.teacherIds;
    if (feeds.teacherLogProbs) all["teacher_logprobs"] = feeds.teacherLogProbs;
    if (this.random) all[RANDOM_STREAM] = { dtype: "int64", shape: [], data: BigInt64Array.of(randomStreamValue(this.seed, session.stepsTaken)) };
    const res = await session.run(all, lr, this.termNames);
    const terms: Record<string, number> = {};
    for (const t of this.termNames) terms[t] = (res.outputs[t]!.data as Float32Array)[0]!;
    return { loss: res.loss, terms };
  }

  /** Makes bucket `i`'s session current, handing it the state of the last one used. */
  private use(i: number): TrainingSession {
    const to = this.sessions[i]!;
    if (i !== this.active) {
      const from = this.sessions[this.active]!;
      to.restore(new Map(from.stateNames.map((n) => [n, from.state(n)])), from.stepsTaken);
      this.active = i;
    }
    return to;
  }

  parameters(): ParameterSet {
    const s = this.sessions[this.active]!;
    return new ParameterSet(this.template.decls, new Map(this.template.decls.map((d) => {
      const t = s.state(d.name);
      return [d.name, { dtype: "float32" as const, shape: t.shape.slice(), data: t.data.slice() }];
    })));
  }

  snapshot(): { state: Map<string, Tensor<"float32">>; stepsTaken: number } {
    const s = this.sessions[this.active]!;
    return { state: s.snapshot(), stepsTaken: s.stepsTaken };
  }

  restore(saved: { state: Map<string, Tensor<"float32">>; stepsTaken: number }): void {
    this.sessions[this.active]!.restore(saved.state, saved.stepsTaken);
  }

  async dispose(): Promise<void> {
    for (const s of this.sessions) await s.dispose();
  }
}

function buildStep(o: Seq2SeqTrainerOptions, ls: number, lt: number) {
  const g = new Graph();
  const source = g.input("source", ["N", ls], "int64");
  const targetIn = g.input("target_in", ["N", lt], "int64");
  const targetOut = g.input("target_out", ["N", lt], "int64");
  const { ctx, paramInputs } = o.model.context(g, "train", { kind: "inputs" });
  const logits = o.model.forward(ctx, source, targetIn);
  const { loss, terms } = g.withScope("loss", () => {
    const ce = tokenCrossEntropy(logits, targetOut, { labelSmoothing: o.loss.labelSmoothing });
    const kd = o.loss.wordKd;
    if (!kd || kd.alpha === 0) return { loss: ce, terms: { loss_ce: ce } as Record<string, Value> };
    const ids = g.input("teacher_ids", ["N", lt, kd.topK], "int64");
    const logProbs = g.input("teacher_logprobs", ["N", lt, kd.topK]);
    const kl = F.scale(topKDistillation(logits, targetOut, ids, logProbs, kd.temperature), kd.temperature * kd.temperature);
    const total = kd.alpha === 1 ? kl : F.add(F.scale(ce, 1 - kd.alpha), F.scale(kl, kd.alpha));
    return { loss: total, terms: { loss_ce: ce, loss_kd: kl } as Record<string, Value> };
  });
  const compiled = compileTrainStep({ graph: g, loss, params: paramInputs, outputs: terms, optimizer: o.optimizer, clipGradNorm: o.clipGradNorm });
  return { compiled, termNames: Object.keys(terms), random: ctx.randomStream !== undefined };
}
