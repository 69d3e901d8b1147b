// Stage 3a: teacher assistants and born-again generations between the teacher and the student.

import { OnnxClassifier } from "../eval/evaluate.js";
import { meanSoftmaxEntropy } from "../eval/metrics.js";
import type { RunFolder } from "../distill/run-folder.js";
import { defaultCacheDir, teacherSoftTargets } from "../distill/soft-targets.js";
import { TeacherOutputs, type BatchTeacher } from "../distill/teacher-outputs.js";
import type { InGraphTeacher } from "../distill/consistent-teacher.js";
import { trainStage } from "../distill/train-stage.js";
import { exporterFor, runMetadata } from "./export.js";
import type { Plan } from "./plan.js";
import { firstTemperature } from "./teacher-stage.js";

/**
 * 3a. Teacher assistants (Mirzadeh et al. 2020) and born-again generations (Furlanello et al. 2018):
 * each link is distilled from the one before with the student's terms and budget (teacher seed),
 * then its own logits on the transfer set are cached and teach the next link, and finally the student.
 */
export async function trainChain(plan: Plan, run: RunFolder, teacher: BatchTeacher | InGraphTeacher): Promise<BatchTeacher | InGraphTeacher> {
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
      // How soft this link's targets are at the run's temperature: the next link learns from them.
      const temperature = firstTemperature(plan);
      const entropy = temperature !== undefined && transferIndices.length ? { softTargetEntropy: meanSoftmaxEntropy(soft.logits, soft.classes, temperature) } : {};
      run.state.chain = { ...run.state.chain, [link.stage]: { samples: transferIndices.length, computedSamples: soft.computedSamples, ...entropy } };
      run.saveState();
      current = new TeacherOutputs(TeacherOutputs.rowsFor(transferIndices, dataset.train.count), { sampleShape: [soft.classes], data: soft.logits }, new Map());
    } finally {
      await classifier.dispose();
    }
  }
  return current;
}
