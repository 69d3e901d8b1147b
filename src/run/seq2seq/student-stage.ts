// Stage 3 of a sequence run, per seed: the baseline on the gold pairs, then one distilled student
// per kd method, same architecture and training budget:
//   word      the gold pairs; loss (1−α)·CE + α·T²·KL(teacher's top-k ‖ student) per position (Kim & Rush 2016, §3.1)
//   sequence  the teacher's beam outputs as targets; cross-entropy on them (§3.2)
//   both      the teacher's outputs as targets, and word-level KL to its top-k on them (§3.2, "Seq-KD + Word-KD")

import type { Seq2SeqKdMethod } from "../../config/seq2seq.js";
import { trainSeq2SeqStage, type IdPair, type Seq2SeqStageJob } from "../../distill/seq2seq-stage.js";
import type { RunFolder } from "../../distill/run-folder.js";
import type { TopK } from "../../eval/seq2seq-decode.js";
import type { EpochMetric } from "../../eval/types.js";
import { Seq2SeqModel } from "../../nn/seq2seq.js";
import { studentStage } from "./files.js";
import type { Seq2SeqPlan } from "./plan.js";
import type { TeacherTargets } from "./targets-stage.js";
import { finishSeq2SeqStage, stageJob } from "./teacher-stage.js";

/** Every student stage of the run, in training order for one seed. */
export function seq2seqStudentStages(plan: Seq2SeqPlan): { stage: string; method?: Seq2SeqKdMethod }[] {
  return [{ stage: "baseline" }, ...plan.methods.map((method) => ({ stage: studentStage(method), method }))];
}

/** The student stages in this process, one after another (`--jobs N` trains them in child processes: student-jobs.ts). */
export async function trainSeq2SeqStudents(plan: Seq2SeqPlan, run: RunFolder, targets: TeacherTargets): Promise<void> {
  for (const seed of plan.config.seeds)
    for (const { stage, method } of seq2seqStudentStages(plan)) {
      if (run.finished(stage, seed)) continue;
      await trainSeq2SeqStudent(plan, run, targets, stage, method, seed);
      run.saveState();
    }
}

/** Trains one student stage (from its checkpoint, if any) and writes its model and record. */
export async function trainSeq2SeqStudent(
  plan: Seq2SeqPlan, run: RunFolder, targets: TeacherTargets, stage: string, method: Seq2SeqKdMethod | undefined, seed: number,
  onEpoch?: (history: EpochMetric[]) => void,
): Promise<void> {
  const model = new Seq2SeqModel(plan.studentSpec);
  const feeds = method ? methodFeeds(plan, method, targets) : { pairs: plan.trainPairs };
  const { params, history } = await trainSeq2SeqStage({
    ...stageJob(plan, run, stage, seed), ...(onEpoch ? { onEpoch } : {}), model, train: { ...plan.config.student.train, jitter: 0 }, ...feeds,
  });
  finishSeq2SeqStage(plan, run, stage, seed, model, params, history);
}

/** The pairs a method trains on and, for word-level distillation, the teacher's distributions on them. */
export function methodFeeds(plan: Seq2SeqPlan, method: Seq2SeqKdMethod, targets: TeacherTargets): Pick<Seq2SeqStageJob, "pairs" | "wordKd"> {
  const { temperature, alpha, topK } = plan.config.kd;
  const wordKd = (teacher: TopK[]) => ({ wordKd: { alpha, temperature, topK, teacher } });
  const need = <T>(x: T | undefined, what: string): T => {
    if (x === undefined) throw new Error(`the ${method} students need ${what}, which were not computed`);
    return x;
  };
  if (method === "word") return { pairs: plan.trainPairs, ...wordKd(need(targets.word, "the teacher's top-k")) };
  const pairs: IdPair[] = need(targets.sequencePairs, "the teacher's outputs");
  return method === "sequence" ? { pairs } : { pairs, ...wordKd(need(targets.sequenceTopK, "the teacher's top-k on its outputs")) };
}
