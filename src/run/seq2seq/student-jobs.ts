// `--jobs N`: a sequence run's unfinished student stages, N at a time, each in a child process of
// its own (queue/child-process.ts). A student is small, so one process leaves cores idle (onnxruntime's
// intra-op threads do not scale on its small matrices), while independent stages fill them.
//
// The child opens the run folder, makes the plan again from its config.yaml (as a resume does),
// reads the stored teacher targets and trains one (stage, seed) exactly as the in-process path does,
// writing its checkpoints, model and stage record. The parent alone writes run.json and
// metrics.jsonl: the children send their epochs as JSON lines on stdout.
//
// A failing child lets the running ones finish, starts no more, and its error is thrown: the run
// folder resumes. An abort (Ctrl-C) kills the children; each stage resumes from its last checkpoint.

import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { loadRunConfig } from "../../config/load.js";
import { UserError } from "../../errors.js";
import { CONFIG_FILE, RunFolder } from "../../distill/run-folder.js";
import type { EpochMetric } from "../../eval/types.js";
import { runInChild } from "../../queue/child-process.js";
import { defaultCacheDir } from "../../util/cache-file.js";
import { createProgress, type Progress } from "../../util/progress.js";
import { readRunState } from "../pipeline.js";
import { makeSeq2SeqPlan, type Seq2SeqPlan } from "./plan.js";
import { seq2seqStudentStages, trainSeq2SeqStudent } from "./student-stage.js";
import { teacherTargets } from "./targets-stage.js";

/** What the parent sends a child. */
export interface StudentStageJob {
  runDir: string;
  stage: string;
  seed: number;
}

/** A stdout line of a child: a finished task's progress line, or the stage's epochs so far. */
type ChildMessage = { line: string } | { history: EpochMetric[] };

/** Trains the unfinished student stages `jobs` at a time in child processes; the results are the in-process path's. */
export async function trainSeq2SeqStudentsInChildren(plan: Seq2SeqPlan, run: RunFolder, jobs: number): Promise<void> {
  const all = plan.config.seeds.flatMap((seed) => seq2seqStudentStages(plan).map(({ stage }) => ({ stage, seed })));
  const key = (s: { stage: string; seed: number }) => `${s.stage}-s${s.seed}`;
  const todo = all.filter((s) => !run.hasFinished(s.stage, s.seed));
  // Every student's epochs, finished or under way, for metrics.jsonl meanwhile; listed in the in-process order.
  const histories = new Map(all.filter((s) => !todo.includes(s)).map((s) => [key(s), run.readRecord(s.stage, s.seed).history]));
  const writeLog = () => run.writeMetricsLog(all.flatMap((s) => histories.get(key(s)) ?? []));
  // As a search's local trials: cores shared out, or DISTILL_THREADS everywhere (tests compare runs).
  const fixed = Number(process.env["DISTILL_THREADS"]);
  const threads = fixed > 0 ? fixed : Math.max(1, Math.floor(availableParallelism() / jobs));
  const cacheDir = defaultCacheDir();
  const { signal } = plan.opts;
  let next = 0;
  let failure: Error | undefined;

  const worker = async () => {
    while (failure === undefined && !signal?.aborted && next < todo.length) {
      const s = todo[next++]!;
      const what = `${s.stage} seed ${s.seed}`;
      const started = performance.now();
      const onLine = (line: string) => {
        let message: ChildMessage;
        try {
          message = JSON.parse(line) as ChildMessage;
        } catch {
          return; // not ours (a library writing to stdout)
        }
        if ("line" in message) plan.progress.log(message.line);
        else if ("history" in message) {
          histories.set(key(s), message.history);
          writeLog();
        }
      };
      const job: StudentStageJob = { runDir: resolve(run.dir), ...s };
      try {
        await runInChild({ module: import.meta.url, fn: "trainSeq2SeqStudentHere", job, what, threads, cacheDir, onLine, ...(signal ? { signal } : {}) }, () => undefined);
      } catch (e) {
        failure ??= e as Error;
        return;
      }
      const history = run.readRecord(s.stage, s.seed).history;
      histories.set(key(s), history);
      writeLog();
      run.saveState();
      const accuracy = history.at(-1)?.valAccuracy;
      plan.progress.log(`${what}: finished in ${((performance.now() - started) / 1000).toFixed(1)} s${typeof accuracy === "number" && Number.isFinite(accuracy) ? `, val_word_acc=${accuracy.toFixed(4)}` : ""}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, todo.length) }, worker));
  // Registered in the in-process order, so metrics.jsonl lists the stages as a run in one process does.
  for (const s of all) run.finished(s.stage, s.seed);
  writeLog();
  run.saveState();
  if (failure) throw failure;
}

/**
 * The child's side (run by queue/job-child.ts): one student stage of the run folder, trained as the
 * in-process path trains it. The folder's run.json and metrics.jsonl are the parent's.
 */
export async function trainSeq2SeqStudentHere(job: StudentStageJob): Promise<void> {
  // Ctrl-C in a terminal reaches the whole process group: the parent decides (it kills its children
  // on abort), so that it, not a child dying of SIGINT first, reports the stop with its resume line.
  process.on("SIGINT", () => undefined);
  const emit = (message: ChildMessage) => void process.stdout.write(JSON.stringify(message) + "\n");
  const state = readRunState(job.runDir);
  const run = new ChildRunFolder(job.runDir, state);
  const loaded = loadRunConfig(join(job.runDir, CONFIG_FILE));
  if (loaded.task !== "seq2seq") throw new UserError(join(job.runDir, CONFIG_FILE), "data: not a sequence data block, but run.json says task: seq2seq");
  const plan = makeSeq2SeqPlan(run, { ...loaded.config, output: job.runDir }, { configPath: state.configPath, quiet: true, progress: linesProgress(emit) });
  const student = seq2seqStudentStages(plan).find((s) => s.stage === job.stage);
  if (!student || !plan.config.seeds.includes(job.seed)) throw new Error(`${job.stage} seed ${job.seed} is not a student stage of ${job.runDir}`);
  // The stores exist by now (the parent made them before starting any child); the baseline needs none.
  const targets = student.method ? await teacherTargets(plan, run) : {};
  await trainSeq2SeqStudent(plan, run, targets, job.stage, student.method, job.seed, (history) => emit({ history }));
}

/** The parent writes these files; a child writing them too would overwrite the other stages' epochs. */
class ChildRunFolder extends RunFolder {
  override saveState(): void {}
  override writeMetricsLog(): void {}
}

/** Each finished task's line (an epoch) as a message; log lines (the stored targets read) are the parent's already. */
function linesProgress(emit: (message: ChildMessage) => void): Progress {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) emit({ line });
      done();
    },
  });
  const lines = createProgress({ quiet: true, stream });
  return { task: (label, total) => lines.task(label, total), log: () => undefined };
}
