// The run config of a sequence-to-sequence task: `distill run` with a sequence `data:` block
// (dataset: cmudict, or format: pairs). Its own schema beside the classifier's DistillConfig; it
// shares the training block, the seeds and the style (strict keys, "expected …" messages, every
// default filled here, and an output that validates again as input, for a run folder's config.yaml).

import { z } from "zod";
import { SEQUENCE_DATASETS, sequenceDataSchema } from "./sequence-data.js";
import { defaultRunDir, NAME_RE, seedsSchema, trainSchema } from "./schema.js";
import { enumOf, num, obj, positiveInt, positiveNumber, str, unitClosed, unitOpen } from "./fields.js";

/** Word-level (per-position KL to the teacher's top-k), sequence-level (the teacher's beam outputs as targets), or both (Kim & Rush 2016). */
export const SEQ2SEQ_KD_METHODS = ["word", "sequence", "both"] as const;
export type Seq2SeqKdMethod = (typeof SEQ2SEQ_KD_METHODS)[number];

export const seq2seqModelSchema = obj({
  type: z.literal("seq2seq", num("seq2seq")),
  dims: positiveInt(),
  heads: positiveInt(),
  ffn: positiveInt(),
  encoderLayers: positiveInt(),
  decoderLayers: positiveInt(),
  dropout: unitOpen().default(0.1),
}).superRefine((m, ctx) => {
  if (m.dims % m.heads !== 0) ctx.addIssue({ code: "custom", path: ["heads"], message: `expected a divisor of dims (${m.dims})` });
});

export type Seq2SeqModelSpec = z.output<typeof seq2seqModelSchema>;

// The classifier's training block without the image augmentations, plus label smoothing.
const { jitter: _jitter, flip: _flip, mixup: _mixup, ...trainFields } = trainSchema.shape;
export const seq2seqTrainSchema = obj({
  ...trainFields,
  /** Label smoothing ε of the cross-entropy term (Szegedy et al. 2016); 0 (none) unless given. */
  labelSmoothing: unitOpen().default(0),
});

export type Seq2SeqTrainSpec = z.output<typeof seq2seqTrainSchema>;

/** Trained here ({model, train}), a distill-exported seq2seq .onnx, or a file of its outputs (whole sequences, or top-k per position). */
export type Seq2SeqTeacherSpec =
  | { model: Seq2SeqModelSpec; train: Seq2SeqTrainSpec; onnx?: never; outputs?: never }
  | { onnx: string; model?: never; train?: never; outputs?: never }
  | { outputs: string; model?: never; train?: never; onnx?: never };

const teacherSchema = obj({
  model: seq2seqModelSchema.optional(),
  train: seq2seqTrainSchema.optional(),
  onnx: str("a path to an .onnx file").optional(),
  /** jsonl or tsv rows {source, output} (whole output sequences), or jsonl rows {source, target, topk} (top-k per position). */
  outputs: str("a path to a .jsonl or .tsv file").optional(),
})
  .superRefine((t, ctx) => {
    const kinds = (["model", "onnx", "outputs"] as const).filter((k) => t[k] !== undefined);
    if (kinds.length !== 1)
      ctx.addIssue({ code: "custom", path: [], message: `give one of model (trained here, with train), onnx (a sequence model exported by distill) or outputs (a file of its outputs)${kinds.length ? `, not ${kinds.join(" and ")}` : ""}` });
    else if (t.model !== undefined && t.train === undefined) ctx.addIssue({ code: "custom", path: ["train"], message: "required with model" });
    else if (t.model === undefined && t.train !== undefined) ctx.addIssue({ code: "custom", path: ["train"], message: "only used with model (a teacher from elsewhere is not trained)" });
  })
  .transform((t) => t as Seq2SeqTeacherSpec);

const methodSchema = enumOf(SEQ2SEQ_KD_METHODS);

const kdSchema = obj({
  /** One method, or a list: each trains its own students (every seed), so one run compares them. */
  method: z
    .union([methodSchema, z.array(methodSchema, num("a list like [word, sequence, both]")).min(1, num("at least one method"))], { error: "expected word, sequence, both or a list of them" })
    .default("word")
    .transform((m) => (Array.isArray(m) ? m : [m]))
    .refine((m) => new Set(m).size === m.length, num("distinct methods")),
  /** Word-level: softmax temperature of both distributions (the KL is scaled by T²). */
  temperature: positiveNumber().default(1),
  /** Word-level: weight of the KL term; the cross-entropy gets 1 − α. */
  alpha: unitClosed().default(0.5),
  /** Word-level: the teacher's most likely symbols kept per position (stored, and renormalised over). */
  topK: positiveInt().default(8),
  /** Sequence-level: the teacher's beam width on the training sources. */
  beam: positiveInt().default(4),
});

const evaluateSchema = obj({
  /** Beam width of the test decoding (greedy is reported too). */
  beam: positiveInt().default(4),
  /** One-word calls timed per model for the latency percentiles. */
  latencyRuns: positiveInt().default(200),
});

const bucketSchema = z.tuple([positiveInt(), positiveInt()], num("a [source, target] pair of lengths like [8, 9]"));

export const seq2seqConfigSchema = obj({
  name: z.string(num("a name")).regex(NAME_RE, num('a name of letters, digits, ".", "_" and "-"')),
  output: str("a folder path").optional(),
  seeds: seedsSchema.default([0]),
  data: sequenceDataSchema,
  teacher: teacherSchema,
  student: obj({ model: seq2seqModelSchema, train: seq2seqTrainSchema }),
  kd: kdSchema.prefault({}),
  evaluate: evaluateSchema.prefault({}),
  /**
   * Training step graphs' [source, target] lengths (target counted with <eos>), smallest first;
   * the models' longest is added. Default: the 60th and 97th percentile lengths of the training pairs.
   */
  buckets: z.array(bucketSchema, num("a list of [source, target] lengths like [[8, 9], [12, 13]]")).min(1, num("at least one bucket")).optional(),
  keepCheckpoints: z.boolean(num("true or false")).default(false),
}).transform((c) => ({ ...c, output: c.output ?? defaultRunDir(c) }));

export type Seq2SeqConfig = z.output<typeof seq2seqConfigSchema>;

/** A config document whose `data:` is a sequence block (dataset: cmudict, or format: pairs): a sequence-to-sequence run. */
export function isSequenceDocument(doc: unknown): boolean {
  const data = doc && typeof doc === "object" && !Array.isArray(doc) ? (doc as Record<string, unknown>)["data"] : undefined;
  if (!data || typeof data !== "object" || Array.isArray(data)) return false;
  const d = data as Record<string, unknown>;
  return (SEQUENCE_DATASETS as readonly unknown[]).includes(d["dataset"]) || d["format"] === "pairs";
}
