// A run's plan: the config, its data and split, how to build each model, and the teachers the user
// brings, all read and checked before any training, so a config error costs nothing.

import { existsSync, readFileSync } from "node:fs";
import type { DistillConfig } from "../config/schema.js";
import { UserError } from "../errors.js";
import { formatShape, ShapeError, type Shape } from "../engine/graph.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import type { Model } from "../nn/model.js";
import { buildModel } from "../nn/spec.js";
import { writeFileAtomic } from "../util/fs.js";
import { createProgress, type Progress } from "../util/progress.js";
import { planData, type DataPlan } from "../distill/data-plan.js";
import type { RunFolder } from "../distill/run-folder.js";
import { checkTermTaps, modelTapShapes } from "../distill/tap-check.js";
import { MAX_TAP_CACHE_BYTES, probeTapShapes, teacherTapsOf } from "../distill/teacher-outputs.js";
import type { FileTeacher } from "../distill/soft-target-file.js";
import type { StageJob } from "../distill/train-stage.js";
import { loadUserTeacher, openFileTeacher } from "../distill/user-teacher.js";
import { WeightedTerms } from "../distill/weighted-terms.js";

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

/** What every stage reads: the config, the data and its split, how to build the models. */
export interface Plan extends DataPlan {
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

/** Data, split and models; everything a config can get wrong fails here, before any training. */
export async function makePlan(run: RunFolder, config: DistillConfig, opts: PipelineOptions): Promise<Plan> {
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
  await attachTeachers(plan, run);
  return plan;
}


/**
 * The teachers the user brings, read and checked before anything is written: a file of soft
 * targets, an .onnx teacher, further ensemble members; then the taps the terms name. Their copies
 * go into the run folder last, so a wrong teacher leaves no run folder behind.
 */
async function attachTeachers(plan: Plan, run: RunFolder): Promise<void> {
  const { config, opts } = plan;
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
    // Consistent teaching caches no taps: the teacher computes them on each batch.
    if (bytes > MAX_TAP_CACHE_BYTES && config.kd.teaching !== "consistent")
      throw new UserError(plan.opts.configPath, `kd: teacher tap "${t}" ${formatShape(teacher.get(t)!)} on ${plan.trainIndices.length} examples would cache ${(bytes / 2 ** 20).toFixed(0)} MiB (limit ${MAX_TAP_CACHE_BYTES / 2 ** 20} MiB); tap a pooled layer or lower data.trainLimit (or data.unlabeled's limits)`);
    plan.teacherTapShapes.set(t, shape);
  }
}
