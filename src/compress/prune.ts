// Pruning as ONNX rewrites. Unstructured: zero the smallest-magnitude weights (Han et al. 2015,
// "Learning both Weights and Connections", §3) — the file keeps its dense shape, so only gzip sees
// it, and dense kernels run no faster. Structured: remove whole output channels / hidden units with
// the smallest L1 norm (Li et al. 2017, "Pruning Filters for Efficient ConvNets", §3.1) and the
// matching inputs of the next layer, so the model really is smaller and faster.

import { countParameters, isQuantized } from "../engine/onnx.js";
import { UserError } from "../errors.js";
import {
  type ModelProto, type NodeProto, consumers, floatInitializer, intAttr, metadataOf, readModelProto, replaceInitializers, setMetadata, tensor, DT, writeModelProto,
} from "./onnx-model.js";

const WEIGHT_OPS = new Set(["Conv", "Gemm", "MatMul"]);
/** Ops between two layers that act per channel, so a channel can be removed through them. */
const PER_CHANNEL_OPS = new Set(["Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "BatchNormalization", "MaxPool", "AveragePool", "Dropout", "Identity"]);

export interface PruneReport {
  kind: "unstructured" | "structured";
  /** Share of Conv/Gemm/MatMul weights that are zero, after. */
  sparsity: number;
  /** Trainable parameters (countParameters), before and after. */
  paramsBefore: number;
  paramsAfter: number;
  /** Per layer (weight name): [kept, of] channels or [zeros, of] weights. */
  layers: Record<string, [number, number]>;
  /** Pruned gradually during a KD fine-tune: the sparsity after each mask update, and which of the run's models it was. */
  gradual?: { schedule: { step: number; sparsity: number }[]; role: "teacher" | "student" };
}

function weightNames(m: ModelProto): string[] {
  const names: string[] = [];
  for (const n of m.graph!.node ?? []) if (WEIGHT_OPS.has(n.opType ?? "") && n.input?.[1] && floatInitializer(m, n.input[1])) names.push(n.input[1]);
  return [...new Set(names)];
}

/**
 * Pruning rewrites float32 Conv/Gemm/MatMul weights; a model without any (quantized to int8, or
 * fp16) would come out unchanged, so it is refused, naming what to prune instead.
 */
export function checkPrunable(bytes: Uint8Array, where: string): void {
  const m = readModelProto(bytes, where);
  if (isQuantized(m)) throw new UserError(where, "is quantized (int8): pruning rewrites float32 weights; prune the float model, then quantize the pruned one");
  if (weightNames(m).length === 0) {
    const fp16 = (m.graph!.initializer ?? []).some((t) => t.dataType === DT.FLOAT16);
    throw new UserError(where, `has no float32 Conv, Gemm or MatMul weight to prune${fp16 ? " (its weights are fp16: prune the float32 model, then convert the pruned one)" : ""}`);
  }
}

function setFloat(m: ModelProto, name: string, dims: number[], data: Float32Array): void {
  replaceInitializers(m, [name], [tensor(name, DT.FLOAT, dims, data)]);
}

function sparsityOf(m: ModelProto): number {
  let zeros = 0, total = 0;
  for (const w of weightNames(m)) {
    const t = floatInitializer(m, w)!;
    total += t.data.length;
    for (const v of t.data) if (v === 0) zeros++;
  }
  return total ? zeros / total : 0;
}

/** The zeros a model's Conv/Gemm/MatMul weights hold, per layer and overall (nothing changed). */
export function measureSparsity(bytes: Uint8Array, where: string): PruneReport {
  const m = readModelProto(bytes, where);
  const layers: Record<string, [number, number]> = {};
  for (const w of weightNames(m)) {
    const t = floatInitializer(m, w)!;
    layers[w] = [t.data.reduce((n, v) => n + (v === 0 ? 1 : 0), 0), t.data.length];
  }
  return { kind: "unstructured", sparsity: sparsityOf(m), paramsBefore: countParameters(m), paramsAfter: countParameters(m), layers };
}

/** Zeroes the `sparsity` share of smallest |w| of every Conv/Gemm/MatMul weight: over all of them at once (global) or in each. */
export function pruneUnstructured(bytes: Uint8Array, where: string, sparsity: number, scope: "global" | "layer"): { bytes: Uint8Array; report: PruneReport } {
  if (!(sparsity >= 0 && sparsity < 1)) throw new RangeError(`sparsity must be in [0, 1), got ${sparsity}`);
  const m = readModelProto(bytes, where);
  const names = weightNames(m);
  const weights = names.map((n) => ({ name: n, ...floatInitializer(m, n)! }));
  const thresholdOf = (values: Float32Array[]): number => {
    const all = new Float32Array(values.reduce((a, v) => a + v.length, 0));
    let k = 0;
    for (const v of values) for (const x of v) all[k++] = Math.abs(x);
    all.sort();
    const cut = Math.floor(all.length * sparsity);
    return cut === 0 ? -1 : all[cut - 1]!;
  };
  const global = scope === "global" ? thresholdOf(weights.map((w) => w.data)) : 0;
  const layers: Record<string, [number, number]> = {};
  for (const w of weights) {
    const t = scope === "global" ? global : thresholdOf([w.data]);
    // Ties at the threshold are pruned in order until the target count is met, so the share is exact.
    let budget = scope === "layer" ? Math.floor(w.data.length * sparsity) : Infinity;
    const out = Float32Array.from(w.data);
    let zeros = 0;
    for (let i = 0; i < out.length; i++)
      if (Math.abs(out[i]!) <= t && budget > 0) {
        out[i] = 0;
        zeros++;
        budget--;
      }
    layers[w.name] = [zeros, out.length];
    setFloat(m, w.name, w.dims, out);
  }
  const report: PruneReport = { kind: "unstructured", sparsity: sparsityOf(m), paramsBefore: countParameters(m), paramsAfter: countParameters(m), layers };
  setMetadata(m, { "distill.pruning": JSON.stringify({ kind: "unstructured", scope, sparsity: report.sparsity }), "distill.parameters": String(report.paramsAfter) });
  return { bytes: writeModelProto(m), report };
}

/** A removable group: the output channels of `producer`, through per-channel ops, into `consumer`'s inputs. */
interface ChannelLink {
  producer: NodeProto;
  channels: number;
  /** Per-channel nodes in between (BatchNormalization parameters get sliced). */
  between: NodeProto[];
  consumer: NodeProto;
  /** Consumer input elements per producer channel (1, or H·W after a Flatten). */
  spread: number;
  /**
   * Nodes computing per-channel operands from initializers alone — distill's exported BatchNorm is
   * Mul/Add by scale and shift that a small subgraph derives from bn.* [C] tensors — whose [C]
   * tensors (and [.., C, ..] reshape targets) follow the channels removed.
   */
  sides: NodeProto[];
}

function findLinks(m: ModelProto): ChannelLink[] {
  const uses = consumers(m);
  const outputs = new Set((m.graph!.output ?? []).map((o) => o.name));
  const initializers = new Set((m.graph!.initializer ?? []).map((t) => t.name ?? ""));
  const producerOf = new Map<string, NodeProto>();
  for (const n of m.graph!.node ?? []) for (const o of n.output ?? []) producerOf.set(o, n);
  /** The nodes computing `name` when it depends on initializers only; undefined when it depends on the input. */
  const constantSubgraph = (name: string, into: NodeProto[] = []): NodeProto[] | undefined => {
    if (initializers.has(name)) return into;
    const n = producerOf.get(name);
    if (!n || n.opType === "RandomNormal" || n.opType === "RandomUniform") return undefined;
    for (const i of n.input ?? []) if (i && !constantSubgraph(i, into)) return undefined;
    if (!into.includes(n)) into.push(n);
    return into;
  };
  const links: ChannelLink[] = [];
  const weightOf = (n: NodeProto) => (n.input?.[1] ? floatInitializer(m, n.input[1]) : undefined);
  for (const p of m.graph!.node ?? []) {
    if (!WEIGHT_OPS.has(p.opType ?? "")) continue;
    const w = weightOf(p);
    if (!w || (p.opType === "Conv" && intAttr(p, "group", 1) !== 1)) continue;
    const channels = p.opType === "MatMul" || (p.opType === "Gemm" && intAttr(p, "transB", 0) === 0) ? w.dims[1]! : w.dims[0]!;
    const between: NodeProto[] = [], sides: NodeProto[] = [];
    let t = p.output![0]!;
    let flattened = false;
    for (;;) {
      const next = uses.get(t) ?? [];
      if (next.length !== 1 || outputs.has(t)) break;
      const c = next[0]!;
      if (PER_CHANNEL_OPS.has(c.opType ?? "") && c.input![0] === t) {
        between.push(c);
        t = c.output![0]!;
        continue;
      }
      // x·scale + shift with per-channel operands made from initializers (exported BatchNorm).
      if (["Mul", "Add", "Sub", "Div"].includes(c.opType ?? "") && c.input!.length === 2 && c.input!.includes(t) && !flattened) {
        const side = constantSubgraph(c.input![0] === t ? c.input![1]! : c.input![0]!);
        if (!side) break;
        between.push(c);
        sides.push(...side.filter((n) => !sides.includes(n)), ...(initializers.has(c.input![0] === t ? c.input![1]! : c.input![0]!) ? [c] : []));
        t = c.output![0]!;
        continue;
      }
      if (c.opType === "Flatten" && intAttr(c, "axis", 1) === 1 && !flattened) {
        between.push(c);
        flattened = true;
        t = c.output![0]!;
        continue;
      }
      const cw = WEIGHT_OPS.has(c.opType ?? "") && c.input![0] === t ? weightOf(c) : undefined;
      if (!cw || (c.opType === "Conv" && (intAttr(c, "group", 1) !== 1 || flattened))) break;
      const inWidth = c.opType === "Conv" ? cw.dims[1]! : c.opType === "Gemm" && intAttr(c, "transB", 0) === 1 ? cw.dims[1]! : cw.dims[0]!;
      if (inWidth % channels) break;
      links.push({ producer: p, channels, between, consumer: c, spread: inWidth / channels, sides });
      break;
    }
  }
  return links;
}

/** Keeps `keep` of `dims[axis]` slices (sorted indices) of a row-major tensor. */
function sliceAxis(data: Float32Array, dims: number[], axis: number, keep: number[], spread = 1): { dims: number[]; data: Float32Array } {
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const n = dims[axis]!;
  const kept = keep.flatMap((k) => Array.from({ length: spread }, (_, s) => k * spread + s));
  const out = new Float32Array(outer * kept.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) for (const k of kept) out.set(data.subarray((a * n + k) * inner, (a * n + k + 1) * inner), (o++) * inner);
  const nd = dims.slice();
  nd[axis] = kept.length;
  return { dims: nd, data: out };
}

/** L1 norm of each output channel of a producer's weight. */
function channelNorms(w: { dims: number[]; data: Float32Array }, axis: number): Float64Array {
  const n = w.dims[axis]!;
  const inner = w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const norms = new Float64Array(n);
  for (let i = 0; i < w.data.length; i++) {
    const channel = Math.floor(i / inner) % n;
    norms[channel] = norms[channel]! + Math.abs(w.data[i]!);
  }
  return norms;
}

/**
 * Removes the (1 − keep) share of channels with the smallest L1 norm from every layer whose output
 * feeds another weight layer (the last layer keeps its classes). Shapes shrink for real.
 */
export function pruneStructured(bytes: Uint8Array, where: string, keep: number): { bytes: Uint8Array; report: PruneReport } {
  if (!(keep > 0 && keep <= 1)) throw new RangeError(`keep must be in (0, 1], got ${keep}`);
  const m = readModelProto(bytes, where);
  const before = countParameters(m);
  const layers: Record<string, [number, number]> = {};
  /** Channels (dim 1) of the tensors a removal narrowed: the producer's output and what it flows through. */
  const narrowed = new Map<string, number>();
  for (const link of findLinks(m)) {
    const p = link.producer, c = link.consumer;
    const w = floatInitializer(m, p.input![1]!)!;
    const outAxis = p.opType === "MatMul" || (p.opType === "Gemm" && intAttr(p, "transB", 0) === 0) ? 1 : 0;
    const count = Math.max(1, Math.round(link.channels * keep));
    const norms = channelNorms(w, outAxis);
    const order = Array.from(norms.keys()).sort((a, b) => norms[b]! - norms[a]!);
    const kept = order.slice(0, count).sort((a, b) => a - b);
    const sw = sliceAxis(w.data, w.dims, outAxis, kept);
    setFloat(m, p.input![1]!, sw.dims, sw.data);
    const bias = p.input?.[2] ? floatInitializer(m, p.input[2]) : undefined;
    if (bias) setFloat(m, p.input![2]!, [count], sliceAxis(bias.data, bias.dims, 0, kept).data);
    for (const b of link.between)
      if (b.opType === "BatchNormalization")
        for (const name of b.input!.slice(1)) {
          const t = floatInitializer(m, name);
          if (t) setFloat(m, name, [count], sliceAxis(t.data, t.dims, 0, kept).data);
        }
    sliceSides(m, link, kept);
    const cw = floatInitializer(m, c.input![1]!)!;
    const inAxis = c.opType === "Conv" || (c.opType === "Gemm" && intAttr(c, "transB", 0) === 1) ? 1 : 0;
    const sc = sliceAxis(cw.data, cw.dims, inAxis, kept, link.spread);
    setFloat(m, c.input![1]!, sc.dims, sc.data);
    layers[p.input![1]!] = [count, link.channels];
    narrowed.set(p.output![0]!, count);
    let width = count;
    for (const b of link.between) {
      if (b.opType === "Flatten") width = count * link.spread;
      narrowed.set(b.output![0]!, width);
    }
  }
  // Intermediate shapes recorded by a producer (if any) are now stale: let onnxruntime infer them.
  m.graph!.valueInfo = [];
  const report: PruneReport = { kind: "structured", sparsity: sparsityOf(m), paramsBefore: before, paramsAfter: countParameters(m), layers };
  // The source's parameter count and tap shapes no longer hold: recorded anew.
  setMetadata(m, { "distill.pruning": JSON.stringify({ kind: "structured", keep, params: report.paramsAfter }), "distill.parameters": String(report.paramsAfter), ...narrowedTaps(m, narrowed) });
  return { bytes: writeModelProto(m), report };
}

/** distill.taps (layer → tensor and shape, for a model used as a teacher) with the narrowed tensors' channels. */
function narrowedTaps(m: ModelProto, narrowed: Map<string, number>): Record<string, string> {
  const recorded = metadataOf(m)["distill.taps"];
  if (!recorded) return {};
  const taps = JSON.parse(recorded) as Record<string, { tensor: string; shape: (number | string)[] }>;
  for (const tap of Object.values(taps)) {
    const channels = narrowed.get(tap.tensor);
    if (channels !== undefined && tap.shape.length >= 2) tap.shape[1] = channels;
  }
  return { "distill.taps": JSON.stringify(taps) };
}

/**
 * The per-channel operands' sources, cut to the `kept` channels: every float initializer of exactly
 * `channels` values feeding the side subgraphs, and every int64 shape among them naming the channel
 * count (renamed per link, since an exporter may share one shape constant between layers).
 */
function sliceSides(m: ModelProto, link: ChannelLink, kept: number[]): void {
  const sliced = new Set<string>(), renamed = new Map<string, string>();
  for (const n of link.sides) {
    n.input = (n.input ?? []).map((name) => {
      if (!name || sliced.has(name)) return name;
      if (renamed.has(name)) return renamed.get(name)!;
      const f = floatInitializer(m, name);
      if (f && f.data.length === link.channels && f.data.length > 1) {
        setFloat(m, name, f.dims.map((d) => (d === link.channels ? kept.length : d)), sliceAxis(f.data, [f.data.length], 0, kept).data);
        sliced.add(name);
        return name;
      }
      const shape = int64Initializer(m, name);
      if (shape && shape.includes(BigInt(link.channels))) {
        const to = `${name}__${link.producer.input![1]}_pruned`;
        const values = BigInt64Array.from(shape, (v) => (v === BigInt(link.channels) ? BigInt(kept.length) : v));
        replaceInitializers(m, [], [tensor(to, DT.INT64, [values.length], values)]);
        renamed.set(name, to);
        return to;
      }
      return name;
    });
  }
  // A shape constant no node reads any more goes.
  const read = new Set((m.graph!.node ?? []).flatMap((n) => n.input ?? []));
  const unused = [...renamed.keys()].filter((name) => !read.has(name));
  if (unused.length) m.graph!.initializer = (m.graph!.initializer ?? []).filter((t) => !unused.includes(t.name ?? ""));
}

function int64Initializer(m: ModelProto, name: string): BigInt64Array | undefined {
  const t = (m.graph!.initializer ?? []).find((i) => i.name === name);
  if (!t || t.dataType !== DT.INT64) return undefined;
  if (t.rawData && t.rawData.length) return new BigInt64Array(t.rawData.buffer.slice(t.rawData.byteOffset, t.rawData.byteOffset + t.rawData.byteLength));
  return BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(v.toString())));
}

/** The fewest parameters structured pruning can leave: one channel or unit in every layer it narrows. */
export function structuredFloor(bytes: Uint8Array, where: string): number {
  return pruneStructured(bytes, where, Number.MIN_VALUE).report.paramsAfter;
}

/** The keep share (found by bisection) whose structured pruning leaves about `params` parameters (at least structuredFloor). */
export function keepForParams(bytes: Uint8Array, where: string, params: number): number {
  let lo = 0.001, hi = 1;
  for (let i = 0; i < 30; i++) {
    const mid = (lo + hi) / 2;
    if (pruneStructured(bytes, where, mid).report.paramsAfter > params) hi = mid;
    else lo = mid;
  }
  return lo;
}
