// Modules in the spirit of torch.nn, but a forward pass builds graph nodes instead of computing.
// Parameters are declared where they are used (`ctx.param`), so a layer may infer its input
// width from the incoming value, and one trace of the model lists every parameter in order.

import { type Graph, type Tensor, type Value, formatShape } from "../engine/graph.js";
import { RANDOM_STREAM, keepMask } from "./random.js";
import { Rng, hashString } from "../util/random.js";

export type Init =
  | { kind: "uniform"; bound: number }
  | { kind: "normal"; std: number }
  | { kind: "constant"; value: number };

export interface ParamDecl {
  name: string;
  shape: number[];
  init: Init;
  /** Buffers (BatchNorm running statistics) are state, not trained by the optimizer. */
  role: "param" | "buffer";
}

export type Mode = "train" | "eval";

/**
 * What a module sees while building: the graph, the mode, and where its parameters come from.
 * The same module code builds the training graph (parameters are graph inputs) and the exported
 * inference graph (parameters are initializers holding trained weights).
 */
export class ForwardContext {
  readonly declared: ParamDecl[] = [];
  /**
   * The training step's random stream (int64 scalar input "random:stream"), declared by the first
   * layer that draws random numbers; the trainer feeds a value derived from (seed, step).
   */
  randomStream: Value | undefined;
  /**
   * Token models: 1 where the input holds a token, 0 at padding ([N, L], float32), set by the
   * embedding layer so that pooling over tokens can leave padding out.
   */
  tokenMask: Value | undefined;
  /** New values for buffers computed in train mode (BatchNorm running mean/var). */
  readonly bufferUpdates = new Map<string, Value>();
  private readonly declaredNames = new Set<string>();

  constructor(
    readonly graph: Graph,
    readonly mode: Mode,
    private readonly provide: (decl: ParamDecl) => Value,
    /** Where layer outputs are recorded (a second forward pass in one graph keeps its own). */
    private readonly taps: Map<string, Value> = graph.taps,
  ) {}

  get training(): boolean {
    return this.mode === "train";
  }

  param(name: string, shape: number[], init: Init, role: ParamDecl["role"] = "param"): Value {
    const decl: ParamDecl = { name, shape, init, role };
    if (this.declaredNames.has(name)) throw new Error(`parameter ${name} is declared twice (two layers with one name?)`);
    this.declaredNames.add(name);
    this.declared.push(decl);
    return this.provide(decl);
  }

  /**
   * A scaled keep-mask (0 or 1/keepProbability) shaped like `like`, made in the graph from the
   * step's random stream and `name`, so it depends on (seed, step, layer) alone: a resumed run
   * draws exactly the masks an uninterrupted run would.
   */
  randomMask(name: string, like: Value, keepProbability: number): Value {
    this.randomStream ??= this.graph.input(RANDOM_STREAM, [], "int64");
    return keepMask(like, this.randomStream, hashString(name), keepProbability);
  }

  tap(name: string, v: Value): void {
    this.taps.set(name, v);
  }
}

export abstract class Module {
  /** Dotted path from the model root, e.g. "block1.conv"; set by the parent container. */
  path = "";
  abstract readonly kind: string;

  /** Direct children, for containers. */
  children(): Module[] {
    return [];
  }

  /** Builds the layer on `x`; the graph's scope is already set to this layer's path. */
  protected abstract build(ctx: ForwardContext, x: Value): Value;

  forward(ctx: ForwardContext, x: Value): Value {
    const y = ctx.graph.withScope(this.path || this.kind, () => this.build(ctx, x));
    if (this.path) ctx.tap(this.path, y);
    return y;
  }

  /** Parameter name under this module. */
  protected pname(local: string): string {
    return this.path ? `${this.path}.${local}` : local;
  }

  /** Fails with the layer path and both shapes when a dimension is not what the layer needs. */
  protected expectDim(ctx: ForwardContext, x: Value, axis: number, expected: number, what: string): void {
    const got = x.shape[axis < 0 ? x.rank + axis : axis];
    if (got !== expected)
      throw ctx.graph.shapeError(`${what}: expected ${expected}, got ${String(got)} (input shape ${formatShape(x.shape)})`);
  }

  protected staticDim(ctx: ForwardContext, x: Value, axis: number, what: string): number {
    const d = x.shape[axis < 0 ? x.rank + axis : axis];
    if (typeof d !== "number") throw ctx.graph.shapeError(`${what} must be static, input shape ${formatShape(x.shape)}`);
    return d;
  }
}

// ---------------------------------------------------------------- parameter storage

/** Named float32 tensors (parameters and buffers) with their declarations, in declaration order. */
export class ParameterSet {
  constructor(
    readonly decls: ParamDecl[],
    readonly tensors: Map<string, Tensor<"float32">>,
  ) {}

  get(name: string): Tensor<"float32"> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`no parameter named ${name}`);
    return t;
  }

  /** Trainable parameter count (buffers excluded), as model summaries report it. */
  count(): number {
    return this.decls.filter((d) => d.role === "param").reduce((n, d) => n + d.shape.reduce((a, b) => a * b, 1), 0);
  }

  clone(): ParameterSet {
    return new ParameterSet(
      this.decls,
      new Map([...this.tensors].map(([k, t]) => [k, { dtype: "float32", shape: t.shape.slice(), data: t.data.slice() }])),
    );
  }
}

/** Draws the initial value of one parameter; each parameter has its own stream (seed, name). */
export function initialValue(decl: ParamDecl, seed: number): Float32Array {
  const n = decl.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const init = decl.init;
  if (init.kind === "constant") return out.fill(init.value);
  const rng = new Rng(seed, decl.name);
  if (init.kind === "uniform") for (let i = 0; i < n; i++) out[i] = rng.uniform(-init.bound, init.bound);
  else for (let i = 0; i < n; i++) out[i] = rng.normal() * init.std;
  return out;
}
