// A symbolic ONNX graph under construction. Every value carries a static shape
// (numbers, or strings for symbolic dimensions such as the batch) so that shape
// errors surface at build time, naming the layer, instead of inside onnxruntime.

export type Dim = number | string;
export type Shape = Dim[];
export type DType = "float32" | "int64" | "int32" | "bool" | "uint8" | "string";

/** An ONNX attribute value, tagged so integers and floats stay distinct on the wire. */
export type Attr =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { strings: string[] };
export type Attrs = Record<string, Attr>;

/** The JS array that holds each element type. */
export interface ArrayOfDType {
  float32: Float32Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
  uint8: Uint8Array;
  string: string[];
}

/**
 * Values on the host, their array typed by their dtype: the engine's one tensor type (initializers,
 * feeds, fetches, training state). `Tensor<"float32">` narrows to Float32Array data.
 */
export type Tensor<D extends DType = DType> = { [K in D]: { dtype: K; shape: number[]; data: ArrayOfDType[K] } }[D];

/** A float32 or int64 tensor (pixels and features, or token ids) whose dtype follows its array. */
export function tensorOf(shape: number[], data: Float32Array | BigInt64Array): Tensor<"float32" | "int64"> {
  return data instanceof BigInt64Array ? { dtype: "int64", shape, data } : { dtype: "float32", shape, data };
}

export class Value {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: Shape,
    readonly dtype: DType,
    /** The node that computes this value; undefined for graph inputs and initializers. */
    readonly producer?: GraphNode,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
}

export interface GraphNode {
  opType: string;
  inputs: (Value | undefined)[];
  outputs: Value[];
  attrs: Attrs;
  /** Layer path that emitted the node, used in error messages and node names. */
  scope: string;
}

export class ShapeError extends Error {
  override name = "ShapeError";
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

export function isStatic(shape: Shape): shape is number[] {
  return shape.every((d) => typeof d === "number");
}

export class Graph {
  readonly nodes: GraphNode[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: { value: Value; name: string }[] = [];
  readonly initializers = new Map<string, { value: Value; tensor: Tensor }>();
  /** Named intermediate values (layer outputs) that feature/relation distillation can tap. */
  readonly taps = new Map<string, Value>();
  private readonly scopeStack: string[] = [];
  private readonly usedNames = new Set<string>();
  private readonly scalarCache = new Map<string, Value>();

  get scope(): string {
    return this.scopeStack.join("/");
  }

  /** Runs `body` with `name` pushed on the layer path (nested layers give "block1/conv"). */
  withScope<T>(name: string, body: () => T): T {
    this.scopeStack.push(name);
    try {
      return body();
    } finally {
      this.scopeStack.pop();
    }
  }

  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, shape: Shape, dtype: DType = "float32"): Value {
    if (this.usedNames.has(name)) throw new Error(`graph input name "${name}" is already used`);
    this.usedNames.add(name);
    const v = new Value(this, name, shape, dtype);
    this.inputs.push(v);
    return v;
  }

  initializer(name: string, tensor: Tensor): Value {
    const v = new Value(this, this.uniqueName(name), tensor.shape, tensor.dtype);
    this.initializers.set(v.name, { value: v, tensor });
    return v;
  }

  /** A float32 constant; small scalars are shared so the graph does not fill up with copies of 0 and 1. */
  constFloat(values: number[] | Float32Array, shape: number[] = []): Value {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    if (shape.length === 0 && data.length === 1) {
      const key = `f:${data[0]}`;
      const hit = this.scalarCache.get(key);
      if (hit) return hit;
      const v = this.initializer("const", { dtype: "float32", shape: [], data });
      this.scalarCache.set(key, v);
      return v;
    }
    return this.initializer("const", { dtype: "float32", shape, data });
  }

  constInt64(values: number[], shape: number[] = [values.length]): Value {
    const key = `i:${shape.join("x")}:${values.join(",")}`;
    const hit = this.scalarCache.get(key);
    if (hit) return hit;
    const v = this.initializer("const", { dtype: "int64", shape, data: BigInt64Array.from(values.map(BigInt)) });
    this.scalarCache.set(key, v);
    return v;
  }

  /** A string tensor constant (text front ends). */
  constString(values: string[], shape: number[] = [values.length]): Value {
    return this.initializer("const", { dtype: "string", shape, data: values });
  }

  output(value: Value, name: string): void {
    this.outputs.push({ value, name });
  }

  /** Appends a node whose output shapes were already inferred by the caller (see ops.ts). */
  addNode(opType: string, inputs: (Value | undefined)[], attrs: Attrs, outs: { shape: Shape; dtype: DType }[]): Value[] {
    const scope = this.scope;
    const base = (scope ? scope + "/" : "") + opType;
    const node: GraphNode = { opType, inputs, outputs: [], attrs, scope };
    for (let i = 0; i < outs.length; i++) {
      const o = outs[i]!;
      node.outputs.push(new Value(this, this.uniqueName(outs.length > 1 ? `${base}:${i}` : base), o.shape, o.dtype, node));
    }
    this.nodes.push(node);
    return node.outputs;
  }

  /** Error naming the layer path and what went wrong. */
  shapeError(what: string): ShapeError {
    return new ShapeError(`${this.scope || "<graph>"}: ${what}`);
  }
}
