// A training step as one ONNX graph — forward, loss, backward, optimizer update — and a session
// that runs it with parameters and optimizer state fed back each step. State lives in two sets of
// host buffers that swap roles every step (inputs ← last step's outputs), so a step allocates
// nothing and onnxruntime writes new state straight into pre-allocated memory.

import { type Graph, type Value, type DType, formatShape, isStatic } from "./graph.js";
import { gradients } from "./autodiff.js";
import { encodeModel } from "./onnx.js";
import {
  type OptimizerConfig,
  clipByGlobalNorm,
  emitUpdate,
  globalNorm,
  optimizerScalarNames,
  optimizerStateNames,
  stepScalars,
} from "./optimizers.js";
import { type HostTensor, Session, type RuntimeOptions } from "./runtime.js";

export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

export interface TrainGraphSpec {
  graph: Graph;
  /** Scalar loss to minimise. */
  loss: Value;
  /** Trainable parameters: graph inputs of the forward graph, by name. */
  params: Map<string, Value>;
  /** Non-trained state updated by the forward pass (BatchNorm running statistics). */
  bufferUpdates?: Map<string, { input: Value; next: Value }>;
  /** Further values to fetch each step (loss terms, logits…). */
  outputs?: Record<string, Value>;
  optimizer: OptimizerConfig;
  clipGradNorm?: number;
  /** Output the global gradient norm (always on when clipping); costs one pass over all gradients. */
  reportGradNorm?: boolean;
}

const NEXT = "next:";

/** Builds the step graph in place and returns its ONNX bytes plus the layout of its state. */
export function compileTrainStep(spec: TrainGraphSpec): { model: Uint8Array; stateNames: string[]; scalarNames: string[]; outputNames: string[] } {
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

  names.forEach((name, i) => {
    const param = paramValues[i]!;
    const state: Record<string, Value> = {};
    for (const k of stateKinds) {
      state[k] = g.input(`${name}.${k}`, param.shape, "float32");
      stateNames.push(`${name}.${k}`);
    }
    const upd = g.withScope(`update/${name}`, () => emitUpdate(g, spec.optimizer, { param, grad: grads[i]!, state, scalars }));
    g.output(upd.param, NEXT + param.name);
    stateNames.push(param.name);
    for (const k of stateKinds) g.output(upd.state[k]!, `${NEXT}${name}.${k}`);
  });
  for (const [, { input, next }] of spec.bufferUpdates ?? []) {
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
  return { model: encodeModel(g), stateNames, scalarNames: Object.keys(scalars), outputNames };
}

export interface StepResult {
  loss: number;
  /** Global gradient norm before clipping; NaN unless clipping or reportGradNorm is on. */
  gradNorm: number;
  /** Milliseconds inside onnxruntime's run call (the rest of a step is JavaScript). */
  runMs: number;
  outputs: Record<string, HostTensor>;
}

/**
 * Runs a compiled training step. `state` holds every parameter, optimizer slot and buffer by
 * graph-input name; after each step it holds the updated values.
 */
export class TrainingSession {
  private current: Map<string, StateTensor>;
  private spare: Map<string, StateTensor>;
  private step = 0;

  private constructor(
    private readonly session: Session,
    private readonly optimizer: OptimizerConfig,
    readonly stateNames: string[],
    private readonly scalarNames: string[],
    private readonly outputNames: string[],
    initial: Map<string, StateTensor>,
  ) {
    this.current = initial;
    this.spare = new Map([...initial].map(([k, t]) => [k, { shape: t.shape, data: new Float32Array(t.data.length) }]));
  }

  static async create(
    compiled: ReturnType<typeof compileTrainStep>,
    optimizer: OptimizerConfig,
    initial: Map<string, StateTensor>,
    options: RuntimeOptions = {},
  ): Promise<TrainingSession> {
    for (const n of compiled.stateNames) if (!initial.has(n)) throw new Error(`training state ${n} has no initial value`);
    const session = await Session.create(compiled.model, options);
    const own = new Map([...initial].filter(([k]) => compiled.stateNames.includes(k)).map(([k, t]) => [k, { shape: t.shape, data: t.data.slice() }]));
    return new TrainingSession(session, optimizer, compiled.stateNames, compiled.scalarNames, compiled.outputNames, own);
  }

  /** Number of optimizer steps taken (Adam's bias correction counts from here). */
  get stepsTaken(): number {
    return this.step;
  }
  set stepsTaken(t: number) {
    this.step = t;
  }

  state(name: string): StateTensor {
    const t = this.current.get(name);
    if (!t) throw new Error(`no training state named ${name}`);
    return t;
  }

  /** Copies the whole state out (for checkpoints). */
  snapshot(): Map<string, StateTensor> {
    return new Map([...this.current].map(([k, t]) => [k, { shape: t.shape.slice(), data: t.data.slice() }]));
  }

  restore(state: Map<string, StateTensor>, stepsTaken: number): void {
    for (const [k, t] of this.current) {
      const s = state.get(k);
      if (!s || s.data.length !== t.data.length) throw new Error(`checkpoint lacks ${k} or has another size`);
      t.data.set(s.data);
    }
    this.step = stepsTaken;
  }

  async run(feeds: Record<string, HostTensor>, lr: number, fetch: string[] = []): Promise<StepResult> {
    this.step += 1;
    const all: Record<string, HostTensor> = { ...feeds };
    const scalars = stepScalars(this.optimizer, lr, this.step);
    for (const s of this.scalarNames) all[`opt:${s}`] = { dtype: "float32", shape: [], data: Float32Array.of(scalars[s]!) };
    const into: Record<string, HostTensor> = {};
    for (const [k, t] of this.current) {
      all[k] = { dtype: "float32", shape: t.shape, data: t.data };
      const spare = this.spare.get(k)!;
      into[NEXT + k] = { dtype: "float32", shape: spare.shape, data: spare.data };
    }
    const hasNorm = this.outputNames.includes("grad_norm");
    const wanted = [...Object.keys(into), "loss", ...(hasNorm ? ["grad_norm"] : []), ...fetch];
    const t0 = performance.now();
    const res = await this.session.run(all, into, wanted);
    const runMs = performance.now() - t0;
    [this.current, this.spare] = [this.spare, this.current];
    const outputs: Record<string, HostTensor> = {};
    for (const f of fetch) outputs[f] = res[f]!;
    return { loss: (res["loss"]!.data as Float32Array)[0]!, gradNorm: hasNorm ? (res["grad_norm"]!.data as Float32Array)[0]! : NaN, runMs, outputs };
  }

  get availableOutputs(): string[] {
    return this.outputNames;
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}

export type { DType };
