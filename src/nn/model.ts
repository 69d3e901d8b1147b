// A model = input preprocessing + a network of layers. The preprocessing is part of the graph,
// so the exported .onnx takes what a user actually has (pixels 0–255, NCHW or NHWC) and a
// deployment needs no copy of our normalisation code.

import { Graph, type Value, type Shape, type DType, formatShape } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { decodeModel, encodeModel } from "../engine/onnx.js";
import { ForwardContext, type Mode, type Module, ParameterSet, type ParamDecl, initialValue } from "./module.js";

export interface InputSpec {
  /** Shape of one sample as fed, batch excluded: [784], [28, 28, 1] (NHWC) or [1, 28, 28] (NCHW). */
  shape: number[];
  dtype?: Extract<DType, "float32" | "int64">;
  /** For image inputs: how channels are laid out in what the user feeds; "tokens" for int64 token ids. */
  layout?: "NCHW" | "NHWC" | "tokens";
  /** x ↦ (x·scale − mean[c]) / std[c], applied in the graph. */
  scale?: number;
  mean?: number[];
  std?: number[];
}

export class Model {
  constructor(
    readonly net: Module,
    readonly input: InputSpec,
    readonly classLabels: string[],
  ) {}

  get numClasses(): number {
    return this.classLabels.length;
  }

  /** Preprocessing as graph nodes: cast, layout to NCHW, scale and normalise. */
  preprocess(x: Value): Value {
    const g = x.graph;
    const spec = this.input;
    return g.withScope("preprocess", () => {
      let h = x;
      if (spec.layout === "NHWC" && h.rank === 4) h = F.transpose(h, [0, 3, 1, 2]);
      if (spec.scale !== undefined && spec.scale !== 1) h = F.scale(h, spec.scale);
      const channels = spec.mean?.length ?? spec.std?.length ?? 0;
      if (channels) {
        const bshape = h.rank === 4 ? [1, channels, 1, 1] : [channels];
        if (spec.mean) h = F.sub(h, g.constFloat(spec.mean, spec.mean.length === 1 ? [] : bshape));
        if (spec.std) h = F.div(h, g.constFloat(spec.std, spec.std.length === 1 ? [] : bshape));
      }
      return h;
    });
  }

  /** Builds preprocessing + network on `x`; logits are checked to be [N, numClasses]. */
  forward(ctx: ForwardContext, x: Value): Value {
    const logits = this.net.forward(ctx, this.preprocess(x));
    if (logits.rank !== 2 || logits.shape[1] !== this.numClasses)
      throw ctx.graph.shapeError(`the network ends in ${formatShape(logits.shape)}, but the model has ${this.numClasses} classes: expected [N, ${this.numClasses}]`);
    return logits;
  }

  /** Graph input for a batch of raw samples. */
  inputValue(g: Graph, name = "input", batch: number | string = "N"): Value {
    return g.input(name, [batch, ...this.input.shape], this.input.dtype ?? "float32");
  }

  /** Lists parameters and buffers by tracing the model once. */
  declarations(): ParamDecl[] {
    const g = new Graph();
    const ctx = new ForwardContext(g, "train", (d) => g.input(`trace:${d.name}`, d.shape));
    this.forward(ctx, this.inputValue(g));
    return ctx.declared;
  }

  /** Fresh parameters, PyTorch-style initialisation, reproducible from `seed`. */
  initParameters(seed: number): ParameterSet {
    const decls = this.declarations();
    return new ParameterSet(decls, new Map(decls.map((d) => [d.name, { dtype: "float32" as const, shape: d.shape, data: initialValue(d, seed) }])));
  }

  /**
   * Builds the forward graph in `mode`, parameters as graph inputs named after them (training),
   * as initializers holding `params` (export), or as given graph values (a second copy of the
   * model inside a training step, e.g. an averaged teacher).
   */
  build(
    g: Graph,
    mode: Mode,
    source: { kind: "inputs" } | { kind: "initializers"; params: ParameterSet } | { kind: "values"; values: Map<string, Value> },
    x: Value,
    /** Where the layers' outputs are recorded (default: the graph's taps). */
    taps: Map<string, Value> = g.taps,
  ): { ctx: ForwardContext; logits: Value; paramInputs: Map<string, Value> } {
    const paramInputs = new Map<string, Value>();
    const ctx = new ForwardContext(g, mode, (d) => {
      if (source.kind === "inputs") {
        const v = g.input(d.name, d.shape);
        paramInputs.set(d.name, v);
        return v;
      }
      if (source.kind === "values") {
        const v = source.values.get(d.name);
        if (!v || formatShape(v.shape) !== formatShape(d.shape)) throw new Error(`parameter ${d.name}: no value of shape ${formatShape(d.shape)} given`);
        return v;
      }
      const t = source.params.get(d.name);
      if (t.data.length !== d.shape.reduce((a, b) => a * b, 1)) throw new Error(`parameter ${d.name}: stored size does not match shape ${formatShape(d.shape)}`);
      return g.initializer(d.name, { dtype: "float32", shape: d.shape, data: t.data });
    }, taps);
    const logits = this.forward(ctx, x);
    return { ctx, logits, paramInputs };
  }
}

export interface ExportOptions {
  inputName?: string;
  outputName?: string;
  /** Also output softmax probabilities under this name. */
  probabilitiesName?: string;
  metadata?: Record<string, string>;
  /**
   * What the exported model takes instead of the model's own input (e.g. raw strings for a
   * token model), and the nodes that turn it into that input.
   */
  rawInput?: { dtype: DType; shape: number[]; layout: string; toModelInput: (x: Value) => Value };
}

/**
 * The standalone inference model: eval-mode BatchNorm/Dropout, trained weights as initializers,
 * preprocessing inside, symbolic batch. Input/output names, layout and class labels are written
 * to the model's metadata.
 */
export function exportOnnx(model: Model, params: ParameterSet, opts: ExportOptions = {}): Uint8Array {
  const g = new Graph();
  const inputName = opts.inputName ?? "input";
  const outputName = opts.outputName ?? "logits";
  const raw = opts.rawInput;
  const x = raw ? g.input(inputName, ["batch", ...raw.shape], raw.dtype) : model.inputValue(g, inputName, "batch");
  const { logits } = model.build(g, "eval", { kind: "initializers", params }, raw ? raw.toModelInput(x) : x);
  g.output(logits, outputName);
  if (opts.probabilitiesName) g.output(F.softmax(logits, -1), opts.probabilitiesName);
  const metadata: Record<string, string> = {
    "distill.input_name": inputName,
    "distill.output_name": outputName,
    "distill.input_shape": JSON.stringify(["batch", ...(raw?.shape ?? model.input.shape)]),
    "distill.input_layout": raw?.layout ?? model.input.layout ?? (model.input.shape.length === 3 ? "NCHW" : "flat"),
    "distill.input_dtype": raw?.dtype ?? model.input.dtype ?? "float32",
    "distill.input_preprocessing": JSON.stringify({ scale: model.input.scale ?? 1, mean: model.input.mean ?? [], std: model.input.std ?? [] }),
    "distill.class_labels": JSON.stringify(model.classLabels),
    // The trained parameter count, by the one rule every report uses (not the initializers' size,
    // which also holds the preprocessing constants and BatchNorm's running statistics).
    "distill.parameters": String(decodeModel(encodeModel(g)).parameters),
    ...(opts.probabilitiesName ? { "distill.probabilities_name": opts.probabilitiesName } : {}),
    "distill.taps": JSON.stringify(tapTable(g, logits, outputName)),
    ...opts.metadata,
  };
  return encodeModel(g, { metadata, graphName: "distill-model", docString: "Exported by distill: logits = model(raw input); see metadata for layout and labels." });
}

/**
 * Layer name → the tensor holding its output in the exported graph, with its shape: lets a later
 * run read this model's intermediate outputs by layer name (as a distillation teacher).
 */
function tapTable(g: Graph, logits: Value, outputName: string): Record<string, { tensor: string; shape: Shape }> {
  const table: Record<string, { tensor: string; shape: Shape }> = {};
  for (const [name, v] of g.taps) table[name] = { tensor: v === logits ? outputName : v.name, shape: v.shape.map((d) => (typeof d === "number" ? d : "N")) };
  return table;
}

export type { Shape };
