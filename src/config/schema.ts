// The run config (YAML) as a zod schema. Every object is strict so a typo is an error rather than a
// silently ignored key, and every default is filled here, so the pipeline never guesses. The parsed
// output is itself valid input (no added keys), so a resolved config can be written back and reloaded.
// Messages: each schema carries an "expected …" text; load.ts appends ", got <value>".

import { basename, dirname, join, resolve } from "node:path";
import { z } from "zod";
import { makeKdSchema, resolveKd, termNeedsTeacher, termsNeedingLabels, type KdSpec as KdBlock } from "./kd.js";
import { chooseAssistants } from "./assistants.js";
import { modelSchema, type ModelSpec } from "./model-spec.js";
import { bool, enumOf, nonNegativeInt, nonNegativeNumber, num, obj, positiveInt, positiveNumber, str, unitOpen } from "./fields.js";

// ---- training ---------------------------------------------------------------------------------

const optimizerSchema = z.discriminatedUnion(
  "kind",
  [
    obj({
      kind: z.literal("sgd"),
      lr: positiveNumber(),
      momentum: unitOpen().default(0.9),
      nesterov: bool().default(false),
      weightDecay: nonNegativeNumber().default(0),
      /** After each step, each unit's incoming weights scaled back to L2 norm ≤ maxNorm (weights of rank ≥ 2). */
      maxNorm: positiveNumber().optional(),
    }),
    obj({
      kind: z.enum(["adam", "adamw"]),
      lr: positiveNumber(),
      beta1: unitOpen().default(0.9),
      beta2: unitOpen().default(0.999),
      eps: positiveNumber().default(1e-8),
      weightDecay: nonNegativeNumber().default(0),
      maxNorm: positiveNumber().optional(),
    }),
  ],
  {
    error: (iss: { code?: string }) => {
      if (iss.code === "invalid_type") return "expected a mapping like {kind: adam, lr: 0.001}";
      if (iss.code === "invalid_union") return "expected one of sgd, adam, adamw";
      return undefined;
    },
  },
);

const scheduleSchema = obj({
  kind: enumOf(["constant", "step", "cosine"]).default("cosine"),
  warmupEpochs: nonNegativeInt().default(0),
  stepEvery: positiveInt().optional(),
  gamma: z.number(num("a number in (0, 1]")).positive(num("a number in (0, 1]")).max(1, num("a number in (0, 1]")).optional(),
})
  .superRefine((s, ctx) => {
    if (s.kind === "step" && s.stepEvery === undefined)
      ctx.addIssue({ code: "custom", path: ["stepEvery"], message: "required with kind: step (epochs between decays)" });
    for (const key of ["stepEvery", "gamma"] as const)
      if (s.kind !== "step" && s[key] !== undefined)
        ctx.addIssue({ code: "custom", path: [key], message: `only used with kind: step (kind is ${s.kind})` });
  })
  .transform((s) => (s.kind === "step" ? { ...s, gamma: s.gamma ?? 0.1 } : s));

export type ScheduleSpec = z.output<typeof scheduleSchema>;

export const trainSchema = obj({
  epochs: positiveInt(),
  batchSize: positiveInt().default(128),
  optimizer: optimizerSchema,
  schedule: scheduleSchema.prefault({}),
  jitter: z.number(num("an integer from 0 to 4")).int(num("an integer from 0 to 4")).min(0, num("an integer from 0 to 4")).max(4, num("an integer from 0 to 4")).default(0),
  /** Images: each mirrored left–right with probability 1/2 (after the jitter). */
  flip: bool().optional(),
  /** Images: mixup's Beta(α, α) parameter α (one λ per batch; images mixed with a shuffled partner, labels weighed λ and 1 − λ). */
  mixup: positiveNumber().optional(),
  clipGradNorm: positiveNumber().optional(),
});

export type TrainSpec = z.output<typeof trainSchema>;

// ---- stages -----------------------------------------------------------------------------------

/** How an ONNX teacher from elsewhere wants its input and where its class scores are. */
const teacherPreprocessingSchema = obj({
  layout: enumOf(["flat", "nchw", "nhwc"]),
  scale: positiveNumber().default(1),
  mean: z.array(z.number(num("a number")), num("a list of per-channel means")).min(1).default([0]),
  std: z.array(positiveNumber(), num("a list of per-channel standard deviations")).min(1).default([1]),
  /** The image size the teacher was trained on: inputs are resized to it (bilinear, half-pixel centres, as torchvision). */
  resize: obj({ width: positiveInt(), height: positiveInt() }).optional(),
});

export type TeacherOnnxSpec = {
  onnx: string;
  output?: string | undefined;
  outputs?: "auto" | "logits" | "probabilities" | undefined;
  preprocessing?: z.output<typeof teacherPreprocessingSchema> | undefined;
  /** Distill from it even at chance accuracy on validation (otherwise the run stops: a mis-wired teacher). */
  allowChanceAccuracy?: boolean | undefined;
  model?: never;
  train?: never;
  softTargets?: never;
  cache?: never;
};

/**
 * A teacher that lives elsewhere (a Python model, a hosted API): only its class scores, one row per
 * training-source sample, in a .npy, .jsonl or .csv file (optionally gzipped). See src/distill/soft-target-file.ts.
 */
export type TeacherFileSpec = {
  softTargets: string;
  outputs?: "auto" | "logits" | "probabilities" | undefined;
  /** The file's column or field holding each row's sample id; given: rows are matched to samples by id, else row i is sample i. */
  id?: string | undefined;
  /** .jsonl rows that are objects: the field holding the scores (default "scores"). */
  scores?: string | undefined;
  /** As for an .onnx teacher: distill from it even at chance accuracy on validation. */
  allowChanceAccuracy?: boolean | undefined;
  onnx?: never;
  model?: never;
  train?: never;
  cache?: never;
};

/** A ready ONNX classifier, a spec trained in this run, or a file of soft targets; narrow with `onnx`, `model`, `softTargets`. */
export type TeacherSpec = TeacherOnnxSpec | TeacherFileSpec | {
  onnx?: never; softTargets?: never; model: ModelSpec; train: TrainSpec;
  /** false: train it in this run even when the teacher cache holds it, and do not cache it (default true). */
  cache?: boolean | undefined;
};

const teacherSchema = obj({
  onnx: str("a path to an .onnx file").optional(),
  /** ONNX teacher: the tensor holding class scores (any tensor of the graph, by name). */
  output: str("a tensor name").optional(),
  outputs: enumOf(["auto", "logits", "probabilities"]).optional(),
  preprocessing: teacherPreprocessingSchema.optional(),
  model: modelSchema.optional(),
  train: trainSchema.optional(),
  softTargets: str("a path to a .npy, .jsonl or .csv file").optional(),
  id: str("a column or field name").optional(),
  scores: str("a field name").optional(),
  allowChanceAccuracy: z.boolean(num("true or false")).optional(),
  cache: z.boolean(num("true or false")).optional(),
})
  .superRefine((t, ctx) => {
    const kinds = (["onnx", "model", "softTargets"] as const).filter((k) => t[k] !== undefined);
    if (kinds.length > 1)
      ctx.addIssue({ code: "custom", path: [], message: `give one of onnx (a trained classifier), model (trained here) or softTargets (a file of its outputs), not ${kinds.join(" and ")}` });
    else if (kinds.length === 0)
      ctx.addIssue({ code: "custom", path: [], message: "needs onnx (a trained classifier), model (with train) or softTargets (a file of its outputs)" });
    else if (t.model !== undefined && t.train === undefined)
      ctx.addIssue({ code: "custom", path: ["train"], message: "required with model" });
    else if (t.model === undefined && t.train !== undefined)
      ctx.addIssue({ code: "custom", path: ["train"], message: "only used with model (a teacher from elsewhere is not trained)" });
    else if (t.model !== undefined)
      for (const key of ["output", "outputs", "preprocessing"] as const)
        if (t[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "only used with onnx (a teacher trained here takes raw pixels)" });
    if (t.model === undefined && t.cache !== undefined)
      ctx.addIssue({ code: "custom", path: ["cache"], message: "only used with model (a teacher trained here is cached for later runs; an .onnx or a file of outputs is not trained)" });
    if (t.model !== undefined && t.allowChanceAccuracy !== undefined)
      ctx.addIssue({ code: "custom", path: ["allowChanceAccuracy"], message: "only used with onnx or softTargets (a teacher trained here is judged against the label-only baseline)" });
    if (t.softTargets === undefined)
      for (const key of ["id", "scores"] as const)
        if (t[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "only used with softTargets (a file of the teacher's outputs)" });
    if (t.softTargets !== undefined)
      for (const key of ["output", "preprocessing"] as const)
        if (t[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "only used with onnx (a soft-target file holds the scores themselves)" });
  })
  .transform((t) => t as TeacherSpec);

const studentSchema = obj({
  model: modelSchema,
  train: trainSchema,
  /** false: train the label-only baseline in this run even when the cache holds it, and do not cache it (default true). */
  cacheBaseline: z.boolean(num("true or false")).optional(),
});

export type StudentSpec = z.output<typeof studentSchema>;

const optionalPositiveInt = () => positiveInt().nullable().default(null);

export const DATA_FORMATS = ["idx", "image-folder", "csv", "jsonl"] as const;

const paths = () => z.union([str("a path"), z.array(str("a path"), num("a list of paths")).min(1, num("at least one path"))], { error: "expected a path or a list of paths" });

/**
 * A transfer source without labels: the teacher labels it, the student learns from those soft
 * labels next to the labelled data. One of: `path` (a folder of images, an IDX images file, a
 * .jsonl/.txt file of texts), `dataset` (a preset's images), `restOfTrain` (the training pool
 * beyond data.trainLimit, its labels withheld).
 */
const unlabeledSourceSchema = obj({
  path: str("a file or folder path").optional(),
  dataset: enumOf(["mnist", "fashion-mnist"]).optional(),
  /** With dataset: which of the preset's splits. */
  split: enumOf(["train", "test"]).optional(),
  restOfTrain: z.literal(true, num("true")).optional(),
  /** The first `limit` samples only. */
  limit: positiveInt().optional(),
  /** Images: 255 − pixel (a quick way to see what a shifted transfer set looks like). */
  invert: bool().optional(),
}).superRefine((u, ctx) => {
  const given = (["path", "dataset", "restOfTrain"] as const).filter((k) => u[k] !== undefined);
  if (given.length !== 1) ctx.addIssue({ code: "custom", path: [], message: `expected exactly one of path, dataset, restOfTrain${given.length ? ` (got ${given.join(" and ")})` : ""}` });
  if (u.split !== undefined && u.dataset === undefined) ctx.addIssue({ code: "custom", path: ["split"], message: "only used with dataset" });
  if (u.invert && u.restOfTrain) ctx.addIssue({ code: "custom", path: ["invert"], message: "only used with path or dataset (the rest of the training pool is used as it is)" });
});

export type UnlabeledSource = z.output<typeof unlabeledSourceSchema>;

const dataSchema = obj({
  /** A preset (IDX files): mnist or fashion-mnist. Or give `format` and `train`/`test` for your own data. */
  dataset: enumOf(["mnist", "fashion-mnist"]).optional(),
  format: enumOf(DATA_FORMATS).optional(),
  /** Presets: a folder holding the IDX files (default: where the npm/Debian package puts them). */
  dir: str("a folder path").nullable().default(null),
  /** Your own data: the training and test sources (folders for image-folder, files for csv and jsonl; csv and jsonl take lists). */
  train: paths().optional(),
  test: paths().optional(),
  /** Instead of test: hold out this share of the training source as the test set (seeded, the same every run). */
  testFraction: unitOpen().optional(),
  /** image-folder: every image is converted to this size and channel count (default: the first image's). */
  image: obj({ width: positiveInt().optional(), height: positiveInt().optional(), channels: z.union([z.literal(1), z.literal(3)], num("1 (grey) or 3 (RGB)")).optional() }).optional(),
  /** csv, jsonl: the column or field holding the class. */
  label: str("a column or field name").optional(),
  /** csv: the numeric feature columns (default: every column but the label). */
  features: z.array(str("a column name"), num("a list of column names")).min(1, num("at least one column")).optional(),
  /** csv, jsonl: the column or field naming each row (its id: a soft-target file's rows can be matched by it). */
  id: str("a column or field name").optional(),
  /** jsonl (and csv with a text column): the field holding the text. */
  text: str("a column or field name").optional(),
  /** Text: tokens kept per text (longer texts are cut) and the vocabulary's size (padding and unknown included). */
  maxTokens: positiveInt().default(64),
  vocabSize: positiveInt().default(20000),
  trainLimit: optionalPositiveInt(),
  testLimit: optionalPositiveInt(),
  /** null: 5,000, or a twelfth of the training pool when that is smaller (so trainLimit alone works). */
  validation: nonNegativeInt().nullable().default(null),
  transfer: enumOf(["labeled", "unlabeled"]).default("labeled"),
  /** Transfer samples without labels, mixed into the distilled students' batches. */
  unlabeled: z.array(unlabeledSourceSchema, num("a list of sources like [{path: extra/}]")).min(1, num("at least one source")).optional(),
  /** With unlabeled: the share of each training batch that carries labels (default: their share of the transfer set). */
  labeledShare: unitOpen().optional(),
  /**
   * Classes left out of the students' training examples (Hinton et al. 2015 §3: no 3s in the transfer
   * set); the teacher still trains on them. Each distilled student is then also evaluated with the
   * omitted classes' output bias raised: by `omittedClassShift` when given, and by a shift estimated
   * from unlabelled inputs.
   */
  transferOmits: z.array(z.union([str("a class label"), z.number().int().nonnegative()]), num("a list of class labels like [\"3\"]")).min(1, num("at least one class")).optional(),
  omittedClassShift: z.number(num("a number")).optional(),
  /**
   * Images: the transfer set gains this many copies of each labelled training image, each shifted
   * by up to `jitter` pixels, labelled by the teacher once and cached like the rest. The distilled
   * students train on them (an epoch is then 1 + copies passes over the images); the teacher and the
   * baseline do not see them.
   */
  jitteredCopies: obj({
    copies: z.number(num("an integer from 1 to 80")).int(num("an integer from 1 to 80")).min(1, num("an integer from 1 to 80")).max(80, num("an integer from 1 to 80")),
    jitter: z.number(num("an integer from 1 to 4")).int(num("an integer from 1 to 4")).min(1, num("an integer from 1 to 4")).max(4, num("an integer from 1 to 4")).default(2),
  }).optional(),
}).superRefine((d, ctx) => {
  const need = (key: string, why: string) => ctx.addIssue({ code: "custom", path: [key], message: `required ${why}` });
  const unused = (key: string, why: string) => ctx.addIssue({ code: "custom", path: [key], message: `only used ${why}` });
  if (d.omittedClassShift !== undefined && d.transferOmits === undefined) unused("omittedClassShift", "with transferOmits (it raises the omitted classes' output bias)");
  if (d.labeledShare !== undefined && d.unlabeled === undefined) unused("labeledShare", "with unlabeled (it sets how batches mix labelled and unlabelled samples)");
  if (d.jitteredCopies && d.jitteredCopies.copies > (2 * d.jitteredCopies.jitter + 1) ** 2 - 1)
    ctx.addIssue({ code: "custom", path: ["jitteredCopies", "copies"], message: `at most ${(2 * d.jitteredCopies.jitter + 1) ** 2 - 1} with jitter ${d.jitteredCopies.jitter} (each copy of an image is shifted differently; there are that many non-zero shifts)` });
  d.unlabeled?.forEach((u, i) => {
    if (u.restOfTrain && d.trainLimit === null) ctx.addIssue({ code: "custom", path: ["unlabeled", i, "restOfTrain"], message: "needs data.trainLimit (the training pool beyond it becomes the unlabelled set)" });
  });
  const format = d.format ?? (d.dataset ? "idx" : undefined);
  if (format === undefined) return ctx.addIssue({ code: "custom", path: [], message: "needs dataset (mnist, fashion-mnist) or format (image-folder, csv, jsonl) with train and test" });
  if (format === "idx") {
    if (!d.dataset) need("dataset", "with format: idx (mnist or fashion-mnist)");
    for (const key of ["train", "test", "testFraction", "label", "features", "text", "image", "id"] as const) if (d[key] !== undefined) unused(key, "with format image-folder, csv or jsonl (a preset's files are found by name; use dir for their folder)");
    return;
  }
  if (d.dataset !== undefined) unused("dataset", `for the presets; with format: ${format} name your data with train and test`);
  if (d.dir !== null) unused("dir", "with a preset dataset (give train and test)");
  if (d.train === undefined) need("train", `with format: ${format}`);
  if (d.test === undefined && d.testFraction === undefined) need("test", `with format: ${format} (or testFraction to hold out part of train)`);
  if (d.test !== undefined && d.testFraction !== undefined) unused("testFraction", "without test (it holds out part of train as the test set)");
  if (format === "image-folder") for (const key of ["train", "test"] as const) if (Array.isArray(d[key])) ctx.addIssue({ code: "custom", path: [key], message: "expected one folder (its sub-folders are the classes)" });
  if (format === "image-folder") {
    if (d.image && (d.image.width === undefined) !== (d.image.height === undefined))
      ctx.addIssue({ code: "custom", path: ["image"], message: "give both width and height (every image is resized to them), or neither (the first image's size)" });
    for (const key of ["label", "features", "text"] as const) if (d[key] !== undefined) unused(key, "with csv or jsonl (an image folder's classes are its sub-folders)");
    if (d.id !== undefined) unused("id", "with csv or jsonl (an image's id is its path in the folder, e.g. 3/img_001.png)");
  } else {
    if (d.image !== undefined) unused("image", "with format: image-folder");
    if (d.label === undefined) need("label", `with format: ${format} (the ${format === "csv" ? "column" : "field"} holding the class)`);
    if (format === "jsonl" && d.text === undefined) need("text", "with format: jsonl (the field holding the text)");
    if (format === "jsonl" && d.features !== undefined) unused("features", "with format: csv");
    if (format === "csv" && d.text !== undefined && d.features !== undefined) unused("features", "for numeric tables (this csv has a text column)");
  }
}).transform((d) => ({ ...d, format: d.format ?? ("idx" as const) }));

export type DataSpec = z.output<typeof dataSchema>;

/**
 * The data's name in results and model metadata: the preset's, else the training source's file or
 * folder name — its parent's when that name only says "train" (data/digits/train.csv → digits).
 */
export function dataName(data: Pick<DataSpec, "dataset" | "train">): string {
  if (data.dataset) return data.dataset;
  const first = Array.isArray(data.train) ? data.train[0]! : data.train ?? "data";
  const own = basename(first).replace(/\.(csv|jsonl|json)$/i, "");
  return /^(train|training)$/i.test(own) ? basename(resolve(dirname(first))) : own;
}

/** The validation split's size: the configured one, else min(5,000, pool / 12). */
export function validationSize(data: DataSpec, trainPool: number): number {
  return data.validation ?? Math.min(5000, Math.floor(trainPool / 12));
}

export type { KdTerm } from "./kd.js";
export { LAYER_TYPES, type LayerSpec, type ModelSpec } from "./model-spec.js";
export type KdSpec = KdBlock<ModelSpec>;

export const kdSchema = makeKdSchema(modelSchema);

// ---- tune (distill tune: the search space and its budget) --------------------------------------

/** A sampled interval (random and halving searches); `log: true` samples evenly in log space. */
const tuneRangeSchema = obj({ min: z.number(num("a number")), max: z.number(num("a number")), log: bool().default(false) }).superRefine((r, ctx) => {
  if (!(r.min < r.max)) ctx.addIssue({ code: "custom", path: ["max"], message: `expected a number above min (${r.min})` });
  if (r.log && r.min <= 0) ctx.addIssue({ code: "custom", path: ["min"], message: "expected a number > 0 with log: true" });
});

const tuneValuesSchema = z.union(
  [z.array(z.union([z.number(), z.string(), z.boolean()]), num("a list of values")).min(1, num("at least one value")), tuneRangeSchema],
  { error: "expected a list of values like [1, 2, 4] or a range like {min: 0.1, max: 0.9}" },
);

export const tuneSchema = obj({
  strategy: enumOf(["grid", "random", "halving"]).default("grid"),
  /** Config key paths (kd.temperature, kd.alpha, student.train.optimizer.lr, …; or temperature, alpha, lr) → values. */
  space: z.record(z.string(), tuneValuesSchema, num("a mapping of config keys to values")).refine((s) => Object.keys(s).length > 0, num("at least one key to search (e.g. kd.temperature: [1, 2, 4])")),
  /** random: settings sampled; halving: settings in the first rung (default: the whole grid, or 9). */
  trials: positiveInt().optional(),
  /** Student epochs per trial (halving: of the first rung); default: student.train.epochs. */
  epochs: positiveInt().optional(),
  /** halving: keep the best 1/eta of a rung, train them eta× longer. */
  eta: z.number(num("an integer ≥ 2")).int(num("an integer ≥ 2")).min(2, num("an integer ≥ 2")).default(3),
  /** No trial starts once this much is spent (student epochs summed over trials, or minutes). */
  budget: obj({ epochs: positiveInt().optional(), minutes: positiveNumber().optional() })
    .refine((b) => b.epochs !== undefined || b.minutes !== undefined, "expected epochs or minutes, e.g. {epochs: 60}")
    .optional(),
  /** The winner and the config's own setting are each retrained with this many seeds and tested. */
  seeds: positiveInt().default(3),
  /** Trials at once on this machine (default: one per core, one onnxruntime thread each). */
  concurrency: positiveInt().optional(),
  /** Seed of the random and halving samplers. */
  seed: nonNegativeInt().default(0),
}).superRefine((t, ctx) => {
  if (t.strategy === "grid" && t.trials !== undefined)
    ctx.addIssue({ code: "custom", path: ["trials"], message: "only used with strategy random or halving (a grid runs every combination)" });
});

export type TuneSpec = z.output<typeof tuneSchema>;

/** `shrink:` — read only by `distill shrink`: a ladder given as a list of models instead of multipliers. */
export const shrinkSchema = obj({
  models: z
    .array(obj({ name: str("a model name"), model: modelSchema }), num("a list like [{name: small, model: {layers: [...]}}]"))
    .min(1, num("at least one model"))
    .superRefine((ms, ctx) => {
      ms.forEach((m, i) => {
        if (ms.findIndex((o) => o.name === m.name) !== i) ctx.addIssue({ code: "custom", path: [i, "name"], message: `the name ${JSON.stringify(m.name)} is used twice` });
      });
    }),
});

// ---- whole config -----------------------------------------------------------------------------

export const seedsSchema = z
  .union([positiveInt(), z.array(nonNegativeInt(), num("a list of seeds")).min(1, num("at least one seed"))], {
    error: "expected a count K (seeds 0..K-1) or a list like [0, 1, 2]",
  })
  .superRefine((s, ctx) => {
    if (Array.isArray(s) && new Set(s).size !== s.length) ctx.addIssue({ code: "custom", message: "expected distinct seeds" });
  })
  .transform((s) => (Array.isArray(s) ? s : Array.from({ length: s }, (_, i) => i)));

export const NAME_RE = /^[A-Za-z0-9._-]+$/;

export const distillConfigSchema = obj({
  name: z.string(num("a name")).regex(NAME_RE, num('a name of letters, digits, ".", "_" and "-"')),
  output: str("a folder path").optional(),
  seeds: seedsSchema.default([0]),
  data: dataSchema,
  /** Absent only when no term learns from a separate teacher (ema-teacher: the model's own average). */
  teacher: teacherSchema.optional(),
  student: studentSchema,
  kd: kdSchema,
  /** Keep the epoch checkpoints of finished stages (only a stage in progress needs its own to resume). */
  keepCheckpoints: z.boolean(num("true or false")).default(false),
  /** After the run: the distilled student quantized each way listed, evaluated beside the others. */
  compress: obj({
    quantize: z.array(enumOf(["dynamic", "static", "fp16"]), num("a list like [dynamic, fp16]")).min(1, num("at least one of dynamic, static, fp16")),
    /** static: training samples the activation ranges are calibrated on. */
    calibrationSamples: positiveInt().default(512),
  }).optional(),
  /** Only read by `distill tune`; a run ignores it. */
  tune: tuneSchema.optional(),
  /** Only read by `distill shrink`; a run ignores it. */
  shrink: shrinkSchema.optional(),
})
  .superRefine((c, ctx) => {
    const chosen = assistantsOf(c);
    if (typeof chosen === "string") ctx.addIssue({ code: "custom", path: ["kd", "assistants"], message: chosen });
    if (!c.teacher) {
      const resolved = resolveKd(c.kd, c.data.transfer !== "unlabeled");
      const learner = resolved.terms.find((t) => termNeedsTeacher(t));
      const why = learner ? `kd: ${learner.method} learns from a teacher`
        : c.kd.assistants || (c.kd.generations ?? 1) > 1 ? "kd: a chain of teachers starts from one"
        : c.kd.teachers ? "kd.teachers: an ensemble starts from the main teacher"
        : c.data.transferOmits ? "data.transferOmits: the omitted classes' bias shift is estimated against the teacher"
        : c.data.unlabeled && resolved.terms.every((t) => t.method === "cross-entropy") ? "data.unlabeled: unlabelled samples are labelled by the teacher"
        : undefined;
      if (why) ctx.addIssue({ code: "custom", path: ["teacher"], message: `required (${why}); only a run whose terms need no separate teacher (e.g. ema-teacher) may leave it out` });
    }
    // Mixup builds each labelled term twice (weighted-terms.ts); ema-teacher's averaged weights are state of its term.
    if (c.student.train.mixup !== undefined && resolveKd(c.kd, true).terms.some((t) => t.method === "ema-teacher"))
      ctx.addIssue({ code: "custom", path: ["student", "train", "mixup"], message: "ema-teacher keeps its averaged model inside its loss term, which mixup's two label sets would build twice; leave mixup out with ema-teacher" });
    const teaching = consistentTeachingIssue(c);
    if (teaching) ctx.addIssue({ code: "custom", path: ["kd", "teaching"], message: teaching });
    if (c.data.transfer !== "unlabeled") return;
    const resolved = resolveKd(c.kd, false);
    for (const i of termsNeedingLabels(resolved as KdSpec))
      ctx.addIssue({ code: "custom", path: ["kd"], message: `${resolved.terms[i]!.method} needs labels, but data.transfer is unlabeled` });
  })
  .transform((c) => ({
  name: c.name,
  output: c.output ?? defaultRunDir(c),
  keepCheckpoints: c.keepCheckpoints,
  ...(c.compress ? { compress: c.compress } : {}),
  seeds: c.seeds,
  data: c.data,
  ...(c.teacher ? { teacher: c.teacher } : {}),
  student: c.student,
  // Without labels there is no cross-entropy term to weigh, so all of logit KD's loss is distillation.
  kd: resolveKd(c.kd, c.data.transfer !== "unlabeled", assistantsOf(c) as ModelSpec[] | undefined),
  ...(c.tune ? { tune: c.tune } : {}),
  ...(c.shrink ? { shrink: c.shrink } : {}),
}));

/**
 * Why `kd.teaching: consistent` cannot be done with this config, or undefined. It runs one teacher
 * model on each training batch, so it needs one (an .onnx or a model trained here), a term that
 * learns from it, and no chain or ensemble (those teach through cached soft targets).
 */
function consistentTeachingIssue(c: { teacher?: TeacherSpec | undefined; kd: z.output<typeof kdSchema>; data: { transfer: string } }): string | undefined {
  if (c.kd.teaching !== "consistent") return undefined;
  if (!c.teacher) return "consistent runs the teacher on each training batch, but there is no teacher (ema-teacher's average already sees each batch as the student does); leave it out";
  if (c.teacher.softTargets !== undefined)
    return "consistent runs the teacher on each augmented batch, but teacher.softTargets is a file of its outputs on the unaugmented samples; use teaching: cached, or an .onnx or trained teacher";
  if (!resolveKd(c.kd, c.data.transfer !== "unlabeled").terms.some((t) => termNeedsTeacher(t))) return "consistent runs the teacher on each batch, but no term learns from the teacher";
  if (c.kd.teachers) return "consistent runs one teacher on each batch; kd.teachers averages several teachers' cached soft targets: use teaching: cached with them";
  if (c.kd.assistants || (c.kd.generations ?? 1) > 1) return `consistent runs the teacher on the student's batches; a chain of teachers (kd.${c.kd.assistants ? "assistants" : "generations"}) passes cached soft targets from link to link: use teaching: cached with it`;
  return undefined;
}

/** `kd.assistants: {count: n}` chosen between teacher and student (or why not); undefined for a list or none. */
function assistantsOf(c: { teacher?: TeacherSpec | undefined; student: StudentSpec; kd: z.output<typeof kdSchema> }): ModelSpec[] | string | undefined {
  const a = c.kd.assistants;
  return a && !Array.isArray(a) && c.teacher ? chooseAssistants(c.teacher.model, c.student.model, a.count) : undefined;
}

/** The config after validation: defaults filled, seeds expanded to a list, output resolved. */
export type DistillConfig = z.output<typeof distillConfigSchema>;
/** What a YAML file may contain (before defaults). */
export type DistillConfigInput = z.input<typeof distillConfigSchema>;

/** The run folder: `output` when given, else runs/<name> (relative to the working directory). */
export function defaultRunDir(config: { name: string; output?: string | undefined }): string {
  return config.output ?? join("runs", config.name);
}
