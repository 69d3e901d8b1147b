// Stages 1 and 2: the teacher (trained here with its own recipe, or the user's, already copied into
// the run folder), then what the student's terms need from it on the transfer set, computed once and
// cached (teacher-outputs.ts): logits (one teacher's, or an ensemble's), taps. With kd.teaching:
// consistent nothing is cached: the teacher is readied to run on every training batch instead
// (consistent-teacher.ts).

import { copyFileSync, existsSync } from "node:fs";
import { OnnxClassifier } from "../eval/evaluate.js";
import { accuracy, meanSoftmaxEntropy } from "../eval/metrics.js";
import type { RunFolder } from "../distill/run-folder.js";
import { defaultCacheDir } from "../distill/soft-targets.js";
import { TeacherOutputs, teacherTapTargets, teacherTapsOf, type BatchTeacher, type CachedTensor } from "../distill/teacher-outputs.js";
import { InGraphTeacher, SessionTeacher } from "../distill/consistent-teacher.js";
import { UserError } from "../errors.js";
import { cachedModel, modelCacheDir, trainedModelKey } from "../distill/model-cache.js";
import type { EpochMetric, TeacherTraining } from "../eval/types.js";
import { teacherReport, type TeacherReport } from "../eval/teacher-report.js";
import { averageSoftTargets } from "../distill/teacher-ensemble.js";
import { openFileTeacher } from "../distill/user-teacher.js";
import { trainStage } from "../distill/train-stage.js";
import { exporterFor, runMetadata } from "./export.js";
import type { Plan } from "./plan.js";
import { checkDomainShift, reportOnTeacher } from "./teacher-checks.js";
import { fileScores, mainTeacherScores, modelScores, type TeacherScores } from "./teacher-scores.js";

/**
 * 1. The teacher: trained here with its own recipe (or reused from the teacher cache, where an
 * earlier run trained the same teacher: distill/model-cache.ts), or a user's .onnx (already copied).
 */
export async function trainTeacher(plan: Plan, run: RunFolder): Promise<void> {
  const { config, teacherSeed } = plan;
  const spec = config.teacher;
  if (!spec?.model) return;
  if (!run.finished("teacher", teacherSeed)) {
    if (spec.cache === false) {
      const { history } = await trainHere(plan, run);
      run.state.teacherTraining = teacherTraining("trained", history.length, history, new Date().toISOString(), null);
    } else {
      const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
      const key = trainedModelKey({
        role: "teacher", model: spec.model, train: spec.train, seed: teacherSeed, set: plan.dataset.train, trainIndices: plan.teacherTrainIndices,
        validationIndices: plan.validationIndices, classLabels: plan.dataset.classLabels, geometry: plan.geometry, vocabulary: plan.dataset.vocabulary,
      });
      let waited = false;
      const { model: teacher, trained } = await cachedModel({
        cacheDir, key, runDir: run.dir,
        train: (heartbeat) => trainHere(plan, run, heartbeat),
        onWarning: (message) => plan.progress.log(`warning: ${message}`),
        onWait: (owner) => {
          if (!waited) plan.progress.log(`teacher: process ${owner.pid} on ${owner.host} is training this teacher (${modelCacheDir(cacheDir, "teacher", key.key)}); waiting for it`);
          waited = true;
        },
        ...(plan.opts.signal ? { signal: plan.opts.signal } : {}),
      });
      const r = teacher.record;
      // No epoch ran here: the stage's record holds none, so metrics.jsonl and the curves show none.
      if (!trained) {
        run.finishStageWith("teacher", teacherSeed, teacher.bytes, []);
        const accuracy = r.validationAccuracy === null ? "no validation split" : `validation accuracy ${(r.validationAccuracy * 100).toFixed(2)} %`;
        plan.progress.log(`teacher: reused from the cache (${teacher.onnxPath}, trained ${r.trainedAt.slice(0, 16).replace("T", " ")} in ${r.seconds.toFixed(1)} s, ${accuracy})`);
      }
      run.state.teacherTraining = teacherTraining(trained ? "trained" : "reused", r.epochs, r.history, r.trainedAt, { key: key.key, dir: teacher.dir });
    }
    run.saveState();
  }
  if (!existsSync(run.teacherFile)) copyFileSync(run.modelPath("teacher", teacherSeed), run.teacherFile);
}

/** Trains the teacher in this run (from its checkpoint, when one is there) and finishes its stage. */
async function trainHere(plan: Plan, run: RunFolder, heartbeat?: () => void): Promise<{ bytes: Uint8Array; history: EpochMetric[] }> {
  const { config, teacherSeed } = plan;
  const model = plan.teacherModel();
  const { params, history } = await trainStage({
    stage: "teacher", seed: teacherSeed, model, train: config.teacher!.train!, terms: [{ method: "cross-entropy", weight: 1 }],
    set: plan.dataset.train, trainIndices: plan.teacherTrainIndices, validationIndices: plan.validationIndices, useLabels: true,
    checkpointPath: run.checkpointPath("teacher", teacherSeed), progress: plan.progress,
    onEpoch: (h) => {
      run.writeMetricsLog(h);
      heartbeat?.();
    },
    stopAfterEpochs: plan.opts.stopAfterEpochs, signal: plan.opts.signal,
  });
  const bytes = run.finishStage("teacher", teacherSeed, model, params, history, runMetadata(plan), exporterFor(plan.dataset));
  return { bytes, history };
}

function teacherTraining(source: TeacherTraining["source"], epochs: number, history: EpochMetric[], trainedAt: string, cache: TeacherTraining["cache"]): TeacherTraining {
  const last = history[history.length - 1];
  const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
  return {
    source, epochs, seconds: Math.round(history.reduce((s, m) => s + m.seconds, 0) * 10) / 10,
    validationAccuracy: finite(last?.valAccuracy), trainAccuracy: finite(last?.trainAccuracy), trainedAt, cache,
  };
}

/**
 * 2. What the student's terms need from the frozen teacher, computed once and cached (see
 * teacher-outputs.ts); with kd.teaching: consistent, the teacher readied to run on each batch.
 */
export async function teacherOutputs(plan: Plan, run: RunFolder): Promise<BatchTeacher | InGraphTeacher> {
  const { config, transferIndices, progress } = plan;
  const rows = () => TeacherOutputs.rowsFor(transferIndices, plan.dataset.train.count);
  // No separate teacher (ema-teacher: the model's own average teaches it): nothing to compute.
  if (!config.teacher) return new TeacherOutputs(rows(), undefined, new Map());
  const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
  const teacher = await mainTeacherScores(plan, run);
  try {
    if (config.kd.teaching === "consistent") {
      await reportOnTeacher(plan, run, teacher);
      await checkDomainShift(plan, run, teacher, undefined);
      run.saveState();
      return await consistentTeacher(plan, run, teacher.classifier!);
    }
    let logits: CachedTensor | undefined;
    let ensembleReport: TeacherReport | undefined;
    if (plan.studentTerms.usesTeacherLogits) {
      const task = progress.task(`soft targets (teacher logits on the transfer set${teacher.file ? `, from ${teacher.file.where}` : ""})`, transferIndices.length);
      const soft = await teacher.logits(transferIndices, "soft-targets", (done) => task.update(done));
      task.finish(teacher.file ? `read ${transferIndices.length} rows${teacher.file.probabilities ? " (probabilities, as log-probabilities)" : ""}` : soft.computedSamples ? `computed ${soft.computedSamples} samples, cached` : "from cache");
      run.state.softTargets = { key: soft.key, samples: transferIndices.length, computedSamples: soft.computedSamples };
      logits = { sampleShape: [teacher.classes], data: soft.logits };
      if (config.kd.teachers) ({ logits, validationReport: ensembleReport } = await ensembleLogits(plan, run, teacher, logits));
      // How soft the targets are at the run's temperature (a cause of no gain when near uniform: report/no-gain.ts).
      const temperature = firstTemperature(plan);
      if (temperature !== undefined && transferIndices.length)
        run.state.softTargetEntropy = { temperature, meanNats: meanSoftmaxEntropy(logits.data, teacher.classes, temperature), classes: teacher.classes };
    }
    const taps = teacher.classifier ? await teacherTaps(plan, run, teacher.classifier, cacheDir) : new Map<string, CachedTensor>();
    await reportOnTeacher(plan, run, teacher, ensembleReport);
    await checkDomainShift(plan, run, teacher, logits?.data);
    run.saveState();
    return new TeacherOutputs(rows(), logits, taps);
  } finally {
    await teacher.dispose();
  }
}

/**
 * kd.teaching: consistent — a teacher trained here is built into the student's step graph (its
 * weights read back from its export); any other .onnx teacher runs in a session of its own per batch.
 */
async function consistentTeacher(plan: Plan, run: RunFolder, teacher: OnnxClassifier): Promise<InGraphTeacher | SessionTeacher> {
  if (plan.config.teacher?.model) return InGraphTeacher.fromExport(plan.teacherModel(), teacher.bytes, run.teacherFile);
  if (teacher.inputDType === "string")
    throw new UserError(plan.opts.configPath, "kd.teaching: consistent runs the teacher on the student's batches of token ids, but this teacher takes raw strings; use teaching: cached");
  const located = teacherTapsOf(teacher.bytes);
  const taps = new Map(plan.studentTerms.teacherTaps.map((n) => [n, { tensor: located.get(n)!.tensor, sampleShape: plan.teacherTapShapes.get(n)! }]));
  return SessionTeacher.open({ bytes: teacher.bytes, inputName: teacher.inputName, sampleShape: teacher.sampleShape, inputDType: teacher.inputDType, logitsName: teacher.outputName, taps });
}

/**
 * Several teachers (Hinton et al. 2015 §2's ensemble as teacher; weighting as in You et al. 2017):
 * the weighted mean of their softened outputs p̄ = Σ wᵢ softmax(zᵢ/T) / Σ wᵢ, passed on as logits
 * T·log p̄, so that a term's softmax(·/T) recovers exactly p̄. T is the first term's temperature.
 * Each member is an .onnx model (passes cached) or a file of soft targets (read from the run folder's copy).
 * With a validation split, the ensemble is scored on it too (members averaged at T = 1): the student
 * learns from the ensemble, so the weak-teacher check must judge the ensemble, not the main teacher.
 */
async function ensembleLogits(plan: Plan, run: RunFolder, main: TeacherScores, mainLogits: CachedTensor): Promise<{ logits: CachedTensor; validationReport?: TeacherReport }> {
  const { config, dataset, transferIndices, validationIndices } = plan;
  const members: { scores: TeacherScores; logits: Float32Array; weight: number; validation?: Float32Array }[] = [{ scores: main, logits: mainLogits.data, weight: 1 }];
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
    if (validationIndices.length) {
      const labels = Uint8Array.from(validationIndices, (idx) => dataset.train.labels[idx]!);
      for (const m of members) {
        const scored = await m.scores.logits(validationIndices, "teacher-validation");
        m.validation = scored.logits;
        if (config.kd.teacherWeights === "accuracy") m.weight = accuracy(scored.logits, labels, dataset.classLabels.length);
        computed += scored.computedSamples;
      }
    }
  } finally {
    for (const m of members.slice(1)) await m.scores.dispose();
  }
  const temperature = firstTemperature(plan) ?? 1;
  const weights = members.map((m) => m.weight);
  const classes = mainLogits.sampleShape[0]!;
  run.state.ensemble = { weights, computedSamples: computed };
  const logits = { sampleShape: mainLogits.sampleShape, data: averageSoftTargets(members.map((m) => m.logits), weights, classes, temperature) };
  if (!validationIndices.length) return { logits };
  const validation = averageSoftTargets(members.map((m) => m.validation!), weights, classes, 1);
  const labels = Uint8Array.from(validationIndices, (idx) => dataset.train.labels[idx]!);
  return { logits, validationReport: { ...teacherReport(validation, labels, classes), members: members.length } };
}

/** The first loss term's temperature (the one soft targets are softened with), if any term has one. */
export function firstTemperature(plan: Plan): number | undefined {
  return plan.config.kd.terms.map((t) => t["temperature"]).find((v): v is number => typeof v === "number");
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
