// The ladder of `distill shrink`: student models from small to large, each a rung. Either width ×
// depth multipliers of the config's student, or the config's own list (`shrink.models`); in both
// cases ordered by parameter count, which bisection takes as the order in which validation
// accuracy grows (the monotone assumption; `--every-rung` trains them all instead).
//
// Width w: every hidden linear layer's units and every conv's filters × w, rounded, at least 1;
// the output layer keeps one unit per class.
// Depth d: the model's repeated blocks, n of them, become k = max(1, round(n·d)).
//   MLP (no conv layer): a block is a hidden linear layer (every linear but the last) with the
//   activation, normalisation and dropout layers right after it.
//   CNN: a block is a conv with the activation and normalisation layers after it,
//   conv[-bn]-relu; the pooling right after it belongs to the block's tail.
//   k < n keeps the first k blocks; the others lose their conv[-bn]-relu but keep their pooling,
//   so the spatial sizes the head sees stay what they were. k > n repeats blocks, the first ones
//   first (d = 2: every block twice); a repeated conv has stride 1 and padding kernel/2 (the
//   spatial size stays, for odd kernels) and comes before the block's pooling, which is not repeated.

import type { LayerSpec, ModelSpec } from "../config/schema.js";
import { ShapeError } from "../engine/graph.js";
import type { DataGeometry } from "../nn/spec.js";
import { buildModel } from "../nn/spec.js";
import { UserError } from "../errors.js";

export interface LadderRung {
  /** Trial id and folder name: w0.5 (width ladder), w0.5-d2 (width × depth), m1-small (models list). */
  id: string;
  width?: number;
  depth?: number;
  /** `shrink.models[i].name`. */
  name?: string;
  model: ModelSpec;
  params: number;
}

/** "0.5,1,2" → sorted distinct multipliers > 0; anything else names the option. */
export function parseMultipliers(text: string, option: "--widths" | "--depths"): number[] {
  const parts = text.split(",").map((s) => s.trim());
  const values = parts.map((s) => (/^[\d.eE+-]+$/.test(s) ? Number(s) : NaN));
  if (!text.trim() || values.some((v) => !(v > 0) || !Number.isFinite(v)))
    throw new UserError(option, `expected ${option === "--widths" ? "width multipliers > 0 separated by commas like 0.25,0.5,1" : "depth multipliers > 0 separated by commas like 0.5,1,2"}, got ${JSON.stringify(text)}`);
  return [...new Set(values)].sort((a, b) => a - b);
}

const BODY = new Set<string>(["relu", "gelu", "tanh", "sigmoid", "dropout", "batchnorm", "layernorm"]);
const POOL = new Set<string>(["maxpool", "avgpool"]);

interface Block {
  /** Index of the block's linear or conv layer. */
  head: number;
  /** One past its last activation / normalisation layer. */
  bodyEnd: number;
  /** One past its pooling (= bodyEnd without one). */
  tailEnd: number;
}

/** The repeated blocks that a depth multiplier counts (see the file's comment). */
export function depthBlocks(layers: LayerSpec[]): Block[] {
  const convs = layers.some((l) => l.type === "conv" || l.type === "conv1d");
  const lastLinear = layers.map((l) => l.type).lastIndexOf("linear");
  const isHead = (l: LayerSpec, i: number) => (convs ? l.type === "conv" || l.type === "conv1d" : l.type === "linear" && i !== lastLinear);
  const blocks: Block[] = [];
  layers.forEach((l, i) => {
    if (!isHead(l, i)) return;
    let bodyEnd = i + 1;
    while (bodyEnd < layers.length && BODY.has(layers[bodyEnd]!.type)) bodyEnd++;
    let tailEnd = bodyEnd;
    if (convs) while (tailEnd < layers.length && POOL.has(layers[tailEnd]!.type)) tailEnd++;
    blocks.push({ head: i, bodyEnd, tailEnd });
  });
  return blocks;
}

/** The layers with their blocks dropped or repeated to round(n·depth) blocks. */
export function scaleDepth(layers: LayerSpec[], depth: number, where: string): LayerSpec[] {
  const blocks = depthBlocks(layers);
  if (blocks.length === 0) throw new UserError(where, "student.model: no hidden linear or conv layer, so no block to repeat or drop");
  const n = blocks.length;
  const k = Math.max(1, Math.round(n * depth));
  const copies = (i: number) => (k >= n ? Math.floor(k / n) + (i < k % n ? 1 : 0) : i < k ? 1 : 0);
  const out: LayerSpec[] = [];
  let at = 0;
  blocks.forEach((b, i) => {
    out.push(...layers.slice(at, b.head));
    const body = layers.slice(b.head, b.bodyEnd);
    for (let c = 0; c < copies(i); c++) out.push(...body.map((l) => (c === 0 ? l : repeated(l, c))));
    out.push(...layers.slice(b.bodyEnd, b.tailEnd));
    at = b.tailEnd;
  });
  out.push(...layers.slice(at));
  return out;
}

/** The c-th repetition of a block's layer: its own name, and a conv that keeps the spatial size. */
function repeated(l: LayerSpec, c: number): LayerSpec {
  const copy = { ...l } as LayerSpec & { name?: string };
  if (copy.name !== undefined) copy.name = `${copy.name}.${c + 1}`;
  if (copy.type === "conv") Object.assign(copy, { stride: 1, padding: Math.floor(copy.kernel / 2) });
  return copy;
}

/** Every hidden linear layer's units and every conv's filters × width (the output layer untouched). */
export function scaleWidth(layers: LayerSpec[], width: number, where: string): LayerSpec[] {
  const lastLinear = layers.map((l) => l.type).lastIndexOf("linear");
  let scaled = 0;
  const out = layers.map((l, i) => {
    if (l.type === "linear" && i !== lastLinear) {
      scaled++;
      return { ...l, units: Math.max(1, Math.round(l.units * width)) };
    }
    if (l.type === "conv") {
      if (l.groups !== 1) throw new UserError(where, `student.model.layers[${i}]: shrink does not scale grouped convolutions (groups: ${l.groups})`);
      scaled++;
      return { ...l, filters: Math.max(1, Math.round(l.filters * width)) };
    }
    return l;
  });
  if (scaled === 0) throw new UserError(where, "student.model: no hidden linear or conv layer to scale");
  return out;
}

/** Trainable parameters of a model on this data, or a one-line error naming `key` when it does not build. */
export function parameterCount(spec: ModelSpec, classLabels: string[], geometry: DataGeometry, where: string, key: string): number {
  try {
    return buildModel(spec, classLabels, geometry).declarations().filter((d) => d.role === "param").reduce((n, d) => n + d.shape.reduce((a, b) => a * b, 1), 0);
  } catch (e) {
    if (e instanceof ShapeError) throw new UserError(where, `${key}: ${e.message.replace(/\s*\n\s*/g, "; ")}`);
    throw e;
  }
}

export interface LadderInput {
  student: ModelSpec;
  widths: number[];
  depths: number[];
  models?: Array<{ name: string; model: ModelSpec }>;
  classLabels: string[];
  geometry: DataGeometry;
  configPath: string;
}

/** The rungs, smallest parameter count first (ties: in the order given). */
export function buildLadder(o: LadderInput): LadderRung[] {
  const rungs: LadderRung[] = [];
  if (o.models) {
    o.models.forEach((m, i) => {
      rungs.push({ id: `m${i}-${m.name.replace(/[^\w.-]/g, "_")}`, name: m.name, model: m.model, params: parameterCount(m.model, o.classLabels, o.geometry, o.configPath, `shrink.models[${i}] (${m.name})`) });
    });
  } else {
    scaleWidth(o.student.layers, 1, o.configPath); // refuses a student with nothing to scale before anything else
    const depthOnly = o.depths.length === 1 && o.depths[0] === 1;
    for (const depth of o.depths) {
      const deep = depth === 1 ? o.student.layers : scaleDepth(o.student.layers, depth, o.configPath);
      for (const width of o.widths) {
        const model: ModelSpec = { ...o.student, layers: scaleWidth(deep, width, o.configPath) };
        const id = depthOnly ? `w${width}` : `w${width}-d${depth}`;
        const key = depthOnly ? `student.model × width ${width}` : `student.model × width ${width}, depth ${depth}`;
        rungs.push({ id, width, depth, model, params: parameterCount(model, o.classLabels, o.geometry, o.configPath, key) });
      }
    }
  }
  return rungs.map((r, i) => ({ r, i })).sort((a, b) => a.r.params - b.r.params || a.i - b.i).map(({ r }) => r);
}

/** How a rung reads in logs and reports: "width × 0.5, depth × 2" or the model's name. */
export function rungLabel(r: Pick<LadderRung, "width" | "depth" | "name">): string {
  if (r.name !== undefined) return r.name;
  return r.depth === undefined || r.depth === 1 ? `width × ${r.width}` : `width × ${r.width}, depth × ${r.depth}`;
}
