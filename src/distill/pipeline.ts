// `distill run`: config → stages → artefacts in the run folder.
//
//   1. teacher: trained here (its own recipe), loaded from an .onnx file, or a file of its outputs; frozen from then on
//   2. teacher outputs: its logits (and taps the terms name) on the transfer set, computed once, cached
//   3. baseline: the student trained on hard labels only, same budget             } per seed
//   4. student: the same student trained with the configured loss terms           }
//   5. evaluation on the test set (quality, size, latency), results.json, report.html
//
// Each stage is one function below; they meet through the run folder (run-folder.ts). A finished
// stage is never redone, a stage in progress resumes from its last epoch checkpoint.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { dataName, type DistillConfig } from "../config/schema.js";
import { loadConfig } from "../config/load.js";
import { gatherLabels, imageShape, sampleSize, type Dataset } from "../data/sample-set.js";
import { refuseTeacherAtChance, teacherReport, withBaseline } from "../eval/teacher-report.js";
import { domainShift, inputStatistic, type ShiftReport } from "../eval/domain-shift.js";
import { estimateBiasShift, withLogitShift } from "../eval/bias-correction.js";
import { exportOnnx } from "../nn/model.js";
import { exportTextOnnx } from "../nn/text-export.js";
import { dataMetadata } from "../data/load.js";
import { RunAbortedError, UserError } from "../errors.js";
import { formatShape, ShapeError, type Shape } from "../engine/graph.js";
import { evaluateClassifier, OnnxClassifier, readModelFile } from "../eval/evaluate.js";
import { timeRunModels } from "../eval/run-timing.js";
import { machineFacts, runDetails } from "../eval/details.js";
import { accuracy, summarize, topOneAgreement } from "../eval/metrics.js";
import { averageSoftTargets } from "./teacher-ensemble.js";
import type { EpochMetric, ModelMetrics, ModelResult, RunResults } from "../eval/types.js";
import type { Model } from "../nn/model.js";
import { buildModel } from "../nn/spec.js";
import { writeReport } from "../report/html.js";
import { writeFileAtomic } from "../util/fs.js";
import { createProgress, type Progress } from "../util/progress.js";
import { planData, type DataPlan } from "./data-plan.js";
import { CONFIG_FILE, RUN_FORMAT, RunFolder, STATE_FILE, type RunState } from "./run-folder.js";
import { defaultCacheDir, teacherSoftTargets } from "./soft-targets.js";
import { checkTermTaps, modelTapShapes } from "./tap-check.js";
import { MAX_TAP_CACHE_BYTES, probeTapShapes, TeacherOutputs, teacherTapTargets, teacherTapsOf, type CachedTensor } from "./teacher-outputs.js";
import { prepareTeacher, withDataRecord, type TeacherInterface } from "./teacher-adapter.js";
import { loadFileTeacher, type FileTeacher, type SoftTargetFileSpec } from "./soft-target-file.js";
import { Interrupted, trainStage, type StageJob } from "./train-stage.js";
import { quantizeStudent, variantRole } from "../compress/stage.js";
import { WeightedTerms } from "./weighted-terms.js";

export interface PipelineOptions {
  /** Path of the YAML file the config came from (recorded in run.json). */
  configPath: string;
  quiet: boolean;
  /** Soft-target cache folder (default: $DISTILL_CACHE or .cache/distill). */
  cacheDir?: string;
  /** Tests: stop as if interrupted once this many epochs of some stage are checkpointed. */
  stopAfterEpochs?: number;
  progress?: Progress;
  /** Train only the distilled student (a benchmark that measured the baseline in an earlier run). */
  skipBaseline?: boolean;
  /**
   * Aborting stops the run at its next safe point (between optimizer steps, or between stages) with
   * a RunAbortedError; the run folder keeps everything finished, for `distill resume`.
   */
  signal?: AbortSignal;
}

export async function runDistillation(config: DistillConfig, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  const runDir = config.output;
  if (existsSync(runDir) && !statSync(runDir).isDirectory()) throw new UserError(runDir, "exists and is not a folder; choose a run folder with --output");
  if (existsSync(runDir) && readdirSync(runDir).length > 0)
    throw new UserError(runDir, `the run folder already exists and is not empty; continue it with \`distill resume ${runDir}\`, or choose another with --output`);
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, CONFIG_FILE), `# resolved from ${opts.configPath} (defaults filled in)\n` + toYaml(config));
  const state: RunState = {
    formatVersion: RUN_FORMAT, configPath: opts.configPath, createdAt: new Date().toISOString(), codeVersion: codeVersion(), activeSeconds: 0,
    ...(opts.skipBaseline ? { skipBaseline: true } : {}),
  };
  writeFileAtomic(join(runDir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
  try {
    return await execute(runDir, config, state, opts);
  } catch (e) {
    // Failed before any stage produced anything (bad data, shapes, a teacher that outputs NaN):
    // leave no run folder behind, so fixing the config and running again just works. A copied
    // teacher file is no progress; a checkpoint or a finished stage is, and stays for `resume`.
    const progressMade = existsSync(join(runDir, "stages")) || existsSync(join(runDir, "checkpoints"));
    if (!progressMade && !(e instanceof Interrupted) && !(e instanceof RunAbortedError)) rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
}

export async function resumeDistillation(runDir: string, opts: { quiet: boolean; cacheDir?: string; progress?: Progress; signal?: AbortSignal }): Promise<{ runDir: string; results: RunResults }> {
  const statePath = join(runDir, STATE_FILE);
  if (!existsSync(statePath)) throw new UserError(runDir, `not a run folder (no ${STATE_FILE}); start one with \`distill run <config>\``);
  let state: RunState;
  try {
    state = JSON.parse(readFileSync(statePath, "utf8")) as RunState;
  } catch (e) {
    throw new UserError(statePath, `not valid JSON (${(e as Error).message})`);
  }
  if (!state || typeof state !== "object" || typeof state.configPath !== "string") throw new UserError(statePath, "not a distill run state (no configPath)");
  const format = state.formatVersion ?? 1;
  if (format !== RUN_FORMAT)
    throw new UserError(statePath, `run folder format ${format} was written by distill ${state.codeVersion ?? "(unknown version)"}; this distill reads format ${RUN_FORMAT}: resume it with the version that wrote it`);
  // Re-validated: the resolved config is written by us, but a hand edit should fail here, clearly.
  const config = loadConfig(join(runDir, CONFIG_FILE));
  return execute(runDir, { ...config, output: runDir }, state, { ...opts, configPath: state.configPath, ...(state.skipBaseline ? { skipBaseline: true } : {}) });
}

async function execute(runDir: string, config: DistillConfig, state: RunState, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  // Signals belong to the caller (the CLI turns Ctrl-C and SIGTERM into an abort): a library must
  // not end its caller's process. Every file is written atomically, so wherever the run stops, the
  // folder resumes.
  try {
    return await executeStages(new RunFolder(runDir, state), config, opts);
  } catch (e) {
    if (opts.signal?.aborted) throw new RunAbortedError(runDir, `distill resume ${runDir}`, opts.signal.reason);
    throw e;
  }
}

/** What every stage reads: the config, the data and its split, how to build the models. */
interface Plan extends DataPlan {
  config: DistillConfig;
  opts: PipelineOptions;
  progress: Progress;
  teacherSeed: number;
  studentModel(): Model;
  teacherModel(): Model;
  /** The distilled student's loss terms. */
  studentTerms: WeightedTerms;
  /** Teacher taps the terms need, with their per-sample shapes (checked before training). */
  teacherTapShapes: Map<string, number[]>;
  /** A user's .onnx teacher, loaded and checked (only on the run's first start). */
  userTeacher?: OnnxClassifier;
  /** teacher.softTargets: the file read and checked against the data (from the run folder's copy on a resume). */
  fileTeacher?: FileTeacher;
  /** Teacher assistants and born-again generations, in teaching order (empty: the teacher teaches the student). */
  chain: { stage: string; model(): Model }[];
  /** What the distilled stages (student, chain links) train on: the labelled examples, mixed with unlabelled ones when there are. */
  distilledData: Pick<StageJob, "trainIndices" | "mix">;
}

async function executeStages(run: RunFolder, config: DistillConfig, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  // Between stages is a safe point; inside one, training checks the signal before every step.
  const stopIfAborted = () => {
    if (opts.signal?.aborted) throw new Interrupted("stopped by its AbortSignal");
  };
  const plan = await makePlan(run, config, opts);
  stopIfAborted();
  await trainTeacher(plan, run);
  stopIfAborted();
  const outputs = await teacherOutputs(plan, run);
  stopIfAborted();
  const teacher = await trainChain(plan, run, outputs);
  stopIfAborted();
  await trainStudents(plan, run, teacher);
  stopIfAborted();
  const results = await evaluate(plan, run);
  writeFileAtomic(join(run.dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  writeReport(run.dir);
  // Every stage is finished and exported: its checkpoints can no longer be resumed from.
  if (!config.keepCheckpoints) rmSync(join(run.dir, "checkpoints"), { recursive: true, force: true });
  plan.progress.log(summaryLine(results));
  return { runDir: run.dir, results };
}

/** Data, split and models; everything a config can get wrong fails here, before any training. */
async function makePlan(run: RunFolder, config: DistillConfig, opts: PipelineOptions): Promise<Plan> {
  const progress = opts.progress ?? createProgress({ quiet: opts.quiet });
  const tasks = new Map<string, ReturnType<Progress["task"]>>();
  const data = await planData(config, opts.configPath, {
    ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}),
    onProgress: (split, done, total) => {
      const task = tasks.get(split) ?? tasks.set(split, progress.task(`decode ${split} images`, total)).get(split)!;
      task.update(done);
      if (done === total) task.finish(`${total} images`);
    },
  });
  const { dataset, labeled, geometry } = data;
  const studentModel = () => buildModel(config.student.model, dataset.classLabels, geometry);
  const teacherSpec = config.teacher?.model;
  const teacherModel = () => buildModel(teacherSpec!, dataset.classLabels, geometry);
  // Impossible shapes fail here, before any training, naming the model and the layer.
  checkBuilds(opts.configPath, "student.model", studentModel);
  if (teacherSpec) checkBuilds(opts.configPath, "teacher.model", teacherModel);
  const plan: Plan = {
    config, opts, ...data,
    progress,
    teacherSeed: config.seeds[0]!,
    studentModel, teacherModel,
    studentTerms: new WeightedTerms(config.kd.terms, labeled),
    teacherTapShapes: new Map(),
    distilledData: { trainIndices: data.trainIndices },
    chain: [
      ...(config.kd.assistants ?? []).map((spec, i) => ({ stage: `assistant${i + 1}`, model: () => buildModel(spec, dataset.classLabels, geometry) })),
      ...Array.from({ length: (config.kd.generations ?? 1) - 1 }, (_, i) => ({ stage: `generation${i + 1}`, model: studentModel })),
    ],
  };
  plan.distilledData = distilledData(plan);
  (config.kd.assistants ?? []).forEach((spec, i) => checkBuilds(opts.configPath, `kd.assistants[${i}]`, () => buildModel(spec, dataset.classLabels, geometry)));
  if (plan.chain.length && (plan.studentTerms.teacherTaps.length || plan.studentTerms.studentTaps.length))
    throw new UserError(opts.configPath, `kd.${config.kd.assistants ? "assistants" : "generations"}: a chain of teachers passes on logits only, but a term taps layers (${[...new Set([...plan.studentTerms.teacherTaps, ...plan.studentTerms.studentTaps])].join(", ")})`);
  const userSpec = config.teacher;
  const fileTeacherAt = (config.kd.teachers ?? []).findIndex((t) => t.softTargets !== undefined);
  const fileField = userSpec?.softTargets !== undefined ? "teacher.softTargets" : fileTeacherAt >= 0 ? `kd.teachers[${fileTeacherAt}].softTargets` : undefined;
  if (config.data.jitteredCopies && fileField)
    throw new UserError(opts.configPath, `data.jitteredCopies: the copies need a teacher that can label them (an .onnx or a trained one), but ${fileField} holds rows for the original samples only; leave out the copies, or that teacher`);
  let fileCopy: [string, Uint8Array] | undefined;
  if (userSpec?.softTargets !== undefined) {
    const taps = plan.studentTerms.teacherTaps;
    if (taps.length)
      throw new UserError(opts.configPath, `kd: a term taps the teacher's layers (${taps.join(", ")}), but teacher.softTargets is a file of its outputs, without layers; use an .onnx teacher, or terms on its logits only`);
    const copy = run.softTargetsFile(userSpec.softTargets);
    plan.fileTeacher = openFileTeacher(plan, userSpec, "teacher", existsSync(copy) ? copy : undefined);
    if (!existsSync(copy)) fileCopy = [copy, readFileSync(userSpec.softTargets)];
  }
  if (userSpec?.onnx !== undefined && !existsSync(run.teacherFile)) plan.userTeacher = await loadUserTeacher(plan, userSpec);
  try {
    await checkTaps(plan, run);
  } catch (e) {
    await plan.userTeacher?.dispose();
    throw e;
  }
  const extraTeachers = await checkExtraTeachers(plan, run);
  if (plan.userTeacher) writeFileAtomic(run.teacherFile, plan.userTeacher.bytes);
  if (fileCopy) writeFileAtomic(...fileCopy);
  for (const [file, bytes] of extraTeachers) writeFileAtomic(file, bytes);
  return plan;
}

/**
 * Unlabelled transfer samples: with labels, each distilled batch mixes a fixed number of labelled
 * examples with unlabelled ones (data.labeledShare); without (data.transfer: unlabeled), there is
 * nothing to tell apart and the students train on the whole transfer set.
 */
function distilledData(plan: Plan): Plan["distilledData"] {
  const { config, unlabeledIndices } = plan;
  // Jittered copies are labelled examples like the images they were made from.
  const trainIndices = plan.copyIndices.length ? plan.transferIndices.subarray(0, plan.trainIndices.length + plan.copyIndices.length) : plan.trainIndices;
  if (unlabeledIndices.length === 0) return { trainIndices };
  if (!plan.labeled) return { trainIndices: plan.transferIndices };
  const where = plan.opts.configPath;
  if (plan.studentTerms.needEveryLabel.length)
    throw new UserError(where, `data.unlabeled: ${plan.studentTerms.needEveryLabel.join(", ")} needs a label on every sample, but unlabelled samples are mixed into the batches; use logit-kd or cross-entropy with them, or drop data.unlabeled`);
  const batch = config.student.train.batchSize;
  const labeledPerBatch = Math.round(batch * plan.labeledShare);
  if (labeledPerBatch < 1 || labeledPerBatch >= batch)
    throw new UserError(where, `data.labeledShare: ${plan.labeledShare.toFixed(4)} of a batch of ${batch} is ${labeledPerBatch} labelled samples; choose a share that leaves at least one labelled and one unlabelled sample per batch (between ${(1 / batch).toFixed(4)} and ${((batch - 1) / batch).toFixed(4)})`);
  return { trainIndices, mix: { unlabeled: unlabeledIndices, labeledPerBatch } };
}

/**
 * Several teachers: each further .onnx is adapted and fits the data, each file of soft targets is
 * read and checked, and some term uses soft targets. Returns the copies for the run folder.
 */
async function checkExtraTeachers(plan: Plan, run: RunFolder): Promise<[string, Uint8Array][]> {
  const { config, opts } = plan;
  const extra = config.kd.teachers ?? [];
  if (extra.length === 0) return [];
  const fail = async (e: unknown) => {
    await plan.userTeacher?.dispose();
    throw e;
  };
  if (!plan.studentTerms.usesTeacherLogits) await fail(new UserError(opts.configPath, "kd.teachers: several teachers average soft targets, but no term uses the teacher's logits"));
  if (config.kd.teacherWeights === "accuracy" && plan.validationIndices.length === 0) await fail(new UserError(opts.configPath, "kd.teacherWeights: accuracy weights need validation examples (data.validation > 0)"));
  const copies: [string, Uint8Array][] = [];
  for (const [i, t] of extra.entries()) {
    if (t.softTargets !== undefined) {
      const copy = run.softTargetsFile(t.softTargets, i);
      if (existsSync(copy)) continue;
      try {
        openFileTeacher(plan, { ...t, softTargets: t.softTargets }, `kd.teachers[${i}]`);
      } catch (e) {
        await fail(e);
      }
      copies.push([copy, readFileSync(t.softTargets)]);
      continue;
    }
    if (existsSync(run.extraTeacherFile(i))) continue;
    const c = await loadUserTeacher(plan, { onnx: t.onnx! }).catch(fail);
    copies.push([run.extraTeacherFile(i), c.bytes]);
    await c.dispose();
  }
  return copies;
}

/**
 * A file of soft targets read against the run's data (`copy`: the run folder's, on a resume). Every
 * sample the teacher is asked about needs a row: the transfer set and the validation split.
 */
function openFileTeacher(plan: Pick<Plan, "dataset" | "transferIndices" | "validationIndices">, spec: SoftTargetFileSpec, field: string, copy?: string): FileTeacher {
  const needed = Int32Array.from(new Set([...plan.transferIndices, ...plan.validationIndices])).sort();
  return loadFileTeacher(copy ? { ...spec, softTargets: copy } : spec, plan.dataset.train, plan.dataset.classLabels, needed, field);
}

/** What a teacher gives the run: its logits on training-source samples, from a model (cached passes) or a file. */
interface TeacherScores {
  classes: number;
  /** The model, when the teacher is one (taps need it). */
  classifier?: OnnxClassifier;
  /** The file, when the teacher is a file of soft targets. */
  file?: FileTeacher;
  /** Logits on dataset.train at `indices`; `folder`: the cache's sub-folder for a model's passes. */
  logits(indices: Int32Array, folder: string, onProgress?: (done: number) => void): Promise<{ logits: Float32Array; computedSamples: number; key: string }>;
  dispose(): Promise<void>;
}

function modelScores(plan: Plan, classifier: OnnxClassifier): TeacherScores {
  const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
  return {
    classes: classifier.numClasses, classifier,
    logits: async (indices, folder, onProgress) => {
      const soft = await teacherSoftTargets({
        teacher: classifier, set: plan.dataset.train, indices, cacheDir, folder,
        ...(onProgress ? { onProgress } : {}), onWarning: (m) => plan.progress.log(`warning: ${m}`),
      });
      return { logits: soft.logits, computedSamples: soft.computedSamples, key: soft.key };
    },
    dispose: () => classifier.dispose(),
  };
}

function fileScores(file: FileTeacher): TeacherScores {
  return {
    classes: file.classes, file,
    logits: async (indices, _folder, onProgress) => {
      const logits = file.logits(indices);
      onProgress?.(indices.length);
      return { logits, computedSamples: 0, key: file.key(indices) };
    },
    dispose: async () => undefined,
  };
}

/** The run's teacher as scores: the file of soft targets, or the model (the user's, checked on the first start; else the run folder's). */
async function mainTeacherScores(plan: Plan, run: RunFolder): Promise<TeacherScores> {
  const spec = plan.config.teacher!;
  if (spec.softTargets !== undefined) return fileScores(plan.fileTeacher!);
  const where = spec.onnx ?? run.teacherFile;
  const user = plan.userTeacher;
  // Used once: later stages open the run folder's copy.
  delete plan.userTeacher;
  const teacher = user ?? (await OnnxClassifier.fromBytes(readFileSync(run.teacherFile), where));
  if (!user) {
    try {
      checkTeacher(plan, teacher, where);
    } catch (e) {
      await teacher.dispose();
      throw e;
    }
  }
  return modelScores(plan, teacher);
}

/**
 * A user's teacher, adapted to raw pixels in, logits out (src/distill/teacher-adapter.ts) and checked
 * before anything is written, so a wrong teacher leaves no run folder behind.
 */
async function loadUserTeacher(plan: Plan, spec: TeacherInterface & { onnx: string }): Promise<OnnxClassifier> {
  const teacher = await OnnxClassifier.fromBytes(await adaptedTeacher(plan, spec), spec.onnx);
  try {
    checkTeacher(plan, teacher, spec.onnx);
  } catch (err) {
    await teacher.dispose();
    throw err;
  }
  return teacher;
}

/** The user's .onnx teacher in distill's contract, naming the run's data; "auto" outputs are judged on 64 training images. */
export async function adaptedTeacher(plan: Pick<Plan, "config" | "dataset" | "trainIndices">, spec: TeacherInterface & { onnx: string }): Promise<Uint8Array> {
  const path = spec.onnx;
  const bytes = readModelFile(path);
  const { dataset, trainIndices } = plan;
  // Non-image samples look to the adapter like one channel of 1 × features values.
  const image = dataset.train.kind === "image" ? imageShape(dataset.train) : { channels: 1, height: 1, width: sampleSize(dataset.train) };
  const adapted = await prepareTeacher(bytes, spec, image, path, async (adapted) => {
    const probe = await OnnxClassifier.fromBytes(adapted, path);
    try {
      return { scores: await probe.logits(dataset.train, trainIndices.subarray(0, 64)), classes: probe.numClasses };
    } finally {
      await probe.dispose();
    }
  });
  return withDataRecord(adapted, { "distill.dataset": dataName(plan.config.data), ...dataMetadata(plan.config.data, dataset) });
}

export function checkTeacher(plan: Pick<Plan, "dataset">, teacher: OnnxClassifier, where: string): void {
  const { dataset } = plan;
  teacher.checkFits(dataset.train, `${dataset.name} training samples`);
  if (teacher.numClasses !== dataset.classLabels.length)
    throw new UserError(where, `the teacher outputs ${teacher.numClasses} classes, but the student and ${dataset.name} have ${dataset.classLabels.length}`);
}

function checkBuilds(configPath: string, key: string, make: () => Model): void {
  try {
    make().declarations();
  } catch (e) {
    if (e instanceof ShapeError) throw new UserError(configPath, `${key}: ${e.message}`);
    throw e;
  }
}

/** Every tap a term names exists and can be bridged; records the teacher taps' shapes. */
async function checkTaps(plan: Plan, run: RunFolder): Promise<void> {
  const terms = plan.studentTerms;
  if (terms.teacherTaps.length === 0 && terms.studentTaps.length === 0) return;
  const { config } = plan;
  const student = modelTapShapes(plan.studentModel());
  let teacher: Map<string, Shape>;
  if (config.teacher?.model) teacher = modelTapShapes(plan.teacherModel());
  // No teacher model to tap (none, or a file of its outputs, whose taps makePlan refused).
  else if (!config.teacher || config.teacher.softTargets !== undefined) teacher = new Map();
  else {
    const file = config.teacher!.onnx!;
    const bytes = plan.userTeacher?.bytes ?? readFileSync(run.teacherFile);
    const taps = teacherTapsOf(bytes);
    teacher = new Map([...taps].map(([name, t]) => [name, t.shape ?? ["N", "?"]]));
    const unknown = terms.teacherTaps.filter((t) => taps.has(t) && !taps.get(t)!.shape);
    if (unknown.length) {
      const c = plan.userTeacher ?? (await OnnxClassifier.fromBytes(bytes, file));
      const probed = await probeTapShapes(bytes, c.inputName, c.sampleShape, unknown.map((t) => taps.get(t)!.tensor));
      unknown.forEach((t) => teacher.set(t, ["N", ...probed.get(taps.get(t)!.tensor)!]));
      if (!plan.userTeacher) await c.dispose();
    }
  }
  const studentLogits: Shape = ["N", plan.dataset.classLabels.length];
  checkTermTaps(config.kd, { student, teacher, studentLogits }, plan.opts.configPath, "the teacher");
  for (const t of terms.teacherTaps) {
    const shape = teacher.get(t)!.slice(1) as number[];
    const bytes = plan.transferIndices.length * shape.reduce((a, b) => a * b, 1) * 4;
    if (bytes > MAX_TAP_CACHE_BYTES)
      throw new UserError(plan.opts.configPath, `kd: teacher tap "${t}" ${formatShape(teacher.get(t)!)} on ${plan.trainIndices.length} examples would cache ${(bytes / 2 ** 20).toFixed(0)} MiB (limit ${MAX_TAP_CACHE_BYTES / 2 ** 20} MiB); tap a pooled layer or lower data.trainLimit (or data.unlabeled's limits)`);
    plan.teacherTapShapes.set(t, shape);
  }
}

/** 1. The teacher: trained here with its own recipe, or a user's .onnx (already copied). */
async function trainTeacher(plan: Plan, run: RunFolder): Promise<void> {
  const { config, teacherSeed } = plan;
  if (!config.teacher?.model) return;
  if (!run.finished("teacher", teacherSeed)) {
    const model = plan.teacherModel();
    const { params, history } = await trainStage({
      stage: "teacher", seed: teacherSeed, model, train: config.teacher.train!, terms: [{ method: "cross-entropy", weight: 1 }],
      set: plan.dataset.train, trainIndices: plan.teacherTrainIndices, validationIndices: plan.validationIndices, useLabels: true,
      checkpointPath: run.checkpointPath("teacher", teacherSeed), progress: plan.progress,
      onEpoch: (h) => run.writeMetricsLog(h), stopAfterEpochs: plan.opts.stopAfterEpochs, signal: plan.opts.signal,
    });
    run.finishStage("teacher", teacherSeed, model, params, history, runMetadata(plan), exporterFor(plan.dataset));
  }
  if (!existsSync(run.teacherFile)) copyFileSync(run.modelPath("teacher", teacherSeed), run.teacherFile);
}

/** 2. What the student's terms need from the frozen teacher, computed once and cached (see teacher-outputs.ts). */
async function teacherOutputs(plan: Plan, run: RunFolder): Promise<TeacherOutputs> {
  const { config, transferIndices, progress } = plan;
  const rows = () => TeacherOutputs.rowsFor(transferIndices, plan.dataset.train.count);
  // No separate teacher (ema-teacher: the model's own average teaches it): nothing to compute.
  if (!config.teacher) return new TeacherOutputs(rows(), undefined, new Map());
  const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
  const teacher = await mainTeacherScores(plan, run);
  try {
    let logits: CachedTensor | undefined;
    if (plan.studentTerms.usesTeacherLogits) {
      const task = progress.task(`soft targets (teacher logits on the transfer set${teacher.file ? `, from ${teacher.file.where}` : ""})`, transferIndices.length);
      const soft = await teacher.logits(transferIndices, "soft-targets", (done) => task.update(done));
      task.finish(teacher.file ? `read ${transferIndices.length} rows${teacher.file.probabilities ? " (probabilities, as log-probabilities)" : ""}` : soft.computedSamples ? `computed ${soft.computedSamples} samples, cached` : "from cache");
      run.state.softTargets = { key: soft.key, samples: transferIndices.length, computedSamples: soft.computedSamples };
      logits = { sampleShape: [teacher.classes], data: soft.logits };
      if (config.kd.teachers) logits = await ensembleLogits(plan, run, teacher, logits);
    }
    const taps = teacher.classifier ? await teacherTaps(plan, run, teacher.classifier, cacheDir) : new Map<string, CachedTensor>();
    await reportOnTeacher(plan, run, teacher);
    await checkDomainShift(plan, run, teacher, logits?.data);
    run.saveState();
    return new TeacherOutputs(rows(), logits, taps);
  } finally {
    await teacher.dispose();
  }
}

/**
 * Several teachers (Hinton et al. 2015 §2's ensemble as teacher; weighting as in You et al. 2017):
 * the weighted mean of their softened outputs p̄ = Σ wᵢ softmax(zᵢ/T) / Σ wᵢ, passed on as logits
 * T·log p̄, so that a term's softmax(·/T) recovers exactly p̄. T is the first term's temperature.
 * Each member is an .onnx model (passes cached) or a file of soft targets (read from the run folder's copy).
 */
async function ensembleLogits(plan: Plan, run: RunFolder, main: TeacherScores, mainLogits: CachedTensor): Promise<CachedTensor> {
  const { config, dataset, transferIndices, validationIndices } = plan;
  const members: { scores: TeacherScores; logits: Float32Array; weight: number }[] = [{ scores: main, logits: mainLogits.data, weight: 1 }];
  let computed = 0;
  try {
    for (const [i, t] of (config.kd.teachers ?? []).entries()) {
      const scores = t.softTargets !== undefined
        ? fileScores(openFileTeacher(plan, { ...t, softTargets: t.softTargets }, `kd.teachers[${i}]`, run.softTargetsFile(t.softTargets, i)))
        : modelScores(plan, await OnnxClassifier.fromFile(run.extraTeacherFile(i)));
      members.push({ scores, logits: new Float32Array(0), weight: t.weight });
      const soft = await scores.logits(transferIndices, "soft-targets");
      members[i + 1]!.logits = soft.logits;
      computed += soft.computedSamples;
    }
    if (config.kd.teacherWeights === "accuracy") {
      const labels = Uint8Array.from(validationIndices, (idx) => dataset.train.labels[idx]!);
      for (const m of members) {
        const scored = await m.scores.logits(validationIndices, "teacher-validation");
        m.weight = accuracy(scored.logits, labels, dataset.classLabels.length);
        computed += scored.computedSamples;
      }
    }
  } finally {
    for (const m of members.slice(1)) await m.scores.dispose();
  }
  const temperature = config.kd.terms.map((t) => t["temperature"]).find((v): v is number => typeof v === "number") ?? 1;
  const weights = members.map((m) => m.weight);
  run.state.ensemble = { weights, computedSamples: computed };
  return { sampleShape: mainLogits.sampleShape, data: averageSoftTargets(members.map((m) => m.logits), weights, mainLogits.sampleShape[0]!, temperature) };
}

async function teacherTaps(plan: Plan, run: RunFolder, teacher: OnnxClassifier, cacheDir: string): Promise<Map<string, CachedTensor>> {
  const names = plan.studentTerms.teacherTaps;
  if (names.length === 0) return new Map();
  const located = teacherTapsOf(teacher.bytes);
  const taps = new Map(names.map((n) => [n, { tensor: located.get(n)!.tensor, sampleShape: plan.teacherTapShapes.get(n)! }]));
  const task = plan.progress.task(`teacher taps ${names.join(", ")} on the transfer set`, plan.transferIndices.length);
  const out = await teacherTapTargets({
    teacherBytes: teacher.bytes, inputName: teacher.inputName, inputShape: teacher.sampleShape, taps,
    set: plan.dataset.train, indices: plan.transferIndices, cacheDir, onProgress: (done) => task.update(done),
    onWarning: (message) => plan.progress.log(`warning: ${message}`),
  });
  task.finish(out.computedSamples ? `computed ${out.computedSamples} samples, cached` : "from cache");
  run.state.teacherTaps = { taps: names, samples: plan.transferIndices.length, computedSamples: out.computedSamples };
  return out.taps;
}

/**
 * 3a. Teacher assistants (Mirzadeh et al. 2020) and born-again generations (Furlanello et al. 2018):
 * each link is distilled from the one before with the student's terms and budget (teacher seed),
 * then its own logits on the transfer set are cached and teach the next link, and finally the student.
 */
async function trainChain(plan: Plan, run: RunFolder, teacher: TeacherOutputs): Promise<TeacherOutputs> {
  const { config, teacherSeed, dataset, transferIndices } = plan;
  let current = teacher;
  for (const link of plan.chain) {
    if (!run.finished(link.stage, teacherSeed)) {
      const model = link.model();
      const { params, history } = await trainStage({
        stage: link.stage, seed: teacherSeed, model, train: config.student.train, terms: config.kd.terms, teacher: current,
        set: dataset.train, ...plan.distilledData, validationIndices: plan.validationIndices, useLabels: plan.labeled,
        checkpointPath: run.checkpointPath(link.stage, teacherSeed), progress: plan.progress,
        onEpoch: (h) => run.writeMetricsLog(h), stopAfterEpochs: plan.opts.stopAfterEpochs, signal: plan.opts.signal,
      });
      run.finishStage(link.stage, teacherSeed, model, params, history, runMetadata(plan), exporterFor(plan.dataset));
    }
    const classifier = await OnnxClassifier.fromFile(run.modelPath(link.stage, teacherSeed));
    try {
      const task = plan.progress.task(`soft targets of ${link.stage}`, transferIndices.length);
      const soft = await teacherSoftTargets({ teacher: classifier, set: dataset.train, indices: transferIndices, cacheDir: plan.opts.cacheDir ?? defaultCacheDir(), onProgress: (d) => task.update(d), onWarning: (m) => plan.progress.log(`warning: ${m}`) });
      task.finish(soft.computedSamples ? `computed ${soft.computedSamples} samples, cached` : "from cache");
      run.state.chain = { ...run.state.chain, [link.stage]: { samples: transferIndices.length, computedSamples: soft.computedSamples } };
      run.saveState();
      current = new TeacherOutputs(current.rowOf, { sampleShape: [soft.classes], data: soft.logits }, new Map());
    } finally {
      await classifier.dispose();
    }
  }
  return current;
}

/**
 * Teacher quality first: the teacher scored on the validation split (logits cached like soft
 * targets, so a later run spends no passes on it). Judged against the baseline once that has trained.
 */
async function reportOnTeacher(plan: Plan, run: RunFolder, teacher: TeacherScores): Promise<void> {
  const { dataset, validationIndices, progress } = plan;
  if (run.state.teacherReport || validationIndices.length === 0) return;
  const scored = await teacher.logits(validationIndices, "teacher-validation");
  const report = teacherReport(scored.logits, gatherLabels(dataset.train, validationIndices), teacher.classes);
  const spec = plan.config.teacher!;
  if (spec.model === undefined) refuseTeacherAtChance(report, spec);
  run.state.teacherReport = { ...report, computedSamples: scored.computedSamples };
  progress.log(`teacher on ${report.samples} validation samples: accuracy ${(report.accuracy * 100).toFixed(2)} %, macro-F1 ${report.macroF1.toFixed(4)}, ECE ${report.ece.toFixed(4)}, mean confidence ${report.meanConfidence.toFixed(3)}`);
}

/**
 * Before distilling on unlabelled data: does it look like data the teacher knows? The teacher's
 * confidence and entropy on the unlabelled samples against a labelled reference it never trained on
 * (the validation split; the labelled training examples when there is none), and an input statistic
 * (src/eval/domain-shift.ts). Printed, kept for results.json and the report; a warning above the rule's
 * thresholds. `transferLogits`: the soft targets already computed on transferIndices, when there are.
 */
async function checkDomainShift(plan: Plan, run: RunFolder, teacher: TeacherScores, transferLogits: Float32Array | undefined): Promise<void> {
  const { dataset, unlabeledIndices, validationIndices, trainIndices, progress } = plan;
  if (unlabeledIndices.length === 0 || run.state.domainShift) return;
  const k = teacher.classes;
  let computed = 0;
  const logitsOf = async (indices: Int32Array, folder: string) => {
    const soft = await teacher.logits(indices, folder);
    computed += soft.computedSamples;
    return soft.logits;
  };
  const referenceIndices = validationIndices.length ? validationIndices : trainIndices;
  const referenceLogits = validationIndices.length
    ? await logitsOf(validationIndices, "teacher-validation")
    : transferLogits?.subarray(0, trainIndices.length * k) ?? (await logitsOf(trainIndices, "soft-targets"));
  const unlabeledLogits = transferLogits?.subarray((plan.transferIndices.length - unlabeledIndices.length) * k) ?? (await logitsOf(unlabeledIndices, "soft-targets"));
  const refInputs = inputStatistic(dataset.train, referenceIndices), trInputs = inputStatistic(dataset.train, unlabeledIndices);
  const report = domainShift({
    classes: k, referenceLogits, transferLogits: unlabeledLogits,
    referenceInputMeans: refInputs?.values ?? new Float64Array(1), transferInputMeans: trInputs?.values ?? new Float64Array(1),
    ...(refInputs ? { inputStatistic: refInputs.name } : {}),
  });
  run.state.domainShift = { ...report, reference: { ...report.reference, split: validationIndices.length ? "validation" : "training" }, sources: plan.unlabeledParts, computedSamples: computed };
  const side = (s: ShiftReport["reference"]) => `confidence ${s.confidence.mean.toFixed(3)}, ${(s.lowConfidenceShare * 100).toFixed(1)}% below ${report.lowConfidenceThreshold}`;
  progress.log(`transfer check: ${grouped(unlabeledIndices.length)} unlabelled samples ${side(report.transfer)}; ${validationIndices.length ? "validation" : "training"} ${side(report.reference)}; KS confidence ${report.confidenceTest.statistic.toFixed(3)}`);
  if (report.warning) progress.log(`warning: ${report.warning}`);
}

const grouped = (n: number) => n.toLocaleString("en-US");

/** Once the first seed's baseline has trained: is the teacher any better than labels alone? */
function judgeTeacher(plan: Plan, run: RunFolder, baseline: EpochMetric[]): void {
  const report = run.state.teacherReport;
  const last = baseline[baseline.length - 1];
  if (!report || report.baselineAccuracy !== undefined || !last || !Number.isFinite(last.valAccuracy)) return;
  run.state.teacherReport = { ...withBaseline(report, last.valAccuracy), computedSamples: report.computedSamples };
  if (run.state.teacherReport.warning) plan.progress.log(`warning: ${run.state.teacherReport.warning}`);
  run.saveState();
}

/** 3, 4. Per seed: the baseline on hard labels, and the student with the configured terms, same budget. */
async function trainStudents(plan: Plan, run: RunFolder, teacher: TeacherOutputs): Promise<void> {
  const { config, labeled } = plan;
  for (const seed of config.seeds) {
    for (const stage of studentStages(plan)) {
      if (run.finished(stage, seed)) {
        if (stage === "baseline" && seed === config.seeds[0]) judgeTeacher(plan, run, run.readRecord(stage, seed).history);
        continue;
      }
      const model = plan.studentModel();
      const { params, history } = await trainStage({
        stage, seed, model, train: config.student.train,
        terms: stage === "baseline" ? [{ method: "cross-entropy", weight: 1 }] : config.kd.terms,
        set: plan.dataset.train, validationIndices: plan.validationIndices, useLabels: labeled,
        ...(stage === "student" ? { teacher, ...plan.distilledData } : { trainIndices: plan.trainIndices }),
        checkpointPath: run.checkpointPath(stage, seed), progress: plan.progress,
        onEpoch: (h) => run.writeMetricsLog(h), stopAfterEpochs: plan.opts.stopAfterEpochs, signal: plan.opts.signal,
      });
      run.finishStage(stage, seed, model, params, history, runMetadata(plan), exporterFor(plan.dataset));
      run.saveState();
      if (stage === "baseline" && seed === config.seeds[0]) judgeTeacher(plan, run, history);
    }
  }
}

/** No labels, no hard-label baseline; a benchmark may also reuse one baseline across runs. */
function studentStages(plan: Plan): ("baseline" | "student")[] {
  return plan.labeled && !plan.opts.skipBaseline ? ["baseline", "student"] : ["student"];
}

/**
 * How a stage's model is exported: text models take raw strings, the tokenizer inside the graph
 * (src/data/text-onnx.ts), so a deployment needs nothing but onnxruntime; the others as exportOnnx.
 */
function exporterFor(dataset: Dataset): typeof exportOnnx {
  const vocabulary = dataset.vocabulary;
  return vocabulary ? (model, params, opts) => exportTextOnnx(model, params, vocabulary, opts) : exportOnnx;
}

/** What every exported model records about its run and data (so `distill eval` finds its test set). */
function runMetadata({ config, dataset }: Plan): Record<string, string> {
  return { "distill.run": config.name, "distill.dataset": dataName(config.data), ...dataMetadata(config.data, dataset) };
}

/** 5. Test-set quality and cost of every model; results.json's content. */
async function evaluate(plan: Plan, run: RunFolder): Promise<RunResults> {
  const { config, teacherSeed } = plan;
  const chainStage = (role: string) => plan.chain.some((l) => l.stage === role);
  const machine = machineFacts(); // the load average as timing starts
  const teacherParams = config.teacher?.model ? plan.teacherModel().initParameters(0).count() : undefined;
  // No separate teacher (ema-teacher alone), or only a file of its outputs on the training source:
  // no teacher row, and no agreement with one.
  const teacherEval = config.teacher && config.teacher.softTargets === undefined ? await evaluateOnce(plan, run, "teacher", teacherSeed, run.teacherFile, teacherParams, undefined) : undefined;
  const roles: ModelResult[] = teacherEval ? [{ role: "teacher", file: "teacher.onnx", perSeed: [teacherEval.metrics], summary: summarize([teacherEval.metrics]) }] : [];
  for (const link of plan.chain) {
    const m = (await evaluateOnce(plan, run, link.stage, teacherSeed, run.modelPath(link.stage, teacherSeed), link.model().initParameters(0).count(), teacherEval?.logits)).metrics;
    roles.push({ role: link.stage, file: `models/${link.stage}-s${teacherSeed}.onnx`, perSeed: [m], summary: summarize([m]) });
  }
  const studentParams = plan.studentModel().initParameters(0).count();
  for (const stage of studentStages(plan)) {
    const perSeed: ModelMetrics[] = [];
    for (const seed of config.seeds) perSeed.push((await evaluateOnce(plan, run, stage, seed, run.modelPath(stage, seed), studentParams, teacherEval?.logits)).metrics);
    const top = join(run.dir, `${stage}.onnx`);
    if (!existsSync(top)) copyFileSync(run.modelPath(stage, config.seeds[0]!), top);
    roles.push({ role: stage, file: `${stage}.onnx`, perSeed, summary: summarize(perSeed) });
  }
  // data.transferOmits: every seed's distilled student also with the omitted classes' bias raised.
  const shifted = new Map<string, string[]>();
  for (const variant of await biasShiftedStudents(plan, run)) {
    const perSeed: ModelMetrics[] = [];
    for (const [i, seed] of config.seeds.entries()) perSeed.push((await evaluateOnce(plan, run, variant.role, seed, variant.files[i]!, studentParams, teacherEval?.logits)).metrics);
    roles.push({ role: variant.role, file: relative(run.dir, variant.files[0]!), perSeed, summary: summarize(perSeed) });
    shifted.set(variant.role, variant.files);
  }
  // compress: the first seed's distilled student, quantized each way asked for.
  const compressed = new Map<string, string>();
  for (const mode of config.compress?.quantize ?? []) {
    const role = variantRole(mode), file = join(run.dir, "compressed", `${role}.onnx`);
    if (!existsSync(file)) {
      const source = run.modelPath("student", config.seeds[0]!);
      const student = await OnnxClassifier.fromFile(source);
      await student.dispose();
      const calibration = { set: plan.dataset.train, indices: plan.trainIndices, samples: config.compress!.calibrationSamples, sampleShape: student.sampleShape, inputName: student.inputName };
      writeFileAtomic(file, await quantizeStudent(readFileSync(source), source, mode, calibration));
    }
    const m = (await evaluateOnce(plan, run, role, teacherSeed, file, studentParams, teacherEval?.logits)).metrics;
    roles.push({ role, file: `compressed/${role}.onnx`, perSeed: [m], summary: summarize([m]) });
    compressed.set(role, file);
  }
  const validationAgreement = await agreementWithFileTeacher(plan, run);
  const files = roles.map((r) => ({ role: r.role, perSeed: r.role === "teacher" ? [run.teacherFile] : chainStage(r.role) ? [run.modelPath(r.role, teacherSeed)] : compressed.has(r.role) ? [compressed.get(r.role)!] : shifted.get(r.role) ?? config.seeds.map((seed) => run.modelPath(r.role, seed)) }));
  // Speed figures comparable across models: all timed together, interleaved (eval/run-timing.ts).
  roles.splice(0, roles.length, ...(await timeRunModels(roles, files, plan.dataset.test, plan.testIndices)));
  const details = await runDetails({ files, set: plan.dataset.test, indices: plan.testIndices, classLabels: plan.dataset.classLabels });
  run.writeMetricsLog();
  run.saveState();
  const headline = (key: string) => config.kd.terms.map((t) => t[key]).find((v): v is number => typeof v === "number") ?? null;
  return {
    name: config.name,
    createdAt: run.state.createdAt,
    codeVersion: run.state.codeVersion,
    seeds: config.seeds,
    dataset: dataName(config.data),
    temperature: headline("temperature"),
    alpha: headline("alpha"),
    kd: config.kd,
    epochs: config.student.train.epochs,
    wallSeconds: Math.round(run.state.activeSeconds * 10) / 10,
    models: roles,
    data: {
      train: plan.trainIndices.length, validation: plan.validationIndices.length, test: plan.testIndices.length, transfer: plan.transferIndices.length, transferLabeled: plan.labeled,
      ...(plan.copyIndices.length ? { jitteredCopies: { ...config.data.jitteredCopies!, samples: plan.copyIndices.length } } : {}),
      ...(plan.unlabeledIndices.length ? { unlabeled: { samples: plan.unlabeledIndices.length, labeledPerBatch: plan.distilledData.mix?.labeledPerBatch ?? null, batchSize: config.student.train.batchSize } } : {}),
    },
    setup: { teacher: config.teacher, student: config.student, kd: config.kd, seeds: config.seeds },
    machine,
    details,
    ...(run.state.teacherReport ? { teacherReport: run.state.teacherReport } : {}),
    ...(validationAgreement ? { validationAgreement } : {}),
    ...(run.state.domainShift ? { domainShift: run.state.domainShift } : {}),
    ...(run.state.biasShift ? { biasShift: run.state.biasShift } : {}),
  };
}

/**
 * A file teacher cannot be run on the test set; its rows cover the validation split, which no model
 * trained on: each student's (every seed's) top-1 agreement with it there stands in for the test agreement.
 */
async function agreementWithFileTeacher(plan: Plan, run: RunFolder): Promise<RunResults["validationAgreement"]> {
  const { config, dataset, validationIndices } = plan;
  if (!plan.fileTeacher || validationIndices.length === 0) return undefined;
  const teacherLogits = plan.fileTeacher.logits(validationIndices);
  const perRole: Record<string, number[]> = {};
  for (const stage of studentStages(plan)) {
    perRole[stage] = [];
    for (const seed of config.seeds) {
      const model = await OnnxClassifier.fromFile(run.modelPath(stage, seed));
      try {
        perRole[stage].push(topOneAgreement(await model.logits(dataset.train, validationIndices), teacherLogits, dataset.classLabels.length));
      } finally {
        await model.dispose();
      }
    }
  }
  return { samples: validationIndices.length, perRole };
}

/**
 * Hinton et al. (2015) §3: students distilled without some classes, with those classes' output bias
 * raised — by data.omittedClassShift when given ("student-bias-given"), and by the shift estimated
 * on the validation split's inputs, labels unused ("student-bias-estimated", src/eval/bias-correction.ts).
 */
async function biasShiftedStudents(plan: Plan, run: RunFolder): Promise<{ role: string; files: string[] }[]> {
  const { config, dataset, omittedClasses, validationIndices } = plan;
  if (omittedClasses.length === 0) return [];
  const k = dataset.classLabels.length;
  const folder = join(run.dir, "bias-shifted");
  const state = run.state.biasShift ?? { classes: omittedClasses.map((c) => dataset.classLabels[c]!), given: config.data.omittedClassShift ?? null, estimated: {}, estimatedOn: `${validationIndices.length} validation inputs (labels unused)` };
  const variants: { role: string; files: string[] }[] = [];
  const shiftOf = (shift: number) => Float32Array.from({ length: k }, (_, c) => (omittedClasses.includes(c) ? shift : 0));
  const given = config.data.omittedClassShift;
  const make = async (role: string, seed: number, shift: () => Promise<Float32Array>) => {
    const file = join(folder, `${role}-s${seed}.onnx`);
    if (!existsSync(file)) writeFileAtomic(file, withLogitShift(readFileSync(run.modelPath("student", seed)), await shift(), run.modelPath("student", seed)));
    return file;
  };
  if (given !== undefined) variants.push({ role: "student-bias-given", files: await Promise.all(config.seeds.map((seed) => make("student-bias-given", seed, async () => shiftOf(given)))) });
  const teacher = await mainTeacherScores(plan, run);
  try {
    const teacherLogits = (await teacher.logits(validationIndices, "teacher-validation")).logits;
    const files: string[] = [];
    for (const seed of config.seeds) {
      files.push(await make("student-bias-estimated", seed, async () => {
        const student = await OnnxClassifier.fromFile(run.modelPath("student", seed));
        try {
          const shift = estimateBiasShift(await student.logits(dataset.train, validationIndices), teacherLogits, k, omittedClasses);
          state.estimated[seed] = omittedClasses.map((c) => Math.round(shift[c]! * 1000) / 1000);
          return shift;
        } finally {
          await student.dispose();
        }
      }));
    }
    variants.push({ role: "student-bias-estimated", files });
  } finally {
    await teacher.dispose();
  }
  run.state.biasShift = state;
  run.saveState();
  return variants;
}

/** Test-set metrics of one model, measured once and kept in its stage record (a resume does not re-time it). */
async function evaluateOnce(plan: Plan, run: RunFolder, stage: string, seed: number, file: string, params: number | undefined, teacherTestLogits: Float32Array | undefined) {
  const { dataset, testIndices, progress } = plan;
  const record = run.readRecord(stage, seed);
  const needLogits = stage === "teacher"; // the others' agreement is measured against them
  if (record.metrics && !needLogits) return { metrics: record.metrics, logits: new Float32Array(0) };
  const classifier = await OnnxClassifier.fromFile(file);
  try {
    if (record.metrics) return { metrics: record.metrics, logits: await classifier.logits(dataset.test, testIndices) };
    const task = progress.task(`evaluate ${stage}${seed === plan.teacherSeed ? "" : ` seed ${seed}`}`, 1);
    const out = await evaluateClassifier({ classifier, set: dataset.test, indices: testIndices, params, teacherLogits: teacherTestLogits });
    task.update(1);
    task.finish(`acc=${out.metrics.accuracy.toFixed(4)} errors=${out.metrics.errors} p50=${out.metrics.latencyP50Ms.toFixed(3)}ms`);
    record.metrics = out.metrics;
    run.writeRecord(record);
    return out;
  } finally {
    await classifier.dispose();
  }
}

function summaryLine(r: RunResults): string {
  const acc = (role: string) => {
    const m = r.models.find((x) => x.role === role);
    if (!m) return "";
    const s = m.summary;
    return `${role} ${s.errors.mean.toFixed(1)} errors${s.errors.values.length > 1 ? ` ± ${s.errors.std.toFixed(1)}` : ""}`;
  };
  return `${r.name}: ${["teacher", "baseline", "student"].map(acc).filter(Boolean).join(", ")} (of ${(r.models.find((m) => m.role === "student") ?? r.models[0]!).perSeed[0]!.total})`;
}

/** git describe of the checkout when there is one, else the package version. */
function codeVersion(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  let version = "unknown";
  try {
    version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // installed without package.json next to it
  }
  try {
    const git = execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return `${version}+${git}`;
  } catch {
    return version;
  }
}

export type { Dataset };
