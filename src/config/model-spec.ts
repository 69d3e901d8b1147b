// A model as a config describes it, `{input?, layers: [...]}`: the schema of teacher.model,
// student.model, kd.assistants and shrink's model lists in the run config (schema.ts, which
// re-exports its types). Apart from it so that code about models alone, such as the choice of
// assistant sizes (assistants.ts), does not depend on the whole config.

import { z } from "zod";
import { enumOf, nonNegativeInt, num, obj, positiveInt, str, unitOpen } from "./fields.js";

const named = { name: str("a layer name").optional() };

const activationKinds = ["relu", "gelu", "tanh", "sigmoid"] as const;

const layerSchema = z.discriminatedUnion(
  "type",
  [
    obj({ type: z.literal("linear"), units: positiveInt(), ...named }),
    obj({
      type: z.literal("conv"),
      filters: positiveInt(),
      kernel: positiveInt(),
      stride: positiveInt().default(1),
      padding: nonNegativeInt().default(0),
      groups: positiveInt().default(1),
      ...named,
    }),
    obj({ type: z.literal("maxpool"), size: positiveInt(), stride: positiveInt().optional(), ...named }),
    obj({ type: z.literal("avgpool"), size: positiveInt(), stride: positiveInt().optional(), ...named }),
    obj({ type: z.literal("gap"), ...named }),
    obj({ type: z.literal("flatten"), ...named }),
    obj({ type: z.enum(activationKinds), ...named }),
    obj({ type: z.literal("dropout"), p: unitOpen(), ...named }),
    obj({ type: z.literal("batchnorm"), ...named }),
    obj({ type: z.literal("layernorm"), ...named }),
    obj({ type: z.literal("embedding"), dims: positiveInt(), ...named }),
    obj({ type: z.literal("meanpool"), ...named }),
    obj({ type: z.literal("maxovertime"), ...named }),
    obj({ type: z.literal("conv1d"), filters: positiveInt(), kernel: positiveInt(), ...named }),
    // Pre-norm transformer encoder blocks on the token sequence; its width is the incoming one (the embedding's dims).
    obj({
      type: z.literal("transformer"),
      layers: positiveInt(),
      heads: positiveInt(),
      ffn: positiveInt(),
      positions: enumOf(["learned", "sinusoidal"]).default("learned"),
      dropout: unitOpen().default(0),
      ...named,
    }),
  ],
  {
    // The issue type omits invalid_type, but a non-mapping entry does arrive here with it.
    error: (iss: { code?: string }) => {
      if (iss.code === "invalid_type") return "expected a layer mapping like {type: linear, units: 128}";
      if (iss.code === "invalid_union") return `expected one of ${LAYER_TYPES.join(", ")}`;
      return undefined;
    },
  },
);

export const LAYER_TYPES = [
  "linear",
  "conv",
  "maxpool",
  "avgpool",
  "gap",
  "flatten",
  ...activationKinds,
  "dropout",
  "batchnorm",
  "layernorm",
  "embedding",
  "meanpool",
  "maxovertime",
  "conv1d",
  "transformer",
] as const;

export type LayerSpec = z.output<typeof layerSchema>;

const ELEMENTWISE = new Set<string>(["dropout", ...activationKinds]);

export const modelSchema = obj({
  input: enumOf(["flat", "image", "tokens"]).optional(),
  layers: z.array(layerSchema, num("a list of layers")).min(1, num("at least one layer")),
})
  .superRefine((m, ctx) => {
    // Token ids only mean something to an embedding, and an embedding reads nothing else.
    m.layers.forEach((l, i) => {
      if (l.type === "embedding" && i > 0) ctx.addIssue({ code: "custom", path: ["layers", i], message: "an embedding reads token ids, so it must be the first layer" });
    });
    if (m.input === "tokens" && m.layers[0]?.type !== "embedding")
      ctx.addIssue({ code: "custom", path: ["layers", 0], message: "expected {type: embedding, dims: …} first with input: tokens" });
    // Attention heads split the sequence's width, which an embedding or conv1d sets.
    let width: number | undefined;
    m.layers.forEach((l, i) => {
      if (l.type === "embedding") width = l.dims;
      else if (l.type === "conv1d") width = l.filters;
      else if (l.type === "transformer" && m.layers[0]?.type !== "embedding")
        ctx.addIssue({ code: "custom", path: ["layers", i], message: "a transformer works on token sequences: the model must start with {type: embedding, dims: …}" });
      else if (l.type === "transformer" && width !== undefined && width % l.heads !== 0)
        ctx.addIssue({ code: "custom", path: ["layers", i, "heads"], message: `expected a divisor of the width ${width} that the transformer receives` });
    });
    if (m.input !== undefined && m.input !== "tokens" && m.layers[0]?.type === "embedding")
      ctx.addIssue({ code: "custom", path: ["input"], message: `expected tokens (the first layer is an embedding), got ${m.input}` });
  })
  .transform((m) => ({
    // A model starting with an embedding takes token ids [N, maxTokens]; one whose first
    // shape-changing layer is linear wants [N, 784] (input dropout or an activation before it
    // changes nothing); anything else wants [N, 1, 28, 28].
    input:
      m.input ??
      (m.layers[0]?.type === "embedding" ? ("tokens" as const) : m.layers.find((l) => !ELEMENTWISE.has(l.type))?.type === "linear" ? ("flat" as const) : ("image" as const)),
    layers: m.layers,
  }));

export type ModelSpec = z.output<typeof modelSchema>;
