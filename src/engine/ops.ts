// ONNX operators as distill uses them: each op's shape rule, and `emit`, which adds a node after
// checking it. The functions that emit them (`add`, `gemm`…) are in functional.ts and each op's
// gradient in gradients.ts, both built on this file, which imports neither.

import { type Attrs, type DType, type Graph, type Shape, type Dim, type Value, formatShape, isStatic } from "./graph.js";

export interface OutSpec {
  shape: Shape;
  dtype: DType;
}

export interface OpDef {
  /** Operator set domain, for ops outside the default ONNX domain. */
  domain?: "ai.onnx.ml" | "com.microsoft";
  /**
   * The output shape comes from the caller's hint when the op's own inputs cannot give it (a
   * shape read at run time); for every other op a hint is only a cross-check.
   */
  shapeFromHint?: boolean;
  /** Output shapes and types from input shapes; throws a ShapeError naming the layer on mismatch. */
  infer(c: InferContext): OutSpec[];
}

/** What a shape rule sees: the node's inputs by position, its attributes and the caller's hint. */
export interface InferContext {
  g: Graph;
  /** The first input (every op has one). */
  x: Value;
  /** Input `i`; throws naming the op where a required input is absent. */
  input(i: number): Value;
  /** Input `i`, or undefined where an optional input was left out. */
  optional(i: number): Value | undefined;
  /** Every input, undefined where an optional one was left out. */
  inputs: (Value | undefined)[];
  attrs: Attrs;
  /** The caller's output shape, for ops whose output shape only exists at run time (see shapeFromHint). */
  hint: Shape | undefined;
}

// ---------------------------------------------------------------- helpers for attributes

export const intAttr = (a: Attrs, k: string, dflt: number): number => {
  const v = a[k];
  return v && "i" in v ? v.i : dflt;
};
export const intsAttr = (a: Attrs, k: string, dflt: number[]): number[] => {
  const v = a[k];
  return v && "ints" in v ? v.ints : dflt;
};
export const floatAttr = (a: Attrs, k: string, dflt: number): number => {
  const v = a[k];
  return v && "f" in v ? v.f : dflt;
};

export function constInts(v: Value | undefined): number[] | undefined {
  if (!v) return undefined;
  const init = v.graph.initializers.get(v.name);
  if (!init || init.tensor.dtype !== "int64") return undefined;
  return Array.from(init.tensor.data as BigInt64Array, Number);
}

function sameDim(a: Dim, b: Dim): boolean {
  return a === b;
}

function broadcastShapes(g: Graph, a: Shape, b: Shape, what: string): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (sameDim(da, db) || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw g.shapeError(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
  }
  return out;
}

export function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

const floatOut = (shape: Shape): OutSpec[] => [{ shape, dtype: "float32" }];
const sameAsFirst: OpDef["infer"] = ({ x }) => [{ shape: x.shape, dtype: x.dtype }];
const binaryBroadcast =
  (dtype?: DType): OpDef["infer"] =>
  ({ g, x, input }) => [{ shape: broadcastShapes(g, x.shape, input(1).shape, "elementwise op"), dtype: dtype ?? x.dtype }];

function convOutDim(g: Graph, inDim: Dim, k: number, stride: number, padBegin: number, padEnd: number, dilation = 1): number {
  if (typeof inDim !== "number") throw g.shapeError(`spatial dimension must be static, got ${inDim}`);
  const span = dilation * (k - 1) + 1;
  const out = Math.floor((inDim + padBegin + padEnd - span) / stride) + 1;
  if (out < 1) throw g.shapeError(`kernel ${k} with padding ${padBegin}+${padEnd} does not fit input size ${inDim}`);
  return out;
}

// ---------------------------------------------------------------- op table

export const OPS: Record<string, OpDef> = {
  Identity: { infer: sameAsFirst },
  Add: {
    infer: binaryBroadcast(),
  },
  Sub: {
    infer: binaryBroadcast(),
  },
  Mul: {
    infer: binaryBroadcast(),
  },
  Div: {
    infer: binaryBroadcast(),
  },
  Pow: {
    infer: binaryBroadcast(),
  },
  Neg: { infer: sameAsFirst },
  Relu: {
    infer: sameAsFirst,
  },
  Tanh: {
    infer: sameAsFirst,
  },
  Sigmoid: {
    infer: sameAsFirst,
  },
  Exp: { infer: sameAsFirst },
  Log: { infer: sameAsFirst },
  Sqrt: { infer: sameAsFirst },
  Reciprocal: { infer: sameAsFirst },
  Abs: { infer: sameAsFirst },
  Sign: { infer: sameAsFirst },
  Erf: { infer: sameAsFirst },
  Max: { infer: binaryBroadcast() },
  Min: { infer: binaryBroadcast() },
  Greater: { infer: binaryBroadcast("bool") },
  Less: { infer: binaryBroadcast("bool") },
  Equal: { infer: binaryBroadcast("bool") },
  Not: { infer: sameAsFirst },
  Where: {
    infer: ({ g, input }) => {
      const c = input(0), a = input(1), b = input(2);
      return [{ shape: broadcastShapes(g, c.shape, broadcastShapes(g, a.shape, b.shape, "Where"), "Where"), dtype: a.dtype }];
    },
  },
  Cast: {
    infer: ({ x, attrs }) => [{ shape: x.shape, dtype: DTYPE_BY_ONNX[intAttr(attrs, "to", 1)] ?? "float32" }],
  },
  Gemm: {
    // Y = alpha·op(A)·op(B) + beta·C — the linear layer, with transposes handled by the GEMM
    // kernel itself instead of by copying (MatMul would need explicit Transpose nodes).
    infer: ({ g, input, optional, attrs }) => {
      const a = input(0), b = input(1), c = optional(2);
      const ta = intAttr(attrs, "transA", 0), tb = intAttr(attrs, "transB", 0);
      if (a.rank !== 2 || b.rank !== 2) throw g.shapeError(`Gemm needs 2-D inputs, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
      const [m, k1] = ta ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
      const [k2, n] = tb ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
      if (!sameDim(k1, k2))
        throw g.shapeError(`matrix product: input ${formatShape(a.shape)} has ${k1} features but the weight expects ${k2} (weight ${formatShape(b.shape)})`);
      const out: Shape = [m, n];
      if (c) broadcastShapes(g, out, c.shape, "Gemm bias");
      return floatOut(out);
    },
  },
  MatMul: {
    infer: ({ g, input }) => {
      const a = input(0), b = input(1);
      if (a.rank < 2 || b.rank < 2) throw g.shapeError("MatMul needs inputs of rank ≥ 2");
      const k1 = a.shape[a.rank - 1]!, k2 = b.shape[b.rank - 2]!;
      if (!sameDim(k1, k2)) throw g.shapeError(`MatMul: ${formatShape(a.shape)} × ${formatShape(b.shape)}: inner dimensions differ`);
      const batch = broadcastShapes(g, a.shape.slice(0, -2), b.shape.slice(0, -2), "MatMul batch");
      return floatOut([...batch, a.shape[a.rank - 2]!, b.shape[b.rank - 1]!]);
    },
  },
  Transpose: {
    infer: ({ g, x, attrs }) => {
      const perm = intsAttr(attrs, "perm", x.shape.map((_, i) => x.rank - 1 - i));
      return [{ shape: perm.map((p) => x.shape[p]!), dtype: x.dtype }];
    },
  },
  Reshape: {
    shapeFromHint: true,
    infer: ({ g, x, input, hint }) => {
      const s = input(1);
      const target = constInts(s);
      if (!target) {
        if (!hint) throw g.shapeError("Reshape to a runtime shape needs a shape hint");
        return [{ shape: hint, dtype: x.dtype }];
      }
      return [{ shape: resolveReshape(g, x.shape, target, hint), dtype: x.dtype }];
    },
  },
  Flatten: {
    infer: ({ g, x, attrs }) => {
      const axis = normAxis(intAttr(attrs, "axis", 1), x.rank);
      const prod = (dims: Shape): Dim => (isStatic(dims) ? dims.reduce((p, d) => p * d, 1) : dims.length === 1 ? dims[0]! : `${dims.join("*")}`);
      return [{ shape: [prod(x.shape.slice(0, axis)), prod(x.shape.slice(axis))], dtype: x.dtype }];
    },
  },
  Unsqueeze: {
    infer: ({ g, x, input }) => {
      const axesV = input(1);
      const axes = constInts(axesV)!.map((a) => normAxis(a, x.rank + constInts(axesV)!.length)).sort((p, q) => p - q);
      const out = [...x.shape];
      for (const a of axes) out.splice(a, 0, 1);
      return [{ shape: out, dtype: x.dtype }];
    },
  },
  Squeeze: {
    infer: ({ g, x, input }) => {
      const axesV = input(1);
      const axes = new Set(constInts(axesV)!.map((a) => normAxis(a, x.rank)));
      return [{ shape: x.shape.filter((_, i) => !axes.has(i)), dtype: x.dtype }];
    },
  },
  Shape: { infer: ({ x }) => [{ shape: [x.rank], dtype: "int64" }] },
  Size: { infer: () => [{ shape: [], dtype: "int64" }] },
  Range: {
    shapeFromHint: true,
    infer: ({ g, input, hint }) => {
      const start = input(0);
      if (!hint) throw g.shapeError("Range needs a shape hint");
      return [{ shape: hint, dtype: start.dtype }];
    },
  },
  BitwiseXor: { infer: binaryBroadcast() },
  BitwiseAnd: { infer: binaryBroadcast() },
  Expand: {
    shapeFromHint: true,
    infer: ({ g, x, input, hint }) => {
      const s = input(1);
      const target = constInts(s);
      if (target) return [{ shape: broadcastShapes(g, x.shape, target, "Expand"), dtype: x.dtype }];
      if (!hint) throw g.shapeError("Expand to a runtime shape needs a shape hint");
      return [{ shape: hint, dtype: x.dtype }];
    },
  },
  Concat: {
    infer: ({ g, inputs, attrs }) => {
      const first = inputs[0]!;
      const axis = normAxis(intAttr(attrs, "axis", 0), first.rank);
      let total: Dim = 0;
      for (const v of inputs) {
        if (v!.rank !== first.rank) throw g.shapeError(`Concat: ranks differ, ${formatShape(first.shape)} vs ${formatShape(v!.shape)}`);
        v!.shape.forEach((d, i) => {
          if (i !== axis && !sameDim(d, first.shape[i]!))
            throw g.shapeError(`Concat along axis ${axis}: ${formatShape(first.shape)} vs ${formatShape(v!.shape)}`);
        });
        const d = v!.shape[axis]!;
        total = typeof total === "number" && typeof d === "number" ? total + d : `${total}+${d}`;
      }
      const out = [...first.shape];
      out[axis] = total;
      return [{ shape: out, dtype: first.dtype }];
    },
  },
  Slice: {
    infer: ({ g, x, input, optional }) => {
      const startsV = input(1), endsV = input(2), axesV = optional(3), stepsV = optional(4);
      const starts = constInts(startsV)!, ends = constInts(endsV)!;
      const axes = constInts(axesV) ?? starts.map((_, i) => i);
      if (stepsV && constInts(stepsV)!.some((s) => s !== 1)) throw g.shapeError("Slice: only step 1 is supported");
      const out = [...x.shape];
      axes.forEach((a0, i) => {
        const a = normAxis(a0, x.rank);
        const d = x.shape[a];
        if (typeof d !== "number") throw g.shapeError("Slice needs a static dimension on the sliced axis");
        const clamp = (v: number) => Math.max(0, Math.min(d, v < 0 ? v + d : v));
        out[a] = Math.max(0, clamp(ends[i]!) - clamp(starts[i]!));
      });
      return [{ shape: out, dtype: x.dtype }];
    },
  },
  Pad: {
    shapeFromHint: true,
    infer: ({ g, x, input, hint }) => {
      const padsV = input(1);
      const pads = constInts(padsV);
      if (!pads) return [{ shape: hint!, dtype: x.dtype }];
      const r = x.rank;
      return [
        {
          shape: x.shape.map((d, i) => (typeof d === "number" ? d + pads[i]! + pads[i + r]! : pads[i] === 0 && pads[i + r] === 0 ? d : `${d}+pad`)),
          dtype: x.dtype,
        },
      ];
    },
  },
  ReduceSum: {
    infer: ({ g, x, input, attrs }) => {
      const axesV = input(1);
      return [{ shape: reducedShape(x, constInts(axesV)!, intAttr(attrs, "keepdims", 1)), dtype: x.dtype }];
    },
  },
  ReduceMean: {
    infer: ({ g, x, input, attrs }) => {
      const axesV = input(1);
      return [{ shape: reducedShape(x, constInts(axesV)!, intAttr(attrs, "keepdims", 1)), dtype: x.dtype }];
    },
  },
  ReduceMax: {
    infer: ({ g, x, input, attrs }) => {
      const axesV = input(1);
      return [{ shape: reducedShape(x, constInts(axesV)!, intAttr(attrs, "keepdims", 1)), dtype: x.dtype }];
    },
  },
  ArgMax: {
    infer: ({ g, x, attrs }) => [{ shape: reducedShape(x, [intAttr(attrs, "axis", 0)], intAttr(attrs, "keepdims", 1)), dtype: "int64" }],
  },
  Softmax: {
    infer: sameAsFirst,
  },
  LogSoftmax: {
    infer: sameAsFirst,
  },
  OneHot: {
    shapeFromHint: true,
    infer: ({ g, input, hint }) => {
      const idx = input(0), depthV = input(1);
      const init = g.initializers.get(depthV.name);
      const depth = init ? Number((init.tensor.data as BigInt64Array)[0]) : hint![hint!.length - 1]!;
      return [{ shape: [...idx.shape, depth], dtype: "float32" }];
    },
  },
  Gather: {
    // Embedding lookup (axis 0), or im2col's taps picked along a pixel axis (conv-grad.ts).
    infer: ({ input, attrs }) => {
      const data = input(0), idx = input(1);
      const axis = normAxis(intAttr(attrs, "axis", 0), data.rank);
      return [{ shape: [...data.shape.slice(0, axis), ...idx.shape, ...data.shape.slice(axis + 1)], dtype: data.dtype }];
    },
  },
  ScatterND: { infer: sameAsFirst },
  ScatterElements: { infer: sameAsFirst },
  Conv: {
    infer: ({ g, x, input, optional, attrs }) => {
      const w = input(1), b = optional(2);
      if (x.rank !== 4) throw g.shapeError(`Conv2d expects input [N, C, H, W], got ${formatShape(x.shape)}`);
      const group = intAttr(attrs, "group", 1);
      const [m, cPerGroup, kh, kw] = w.shape as number[];
      if (!sameDim(x.shape[1]!, cPerGroup! * group))
        throw g.shapeError(`Conv2d: input has ${x.shape[1]} channels, weight ${formatShape(w.shape)} with ${group} group(s) expects ${cPerGroup! * group}`);
      const [sh, sw] = intsAttr(attrs, "strides", [1, 1]);
      const [pt, pl, pb, pr] = intsAttr(attrs, "pads", [0, 0, 0, 0]);
      const [dh, dw] = intsAttr(attrs, "dilations", [1, 1]);
      const oh = convOutDim(g, x.shape[2]!, kh!, sh!, pt!, pb!, dh), ow = convOutDim(g, x.shape[3]!, kw!, sw!, pl!, pr!, dw);
      if (b && !sameDim(b.shape[0]!, m!)) throw g.shapeError(`Conv2d bias ${formatShape(b.shape)} does not match ${m} output channels`);
      return floatOut([x.shape[0]!, m!, oh, ow]);
    },
  },
  ConvTranspose: {
    infer: ({ g, x, input, attrs }) => {
      const w = input(1);
      const group = intAttr(attrs, "group", 1);
      const [, mPerGroup, kh, kw] = w.shape as number[];
      const [sh, sw] = intsAttr(attrs, "strides", [1, 1]);
      const [pt, pl, pb, pr] = intsAttr(attrs, "pads", [0, 0, 0, 0]);
      const [oph, opw] = intsAttr(attrs, "output_padding", [0, 0]);
      const h = x.shape[2] as number, wd = x.shape[3] as number;
      return floatOut([x.shape[0]!, mPerGroup! * group, sh! * (h - 1) + oph! + kh! - pt! - pb!, sw! * (wd - 1) + opw! + kw! - pl! - pr!]);
    },
  },
  MaxPool: {
    infer: ({ g, x, attrs }) => {
      const [kh, kw] = intsAttr(attrs, "kernel_shape", []);
      const [sh, sw] = intsAttr(attrs, "strides", [1, 1]);
      const [pt, pl, pb, pr] = intsAttr(attrs, "pads", [0, 0, 0, 0]);
      const shape = [x.shape[0]!, x.shape[1]!, convOutDim(g, x.shape[2]!, kh!, sh!, pt!, pb!), convOutDim(g, x.shape[3]!, kw!, sw!, pl!, pr!)];
      return [
        { shape, dtype: "float32" },
        { shape, dtype: "int64" },
      ];
    },
  },
  // Only in MaxPool's gradient: its output shape is the pooled input's, given as the hint.
  MaxUnpool: { shapeFromHint: true, infer: ({ hint }) => [{ shape: hint!, dtype: "float32" }] },
  AveragePool: {
    infer: ({ g, x, attrs }) => {
      const [kh, kw] = intsAttr(attrs, "kernel_shape", []);
      const [sh, sw] = intsAttr(attrs, "strides", [1, 1]);
      const [pt, pl, pb, pr] = intsAttr(attrs, "pads", [0, 0, 0, 0]);
      return floatOut([x.shape[0]!, x.shape[1]!, convOutDim(g, x.shape[2]!, kh!, sh!, pt!, pb!), convOutDim(g, x.shape[3]!, kw!, sw!, pl!, pr!)]);
    },
  },
  GlobalAveragePool: {
    infer: ({ g, x }) => floatOut([x.shape[0]!, x.shape[1]!, 1, 1]),
  },

  // ---- text: what a model that takes raw strings needs (data/text-onnx.ts)
  /** onnxruntime's regex tokenizer (RE2): [N] strings → [N, most matches in the batch], padded with pad_value. */
  Tokenizer: {
    domain: "com.microsoft",
    infer: ({ g, x }) => {
      if (x.rank !== 1 || x.dtype !== "string") throw g.shapeError(`Tokenizer expects strings [N], got ${x.dtype} ${formatShape(x.shape)}`);
      return [{ shape: [x.shape[0]!, "matches"], dtype: "string" }];
    },
  },
  StringNormalizer: { infer: sameAsFirst },
  /** A lookup table: keys_strings or keys_int64s → values_int64s, default_int64 for a missing key. */
  LabelEncoder: { domain: "ai.onnx.ml", infer: ({ x }) => [{ shape: x.shape, dtype: "int64" }] },
};

const DTYPE_BY_ONNX: Record<number, DType> = { 1: "float32", 2: "uint8", 6: "int32", 7: "int64", 8: "string", 9: "bool" };
export const ONNX_BY_DTYPE: Record<DType, number> = { float32: 1, uint8: 2, int32: 6, int64: 7, string: 8, bool: 9 };

// ---------------------------------------------------------------- emission

/** Emits one node after inferring its outputs; `hint` supplies shapes that only exist at run time. */
export function emit(opType: string, inputs: (Value | undefined)[], attrs: Attrs = {}, hint?: Shape): Value[] {
  const def = OPS[opType];
  if (!def) throw new Error(`distill has no definition for ONNX op ${opType}`);
  const first = inputs[0];
  if (!first) throw new Error(`${opType}: the first input is required`);
  const g = first.graph;
  const input = (i: number): Value => {
    const v = inputs[i];
    if (!v) throw g.shapeError(`${opType}: input ${i} is required`);
    return v;
  };
  const outs = def.infer({ g, x: first, input, optional: (i) => inputs[i], inputs, attrs, hint });
  if (hint && !def.shapeFromHint) {
    const got = outs[0]!.shape;
    if (got.length !== hint.length || got.some((d, i) => typeof d === "number" && typeof hint[i] === "number" && d !== hint[i]))
      throw g.shapeError(`${opType}: inferred ${formatShape(got)} but expected ${formatShape(hint)}`);
  }
  return g.addNode(opType, inputs, attrs, outs);
}

export const one = (opType: string, inputs: (Value | undefined)[], attrs: Attrs = {}, hint?: Shape): Value => emit(opType, inputs, attrs, hint)[0]!;

function reducedShape(x: Value, axes0: number[], keepdims: number): Shape {
  const axes = new Set(axes0.map((a) => normAxis(a, x.rank)));
  const out: Shape = [];
  x.shape.forEach((d, i) => {
    if (!axes.has(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

function resolveReshape(g: Graph, input: Shape, target: number[], hint?: Shape): Shape {
  const out: Shape = target.map((t, i) => (t === 0 ? input[i]! : t));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const known = out.filter((_, i) => i !== minus);
    if (isStatic(input) && isStatic(known)) {
      const total = input.reduce((p, d) => p * d, 1), rest = known.reduce((p, d) => p * d, 1);
      if (total % rest !== 0) throw g.shapeError(`cannot reshape ${formatShape(input)} to ${formatShape(target)}`);
      out[minus] = total / rest;
    } else {
      out[minus] = hint?.[minus] ?? `reshaped`;
    }
  } else if (isStatic(input) && isStatic(out) && input.reduce((p, d) => p * d, 1) !== out.reduce((p, d) => p * d, 1)) {
    throw g.shapeError(`cannot reshape ${formatShape(input)} to ${formatShape(target)}`);
  }
  return out;
}
