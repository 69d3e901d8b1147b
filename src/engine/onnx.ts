// Graph → ONNX ModelProto bytes (protobuf through onnx-proto's generated protobufjs code).

import onnxProto from "onnx-proto";
import { type Graph, type Value, type TensorData, type Shape } from "./graph.js";
import { ONNX_BY_DTYPE } from "./ops.js";

const { onnx } = onnxProto;

/** ONNX opset all distill graphs target: Reduce* take axes as inputs, ScatterND/ScatterElements reduce. */
export const OPSET = 18;
const IR_VERSION = 8;

export interface ModelOptions {
  /** Free-form key/value pairs stored in the model (input layout, class labels…). */
  metadata?: Record<string, string>;
  docString?: string;
  graphName?: string;
}

function valueInfo(name: string, v: Value | { shape: Shape; dtype: Value["dtype"] }) {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_BY_DTYPE[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function tensorProto(name: string, t: TensorData) {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dims: t.shape, dataType: ONNX_BY_DTYPE[t.dtype], rawData: bytes };
}

function attributeProto(name: string, a: import("./graph.js").Attr) {
  const A = onnx.AttributeProto.AttributeType;
  if ("i" in a) return { name, type: A.INT, i: a.i };
  if ("f" in a) return { name, type: A.FLOAT, f: a.f };
  if ("ints" in a) return { name, type: A.INTS, ints: a.ints };
  if ("floats" in a) return { name, type: A.FLOATS, floats: a.floats };
  return { name, type: A.STRING, s: new TextEncoder().encode(a.s) };
}

/**
 * Serialises `graph` to ONNX bytes. Nodes that no output needs are dropped (autodiff emits some,
 * e.g. the gradient of a first layer's input), and an output's producing value is renamed to the
 * output name, so no Identity copy is added unless the value is a graph input or output twice.
 */
export function encodeModel(graph: Graph, options: ModelOptions = {}): Uint8Array {
  const rename = new Map<string, string>();
  const identities: { from: string; to: string }[] = [];
  const claimed = new Set<Value>();
  for (const { value, name } of graph.outputs) {
    if (value.name === name) claimed.add(value);
    else if (value.producer && !claimed.has(value) && !graph.inputs.includes(value)) {
      rename.set(value.name, name);
      claimed.add(value);
    } else identities.push({ from: rename.get(value.name) ?? value.name, to: name });
  }
  const nameOf = (v: Value | undefined) => (v ? rename.get(v.name) ?? v.name : "");

  // Liveness, walking backwards from the outputs.
  const live = new Set<Value>(graph.outputs.map((o) => o.value));
  const keep: boolean[] = new Array(graph.nodes.length).fill(false);
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i]!;
    if (!n.outputs.some((o) => live.has(o))) continue;
    keep[i] = true;
    for (const v of n.inputs) if (v) live.add(v);
  }
  const nodes = graph.nodes
    .filter((_, i) => keep[i])
    .map((n, i) => ({
      name: `${n.scope ? n.scope + "/" : ""}${n.opType}_${i}`,
      opType: n.opType,
      input: n.inputs.map(nameOf),
      // Trailing outputs nothing reads are left off (they are optional in every op we emit, and
      // e.g. MaxPool without its Indices output runs ~10× faster in onnxruntime).
      output: n.outputs.slice(0, liveOutputCount(n.outputs, live)).map(nameOf),
      attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
    }));
  for (const { from, to } of identities) nodes.push({ name: `output/${to}`, opType: "Identity", input: [from], output: [to], attribute: [] });
  const outputs = graph.outputs.map(({ value, name }) => valueInfo(name, value));
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }],
    producerName: "distill",
    producerVersion: "0.1.0",
    docString: options.docString ?? "",
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.graphName ?? "distill",
      node: nodes,
      input: graph.inputs.map((v) => valueInfo(v.name, v)),
      output: outputs,
      // Initializers no live node reads are dropped too.
      initializer: [...graph.initializers.values()].filter(({ value }) => live.has(value)).map(({ value, tensor }) => tensorProto(value.name, tensor)),
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export interface DecodedModel {
  metadata: Record<string, string>;
  inputs: { name: string; shape: Shape }[];
  outputs: { name: string; shape: Shape }[];
  initializers: Map<string, { dims: number[]; data: Float32Array }>;
  opTypes: string[];
}

/** Reads what distill needs back out of an ONNX file: metadata, I/O names and float initializers. */
export function decodeModel(bytes: Uint8Array): DecodedModel {
  const m = onnx.ModelProto.decode(bytes);
  const g = m.graph;
  if (!g) throw new Error("the ONNX file has no graph");
  const dimsOf = (vi: onnxProto.onnx.IValueInfoProto): Shape =>
    (vi.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue ?? 0)));
  const initializers = new Map<string, { dims: number[]; data: Float32Array }>();
  for (const t of g.initializer ?? []) {
    if (t.dataType !== 1) continue;
    const dims = (t.dims ?? []).map(Number);
    let data: Float32Array;
    if (t.rawData && t.rawData.length) {
      const raw = t.rawData;
      data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    } else data = Float32Array.from(t.floatData ?? []);
    initializers.set(t.name ?? "", { dims, data });
  }
  const initNames = new Set(initializers.keys());
  return {
    metadata: Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? "", p.value ?? ""])),
    inputs: (g.input ?? []).filter((i) => !initNames.has(i.name ?? "")).map((i) => ({ name: i.name ?? "", shape: dimsOf(i) })),
    outputs: (g.output ?? []).map((o) => ({ name: o.name ?? "", shape: dimsOf(o) })),
    initializers,
    opTypes: (g.node ?? []).map((n) => n.opType ?? ""),
  };
}

/** Outputs up to and including the last live one (at least the first). */
function liveOutputCount(outputs: Value[], live: Set<Value>): number {
  let last = 0;
  outputs.forEach((o, i) => {
    if (live.has(o)) last = i;
  });
  return last + 1;
}
