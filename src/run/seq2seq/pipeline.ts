// `distill run` with a sequence-to-sequence config: config → stages → artefacts in the run folder.
//
//   1. teacher: trained here, a distill-exported .onnx, or a file of its outputs      (teacher-stage.ts)
//   2. its targets for the students, computed once and stored: top-k per position,    (targets-stage.ts)
//      beam outputs on the training sources, top-k on those
//   3. per seed: the baseline on gold pairs, one student per kd method                (student-stage.ts;
//      with jobs > 1, N stages at a time in child processes: student-jobs.ts)
//   4. evaluation on the test split, results.json, report.html                        (evaluate-stage.ts)
//
// The run folder is the classifier's (distill/run-folder.ts) plus files.ts's names; a finished
// stage is never redone, one in progress resumes from its last epoch checkpoint.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { loadRunConfig } from "../../config/load.js";
import type { Seq2SeqConfig } from "../../config/seq2seq.js";
import { RunAbortedError, UserError } from "../../errors.js";
import { CONFIG_FILE, RUN_FORMAT, RunFolder, STATE_FILE, type RunState } from "../../distill/run-folder.js";
import { Interrupted } from "../../distill/train-stage.js";
import { readRunState } from "../pipeline.js";
import type { Seq2SeqResults } from "../../report/seq2seq-results.js";
import { writeSeq2SeqReport } from "../../report/seq2seq-html.js";
import { codeVersion } from "../../util/code-version.js";
import { writeFileAtomic } from "../../util/fs.js";
import { evaluateSeq2Seq, seq2seqSummaryLine } from "./evaluate-stage.js";
import { attachSeq2SeqTeacher, makeSeq2SeqPlan, type Seq2SeqRunOptions } from "./plan.js";
import { trainSeq2SeqStudentsInChildren } from "./student-jobs.js";
import { trainSeq2SeqStudents } from "./student-stage.js";
import { teacherTargets } from "./targets-stage.js";
import { trainSeq2SeqTeacher } from "./teacher-stage.js";
import { Seq2SeqModel } from "../../nn/seq2seq.js";
import { importSeq2SeqOnnx } from "../../nn/seq2seq-export.js";
import type { Seq2SeqPlan } from "./plan.js";

export type { Seq2SeqRunOptions } from "./plan.js";

export async function runSeq2Seq(config: Seq2SeqConfig, opts: Seq2SeqRunOptions): Promise<{ runDir: string; results: Seq2SeqResults }> {
  checkJobs(opts.jobs);
  const runDir = config.output;
  if (existsSync(runDir) && !statSync(runDir).isDirectory()) throw new UserError(runDir, "exists and is not a folder; choose a run folder with --output");
  if (existsSync(runDir) && readdirSync(runDir).length > 0)
    throw new UserError(runDir, `the run folder already exists and is not empty; continue it with \`distill resume ${runDir}\`, or choose another with --output`);
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, CONFIG_FILE), `# resolved from ${opts.configPath} (defaults filled in)\n` + toYaml(config));
  const state: RunState = { formatVersion: RUN_FORMAT, task: "seq2seq", configPath: opts.configPath, createdAt: new Date().toISOString(), codeVersion: codeVersion(), activeSeconds: 0 };
  writeFileAtomic(join(runDir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
  try {
    return await execute(new RunFolder(runDir, state), config, opts);
  } catch (e) {
    // Failed before any stage produced anything (bad data, a wrong teacher): leave no run folder
    // behind, so fixing the config and running again just works.
    const progressMade = existsSync(join(runDir, "stages")) || existsSync(join(runDir, "checkpoints"));
    if (!progressMade && !(e instanceof Interrupted) && !(e instanceof RunAbortedError)) rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
}

/** Continues an interrupted sequence run from its folder (`distill resume`): finished stages are kept. */
export async function resumeSeq2SeqRun(runDir: string, opts: Omit<Seq2SeqRunOptions, "configPath">): Promise<{ runDir: string; results: Seq2SeqResults }> {
  checkJobs(opts.jobs);
  const state = readRunState(runDir);
  if (state.task !== "seq2seq") throw new UserError(runDir, "not a sequence-to-sequence run folder (run.json has no task: seq2seq)");
  // Re-validated: the resolved config is written by us, but a hand edit should fail here, clearly.
  const loaded = loadRunConfig(join(runDir, CONFIG_FILE));
  if (loaded.task !== "seq2seq") throw new UserError(join(runDir, CONFIG_FILE), "data: not a sequence data block, but run.json says task: seq2seq");
  return execute(new RunFolder(runDir, state), { ...loaded.config, output: runDir }, { ...opts, configPath: state.configPath });
}

async function execute(run: RunFolder, config: Seq2SeqConfig, opts: Seq2SeqRunOptions): Promise<{ runDir: string; results: Seq2SeqResults }> {
  // Signals belong to the caller; every file is written atomically, so wherever the run stops, it resumes.
  const stopIfAborted = () => {
    if (opts.signal?.aborted) throw new Interrupted("stopped by its AbortSignal");
  };
  try {
    const plan = makeSeq2SeqPlan(run, config, opts);
    attachSeq2SeqTeacher(plan, run);
    plan.progress.log(`${config.name}: ${plan.trainPairs.length} training pairs (${plan.leftOut.trainPairs} longer than ${plan.lengths.source} → ${plan.lengths.target - 1} symbols left out), ${plan.test.entries.length} test words; buckets ${plan.buckets.map((b) => `[${b.join(", ")}]`).join(" ")}`);
    logParameters(plan, run);
    stopIfAborted();
    await trainSeq2SeqTeacher(plan, run);
    stopIfAborted();
    const targets = await teacherTargets(plan, run);
    stopIfAborted();
    const jobs = opts.jobs ?? 1;
    if (jobs > 1) await trainSeq2SeqStudentsInChildren(plan, run, jobs);
    else await trainSeq2SeqStudents(plan, run, targets);
    stopIfAborted();
    const results = await evaluateSeq2Seq(plan, run);
    writeFileAtomic(join(run.dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
    writeSeq2SeqReport(run.dir);
    if (!config.keepCheckpoints) rmSync(join(run.dir, "checkpoints"), { recursive: true, force: true });
    plan.progress.log(seq2seqSummaryLine(results));
    return { runDir: run.dir, results };
  } catch (e) {
    if (opts.signal?.aborted) throw new RunAbortedError(run.dir, `distill resume ${run.dir}`, opts.signal.reason);
    throw e;
  }
}

function checkJobs(jobs: number | undefined): void {
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs >= 1)) throw new UserError("jobs", `expected a positive integer, got ${jobs}`);
}

/** Both models' sizes before training: the student's share of the teacher's parameters is the point of the run. */
function logParameters(plan: Seq2SeqPlan, run: RunFolder): void {
  const count = (spec: Seq2SeqPlan["studentSpec"]) => new Seq2SeqModel(spec).declarations().reduce((n, d) => n + d.shape.reduce((a, b) => a * b, 1), 0);
  const student = count(plan.studentSpec);
  const teacher = plan.teacherSpec ? count(plan.teacherSpec) : existsSync(run.teacherFile) ? importSeq2SeqOnnx(readFileSync(run.teacherFile), run.teacherFile).params.count() : undefined;
  plan.progress.log(`parameters: student ${student.toLocaleString("en-US")}${teacher ? `, teacher ${teacher.toLocaleString("en-US")} (student = 1/${(teacher / student).toFixed(1)} of the teacher)` : ""}`);
}
