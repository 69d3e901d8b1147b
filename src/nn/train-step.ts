// Compiles "model + loss + optimizer" into one training-step session and runs it batch by batch.

import { Graph, type Value, type DType, type Shape } from "../engine/graph.js";
import { compileTrainStep, TrainingSession, type StepResult } from "../engine/training.js";
import { nchwcBlockSize } from "../engine/nchwc.js";
import type { Tensor } from "../engine/graph.js";
import { type OptimizerConfig, optimizerStateNames } from "../engine/optimizers.js";
import { type Model } from "./model.js";
import { ParameterSet } from "./module.js";
import { RANDOM_STREAM, randomStreamValue } from "./random.js";

export interface LossContext {
  graph: Graph;
  /** Student logits [N, K]. */
  logits: Value;
  /** The step's input batch as fed (raw values); optional so a loss can be built on a bare graph in tests. */
  stepInput?: Value;
  /** Intermediate layer outputs by path (e.g. "relu2"). */
  taps: Map<string, Value>;
  /** Declares an extra per-batch input (labels, teacher logits, teacher features…). */
  input(name: string, shape: Shape, dtype?: DType): Value;
  /** Declares an extra trainable tensor (e.g. a feature adapter), initialised here. */
  param(name: string, shape: number[], init: Float32Array): Value;
  // What a self-teaching loss (an averaged copy of the model as teacher) builds on; optional so a
  // loss can be built on a bare graph in tests. The trainer provides all three.
  /** The model's parameters and buffers as the step's graph inputs, with their initial values, by name. */
  weights?: Map<string, { value: Value; init: Tensor<"float32"> }>;
  /**
   * Declares a non-trainable tensor carried from step to step (checkpointed with the parameters):
   * `init` is its value before the first step, `next` builds its value after each step from the
   * model's weights after that step's update (parameter or buffer name → value). No gradient flows into it.
   */
  state?(name: string, init: Tensor<"float32">, next: (updated: Map<string, Value>) => Value): Value;
  /** The model's forward pass again on the step's input, in eval mode, with `weights` in place of its own (taps kept apart). */
  forwardWith?(weights: Map<string, Value>): { logits: Value; taps: Map<string, Value> };
}

export interface LossResult {
  loss: Value;
  /** Named loss terms (loss_ce, loss_kd…) fetched and logged each step. */
  terms?: Record<string, Value>;
}

export interface ModelTrainerOptions {
  model: Model;
  params: ParameterSet;
  optimizer: OptimizerConfig;
  loss: (ctx: LossContext) => LossResult;
  clipGradNorm?: number;
  reportGradNorm?: boolean;
  /** Seed for dropout masks; masks depend on (seed, step, layer) only, so resuming reproduces them. */
  seed?: number;
  threads?: number;
  /** Also fetch the logits each step (e.g. for training accuracy). */
  fetchLogits?: boolean;
}

export type TrainerStepResult = StepResult & { terms: Record<string, number> };

export class ModelTrainer {
  private constructor(
    private readonly session: TrainingSession,
    /** Whether the step graph draws random numbers (dropout) from a per-step random stream. */
    private readonly random: boolean,
    private readonly paramsTemplate: ParameterSet,
    readonly extraParams: Map<string, Tensor<"float32">>,
    private readonly termNames: string[],
    private readonly seed: number,
    private readonly fetchLogits: boolean,
  ) {}

  static async create(o: ModelTrainerOptions): Promise<ModelTrainer> {
    const g = new Graph();
    const x = o.model.inputValue(g, "input");
    const { ctx, logits, paramInputs } = o.model.build(g, "train", { kind: "inputs" }, x);
    const extraParams = new Map<string, Tensor<"float32">>();
    const extraState = new Map<string, { input: Value; init: Tensor<"float32">; next: (updated: Map<string, Value>) => Value }>();
    const trainable = new Map<string, Value>();
    for (const d of o.params.decls) if (d.role === "param") trainable.set(d.name, paramInputs.get(d.name)!);
    const lossCtx: LossContext = {
      graph: g,
      logits,
      stepInput: x,
      taps: g.taps,
      input: (name, shape, dtype = "float32") => g.input(name, shape, dtype),
      param: (name, shape, init) => {
        const v = g.input(name, shape);
        trainable.set(name, v);
        extraParams.set(name, { dtype: "float32", shape, data: init });
        return v;
      },
      weights: new Map([...paramInputs].map(([name, value]) => [name, { value, init: o.params.get(name) }])),
      state: (name, init, next) => {
        const input = g.input(name, init.shape);
        extraState.set(name, { input, init, next });
        return input;
      },
      forwardWith: (weights) => {
        const taps = new Map<string, Value>();
        const { logits: other } = o.model.build(g, "eval", { kind: "values", values: weights }, x, taps);
        return { logits: other, taps };
      },
    };
    const { loss, terms = {} } = g.withScope("loss", () => o.loss(lossCtx));
    const outputs: Record<string, Value> = { ...terms };
    if (o.fetchLogits) outputs["logits"] = logits;
    const bufferUpdates = new Map<string, { input: Value; next: Value }>();
    for (const [name, next] of ctx.bufferUpdates) bufferUpdates.set(name, { input: paramInputs.get(name)!, next });
    const stateAfterUpdate = (updated: Map<string, Value>) => new Map([...extraState].map(([name, s]) => [name, { input: s.input, next: s.next(updated) }]));
    const compiled = compileTrainStep({ graph: g, loss, params: trainable, bufferUpdates, stateAfterUpdate, outputs, optimizer: o.optimizer, clipGradNorm: o.clipGradNorm, reportGradNorm: o.reportGradNorm, nchwcBlock: await nchwcBlockSize() });

    const initial = new Map<string, Tensor<"float32">>();
    for (const [name, t] of o.params.tensors) initial.set(name, t);
    for (const [name, t] of extraParams) initial.set(name, t);
    for (const [name, s] of extraState) initial.set(name, { dtype: "float32", shape: s.init.shape, data: s.init.data.slice() });
    for (const name of trainable.keys()) {
      const shape = (initial.get(name) ?? o.params.get(name)).shape;
      for (const k of optimizerStateNames(o.optimizer)) initial.set(`${name}.${k}`, { dtype: "float32", shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    }
    const session = await TrainingSession.create(compiled, o.optimizer, initial, { threads: o.threads });
    return new ModelTrainer(session, ctx.randomStream !== undefined, o.params, extraParams, Object.keys(terms), o.seed ?? 0, o.fetchLogits ?? false);
  }

  get stepsTaken(): number {
    return this.session.stepsTaken;
  }

  /** One optimizer step on a batch. `feeds` holds "input" and whatever the loss declared. */
  async step(feeds: Record<string, Tensor>, lr: number): Promise<TrainerStepResult> {
    const all = { ...feeds, ...this.randomFeeds(this.session.stepsTaken) };
    return this.withTerms(await this.session.run(all, lr, this.fetchNames()));
  }

  /**
   * `lrs.length` optimizer steps in one onnxruntime call (the step graph run by an ONNX Loop);
   * the same results, bit for bit, as calling `step` with each feed and learning rate in turn, at
   * a fraction of the per-step overhead. All batches must have the same size.
   */
  async stepMany(feedsList: Record<string, Tensor>[], lrs: number[]): Promise<TrainerStepResult[]> {
    const first = this.session.stepsTaken;
    const all = feedsList.map((f, i) => ({ ...f, ...this.randomFeeds(first + i) }));
    return (await this.session.runMany(all, lrs, this.fetchNames())).map((r) => this.withTerms(r));
  }

  /** The random stream of step `stepIndex` (dropout masks): it depends on (seed, step) alone. */
  private randomFeeds(stepIndex: number): Record<string, Tensor> {
    if (!this.random) return {};
    return { [RANDOM_STREAM]: { dtype: "int64", shape: [], data: BigInt64Array.of(randomStreamValue(this.seed, stepIndex)) } };
  }

  private fetchNames(): string[] {
    return [...this.termNames, ...(this.fetchLogits ? ["logits"] : [])];
  }

  private withTerms(res: StepResult): TrainerStepResult {
    const terms: Record<string, number> = {};
    for (const t of this.termNames) terms[t] = (res.outputs[t]!.data as Float32Array)[0]!;
    return { ...res, terms };
  }

  /** Current model parameters and buffers (copies), e.g. for export or evaluation. */
  parameters(): ParameterSet {
    return new ParameterSet(
      this.paramsTemplate.decls,
      new Map(this.paramsTemplate.decls.map((d) => {
        const t = this.session.state(d.name);
        return [d.name, { dtype: "float32", shape: t.shape.slice(), data: t.data.slice() }];
      })),
    );
  }

  /** Sets parameter `name` to 0 wherever `keep` is 0 (gradual pruning holds its masks this way between steps). */
  maskParameter(name: string, keep: Uint8Array): void {
    const t = this.session.state(name);
    if (keep.length !== t.data.length) throw new RangeError(`mask of ${keep.length} for ${name} of ${t.data.length} values`);
    for (let i = 0; i < keep.length; i++) if (!keep[i]) t.data[i] = 0;
  }

  snapshot(): { state: Map<string, Tensor<"float32">>; stepsTaken: number } {
    return { state: this.session.snapshot(), stepsTaken: this.session.stepsTaken };
  }

  restore(s: { state: Map<string, Tensor<"float32">>; stepsTaken: number }): void {
    this.session.restore(s.state, s.stepsTaken);
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
