// Graph → ONNX ModelProto bytes (protobuf through onnx-proto's generated protobufjs code).

import onnxProto from "onnx-proto";
import { type Graph, type Value, type Tensor, type Shape } from "./graph.js";
import { ONNX_BY_DTYPE, OPS } from "./ops.js";
import { BLOCKED_CONV, NCHWC_DOMAIN, encodeBlockedConv } from "./nchwc.js";

const { onnx } = onnxProto;

/** ONNX opset all distill graphs target: Reduce* take axes as inputs, ScatterND/ScatterElements reduce. */
export const OPSET = 18;
const IR_VERSION = 8;
/**
 * Versions of the other operator sets a graph may use: LabelEncoder-2 (ai.onnx.ml 3, paired with
 * opset 18), Tokenizer (com.microsoft 1), blocked convolutions in training steps (com.microsoft.nchwc 1).
 */
const DOMAIN_OPSETS = { "ai.onnx.ml": 3, "com.microsoft": 1, [NCHWC_DOMAIN]: 1 } as const;

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

function tensorProto(name: string, t: Tensor) {
  if (Array.isArray(t.data)) return { name, dims: t.shape, dataType: ONNX_BY_DTYPE.string, stringData: t.data.map((s) => new TextEncoder().encode(s)) };
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name, dims: t.shape, dataType: ONNX_BY_DTYPE[t.dtype], rawData: bytes };
}

function attributeProto(name: string, a: import("./graph.js").Attr) {
  const A = onnx.AttributeProto.AttributeType;
  if ("i" in a) return { name, type: A.INT, i: a.i };
  if ("f" in a) return { name, type: A.FLOAT, f: a.f };
  if ("ints" in a) return { name, type: A.INTS, ints: a.ints };
  if ("floats" in a) return { name, type: A.FLOATS, floats: a.floats };
  if ("strings" in a) return { name, type: A.STRINGS, strings: a.strings.map((s) => new TextEncoder().encode(s)) };
  return { name, type: A.STRING, s: new TextEncoder().encode(a.s) };
}

/**
 * Serialises `graph` to ONNX bytes. Nodes that no output needs are dropped (autodiff emits some,
 * e.g. the gradient of a first layer's input), and an output's producing value is renamed to the
 * output name, so no Identity copy is added unless the value is a graph input or output twice.
 */
export function encodeModel(graph: Graph, options: ModelOptions = {}): Uint8Array {
  const body = encodeGraph(graph);
  return finishModel(
    {
      name: options.graphName ?? "distill",
      node: body.node,
      input: graph.inputs.map((v) => valueInfo(v.name, v)),
      output: body.output,
      initializer: body.initializer,
    },
    options,
  );
}

function finishModel(graph: onnxProto.onnx.IGraphProto, options: ModelOptions): Uint8Array {
  // Domains used anywhere, a Loop body's nodes included.
  const nodesOf = (g: onnxProto.onnx.IGraphProto): onnxProto.onnx.INodeProto[] =>
    (g.node ?? []).flatMap((n) => [n, ...(n.attribute ?? []).flatMap((a) => (a.g ? nodesOf(a.g) : []))]);
  const domains = new Set(nodesOf(graph).map((n) => n.domain).filter((d): d is keyof typeof DOMAIN_OPSETS => !!d));
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }, ...[...domains].map((domain) => ({ domain, version: DOMAIN_OPSETS[domain] }))],
    producerName: "distill",
    producerVersion: "0.1.0",
    docString: options.docString ?? "",
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The live nodes, outputs and initializers of `graph` (inputs are left to the caller). */
function encodeGraph(graph: Graph): { node: onnxProto.onnx.INodeProto[]; output: onnxProto.onnx.IValueInfoProto[]; initializer: onnxProto.onnx.ITensorProto[] } {
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
  const node: onnxProto.onnx.INodeProto[] = graph.nodes
    .filter((_, i) => keep[i])
    .flatMap((n, i) => n.opType === BLOCKED_CONV ? encodeBlockedConv(n, `${n.scope ? n.scope + "/" : ""}${n.opType}_${i}`, nameOf, attributeProto) : [{
      name: `${n.scope ? n.scope + "/" : ""}${n.opType}_${i}`,
      opType: n.opType,
      ...(OPS[n.opType]?.domain ? { domain: OPS[n.opType]!.domain } : {}),
      input: n.inputs.map(nameOf),
      // Trailing outputs nothing reads are left off (they are optional in every op we emit, and
      // e.g. MaxPool without its Indices output runs ~10× faster in onnxruntime).
      output: n.outputs.slice(0, liveOutputCount(n.outputs, live)).map(nameOf),
      attribute: Object.entries(n.attrs).map(([k, a]) => attributeProto(k, a)),
    }]);
  for (const { from, to } of identities) node.push({ name: `output/${to}`, opType: "Identity", input: [from], output: [to], attribute: [] });
  return {
    node,
    output: graph.outputs.map(({ value, name }) => valueInfo(name, value)),
    // Initializers no live node reads are dropped too.
    initializer: [...graph.initializers.values()].filter(({ value }) => live.has(value)).map(({ value, tensor }) => tensorProto(value.name, tensor)),
  };
}

/** How a step graph becomes the body of an ONNX `Loop` (see `encodeLoopModel`). */
export interface LoopLayout {
  /** Graph inputs carried from one iteration to the next (parameters, optimizer state). */
  carried: { input: string; next: string }[];
  /** Graph inputs that differ per iteration: fed stacked [K, …] and picked by the iteration number. */
  perStep: string[];
  /** Graph outputs collected per iteration (loss, logged terms) into [K, …]. */
  scans: string[];
}

/** Names of the Loop model's inputs and outputs, derived from the step graph's names. */
export const loopNames = {
  tripCount: "loop:trip_count",
  start: (carried: string) => `start:${carried}`,
  end: (carried: string) => `end:${carried}`,
  stacked: (perStep: string) => `steps:${perStep}`,
  scan: (output: string) => `scan:${output}`,
};

/**
 * Serialises `graph`, a step of some iterative computation, as one model that runs it K times:
 * an ONNX `Loop` whose carried values are `layout.carried`, whose per-step inputs are stacked along
 * a new leading axis "K" and gathered by the iteration number, and whose `layout.scans` outputs are
 * stacked per iteration. The trip count is an input, so a shorter run uses the same model.
 */
export function encodeLoopModel(graph: Graph, layout: LoopLayout, options: ModelOptions = {}): Uint8Array {
  const byName = new Map(graph.inputs.map((v) => [v.name, v]));
  const inputOf = (name: string): Value => {
    const v = byName.get(name);
    if (!v) throw new Error(`loop layout names ${name}, which is not an input of the step graph`);
    return v;
  };
  const outputOf = (name: string): Value => {
    const o = graph.outputs.find((x) => x.name === name);
    if (!o) throw new Error(`loop layout names ${name}, which is not an output of the step graph`);
    return o.value;
  };
  const iter = "loop:iteration", condIn = "loop:cond_in", condOut = "loop:cond_out";
  const inner = encodeGraph(graph);
  const outputInfo = new Map(inner.output.map((o) => [o.name!, o]));
  const gathers: onnxProto.onnx.INodeProto[] = layout.perStep.map((name) => ({
    name: `loop/pick/${name}`,
    opType: "Gather",
    input: [loopNames.stacked(name), iter],
    output: [name],
    attribute: [attributeProto("axis", { i: 0 })],
  }));
  const body: onnxProto.onnx.IGraphProto = {
    name: "step",
    node: [...gathers, ...inner.node, { name: "loop/cond", opType: "Identity", input: [condIn], output: [condOut], attribute: [] }],
    input: [
      valueInfo(iter, { shape: [], dtype: "int64" }),
      valueInfo(condIn, { shape: [], dtype: "bool" }),
      ...layout.carried.map((c) => valueInfo(c.input, inputOf(c.input))),
    ],
    output: [valueInfo(condOut, { shape: [], dtype: "bool" }), ...[...layout.carried.map((c) => c.next), ...layout.scans].map((n) => outputInfo.get(n)!)],
    initializer: inner.initializer,
  };
  const loop: onnxProto.onnx.INodeProto = {
    name: "loop",
    opType: "Loop",
    input: [loopNames.tripCount, "", ...layout.carried.map((c) => loopNames.start(c.input))],
    output: [...layout.carried.map((c) => loopNames.end(c.input)), ...layout.scans.map(loopNames.scan)],
    attribute: [{ name: "body", type: onnx.AttributeProto.AttributeType.GRAPH, g: body }],
  };
  const stacked = (v: Value) => ({ shape: ["K", ...v.shape], dtype: v.dtype });
  return finishModel(
    {
      name: options.graphName ?? "distill-loop",
      node: [loop],
      input: [
        valueInfo(loopNames.tripCount, { shape: [], dtype: "int64" }),
        ...layout.carried.map((c) => valueInfo(loopNames.start(c.input), inputOf(c.input))),
        ...layout.perStep.map((n) => valueInfo(loopNames.stacked(n), stacked(inputOf(n)))),
      ],
      output: [
        ...layout.carried.map((c) => valueInfo(loopNames.end(c.input), inputOf(c.input))),
        ...layout.scans.map((n) => valueInfo(loopNames.scan(n), stacked(outputOf(n)))),
      ],
    },
    options,
  );
}

export interface DecodedModel {
  metadata: Record<string, string>;
  /** elemType: ONNX TensorProto.DataType (1 float, 6 int32, 7 int64, 8 string). */
  inputs: { name: string; shape: Shape; elemType: number }[];
  outputs: { name: string; shape: Shape }[];
  initializers: Map<string, { dims: number[]; data: Float32Array }>;
  opTypes: string[];
  /** Trainable parameters, as distill counts them everywhere (countParameters). */
  parameters: number;
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
    inputs: (g.input ?? []).filter((i) => !initNames.has(i.name ?? "")).map((i) => ({ name: i.name ?? "", shape: dimsOf(i), elemType: i.type?.tensorType?.elemType ?? 0 })),
    outputs: (g.output ?? []).map((o) => ({ name: o.name ?? "", shape: dimsOf(o) })),
    initializers,
    opTypes: (g.node ?? []).map((n) => n.opType ?? ""),
    parameters: countParameters(m),
  };
}

/** Ops of a quantized graph (onnxruntime's dynamic and static int8 forms). */
const QUANTIZED_OPS = new Set(["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul"]);

/** Whether the model computes with quantized (int8) weights or activations. */
export function isQuantized(m: onnxProto.onnx.IModelProto): boolean {
  return (m.graph?.node ?? []).some((n) => QUANTIZED_OPS.has(n.opType ?? ""));
}

/** Ops the input's preprocessing is made of (cast, layout, resize, scale and normalise). */
const PREPROCESSING_OPS = new Set(["Cast", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Resize", "Mul", "Sub", "Div", "Add"]);
/** float32, float16, double, bfloat16. */
const FLOAT_TYPES = new Set([1, 10, 11, 16]);

/**
 * Trainable parameters of an ONNX model: the one count distill reports (run results, the exported
 * metadata, eval, prune, compare). The elements of its float initializers, less those that are not
 * learned: scalars (an epsilon, a scale), the constants of the input's preprocessing (read only by
 * the elementwise and layout ops between the graph input and its first other op) and BatchNorm
 * running statistics (BatchNormalization's inputs 3 and 4; running_mean / running_var by name, as
 * distill and PyTorch call them). A quantized model's weights are not float: its distill.parameters, recorded
 * from its float source, is the count.
 */
export function countParameters(m: onnxProto.onnx.IModelProto): number {
  const g = m.graph;
  if (!g) return 0;
  const recorded = Number((m.metadataProps ?? []).find((p) => p.key === "distill.parameters")?.value);
  if (isQuantized(m) && Number.isInteger(recorded) && recorded > 0) return recorded;
  const initializerNames = new Set((g.initializer ?? []).map((t) => t.name ?? ""));
  // Nodes are in topological order: the input's path grows through preprocessing ops only.
  const inputPath = new Set((g.input ?? []).map((i) => i.name ?? "").filter((name) => !initializerNames.has(name)));
  const preprocessing = new Set<onnxProto.onnx.INodeProto>();
  for (const n of g.node ?? [])
    if (PREPROCESSING_OPS.has(n.opType ?? "") && (n.input ?? []).some((i) => inputPath.has(i))) {
      preprocessing.add(n);
      for (const o of n.output ?? []) inputPath.add(o);
    }
  const readers = new Map<string, onnxProto.onnx.INodeProto[]>();
  const runningStatistics = new Set<string>();
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (i) readers.set(i, [...(readers.get(i) ?? []), n]);
    if (n.opType === "BatchNormalization") for (const i of (n.input ?? []).slice(3, 5)) runningStatistics.add(i);
  }
  // Read by preprocessing alone, directly or through a Cast (an fp16 file casts its constants back).
  const preprocessingOnly = (tensor: string): boolean => {
    const by = readers.get(tensor) ?? [];
    return by.length > 0 && by.every((n) => preprocessing.has(n) || (n.opType === "Cast" && preprocessingOnly(n.output?.[0] ?? "")));
  };
  let count = 0;
  for (const t of g.initializer ?? []) {
    const name = t.name ?? "", dims = (t.dims ?? []).map(Number);
    if (!FLOAT_TYPES.has(t.dataType ?? 0) || dims.length === 0) continue;
    if (runningStatistics.has(name) || /running_(mean|var)(?![a-z])/i.test(name)) continue; // also fp16 copies' "…_fp16"
    if (preprocessingOnly(name)) continue;
    count += dims.reduce((a, b) => a * b, 1);
  }
  return count;
}

/** Outputs up to and including the last live one (at least the first). */
function liveOutputCount(outputs: Value[], live: Set<Value>): number {
  let last = 0;
  outputs.forEach((o, i) => {
    if (live.has(o)) last = i;
  });
  return last + 1;
}
