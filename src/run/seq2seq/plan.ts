// A sequence-to-sequence run's plan: the config, the data with its limits and lengths, the step
// buckets, the models, and the teacher the user brings (an .onnx, or a file of its outputs), all
// read and checked before any training, so a config error costs nothing and writes nothing.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Seq2SeqConfig, Seq2SeqKdMethod, Seq2SeqModelSpec } from "../../config/seq2seq.js";
import { UserError } from "../../errors.js";
import { loadSequenceSplits, type SequenceData } from "../../data/sequence/load.js";
import type { SequenceEntry } from "../../data/sequence/entries.js";
import { saveSymbolVocabulary, symbolIds, type SymbolVocabulary } from "../../data/sequence/symbols.js";
import type { IdPair } from "../../distill/seq2seq-stage.js";
import { pairKey, readSeq2SeqTeacherFile } from "../../distill/seq2seq-teacher-file.js";
import type { RunFolder } from "../../distill/run-folder.js";
import type { TopK } from "../../eval/seq2seq-decode.js";
import { importSeq2SeqOnnx, type Seq2SeqVocabularies } from "../../nn/seq2seq-export.js";
import type { Seq2SeqSpec } from "../../nn/seq2seq.js";
import { writeFileAtomic } from "../../util/fs.js";
import { createProgress, type Progress } from "../../util/progress.js";
import { TEACHER_STORES, type TeacherStore } from "./files.js";

export interface Seq2SeqRunOptions {
  /** The YAML file the config came from (recorded in run.json, named in messages). */
  configPath: string;
  quiet: boolean;
  progress?: Progress;
  /** Aborting stops the run at its next safe point (a RunAbortedError); the folder resumes. */
  signal?: AbortSignal;
  /** Student stages trained at once, each in a child process (student-jobs.ts); default 1: one after another in this process. */
  jobs?: number;
}

/** A pair as the data has it (for matching a file teacher's rows) beside its ids. */
export interface TextPair {
  source: string;
  target: string[];
}

export interface Seq2SeqPlan {
  config: Seq2SeqConfig;
  opts: Seq2SeqRunOptions;
  progress: Progress;
  /** The data after data.trainLimit/validationLimit/testLimit. */
  data: SequenceData;
  vocab: Seq2SeqVocabularies;
  /** The models' longest source and target (<bos> or <eos> counted). */
  lengths: { source: number; target: number };
  buckets: [number, number][];
  /** Gold training pairs that fit the lengths, and the same as text. */
  trainPairs: IdPair[];
  trainPairTexts: TextPair[];
  /** Distinct training sources that fit (what the teacher decodes for sequence-level targets). */
  trainSources: { text: string; ids: number[] }[];
  validation: { sources: number[][]; references: number[][][] };
  /** Test entries and their source ids; null where the source is longer than the models take (scored as an error). */
  test: { entries: SequenceEntry[]; sources: (number[] | null)[] };
  /** What the lengths left out: training pairs, validation entries, test entries (scored as errors). */
  leftOut: { trainPairs: number; validationEntries: number; testEntries: number };
  methods: Seq2SeqKdMethod[];
  teacherSeed: number;
  studentSpec: Seq2SeqSpec;
  /** A teacher trained here. */
  teacherSpec?: Seq2SeqSpec;
  /**
   * teacher.outputs, read and checked on a run's first start (once stored in the run folder, a
   * resume reads the stores instead): top-k per training pair, or an output per training source.
   */
  fileTargets?: { word?: TopK[]; sequences?: number[][] };
}

/** Data, lengths and models; everything a config can get wrong fails here, before any training. */
export function makeSeq2SeqPlan(run: RunFolder, config: Seq2SeqConfig, opts: Seq2SeqRunOptions): Seq2SeqPlan {
  const where = opts.configPath;
  const data = loadSequenceSplits(config.data);
  const limits = config.data;
  const vocab = { source: data.sourceVocabulary, target: data.targetVocabulary };
  const longest = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), 0);
  const lengths = {
    source: limits.maxSourceLength ?? longest(data.train.map((e) => e.source.length)),
    target: (limits.maxTargetLength ?? longest(data.train.flatMap((e) => e.targets.map((t) => t.length)))) + 1,
  };
  const fits = (source: readonly string[], target?: readonly string[]) => source.length <= lengths.source && (target === undefined || target.length + 1 <= lengths.target);
  // trainingPairs' pairs, each with its entry's text (a file teacher's rows are matched by it).
  const allPairs = data.train.flatMap((e) => e.targets.map((target) => ({ source: e.source, target, text: e.text })));
  const kept = allPairs.filter((p) => fits(p.source, p.target));
  if (kept.length === 0) throw new UserError(where, `data.maxSourceLength/maxTargetLength: no training pair fits ${lengths.source} source and ${lengths.target - 1} target symbols`);
  const trainPairs = kept.map((p) => ({ source: symbolIds(p.source, vocab.source), target: symbolIds(p.target, vocab.target) }));
  const validationKept = data.validation.filter((e) => fits(e.source));
  const spec = (m: Seq2SeqModelSpec): Seq2SeqSpec => ({
    dims: m.dims, heads: m.heads, ffn: m.ffn, encoderLayers: m.encoderLayers, decoderLayers: m.decoderLayers, dropout: m.dropout,
    sourceVocab: vocab.source.symbols.length, targetVocab: vocab.target.symbols.length, sourceLength: lengths.source, targetLength: lengths.target,
  });
  const plan: Seq2SeqPlan = {
    config, opts, data, vocab, lengths,
    progress: opts.progress ?? createProgress({ quiet: opts.quiet }),
    buckets: bucketsFor(config, trainPairs, lengths, where),
    trainPairs,
    trainPairTexts: kept.map((p) => ({ source: p.text, target: p.target })),
    trainSources: data.train.filter((e) => fits(e.source)).map((e) => ({ text: e.text, ids: symbolIds(e.source, vocab.source) })),
    validation: { sources: validationKept.map((e) => symbolIds(e.source, vocab.source)), references: validationKept.map((e) => e.targets.map((t) => symbolIds(t, vocab.target))) },
    test: { entries: data.test, sources: data.test.map((e) => (fits(e.source) ? symbolIds(e.source, vocab.source) : null)) },
    leftOut: { trainPairs: allPairs.length - kept.length, validationEntries: data.validation.length - validationKept.length, testEntries: data.test.filter((e) => !fits(e.source)).length },
    methods: config.kd.method,
    teacherSeed: config.seeds[0]!,
    studentSpec: spec(config.student.model),
    ...(config.teacher.model ? { teacherSpec: spec(config.teacher.model) } : {}),
  };
  if (config.teacher.outputs !== undefined && !TEACHER_STORES.every((s) => !needsStore(plan, s.method) || existsSync(join(run.dir, s.file)))) plan.fileTargets = readFileTargets(plan);
  return plan;
}

/** Writes what the plan read from elsewhere into the run folder: the .onnx teacher's copy and the vocabularies. Checked first, so a wrong teacher leaves nothing behind. */
export function attachSeq2SeqTeacher(plan: Seq2SeqPlan, run: RunFolder): void {
  const t = plan.config.teacher;
  let copy: Uint8Array | undefined;
  if (t.onnx !== undefined && !existsSync(run.teacherFile)) {
    copy = readTeacherOnnx(t.onnx);
    checkOnnxTeacher(plan, copy, t.onnx);
  }
  if (copy) writeFileAtomic(run.teacherFile, copy);
  saveSymbolVocabulary(join(run.dir, "source-vocabulary.json"), plan.vocab.source);
  saveSymbolVocabulary(join(run.dir, "target-vocabulary.json"), plan.vocab.target);
}

/** Which stored teacher targets a method needs: word → top-k on the gold pairs; sequence → beam outputs; both → both of those on the outputs. */
export function needsStore(plan: Seq2SeqPlan, store: TeacherStore): boolean {
  const m = plan.methods;
  if (store === "word") return m.includes("word");
  if (store === "sequence") return m.includes("sequence") || m.includes("both");
  return m.includes("both");
}

/** A seeded sample of `limit` entries, in their order (all of them without a limit). */
/**
 * Step-graph lengths: the given buckets, or the 60th and 97th percentile lengths of the training
 * pairs (source, and target + 1); the models' longest always last. Most words are short, so most
 * steps run on the small graphs.
 */
function bucketsFor(config: Seq2SeqConfig, pairs: readonly IdPair[], lengths: { source: number; target: number }, where: string): [number, number][] {
  const longest: [number, number] = [lengths.source, lengths.target];
  let chosen: [number, number][];
  if (config.buckets) {
    config.buckets.forEach(([ls, lt], i) => {
      if (ls > lengths.source || lt > lengths.target) throw new UserError(where, `buckets[${i}]: expected lengths up to [${lengths.source}, ${lengths.target}] (the models' longest source, and target with <eos>), got [${ls}, ${lt}]`);
    });
    chosen = config.buckets.map(([a, b]) => [a, b]);
  } else {
    const quantile = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
    chosen = [0.6, 0.97].map((q) => [quantile(pairs.map((p) => p.source.length), q), quantile(pairs.map((p) => p.target.length + 1), q)] as [number, number]);
  }
  // Sorted, the models' longest comes last (every bucket is within it); repeats add a graph and hold nothing.
  const all = [...chosen, longest].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return all.filter((b, i) => all.findIndex((c) => c[0] === b[0] && c[1] === b[1]) === i);
}

function readTeacherOnnx(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, `teacher.onnx: ${code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`}`);
  }
}

/** A distill seq2seq export whose vocabularies are the data's and whose lengths hold the training pairs. */
function checkOnnxTeacher(plan: Seq2SeqPlan, bytes: Uint8Array, path: string): void {
  let imported: ReturnType<typeof importSeq2SeqOnnx>;
  try {
    imported = importSeq2SeqOnnx(bytes, path);
  } catch (e) {
    const message = (e as Error).message;
    throw new UserError(path, `teacher.onnx: ${message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message}`);
  }
  for (const side of ["source", "target"] as const) {
    const difference = vocabularyDifference(imported.vocab[side], plan.vocab[side]);
    if (difference) throw new UserError(path, `teacher.onnx: its ${side} vocabulary is not the data's (${difference}); a teacher must number symbols as the training data does`);
  }
  const spec = imported.model.spec;
  if (spec.sourceLength < plan.lengths.source)
    throw new UserError(path, `teacher.onnx: takes sources of up to ${spec.sourceLength} symbols, but training sources go up to ${plan.lengths.source}; set data.maxSourceLength: ${spec.sourceLength}`);
  if (plan.methods.includes("word") && spec.targetLength < plan.lengths.target)
    throw new UserError(path, `teacher.onnx: takes targets of up to ${spec.targetLength - 1} symbols, but training targets go up to ${plan.lengths.target - 1}; set data.maxTargetLength: ${spec.targetLength - 1}`);
}

function vocabularyDifference(a: SymbolVocabulary, b: SymbolVocabulary): string | undefined {
  if (a.split !== b.split) return `symbols split by ${a.split}, the data's by ${b.split}`;
  const i = a.symbols.findIndex((s, j) => s !== b.symbols[j]);
  if (i >= 0 || a.symbols.length !== b.symbols.length) {
    const at = i >= 0 ? i : Math.min(a.symbols.length, b.symbols.length);
    return `${a.symbols.length} symbols against ${b.symbols.length}; id ${at} is ${JSON.stringify(a.symbols[at] ?? null)}, the data's ${JSON.stringify(b.symbols[at] ?? null)}`;
  }
  return undefined;
}

/** teacher.outputs: read, matched to the training pairs or sources, and checked against the methods. */
function readFileTargets(plan: Seq2SeqPlan): NonNullable<Seq2SeqPlan["fileTargets"]> {
  const path = plan.config.teacher.outputs!;
  const file = readSeq2SeqTeacherFile(path, plan.vocab.target);
  const serves = file.kind === "topk" ? "word" : "sequence";
  const wrong = plan.methods.find((m) => m !== serves);
  if (wrong)
    throw new UserError(path, `teacher.outputs: ${file.kind === "topk" ? "a file of top-k distributions on given targets serves kd.method word only" : "a file of whole output sequences serves kd.method sequence only (word-level distillation needs the teacher's distributions)"}, but kd.method has ${wrong}`);
  const missing = (what: string, count: number, total: number, needed: string) =>
    new UserError(path, `teacher.outputs: no row for ${what} (${count} of ${total} ${needed} have none); the file must cover every one`);
  if (file.kind === "topk") {
    const k = plan.config.kd.topK;
    if (file.k < k) throw new UserError(path, `teacher.outputs: gives ${file.k} symbols per position, fewer than kd.topK (${k}); set kd.topK: ${file.k}`);
    const list = plan.trainPairTexts.map((p) => file.distributions.get(pairKey(p.source, p.target)));
    const absent = list.map((d, i) => (d ? -1 : i)).filter((i) => i >= 0);
    if (absent.length) {
      const p = plan.trainPairTexts[absent[0]!]!;
      throw missing(`the training pair ${JSON.stringify(p.source)} → ${JSON.stringify(p.target.join(" "))}`, absent.length, list.length, "training pairs");
    }
    return { word: list as TopK[] };
  }
  const outputs = plan.trainSources.map((s) => file.outputs.get(s.text)?.ids);
  const absent = outputs.map((o, i) => (o ? -1 : i)).filter((i) => i >= 0);
  if (absent.length) throw missing(`the training source ${JSON.stringify(plan.trainSources[absent[0]!]!.text)}`, absent.length, outputs.length, "training sources");
  return { sequences: outputs as number[][] };
}
