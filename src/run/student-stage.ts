// Stages 3 and 4, per seed: the baseline on hard labels and the distilled student, same budget.

import type { RunFolder } from "../distill/run-folder.js";
import type { BatchTeacher } from "../distill/teacher-outputs.js";
import type { InGraphTeacher } from "../distill/consistent-teacher.js";
import { trainStage } from "../distill/train-stage.js";
import { exporterFor, runMetadata } from "./export.js";
import type { Plan } from "./plan.js";
import { judgeTeacher } from "./teacher-checks.js";

/** 3, 4. Per seed: the baseline on hard labels, and the student with the configured terms, same budget. */
export async function trainStudents(plan: Plan, run: RunFolder, teacher: BatchTeacher | InGraphTeacher): Promise<void> {
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
export function studentStages(plan: Plan): ("baseline" | "student")[] {
  return plan.labeled && !plan.opts.skipBaseline ? ["baseline", "student"] : ["student"];
}
