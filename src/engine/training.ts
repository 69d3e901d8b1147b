// A training step as one ONNX graph — forward, loss, backward, optimizer update — and a session
// that runs it with parameters and optimizer state fed back each step. State lives in two sets of
// host buffers that swap roles every step (inputs ← last step's outputs), so a step allocates
// nothing and onnxruntime writes new state straight into pre-allocated memory.

import { type Graph, type Value, type DType, type Tensor, formatShape, isStatic } from "./graph.js";
import { gradients } from "./autodiff.js";
import { encodeLoopModel, encodeModel, loopNames } from "./onnx.js";
import {
  type OptimizerConfig,
  clipByGlobalNorm,
  emitUpdate,
  globalNorm,
  foldMomentumIntoGemm,
  optimizerScalarNames,
  optimizerStateNames,
  stepScalars,
} from "./optimizers.js";
import { Session, type RuntimeOptions, type TypedArray } from "./runtime.js";
import { blockConvolutions } from "./nchwc.js";

export interface TrainGraphSpec {
  graph: Graph;
  /** Scalar loss to minimise. */
  loss: Value;
  /** Trainable parameters: graph inputs of the forward graph, by name. */
  params: Map<string, Value>;
  /** Non-trained state updated by the forward pass (BatchNorm running statistics). */
  bufferUpdates?: Map<string, { input: Value; next: Value }>;
  /**
   * Non-trained state whose next value is computed from the step's result (e.g. an exponential
   * moving average of the weights): called once the optimizer updates are emitted, with each
   * parameter's value after the update and each buffer's next value, by name.
   */
  stateAfterUpdate?: (updated: Map<string, Value>) => Map<string, { input: Value; next: Value }>;
  /** Further values to fetch each step (loss terms, logits…). */
  outputs?: Record<string, Value>;
  optimizer: OptimizerConfig;
  clipGradNorm?: number;
  /** Output the global gradient norm (always on when clipping); costs one pass over all gradients. */
  reportGradNorm?: boolean;
  /**
   * Channel block of onnxruntime's NCHWc kernels on this machine (`nchwcBlockSize()`): Convs whose
   * channel counts it divides run on them. Undefined: every Conv stays plain.
   */
  nchwcBlock?: number;
}

const NEXT = "next:";

export interface CompiledTrainStep {
  /** One optimizer step per run. */
  model: Uint8Array;
  /** The same step as the body of an ONNX Loop: K steps per run (see `TrainingSession.runMany`). */
  loopModel: Uint8Array;
  stateNames: string[];
  scalarNames: string[];
  outputNames: string[];
}

/** Builds the step graph in place and returns its ONNX bytes plus the layout of its state. */
export function compileTrainStep(spec: TrainGraphSpec): CompiledTrainStep {
  const g = spec.graph;
  const names = [...spec.params.keys()];
  const paramValues = names.map((n) => spec.params.get(n)!);
  for (const [n, v] of spec.params) if (!isStatic(v.shape)) throw new Error(`parameter ${n} has a symbolic shape ${formatShape(v.shape)}`);

  let grads = gradients(g, spec.loss, paramValues);
  let norm: Value | undefined;
  if (spec.clipGradNorm !== undefined) ({ grads, norm } = g.withScope("clip", () => clipByGlobalNorm(g, grads, spec.clipGradNorm!)));
  else if (spec.reportGradNorm) norm = g.withScope("clip", () => globalNorm(grads));

  const scalars: Record<string, Value> = {};
  for (const s of optimizerScalarNames(spec.optimizer)) scalars[s] = g.input(`opt:${s}`, [], "float32");
  const stateKinds = optimizerStateNames(spec.optimizer);
  const stateNames: string[] = [];
  const updated = new Map<string, Value>();

  names.forEach((name, i) => {
    const param = paramValues[i]!;
    const state: Record<string, Value> = {};
    for (const k of stateKinds) {
      state[k] = g.input(`${name}.${k}`, param.shape, "float32");
      stateNames.push(`${name}.${k}`);
    }
    const upd = g.withScope(`update/${name}`, () => emitUpdate(g, spec.optimizer, { param, grad: grads[i]!, state, scalars }));
    g.output(upd.param, NEXT + param.name);
    updated.set(name, upd.param);
    stateNames.push(param.name);
    for (const k of stateKinds) g.output(upd.state[k]!, `${NEXT}${name}.${k}`);
  });
  foldMomentumIntoGemm(g);
  for (const [name, { input, next }] of spec.bufferUpdates ?? []) {
    g.output(next, NEXT + input.name);
    updated.set(name, next);
    stateNames.push(input.name);
  }
  const after = spec.stateAfterUpdate ? g.withScope("after_update", () => spec.stateAfterUpdate!(updated)) : new Map<string, { input: Value; next: Value }>();
  for (const [, { input, next }] of after) {
    g.output(next, NEXT + input.name);
    stateNames.push(input.name);
  }
  g.output(spec.loss, "loss");
  const outputNames = ["loss"];
  if (norm) {
    g.output(norm, "grad_norm");
    outputNames.push("grad_norm");
  }
  for (const [k, v] of Object.entries(spec.outputs ?? {})) {
    g.output(v, k);
    outputNames.push(k);
  }
  const carried = stateNames.map((n) => ({ input: n, next: NEXT + n }));
  const stateSet = new Set(stateNames);
  const perStep = g.inputs.map((v) => v.name).filter((n) => !stateSet.has(n));
  // Last, once the graph is complete: marked Convs have no gradient rule.
  if (spec.nchwcBlock) blockConvolutions(g, spec.nchwcBlock);
  const loopModel = encodeLoopModel(g, { carried, perStep, scans: outputNames });
  return { model: encodeModel(g), loopModel, stateNames, scalarNames: Object.keys(scalars), outputNames };
}

export interface StepResult {
  loss: number;
  /** Global gradient norm before clipping; NaN unless clipping or reportGradNorm is on. */
  gradNorm: number;
  /** Milliseconds inside onnxruntime's run call (the rest of a step is JavaScript). */
  runMs: number;
  outputs: Record<string, Tensor>;
}

/**
 * Runs a compiled training step. `state` holds every parameter, optimizer slot and buffer by
 * graph-input name; after each step it holds the updated values. `run` takes one step per
 * onnxruntime call; `runMany` takes K steps in one call through the Loop model, which copies the
 * state out of onnxruntime once per K steps instead of once per step.
 */
export class TrainingSession {
  private current: Map<string, Tensor<"float32">>;
  private spare: Map<string, Tensor<"float32">>;
  private step = 0;
  private loopSession: Promise<Session> | undefined;
  /** Reused [K, …] buffers for stacked per-step inputs, by input name. */
  private readonly stackBuffers = new Map<string, TypedArray>();

  private constructor(
    private readonly session: Session,
    private readonly compiled: CompiledTrainStep,
    private readonly optimizer: OptimizerConfig,
    private readonly options: RuntimeOptions,
    initial: Map<string, Tensor<"float32">>,
  ) {
    this.current = initial;
    this.spare = new Map([...initial].map(([k, t]) => [k, { dtype: "float32" as const, shape: t.shape, data: new Float32Array(t.data.length) }]));
  }

  static async create(compiled: CompiledTrainStep, optimizer: OptimizerConfig, initial: Map<string, Tensor<"float32">>, options: RuntimeOptions = {}): Promise<TrainingSession> {
    for (const n of compiled.stateNames) if (!initial.has(n)) throw new Error(`training state ${n} has no initial value`);
    const session = await Session.create(compiled.model, options);
    const own = new Map([...initial].filter(([k]) => compiled.stateNames.includes(k)).map(([k, t]) => [k, { dtype: "float32" as const, shape: t.shape, data: t.data.slice() }]));
    return new TrainingSession(session, compiled, optimizer, options, own);
  }

  get stateNames(): string[] {
    return this.compiled.stateNames;
  }

  /** Number of optimizer steps taken (Adam's bias correction counts from here). */
  get stepsTaken(): number {
    return this.step;
  }
  set stepsTaken(t: number) {
    this.step = t;
  }

  state(name: string): Tensor<"float32"> {
    const t = this.current.get(name);
    if (!t) throw new Error(`no training state named ${name}`);
    return t;
  }

  /** Copies the whole state out (for checkpoints). */
  snapshot(): Map<string, Tensor<"float32">> {
    return new Map([...this.current].map(([k, t]) => [k, { dtype: "float32" as const, shape: t.shape.slice(), data: t.data.slice() }]));
  }

  restore(state: Map<string, Tensor<"float32">>, stepsTaken: number): void {
    for (const [k, t] of this.current) {
      const s = state.get(k);
      if (!s || s.data.length !== t.data.length) throw new Error(`checkpoint lacks ${k} or has another size`);
      t.data.set(s.data);
    }
    this.step = stepsTaken;
  }

  async run(feeds: Record<string, Tensor>, lr: number, fetch: string[] = []): Promise<StepResult> {
    this.step += 1;
    const all: Record<string, Tensor> = { ...feeds };
    const scalars = stepScalars(this.optimizer, lr, this.step);
    for (const s of this.compiled.scalarNames) all[`opt:${s}`] = { dtype: "float32", shape: [], data: Float32Array.of(scalars[s]!) };
    const into: Record<string, Tensor> = {};
    for (const [k, t] of this.current) {
      all[k] = { dtype: "float32", shape: t.shape, data: t.data };
      into[NEXT + k] = this.spareOf(k);
    }
    const scalarOutputs = this.scalarOutputs();
    const t0 = performance.now();
    const res = await this.session.run(all, into, [...Object.keys(into), ...scalarOutputs, ...fetch]);
    const runMs = performance.now() - t0;
    [this.current, this.spare] = [this.spare, this.current];
    const outputs: Record<string, Tensor> = {};
    for (const f of fetch) outputs[f] = res[f]!;
    return { loss: firstFloat(res["loss"]!), gradNorm: res["grad_norm"] ? firstFloat(res["grad_norm"]) : NaN, runMs, outputs };
  }

  /**
   * Takes `lrs.length` optimizer steps in one onnxruntime call; step i uses `feedsList[i]` and
   * learning rate `lrs[i]`. Results are bit-identical to as many `run` calls. Every step's feeds
   * must have the same shapes. `runMs` of each result is the call's time divided by K.
   */
  async runMany(feedsList: Record<string, Tensor>[], lrs: number[], fetch: string[] = []): Promise<StepResult[]> {
    const k = lrs.length;
    if (feedsList.length !== k) throw new Error(`runMany: ${feedsList.length} feeds for ${k} learning rates`);
    if (k === 0) return [];
    const session = await (this.loopSession ??= Session.create(this.compiled.loopModel, this.options));
    const all: Record<string, Tensor> = { [loopNames.tripCount]: { dtype: "int64", shape: [], data: BigInt64Array.of(BigInt(k)) } };
    for (const name of Object.keys(feedsList[0]!)) all[loopNames.stacked(name)] = this.stack(name, feedsList.map((f) => f[name]));
    for (const s of this.compiled.scalarNames) {
      const data = new Float32Array(k);
      for (let i = 0; i < k; i++) data[i] = stepScalars(this.optimizer, lrs[i]!, this.step + 1 + i)[s]!;
      all[loopNames.stacked(`opt:${s}`)] = { dtype: "float32", shape: [k], data };
    }
    const into: Record<string, Tensor> = {};
    for (const [name, t] of this.current) {
      all[loopNames.start(name)] = { dtype: "float32", shape: t.shape, data: t.data };
      into[loopNames.end(name)] = this.spareOf(name);
    }
    const scans = [...this.scalarOutputs(), ...fetch];
    const t0 = performance.now();
    const res = await session.run(all, into, [...Object.keys(into), ...scans.map(loopNames.scan)]);
    const runMs = (performance.now() - t0) / k;
    this.step += k;
    [this.current, this.spare] = [this.spare, this.current];
    const stepOf = (name: string, i: number): Tensor => {
      const t = res[loopNames.scan(name)]!;
      const size = t.shape.slice(1).reduce((a, b) => a * b, 1);
      // One step's slice of a scan output keeps the output's dtype.
      return { dtype: t.dtype, shape: t.shape.slice(1), data: (t.data as TypedArray).subarray(i * size, (i + 1) * size) } as Tensor;
    };
    return lrs.map((_, i) => ({
      loss: firstFloat(stepOf("loss", i)),
      gradNorm: this.compiled.outputNames.includes("grad_norm") ? firstFloat(stepOf("grad_norm", i)) : NaN,
      runMs,
      outputs: Object.fromEntries(fetch.map((f) => [f, stepOf(f, i)])),
    }));
  }

  get availableOutputs(): string[] {
    return this.compiled.outputNames;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
    if (this.loopSession) await (await this.loopSession).dispose();
  }

  private scalarOutputs(): string[] {
    return this.compiled.outputNames.includes("grad_norm") ? ["loss", "grad_norm"] : ["loss"];
  }

  private spareOf(name: string): Tensor {
    const t = this.spare.get(name)!;
    return { dtype: "float32", shape: t.shape, data: t.data };
  }

  /** The per-step tensors of one input stacked into a reused [K, …] buffer. */
  private stack(name: string, steps: (Tensor | undefined)[]): Tensor {
    const first = steps[0]!;
    const size = first.data.length;
    let buffer = this.stackBuffers.get(name);
    if (!buffer || buffer.length < size * steps.length || buffer.constructor !== first.data.constructor) {
      buffer = new (first.data.constructor as new (n: number) => TypedArray)(size * steps.length);
      this.stackBuffers.set(name, buffer);
    }
    steps.forEach((t, i) => {
      if (!t || t.data.length !== size || t.shape.join() !== first.shape.join())
        throw new Error(`runMany: input ${name} of step ${i + 1} is missing or shaped unlike step 1's ${formatShape(first.shape)}`);
      (buffer as Float32Array).set(t.data as Float32Array, i * size);
    });
    return { dtype: first.dtype, shape: [steps.length, ...first.shape], data: buffer.subarray(0, size * steps.length) } as Tensor;
  }
}

function firstFloat(t: Tensor): number {
  return (t.data as Float32Array)[0]!;
}

export type { DType };
