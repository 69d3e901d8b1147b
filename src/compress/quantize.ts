// Post-training quantization as ONNX graph rewrites (what onnxruntime's Python quantizer does, in
// TypeScript). Weights: int8, symmetric, one scale per output channel (Jacob et al. 2018, "Quantization
// and Training of Neural Networks for Efficient Integer-Arithmetic-Only Inference", eq. 1 with zero
// point 0). Activations: uint8, asymmetric — at run time (dynamic) or from calibration (static).
// Every rewrite keeps the model's inputs, outputs and metadata: raw pixels in, logits out.

import {
  DT, compactNames, type ModelProto, type NodeProto, type TensorProto, consumers, ensureOpset, floatAttr, floatInitializer, intAttr, node,
  readModelProto, replaceInitializers, setMetadata, tensor, toHalf, writeModelProto,
} from "./onnx-model.js";
import type { ActivationRanges } from "./calibrate.js";

/**
 * How dynamic int8 is written. "integer": DynamicQuantizeLinear + MatMulInteger/ConvInteger. "qdq":
 * DynamicQuantizeLinear → DequantizeLinear on activations, DequantizeLinear on weights, float ops.
 * "weights": int8 weights behind DequantizeLinear, float activations (weight-only). "auto": integer
 * ops for Gemm/MatMul, weight-only for Conv — the fastest in both onnxruntime-node and -web on our
 * models (docs/engine.md, "Quantization forms": ConvInteger is 4× slower than float Conv on the
 * compress-mnist teacher in onnxruntime-node, 30× in wasm).
 */
export const DYNAMIC_FORMATS = ["auto", "integer", "qdq", "weights"] as const;
export type DynamicFormat = (typeof DYNAMIC_FORMATS)[number];

export interface QuantizeReport {
  mode: "dynamic" | "static" | "fp16";
  format?: DynamicFormat;
  /** Nodes rewritten, by op type, e.g. { Gemm: 2, Conv: 2 }. */
  quantized: Record<string, number>;
  /** Nodes left in float and why (e.g. a Gemm with transA). */
  skipped: string[];
}

export interface ChannelQuantized {
  q: Int8Array;
  scales: Float32Array;
}

/** Symmetric int8 per channel along `axis` (0 or 1 of a tensor laid out row-major): q = round(w / s), s = max|w| / 127. */
export function quantizePerChannel(w: Float32Array, dims: number[], axis: number): ChannelQuantized {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const maxAbs = new Float32Array(channels);
  const at = (o: number, c: number, i: number) => (o * channels + c) * inner + i;
  for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) maxAbs[c] = Math.max(maxAbs[c]!, Math.abs(w[at(o, c, i)]!));
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++)
      for (let i = 0; i < inner; i++) {
        const k = at(o, c, i);
        q[k] = Math.max(-127, Math.min(127, Math.round(w[k]! / scales[c]!)));
      }
  return { q, scales };
}

/** A quantizable weight use: Conv (axis 0 of [M, C, kh, kw]) or Gemm/MatMul with a constant right operand. */
interface WeightSite {
  node: NodeProto;
  activation: string;
  weight: string;
  bias?: string;
  dims: number[];
  data: Float32Array;
  /** The output-channel axis of the weight as stored. */
  axis: number;
}

function weightSites(m: ModelProto, skipped: string[]): WeightSite[] {
  const sites: WeightSite[] = [];
  for (const n of m.graph!.node ?? []) {
    const op = n.opType ?? "";
    if (op !== "Conv" && op !== "Gemm" && op !== "MatMul") continue;
    const [activation, weight, bias] = n.input ?? [];
    const w = weight ? floatInitializer(m, weight) : undefined;
    if (!activation || !weight || !w) {
      skipped.push(`${n.name || op}: weight is not a float initializer`);
      continue;
    }
    const b = bias ? floatInitializer(m, bias) : undefined;
    if (bias && !b) {
      skipped.push(`${n.name || op}: bias is not a float initializer`);
      continue;
    }
    if (op === "Gemm" && (intAttr(n, "transA", 0) !== 0 || floatAttr(n, "alpha", 1) !== 1 || floatAttr(n, "beta", 1) !== 1 || w.dims.length !== 2 || (b && b.dims.length !== 1))) {
      skipped.push(`${n.name || op}: Gemm with transA, alpha/beta ≠ 1 or a broadcast bias`);
      continue;
    }
    if (op === "MatMul" && w.dims.length !== 2) {
      skipped.push(`${n.name || op}: MatMul weight of rank ${w.dims.length}`);
      continue;
    }
    if (op === "Conv" && w.dims.length !== 4) {
      skipped.push(`${n.name || op}: Conv weight of rank ${w.dims.length}`);
      continue;
    }
    const axis = op === "Conv" ? 0 : op === "Gemm" && intAttr(n, "transB", 0) === 1 ? 0 : 1;
    sites.push({ node: n, activation, weight, ...(bias ? { bias } : {}), dims: w.dims, data: w.data, axis });
  }
  return sites;
}

/** Transposes a row-major [r, c] matrix of int8. */
function transposeInt8(q: Int8Array, r: number, c: number): Int8Array {
  const t = new Int8Array(q.length);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = q[i * c + j]!;
  return t;
}

/** Rebuilds graph.node: each site's node is replaced by what `rewrite` returns (in order). */
function rewriteNodes(m: ModelProto, rewrite: Map<NodeProto, NodeProto[]>): void {
  m.graph!.node = (m.graph!.node ?? []).flatMap((n) => rewrite.get(n) ?? [n]);
}

function countBy(sites: WeightSite[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of sites) out[s.node.opType!] = (out[s.node.opType!] ?? 0) + 1;
  return out;
}

/**
 * Dynamic int8: weights quantized offline, activations per tensor at run time.
 * "integer": DynamicQuantizeLinear → MatMulInteger/ConvInteger → Cast → ×(s_x·s_w) → +bias (the
 * pattern onnxruntime fuses into DynamicQuantizeMatMul). "qdq": DynamicQuantizeLinear → DequantizeLinear
 * on the activation, DequantizeLinear on the int8 weight, the original float op.
 */
export function quantizeDynamic(bytes: Uint8Array, where: string, format: DynamicFormat = "auto"): { bytes: Uint8Array; report: QuantizeReport } {
  const m = readModelProto(bytes, where);
  const skipped: string[] = [];
  const sites = weightSites(m, skipped);
  const rewrite = new Map<NodeProto, NodeProto[]>();
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  const quantizedActivation = new Set<string>();
  const uses = consumers(m);
  for (const s of sites) {
    const n = s.node;
    const out = n.output![0]!;
    const x = s.activation;
    const nodes: NodeProto[] = [];
    const form = format === "auto" ? (n.opType === "Conv" ? "weights" : "integer") : format;
    if (form !== "weights" && !quantizedActivation.has(x)) {
      nodes.push(node("DynamicQuantizeLinear", [x], [`${x}_q`, `${x}_scale`, `${x}_zero`]));
      quantizedActivation.add(x);
    }
    const { q, scales } = quantizePerChannel(s.data, s.dims, s.axis);
    const channels = s.dims[s.axis]!;
    if (uses.get(s.weight)?.length === 1) removed.add(s.weight);
    if (form !== "integer") {
      added.push(tensor(`${s.weight}_int8`, DT.INT8, s.dims, q), tensor(`${s.weight}_scale`, DT.FLOAT, [channels], scales));
      nodes.push(node("DequantizeLinear", [`${s.weight}_int8`, `${s.weight}_scale`], [`${s.weight}_dq`], { axis: s.axis }));
      if (form === "qdq" && !quantizedActivation.has(`${x}_dq`)) {
        nodes.push(node("DequantizeLinear", [`${x}_q`, `${x}_scale`, `${x}_zero`], [`${x}_dq`]));
        quantizedActivation.add(`${x}_dq`);
      }
      const copy = { ...n, input: [...n.input!] } as NodeProto;
      if (form === "qdq") copy.input![0] = `${x}_dq`;
      copy.input![1] = `${s.weight}_dq`;
      nodes.push(copy);
    } else {
      const isConv = n.opType === "Conv";
      // MatMulInteger wants B as [K, N]; a Gemm with transB stores [N, K].
      const wq = !isConv && s.axis === 0 ? transposeInt8(q, s.dims[0]!, s.dims[1]!) : q;
      const wDims = !isConv && s.axis === 0 ? [s.dims[1]!, s.dims[0]!] : s.dims;
      const scaleDims = isConv ? [channels, 1, 1] : [channels];
      added.push(tensor(`${s.weight}_int8`, DT.INT8, wDims, wq), tensor(`${s.weight}_scale`, DT.FLOAT, scaleDims, scales));
      const integerOp = isConv
        ? node("ConvInteger", [`${x}_q`, `${s.weight}_int8`, `${x}_zero`], [`${out}_int32`], convAttrs(n))
        : node("MatMulInteger", [`${x}_q`, `${s.weight}_int8`, `${x}_zero`], [`${out}_int32`]);
      nodes.push(
        integerOp,
        node("Cast", [`${out}_int32`], [`${out}_cast`], { to: DT.FLOAT }),
        node("Mul", [`${x}_scale`, `${s.weight}_scale`], [`${out}_rescale`]),
        node("Mul", [`${out}_cast`, `${out}_rescale`], [s.bias ? `${out}_nobias` : out]),
      );
      if (s.bias) {
        const b = floatInitializer(m, s.bias)!;
        if (isConv) {
          added.push(tensor(`${s.bias}_c11`, DT.FLOAT, [channels, 1, 1], b.data));
          if (uses.get(s.bias)?.length === 1) removed.add(s.bias);
        }
        nodes.push(node("Add", [`${out}_nobias`, isConv ? `${s.bias}_c11` : s.bias], [out]));
      }
    }
    rewrite.set(n, nodes);
  }
  rewriteNodes(m, rewrite);
  replaceInitializers(m, removed, added);
  ensureOpset(m, 13);
  const report: QuantizeReport = { mode: "dynamic", format, quantized: countBy(sites), skipped };
  compactNames(m);
  setMetadata(m, { "distill.quantization": JSON.stringify({ mode: "dynamic", format, weights: "int8 per-channel symmetric", activations: "uint8 per-tensor, at run time" }) });
  return { bytes: writeModelProto(m), report };
}

function convAttrs(n: NodeProto): Record<string, number | number[]> {
  const out: Record<string, number | number[]> = {};
  for (const a of n.attribute ?? []) {
    if (a.ints && a.ints.length) out[a.name!] = a.ints.map(Number);
    else if (a.i !== undefined && a.i !== null && a.name !== "auto_pad") out[a.name!] = Number(a.i);
  }
  return out;
}

/** uint8 affine parameters covering [lo, hi] ∪ {0}: x ≈ s·(q − z). */
export function uint8Params(lo: number, hi: number): { scale: number; zero: number } {
  const a = Math.min(lo, 0), b = Math.max(hi, 0);
  const scale = b > a ? (b - a) / 255 : 1;
  return { scale, zero: Math.max(0, Math.min(255, Math.round(-a / scale))) };
}

/**
 * Static int8 in QDQ form: QuantizeLinear → DequantizeLinear on every activation entering or leaving
 * a Conv/Gemm/MatMul (ranges from calibration), int8 per-channel weights and int32 biases behind
 * DequantizeLinear. onnxruntime fuses each DQ → op → Q group into QLinearConv / QGemm / QLinearMatMul.
 * Graph outputs stay float (logits keep their resolution).
 */
export function quantizeStatic(bytes: Uint8Array, where: string, ranges: ActivationRanges, method: string): { bytes: Uint8Array; report: QuantizeReport } {
  const m = readModelProto(bytes, where);
  const skipped: string[] = [];
  const sites = weightSites(m, skipped).filter((s) => {
    const ok = ranges.has(s.activation);
    if (!ok) skipped.push(`${s.node.name || s.node.opType}: no calibration range for ${s.activation}`);
    return ok;
  });
  const graphOutputs = new Set((m.graph!.output ?? []).map((o) => o.name ?? ""));
  const uses = consumers(m);
  const rewrite = new Map<NodeProto, NodeProto[]>();
  const added: TensorProto[] = [];
  const removed = new Set<string>();
  const qdqOf = new Map<string, string>(); // float tensor → its DequantizeLinear output
  const qdq = (x: string, into: NodeProto[], source = x): string => {
    const done = qdqOf.get(x);
    if (done) return done;
    const { lo, hi } = ranges.get(x)!;
    const { scale, zero } = uint8Params(lo, hi);
    added.push(tensor(`${x}_scale`, DT.FLOAT, [], Float32Array.of(scale)), tensor(`${x}_zero`, DT.UINT8, [], Uint8Array.of(zero)));
    into.push(node("QuantizeLinear", [source, `${x}_scale`, `${x}_zero`], [`${x}_q`]), node("DequantizeLinear", [`${x}_q`, `${x}_scale`, `${x}_zero`], [`${x}_dq`]));
    qdqOf.set(x, `${x}_dq`);
    return `${x}_dq`;
  };
  for (const s of sites) {
    const n = s.node;
    const nodes: NodeProto[] = [];
    const xdq = qdq(s.activation, nodes);
    const { q, scales } = quantizePerChannel(s.data, s.dims, s.axis);
    const channels = s.dims[s.axis]!;
    if (uses.get(s.weight)?.length === 1) removed.add(s.weight);
    added.push(tensor(`${s.weight}_int8`, DT.INT8, s.dims, q), tensor(`${s.weight}_scale`, DT.FLOAT, [channels], scales));
    nodes.push(node("DequantizeLinear", [`${s.weight}_int8`, `${s.weight}_scale`], [`${s.weight}_dq`], { axis: s.axis }));
    const copy = { ...n, input: [...n.input!], output: [...n.output!] } as NodeProto;
    copy.input![0] = xdq;
    copy.input![1] = `${s.weight}_dq`;
    if (s.bias) {
      // Bias in int32 at scale s_x·s_w[c], as QLinearConv expects.
      const b = floatInitializer(m, s.bias)!;
      const xs = uint8Params(ranges.get(s.activation)!.lo, ranges.get(s.activation)!.hi).scale;
      const bScale = scales.map((ws) => ws * xs);
      const bq = Int32Array.from(b.data, (v, c) => Math.round(v / bScale[c]!));
      if (uses.get(s.bias)?.length === 1) removed.add(s.bias);
      added.push(tensor(`${s.bias}_int32`, DT.INT32, [channels], bq), tensor(`${s.bias}_scale`, DT.FLOAT, [channels], bScale));
      nodes.push(node("DequantizeLinear", [`${s.bias}_int32`, `${s.bias}_scale`], [`${s.bias}_dq`], { axis: 0 }));
      copy.input![2] = `${s.bias}_dq`;
    }
    const { tensor: out, producer } = quantizedOutput(n, uses, graphOutputs);
    if (!graphOutputs.has(out) && ranges.has(out)) {
      // The float result gets a new name; Q → DQ produce what the rest of the graph reads.
      const tail: NodeProto[] = [];
      qdq(out, tail, `${out}_float`);
      for (const c of uses.get(out) ?? []) c.input = c.input!.map((i) => (i === out ? `${out}_dq` : i));
      if (producer === n) {
        copy.output![0] = `${out}_float`;
        nodes.push(copy, ...tail);
      } else {
        nodes.push(copy);
        rewrite.set(producer, [{ ...producer, output: [`${out}_float`] } as NodeProto, ...tail]);
      }
    } else nodes.push(copy);
    rewrite.set(n, nodes);
  }
  rewriteNodes(m, rewrite);
  replaceInitializers(m, removed, added);
  ensureOpset(m, 13);
  compactNames(m);
  setMetadata(m, { "distill.quantization": JSON.stringify({ mode: "static", format: "qdq", calibration: method, weights: "int8 per-channel symmetric", activations: "uint8 per-tensor, calibrated" }) });
  return { bytes: writeModelProto(m), report: { mode: "static", format: "qdq", quantized: countBy(sites), skipped } };
}

/** Float tensors (and activations) a static quantization needs ranges for. */
export function calibrationTensors(bytes: Uint8Array, where: string): string[] {
  const m = readModelProto(bytes, where);
  const graphOutputs = new Set((m.graph!.output ?? []).map((o) => o.name ?? ""));
  const names = new Set<string>();
  const uses = consumers(m);
  for (const s of weightSites(m, [])) {
    names.add(s.activation);
    const out = quantizedOutput(s.node, uses, graphOutputs).tensor;
    if (!graphOutputs.has(out)) names.add(out);
  }
  return [...names];
}

/**
 * Where a layer's output is quantized: after its ReLU when the ReLU is its only reader (onnxruntime
 * then fuses Conv + ReLU into one QLinearConv and the range is the ReLU's, half as wide), else its own.
 */
function quantizedOutput(n: NodeProto, uses: Map<string, NodeProto[]>, graphOutputs: Set<string>): { tensor: string; producer: NodeProto } {
  const out = n.output![0]!;
  const next = uses.get(out) ?? [];
  if (!graphOutputs.has(out) && next.length === 1 && next[0]!.opType === "Relu") return { tensor: next[0]!.output![0]!, producer: next[0]! };
  return { tensor: out, producer: n };
}

/**
 * fp16 weights: every float initializer of ≥ 16 elements stored as float16 and cast back to float32
 * at load (onnxruntime folds the Cast once, so compute stays float32: half the file, same speed on CPU).
 */
export function convertFp16(bytes: Uint8Array, where: string): { bytes: Uint8Array; report: QuantizeReport } {
  const m = readModelProto(bytes, where);
  const g = m.graph!;
  const casts: NodeProto[] = [];
  const quantized: Record<string, number> = {};
  const inits: TensorProto[] = [];
  for (const t of g.initializer ?? []) {
    const f = t.dataType === DT.FLOAT ? floatInitializer(m, t.name!) : undefined;
    if (!f || f.data.length < 16) {
      inits.push(t);
      continue;
    }
    const name = t.name!;
    inits.push(tensor(`${name}_fp16`, DT.FLOAT16, f.dims, toHalf(f.data)));
    casts.push(node("Cast", [`${name}_fp16`], [name], { to: DT.FLOAT }));
    quantized["initializer"] = (quantized["initializer"] ?? 0) + 1;
  }
  g.initializer = inits;
  const castNames = new Set(casts.map((c) => c.output![0]!));
  g.input = (g.input ?? []).filter((i) => !castNames.has(i.name ?? ""));
  g.node = [...casts, ...(g.node ?? [])];
  compactNames(m);
  setMetadata(m, { "distill.quantization": JSON.stringify({ mode: "fp16", weights: "float16, cast to float32 at load", compute: "float32" }) });
  return { bytes: writeModelProto(m), report: { mode: "fp16", quantized, skipped: [] } };
}
