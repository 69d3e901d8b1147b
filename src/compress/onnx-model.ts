// Editing an existing ONNX model in place (quantization, pruning): the decoded protobuf, its
// initializers as typed arrays, and helpers to add nodes and tensors. Works on any model, not only
// those distill exported, so it reads ModelProto directly rather than going through engine/graph.

import onnxProto from "onnx-proto";
import { UserError } from "../errors.js";

const { onnx } = onnxProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ModelProto = onnxProto.onnx.ModelProto;

/** ONNX TensorProto.DataType values used here. */
export const DT = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 } as const;

export function readModelProto(bytes: Uint8Array, where: string): ModelProto {
  let m: ModelProto;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new UserError(where, `not a readable ONNX model (${(e as Error).message.split("\n")[0]}); is the file truncated?`);
  }
  if (!m.graph) throw new UserError(where, "not a readable ONNX model (it has no graph); is the file truncated?");
  return m;
}

export function writeModelProto(m: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

export function metadataOf(m: ModelProto): Record<string, string> {
  return Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""]));
}

/** Sets (or adds) metadata keys, keeping the source's others. */
export function setMetadata(m: ModelProto, entries: Record<string, string>): void {
  const props = (m.metadataProps ?? []).filter((p) => !(p.key! in entries));
  for (const [key, value] of Object.entries(entries)) props.push(onnx.StringStringEntryProto.create({ key, value }));
  m.metadataProps = props;
}

/** A float32 initializer's values (raw_data or float_data), or undefined if `name` is none. */
export function floatInitializer(m: ModelProto, name: string): { dims: number[]; data: Float32Array } | undefined {
  const t = (m.graph!.initializer ?? []).find((i) => i.name === name);
  if (!t || t.dataType !== DT.FLOAT) return undefined;
  const dims = (t.dims ?? []).map(Number);
  if (t.rawData && t.rawData.length) {
    const raw = t.rawData;
    return { dims, data: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)) };
  }
  return { dims, data: Float32Array.from(t.floatData ?? []) };
}

export function tensor(name: string, dataType: number, dims: number[], data: Float32Array | Int8Array | Uint8Array | Int32Array | Uint16Array | BigInt64Array): TensorProto {
  return onnx.TensorProto.create({ name, dataType, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
}

export function node(opType: string, inputs: string[], outputs: string[], attrs: Record<string, number | number[]> = {}, domain = ""): NodeProto {
  const A = onnx.AttributeProto.AttributeType;
  const attribute = Object.entries(attrs).map(([name, v]) =>
    Array.isArray(v) ? { name, type: A.INTS, ints: v } : Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v },
  );
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, attribute, domain });
}

export function intAttr(n: NodeProto, name: string, fallback: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? fallback : Number(a.i);
}

export function floatAttr(n: NodeProto, name: string, fallback: number): number {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  return a?.f === undefined || a.f === null ? fallback : Number(a.f);
}

/** Replaces initializers by name (drops `remove`, appends `add`), and keeps graph.input in step. */
export function replaceInitializers(m: ModelProto, remove: Iterable<string>, add: TensorProto[]): void {
  const gone = new Set(remove);
  const g = m.graph!;
  g.initializer = (g.initializer ?? []).filter((t) => !gone.has(t.name ?? "")).concat(add);
  g.input = (g.input ?? []).filter((i) => !gone.has(i.name ?? ""));
}

/** Names consumed by more than one node (or by a graph output), to know when a rewrite may drop a tensor. */
export function consumers(m: ModelProto): Map<string, NodeProto[]> {
  const out = new Map<string, NodeProto[]>();
  for (const n of m.graph!.node ?? []) for (const i of n.input ?? []) if (i) out.set(i, [...(out.get(i) ?? []), n]);
  return out;
}

/** Highest opset of the default domain, raised to `min` if lower (new ops need it). */
export function ensureOpset(m: ModelProto, min: number, domain = ""): void {
  const imports = m.opsetImport ?? [];
  const o = imports.find((x) => (x.domain ?? "") === domain);
  if (!o) imports.push(onnx.OperatorSetIdProto.create({ domain, version: min }));
  else if (Number(o.version) < min) o.version = min;
  m.opsetImport = imports;
}

/** Float32 → IEEE half bits, round to nearest even (Node 20 has no Float16Array). */
export function toHalf(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < values.length; i++) {
    f[0] = values[i]!;
    const x = u[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00; // overflow → ±inf
    } else if (e <= 0) {
      if (e < -10) {
        out[i] = sign; // underflow → ±0
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >> shift;
      const rest = mant & ((1 << shift) - 1), mid = 1 << (shift - 1);
      if (rest > mid || (rest === mid && half & 1)) half++;
      out[i] = sign | half;
    } else {
      let half = (e << 10) | (mant >> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
      out[i] = sign | half;
    }
  }
  return out;
}

/** IEEE half bits → float32 (for checks and tests). */
export function fromHalf(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    out[i] = e === 0 ? s * m * 2 ** -24 : e === 0x1f ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

/**
 * Short names for every intermediate tensor and no node names: a small model's file is a few KB of
 * such strings (e.g. "seq/flatten1/Flatten_scale"), which would eat a quarter of int8's gain on a
 * 10k-parameter student. Graph inputs, outputs and initializers keep their names.
 */
export function compactNames(m: ModelProto): void {
  const g = m.graph!;
  const keep = new Set([...(g.input ?? []), ...(g.output ?? [])].map((v) => v.name ?? "").concat((g.initializer ?? []).map((t) => t.name ?? "")));
  const renamed = new Map<string, string>();
  for (const n of g.node ?? []) for (const o of n.output ?? []) if (o && !keep.has(o) && !renamed.has(o)) renamed.set(o, renamed.size.toString(36));
  for (const n of g.node ?? []) {
    n.name = "";
    n.input = (n.input ?? []).map((i) => renamed.get(i) ?? i);
    n.output = (n.output ?? []).map((o) => renamed.get(o) ?? o);
  }
  g.valueInfo = [];
}
