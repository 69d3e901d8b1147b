// Stage 5: every model's quality and cost on the test set, timed together; results.json's content.

import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { dataName } from "../config/schema.js";
import { OnnxClassifier, evaluateClassifier } from "../eval/evaluate.js";
import { timeRunModels } from "../eval/run-timing.js";
import { machineFacts, runDetails } from "../eval/details.js";
import { summarize, topOneAgreement } from "../eval/metrics.js";
import type { ModelMetrics, ModelResult, NoGainFigures, RunResults } from "../eval/types.js";
import { headline } from "../report/headline.js";
import { whyNoGain } from "../report/no-gain.js";
import { quantizeStudent, variantRole } from "../compress/stage.js";
import type { RunFolder } from "../distill/run-folder.js";
import { writeFileAtomic } from "../util/fs.js";
import { biasShiftedStudents } from "./bias-shift-stage.js";
import type { Plan } from "./plan.js";
import { studentStages } from "./student-stage.js";
import { stageBatches } from "../distill/train-stage.js";

/** Test-set metrics of every model, and each role's files (per seed), in the order the report shows them. */
interface Evaluated {
  roles: ModelResult[];
  files: { role: string; perSeed: string[] }[];
}

/** 5. Test-set quality and cost of every model; results.json's content. */
export async function evaluate(plan: Plan, run: RunFolder): Promise<RunResults> {
  const machine = machineFacts(); // the load average as timing starts
  const { roles, files } = await evaluateModels(plan, run);
  const validationAgreement = await agreementWithFileTeacher(plan, run);
  // Speed figures comparable across models: all timed together, interleaved (eval/run-timing.ts).
  const timed = await timeRunModels(roles, files, plan.dataset.test, plan.testIndices);
  const details = await runDetails({ files, set: plan.dataset.test, indices: plan.testIndices, classLabels: plan.dataset.classLabels });
  run.writeMetricsLog();
  run.saveState();
  const results = resultsOf(plan, run, timed, { machine, details, validationAgreement });
  const noGain = whyNoGain(headline(results), noGainFigures(plan, run));
  return noGain ? { ...results, noGain } : results;
}

/** What the no-gain causes are judged on, from the run's own records (report/no-gain.ts). */
function noGainFigures(plan: Plan, run: RunFolder): NoGainFigures {
  const last = (stage: string) => plan.config.seeds.map((seed) => run.readRecord(stage, seed).history.at(-1)).filter((m) => m !== undefined);
  const finite = (xs: number[]) => xs.filter(Number.isFinite);
  const baseline = last("baseline");
  const entropy = run.state.softTargetEntropy;
  // With a chain the student learns from its last link (trained once, on the teacher's seed), not
  // from the teacher the report scores: judge that one — its accuracies and its soft targets' entropy.
  const link = plan.chain.at(-1);
  const linkLast = link ? run.readRecord(link.stage, plan.teacherSeed).history.at(-1) : undefined;
  const orNull = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : null);
  return {
    classes: plan.dataset.classLabels.length,
    teacherValAccuracy: link ? orNull(linkLast?.valAccuracy) : run.state.teacherReport?.accuracy ?? null,
    ...(link ? { teacherStage: link.stage } : {}),
    baselineValAccuracy: finite(baseline.map((m) => m.valAccuracy)),
    baselineTrainAccuracy: finite(baseline.map((m) => m.trainAccuracy)),
    teacherTrainAccuracy: link ? orNull(linkLast?.trainAccuracy) : run.state.teacherTraining?.trainAccuracy ?? null,
    temperature: entropy?.temperature ?? null,
    softTargetEntropy: link ? run.state.chain?.[link.stage]?.softTargetEntropy ?? null : entropy?.meanNats ?? null,
    inputKind: plan.dataset.train.kind,
  };
}

async function evaluateModels(plan: Plan, run: RunFolder): Promise<Evaluated> {
  const { config, teacherSeed } = plan;
  const roles: ModelResult[] = [];
  const files: Evaluated["files"] = [];
  const add = (role: string, file: string, perSeed: ModelMetrics[], paths: string[]) => {
    roles.push({ role, file, perSeed, summary: summarize(perSeed) });
    files.push({ role, perSeed: paths });
  };
  const teacherParams = config.teacher?.model ? plan.teacherModel().initParameters(0).count() : undefined;
  // No separate teacher (ema-teacher alone), or only a file of its outputs on the training source:
  // no teacher row, and no agreement with one.
  const teacherEval = config.teacher && config.teacher.softTargets === undefined ? await evaluateOnce(plan, run, "teacher", teacherSeed, run.teacherFile, teacherParams, undefined) : undefined;
  if (teacherEval) add("teacher", "teacher.onnx", [teacherEval.metrics], [run.teacherFile]);
  const teacherLogits = teacherEval?.logits;
  for (const link of plan.chain) {
    const path = run.modelPath(link.stage, teacherSeed);
    const m = (await evaluateOnce(plan, run, link.stage, teacherSeed, path, link.model().initParameters(0).count(), teacherLogits)).metrics;
    add(link.stage, `models/${link.stage}-s${teacherSeed}.onnx`, [m], [path]);
  }
  const studentParams = plan.studentModel().initParameters(0).count();
  for (const stage of studentStages(plan)) {
    const paths = config.seeds.map((seed) => run.modelPath(stage, seed));
    const perSeed: ModelMetrics[] = [];
    for (const [i, seed] of config.seeds.entries()) perSeed.push((await evaluateOnce(plan, run, stage, seed, paths[i]!, studentParams, teacherLogits)).metrics);
    const top = join(run.dir, `${stage}.onnx`);
    if (!existsSync(top)) copyFileSync(paths[0]!, top);
    add(stage, `${stage}.onnx`, perSeed, paths);
  }
  // data.transferOmits: every seed's distilled student also with the omitted classes' bias raised.
  for (const variant of await biasShiftedStudents(plan, run)) {
    const perSeed: ModelMetrics[] = [];
    for (const [i, seed] of config.seeds.entries()) perSeed.push((await evaluateOnce(plan, run, variant.role, seed, variant.files[i]!, studentParams, teacherLogits)).metrics);
    add(variant.role, relative(run.dir, variant.files[0]!), perSeed, variant.files);
  }
  for (const { role, file } of await compressedStudents(plan, run)) {
    const m = (await evaluateOnce(plan, run, role, teacherSeed, file, studentParams, teacherLogits)).metrics;
    add(role, `compressed/${role}.onnx`, [m], [file]);
  }
  return { roles, files };
}

/** compress: the first seed's distilled student, quantized each way asked for (once; a resume reuses the files). */
async function compressedStudents(plan: Plan, run: RunFolder): Promise<{ role: string; file: string }[]> {
  const { config } = plan;
  const out: { role: string; file: string }[] = [];
  for (const mode of config.compress?.quantize ?? []) {
    const role = variantRole(mode), file = join(run.dir, "compressed", `${role}.onnx`);
    if (!existsSync(file)) {
      const source = run.modelPath("student", config.seeds[0]!);
      const student = await OnnxClassifier.fromFile(source);
      await student.dispose();
      const calibration = { set: plan.dataset.train, indices: plan.trainIndices, samples: config.compress!.calibrationSamples, sampleShape: student.sampleShape, inputName: student.inputName };
      writeFileAtomic(file, await quantizeStudent(readFileSync(source), source, mode, calibration));
    }
    out.push({ role, file });
  }
  return out;
}

function resultsOf(plan: Plan, run: RunFolder, models: ModelResult[], measured: Pick<RunResults, "machine" | "details" | "validationAgreement">): RunResults {
  const { config } = plan;
  const headline = (key: string) => config.kd.terms.map((t) => t[key]).find((v): v is number => typeof v === "number") ?? null;
  const { validationAgreement, ...facts } = measured;
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
    models: models.map((m) => (m.role === "student" && teacherPasses(plan) ? { ...m, teacherPasses: teacherPasses(plan)! } : m)),
    data: {
      train: plan.trainIndices.length, validation: plan.validationIndices.length, test: plan.testIndices.length, transfer: plan.transferIndices.length, transferLabeled: plan.labeled,
      ...(plan.copyIndices.length ? { jitteredCopies: { ...config.data.jitteredCopies!, samples: plan.copyIndices.length } } : {}),
      ...(plan.unlabeledIndices.length ? { unlabeled: { samples: plan.unlabeledIndices.length, labeledPerBatch: plan.distilledData.mix?.labeledPerBatch ?? null, batchSize: config.student.train.batchSize } } : {}),
    },
    setup: { teacher: config.teacher, student: config.student, kd: config.kd, seeds: config.seeds },
    ...facts,
    ...(run.state.teacherReport ? { teacherReport: run.state.teacherReport } : {}),
    ...(validationAgreement ? { validationAgreement } : {}),
    ...(run.state.domainShift ? { domainShift: run.state.domainShift } : {}),
    ...(run.state.biasShift ? { biasShift: run.state.biasShift } : {}),
    ...(run.state.teacherTraining ? { teacherTraining: run.state.teacherTraining } : {}),
  };
}
/** Images the teacher ran on to teach one distilled student (none for a file of its outputs, or no separate teacher). */
function teacherPasses(plan: Plan): ModelResult["teacherPasses"] {
  const { config } = plan;
  if (!config.teacher || config.teacher.softTargets !== undefined || !plan.studentTerms.usesTeacher) return undefined;
  if (config.kd.teaching !== "consistent") return { teaching: "cached", perModel: plan.transferIndices.length };
  const perEpoch = stageBatches({ set: plan.dataset.train, ...plan.distilledData, train: config.student.train, seed: config.seeds[0]! }).exampleCount;
  return { teaching: "consistent", perModel: perEpoch * config.student.train.epochs };
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

export function summaryLine(r: RunResults): string {
  const acc = (role: string) => {
    const m = r.models.find((x) => x.role === role);
    if (!m) return "";
    const s = m.summary;
    return `${role} ${s.errors.mean.toFixed(1)} errors${s.errors.values.length > 1 ? ` ± ${s.errors.std.toFixed(1)}` : ""}`;
  };
  return `${r.name}: ${["teacher", "baseline", "student"].map(acc).filter(Boolean).join(", ")} (of ${(r.models.find((m) => m.role === "student") ?? r.models[0]!).perSeed[0]!.total})`;
}
