// A classifier trained elsewhere (PyTorch via torch.onnx.export, Keras via tf2onnx…) brought to
// distill's teacher contract by graph surgery: raw pixels 0–255 in, `logits` [N, K] out. The
// user declares in the config what the model expects (scale, per-channel mean/std, layout) and
// which output holds the classes (any tensor of the graph, by name; probabilities are turned
// into log-probabilities, which softmax maps back to the same distribution). The adapted file
// is what the run folder keeps, so every later stage and `distill eval` read it like our own.

import onnxProto from "onnx-proto";
import { UserError } from "../errors.js";

const { onnx } = onnxProto;
type Model = onnxProto.onnx.ModelProto;

export interface TeacherInterface {
  /** The graph tensor holding class scores (default: distill.output_name in metadata, else the first output). */
  output?: string | undefined;
  /** What that tensor holds; "auto" looks at the first batch (rows ≥ 0 summing to 1 → probabilities). */
  outputs?: "auto" | "logits" | "probabilities" | undefined;
  /** How the model wants its input; absent: raw pixels as they are (distill's own exports). */
  preprocessing?: { layout: "flat" | "nchw" | "nhwc"; scale: number; mean: number[]; std: number[]; resize?: { width: number; height: number } | undefined } | undefined;
}

export interface ImageFormat {
  height: number;
  width: number;
  channels: number;
}

const FLOAT = 1;
/** The adapted model's output (a name of its own: the model may already have a tensor "logits"). */
const OUTPUT = "teacher_logits";
const INT64 = 7;

function floatTensor(name: string, dims: number[], values: number[]) {
  const data = new Float32Array(values);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) };
}

function int64Tensor(name: string, values: number[]) {
  const data = new BigInt64Array(values.map(BigInt));
  return { name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(data.buffer) };
}

function node(opType: string, inputs: string[], outputs: string[], attribute: object[] = []) {
  return { opType, input: inputs, output: outputs, name: `distill_adapter_${outputs[0]}`, attribute };
}

/** Every tensor name the graph produces or takes: its inputs, initializers and node outputs. */
function tensorNames(m: Model): string[] {
  const g = m.graph!;
  return [...(g.input ?? []).map((i) => i.name ?? ""), ...(g.node ?? []).flatMap((n) => n.output ?? [])].filter(Boolean);
}

/**
 * Returns the adapted model's bytes, or the input bytes when nothing needs adapting. `probabilities`
 * says whether the chosen output holds probabilities (resolve "auto" with looksLikeProbabilities).
 */
export function adaptTeacher(bytes: Uint8Array, spec: TeacherInterface, probabilities: boolean, image: ImageFormat, where: string): Uint8Array {
  let m: Model;
  try {
    m = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new UserError(where, `not a readable ONNX model (${(e as Error).message.split("\n")[0]})`);
  }
  const g = m.graph;
  if (!g) throw new UserError(where, "the ONNX file has no graph");
  const initNames = new Set((g.initializer ?? []).map((t) => t.name));
  const inputs = (g.input ?? []).filter((i) => !initNames.has(i.name));
  if (inputs.length !== 1) throw new UserError(where, `expected a model with one input (images), it has ${inputs.length}`);
  const metaOutput = (m.metadataProps ?? []).find((p) => p.key === "distill.output_name")?.value;
  const outName = spec.output ?? metaOutput ?? g.output?.[0]?.name ?? "";
  if (!tensorNames(m).includes(outName))
    throw new UserError(`${where}: teacher.output`, `no tensor named "${outName}" in the graph (outputs: ${(g.output ?? []).map((o) => o.name).join(", ")})`);
  const pre = spec.preprocessing;
  checkInputFits(inputs[0]!, pre, image, where);
  const declaredOutput = (g.output ?? []).find((o) => o.name === outName);
  // Already our contract (distill's own exports; a one-output logits model): keep the bytes, and so
  // the soft-target cache key of the same teacher file.
  if (!pre && !probabilities && declaredOutput && (g.output!.length === 1 || outName === metaOutput)) return bytes;

  const c = image.channels, h = image.height, w = image.width;
  const original = inputs[0]!;
  const nodes: ReturnType<typeof node>[] = [];
  const inits: object[] = [];
  let x = "distill_raw_pixels";
  if (pre) {
    if (pre.mean.length !== c && pre.mean.length !== 1) throw new UserError(`${where}: teacher.preprocessing.mean`, `has ${pre.mean.length} values for ${c}-channel images (give 1 or ${c})`);
    if (pre.std.length !== c && pre.std.length !== 1) throw new UserError(`${where}: teacher.preprocessing.std`, `has ${pre.std.length} values for ${c}-channel images (give 1 or ${c})`);
    const per = (v: number[]) => Array.from({ length: c }, (_, i) => v[v.length === 1 ? 0 : i]!);
    // Pixels arrive channel-major ([N, C·H·W], as distill stores images); normalise per channel in NCHW.
    inits.push(int64Tensor("distill_nchw_shape", [-1, c, h, w]), floatTensor("distill_scale", [], [pre.scale]));
    inits.push(floatTensor("distill_mean", [c, 1, 1], per(pre.mean)), floatTensor("distill_std", [c, 1, 1], per(pre.std)));
    nodes.push(node("Reshape", [x, "distill_nchw_shape"], ["distill_nchw"]));
    let pixels = "distill_nchw";
    if (pre.resize) {
      // Bilinear with half-pixel centres: torchvision's Resize on tensors (antialias off) and PIL-free pipelines.
      const opset = Number((m.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx")?.version ?? 0);
      if (opset < 11) throw new UserError(`${where}: teacher.preprocessing.resize`, `needs a model of ONNX opset 11 or later (Resize with scales); this one is opset ${opset}`);
      inits.push(floatTensor("distill_resize_roi", [0], []), floatTensor("distill_resize_scales", [4], [1, 1, pre.resize.height / h, pre.resize.width / w]));
      const S = onnx.AttributeProto.AttributeType.STRING;
      const text = (v: string) => new TextEncoder().encode(v);
      nodes.push(node("Resize", [pixels, "distill_resize_roi", "distill_resize_scales"], ["distill_resized"], [
        { name: "mode", type: S, s: text("linear") },
        { name: "coordinate_transformation_mode", type: S, s: text("half_pixel") },
      ]));
      pixels = "distill_resized";
    }
    nodes.push(node("Mul", [pixels, "distill_scale"], ["distill_scaled"]));
    nodes.push(node("Sub", ["distill_scaled", "distill_mean"], ["distill_centred"]));
    nodes.push(node("Div", ["distill_centred", "distill_std"], ["distill_normalised"]));
    x = "distill_normalised";
    if (pre.layout === "nhwc") {
      nodes.push(node("Transpose", [x], ["distill_nhwc"], [{ name: "perm", type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 2, 3, 1] }]));
      x = "distill_nhwc";
    } else if (pre.layout === "flat") {
      inits.push(int64Tensor("distill_flat_shape", [-1, c * (pre.resize?.height ?? h) * (pre.resize?.width ?? w)]));
      nodes.push(node("Reshape", [x, "distill_flat_shape"], ["distill_flat"]));
      x = "distill_flat";
    }
  } else {
    // No preprocessing declared: the model takes raw pixels in its own input shape.
    const dims = (original.type?.tensorType?.shape?.dim ?? []).slice(1).map((d) => Number(d.dimValue ?? 0));
    if (dims.some((d) => !(d > 0))) throw new UserError(where, `input ${original.name}: expected a fixed per-sample shape; declare teacher.preprocessing.layout`);
    inits.push(int64Tensor("distill_input_shape", [-1, ...dims]));
    nodes.push(node("Reshape", [x, "distill_input_shape"], ["distill_shaped"]));
    x = "distill_shaped";
  }
  nodes.push(node("Identity", [x], [original.name!]));

  // The class scores: log-probabilities when the model gives probabilities (clipped: log 0 = −∞).
  if (probabilities) {
    inits.push(floatTensor("distill_eps", [], [1e-12]));
    nodes.push(node("Max", [outName, "distill_eps"], ["distill_probs_clipped"]));
    nodes.push(node("Log", ["distill_probs_clipped"], [OUTPUT]));
  } else nodes.push(node("Identity", [outName], [OUTPUT]));

  const k = declaredOutput?.type?.tensorType?.shape?.dim?.at(-1)?.dimValue;
  g.input = [{ name: "distill_raw_pixels", type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: "batch" }, { dimValue: c * h * w }] } } } }, ...(g.input ?? []).filter((i) => initNames.has(i.name))];
  // Adapter input nodes first, then the model's own, then the output nodes.
  const atEnd = (n: ReturnType<typeof node>) => n.output[0] === OUTPUT || n.output[0] === "distill_probs_clipped";
  g.node = [...nodes.filter((n) => !atEnd(n)), ...(g.node ?? []), ...nodes.filter(atEnd)];
  g.initializer = [...(g.initializer ?? []), ...(inits as onnxProto.onnx.ITensorProto[])];
  g.output = [{ name: OUTPUT, type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: "batch" }, k !== undefined && k !== null ? { dimValue: k } : { dimParam: "classes" }] } } } }];
  const meta = (m.metadataProps ?? []).filter((p) => !String(p.key).startsWith("distill.input") && p.key !== "distill.output_name");
  m.metadataProps = [
    ...meta,
    { key: "distill.input_name", value: "distill_raw_pixels" },
    { key: "distill.output_name", value: OUTPUT },
    { key: "distill.teacher_adapter", value: JSON.stringify({ output: outName, probabilities, preprocessing: pre ?? null, originalInput: original.name }) },
  ];
  return onnx.ModelProto.encode(m).finish();
}

/**
 * The model's input must take what the adapter feeds it: the data's samples (resized, in the declared
 * layout), or without preprocessing as many raw values per sample. Checked on the declared shape, so
 * a mismatch is one line here rather than onnxruntime's size error on the first batch.
 */
function checkInputFits(input: onnxProto.onnx.IValueInfoProto, pre: TeacherInterface["preprocessing"], image: ImageFormat, where: string): void {
  const tensor = input.type?.tensorType;
  if (tensor?.elemType !== FLOAT || !tensor.shape) return; // token ids and texts are checked against the data later
  const dims = (tensor.shape.dim ?? []).slice(1).map((d) => (d.dimValue !== undefined && d.dimValue !== null && Number(d.dimValue) > 0 ? Number(d.dimValue) : NaN));
  const c = image.channels, h = pre?.resize?.height ?? image.height, w = pre?.resize?.width ?? image.width;
  const fed = !pre ? undefined : pre.layout === "flat" ? [c * h * w] : pre.layout === "nchw" ? [c, h, w] : [h, w, c];
  const fits = fed
    ? dims.length === fed.length && dims.every((d, i) => Number.isNaN(d) || d === fed[i])
    : dims.some((d) => Number.isNaN(d)) || dims.reduce((a, b) => a * b, 1) === c * h * w;
  if (fits) return;
  const samples = image.height === 1 && image.channels === 1 ? `${image.width} values` : `${image.height}×${image.width} images, ${c} channel${c === 1 ? "" : "s"} (${c * image.height * image.width} values)`;
  const given = fed ? `; as declared (layout ${pre!.layout}${pre!.resize ? `, resized to ${w}×${h}` : ""}) it would get [${fed.join(", ")}]` : "";
  throw new UserError(`${where}: teacher.preprocessing`, `the model's input ${input.name} takes [${dims.map((d) => (Number.isNaN(d) ? "?" : d)).join(", ")}] per sample, but the data's samples are ${samples}${given}; declare teacher.preprocessing (layout, resize) to fit its input, or use a teacher made for this data`);
}

/**
 * The model with `entries` (its data, as every model distill writes records them, so `distill eval`
 * and `distill shift` find it) added; one that already names its data keeps its bytes, and so its
 * soft-target cache key.
 */
export function withDataRecord(bytes: Uint8Array, entries: Record<string, string>): Uint8Array {
  const m = onnx.ModelProto.decode(bytes);
  const props = m.metadataProps ?? [];
  if (props.some((p) => p.key === "distill.data" || p.key === "distill.dataset")) return bytes;
  m.metadataProps = [...props, ...Object.entries(entries).map(([key, value]) => ({ key, value }))];
  return onnx.ModelProto.encode(m).finish();
}

/** Rows ≥ 0 that sum to 1 (within float error): a softmax output, not logits. */
export function looksLikeProbabilities(scores: Float32Array, k: number): boolean {
  const n = scores.length / k;
  if (n < 1) return false;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const v = scores[i * k + c]!;
      if (!(v >= 0)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
}

/**
 * The user's teacher file adapted to distill's contract, with "auto" resolved by running the
 * model on a few training images: `sample(bytes)` returns the chosen output's scores and K. A
 * declared `outputs` is held to the same rule "auto" applies, so probabilities read as logits (or
 * the reverse) stop here instead of quietly teaching the student a wrong distribution.
 */
export async function prepareTeacher(bytes: Uint8Array, spec: TeacherInterface, image: ImageFormat, where: string, sample: (adapted: Uint8Array) => Promise<{ scores: Float32Array; classes: number }>): Promise<Uint8Array> {
  const mode = spec.outputs ?? "auto";
  const asLogits = adaptTeacher(bytes, spec, false, image, where);
  let probe: { scores: Float32Array; classes: number };
  try {
    probe = await sample(asLogits);
  } catch (e) {
    if (e instanceof UserError) throw e;
    // The declared shape fitted, yet the graph cannot run on the data (a dynamic shape the layout gets wrong).
    throw new UserError(`${where}: teacher.preprocessing`, `onnxruntime cannot run the adapted model on the data's samples (${(e as Error).message.split("\n")[0]}); check teacher.preprocessing (layout, resize) against the model's input`);
  }
  const probabilities = looksLikeProbabilities(probe.scores, probe.classes);
  const rows = probe.scores.length / probe.classes;
  if (mode === "logits" && probabilities)
    throw new UserError(`${where}: teacher.outputs`, `is logits, but on ${rows} training samples every row of the output is ≥ 0 and sums to 1: probabilities; set outputs: probabilities, or leave it out (auto)`);
  if (mode === "probabilities" && !probabilities)
    throw new UserError(`${where}: teacher.outputs`, `is probabilities, but on ${rows} training samples ${describeNonProbabilities(probe.scores, probe.classes)}: logits; set outputs: logits, or leave it out (auto)`);
  return probabilities ? adaptTeacher(bytes, spec, true, image, where) : asLogits;
}

/** Why scores are not probabilities: the first negative value, or the first row not summing to 1. */
function describeNonProbabilities(scores: Float32Array, k: number): string {
  for (let i = 0; i < scores.length / k; i++) {
    const row = scores.subarray(i * k, (i + 1) * k);
    const negative = row.find((v) => !(v >= 0));
    if (negative !== undefined) return `row ${i} holds ${negative}`;
    const sum = row.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-3) return `row ${i} sums to ${sum.toPrecision(4)}`;
  }
  return "the rows are not probabilities";
}
