// Blocked convolutions for training graphs: onnxruntime's NCHWc kernels (com.microsoft.nchwc),
// the ones its own graph optimizer picks for inference. That optimizer only rewrites a Conv whose
// weight is a constant initializer, and in a training step every weight is an input, so the step
// asks for the kernels itself: `blockConvolutions` marks eligible Conv nodes after autodiff, and
// the encoder (onnx.ts) writes each marked node as ReorderInput → NCHWc Conv → ReorderOutput with
// the filter reordered inside the graph. Measured in docs/engine.md ("Blocked (NCHWc) convolutions").

import onnxProto from "onnx-proto";
import type { Graph, GraphNode } from "./graph.js";
import { intAttr, intsAttr } from "./ops.js";
import { Session } from "./runtime.js";

const { onnx } = onnxProto;

export const NCHWC_DOMAIN = "com.microsoft.nchwc";
/** Our op name for a Conv computed by the blocked kernels; only `encodeBlockedConv` writes it out. */
export const BLOCKED_CONV = "BlockedConv";

let detected: Promise<number | undefined> | undefined;

/**
 * The channel block of onnxruntime's NCHWc kernels on this machine (8 with AVX2, 16 with
 * AVX-512), read off the padded output of one `ReorderInput`; undefined where the build has no
 * such kernels. DISTILL_BLOCKED_CONV=0 turns blocked convolutions off (returns undefined).
 */
export function nchwcBlockSize(): Promise<number | undefined> {
  if (process.env["DISTILL_BLOCKED_CONV"] === "0") return Promise.resolve(undefined);
  detected ??= probeBlockSize();
  return detected;
}

async function probeBlockSize(): Promise<number | undefined> {
  const info = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const model = onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: "", version: 18 }, { domain: NCHWC_DOMAIN, version: 1 }],
      graph: {
        name: "nchwc-probe",
        node: [{ opType: "ReorderInput", domain: NCHWC_DOMAIN, input: ["x"], output: ["y"] }],
        input: [info("x", [1, 4, 1, 1])],
        output: [{ name: "y" }],
      },
    }),
  ).finish();
  try {
    const s = await Session.create(model, { threads: 1 });
    const y = (await s.run({ x: { dtype: "float32", shape: [1, 4, 1, 1], data: new Float32Array(4) } }))["y"]!;
    await s.dispose();
    const block = Number(y.shape[1]);
    return block >= 4 ? block : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Marks every Conv of `g` that the blocked kernels can run and onnxruntime would not block
 * itself: 2-D, a weight that is not a constant, one group, no dilation, static channel counts
 * that are multiples of `block`. Inputs with fewer channels (a first layer's 1 or 3) stay plain
 * Conv: the blocked kernel for them ran slower (docs/engine.md, "Blocked (NCHWc) convolutions"). Run after
 * autodiff: a marked node has no gradient rule. Returns how many were marked.
 */
export function blockConvolutions(g: Graph, block: number): number {
  let marked = 0;
  for (const n of g.nodes) {
    if (n.opType !== "Conv") continue;
    const [x, w] = n.inputs;
    if (!x || !w || g.initializers.has(w.name) || x.rank !== 4 || w.rank !== 4) continue;
    const c = x.shape[1], m = w.shape[0];
    if (typeof c !== "number" || typeof m !== "number" || c % block || m % block) continue;
    if (intAttr(n.attrs, "group", 1) !== 1 || intsAttr(n.attrs, "dilations", [1, 1]).some((d) => d !== 1)) continue;
    if (!w.shape.every((d) => typeof d === "number") || "auto_pad" in n.attrs) continue;
    n.opType = BLOCKED_CONV;
    n.attrs = { ...n.attrs, block: { i: block } };
    marked++;
  }
  return marked;
}

/**
 * ONNX nodes for one marked Conv: the filter [M, C, kh, kw] reordered to the kernels' OIHWBiBo
 * layout ([M/B, C/B, kh, kw, B(in), B(out)], kept 4-D), the input reordered to NCHWc, the blocked
 * Conv, and the output reordered back to NCHW under the node's own output name.
 */
export function encodeBlockedConv(n: GraphNode, name: string, nameOf: (v: GraphNode["inputs"][number]) => string, attribute: (k: string, a: GraphNode["attrs"][string]) => onnxProto.onnx.IAttributeProto): onnxProto.onnx.INodeProto[] {
  const [x, w, b] = n.inputs;
  const block = intAttr(n.attrs, "block", 8);
  const [m, c, kh, kw] = w!.shape as number[];
  const shape = (suffix: string, dims: number[]): onnxProto.onnx.INodeProto => ({
    name: `${name}/${suffix}`,
    opType: "Constant",
    output: [`${name}:${suffix}`],
    attribute: [{ name: "value", type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [dims.length], dataType: 7, int64Data: dims } }],
  });
  const convAttrs = Object.entries(n.attrs).filter(([k]) => k !== "block").map(([k, a]) => attribute(k, a));
  return [
    shape("blocks", [m! / block, block, c! / block, block, kh!, kw!]),
    shape("filter_shape", [m!, c!, kh!, kw!]),
    { name: `${name}/split`, opType: "Reshape", input: [nameOf(w), `${name}:blocks`], output: [`${name}:split`] },
    { name: `${name}/order`, opType: "Transpose", input: [`${name}:split`], output: [`${name}:ordered`], attribute: [attribute("perm", { ints: [0, 2, 4, 5, 3, 1] })] },
    { name: `${name}/filter`, opType: "Reshape", input: [`${name}:ordered`, `${name}:filter_shape`], output: [`${name}:filter`] },
    { name: `${name}/in`, opType: "ReorderInput", domain: NCHWC_DOMAIN, input: [nameOf(x)], output: [`${name}:x`] },
    { name, opType: "Conv", domain: NCHWC_DOMAIN, input: [`${name}:x`, `${name}:filter`, ...(b ? [nameOf(b)] : [])], output: [`${name}:y`], attribute: convAttrs },
    { name: `${name}/out`, opType: "ReorderOutput", domain: NCHWC_DOMAIN, input: [`${name}:y`], output: [nameOf(n.outputs[0])], attribute: [attribute("channels", { i: m! })] },
  ];
}
