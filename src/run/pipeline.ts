// `distill run`: config → stages → artefacts in the run folder.
//
//   1. teacher: trained here (its own recipe), loaded from an .onnx file, or a file of its outputs; frozen from then on
//   2. teacher outputs: its logits (and taps the terms name) on the transfer set, computed once, cached
//      (kd.teaching: consistent — none: the teacher runs on each student batch instead)
//   3. baseline: the student trained on hard labels only, same budget             } per seed
//   4. student: the same student trained with the configured loss terms           }
//   5. evaluation on the test set (quality, size, latency), results.json, report.html
//
// Each stage is a file beside this one (plan.ts, teacher-stage.ts, chain-stage.ts, student-stage.ts,
// evaluate-stage.ts); they meet through the run folder (distill/run-folder.ts). A finished stage is
// never redone, a stage in progress resumes from its last epoch checkpoint.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import type { DistillConfig } from "../config/schema.js";
import { loadConfig } from "../config/load.js";
import { RunAbortedError, UserError } from "../errors.js";
import type { RunResults } from "../eval/types.js";
import { headline } from "../report/headline.js";
import { writeReport } from "../report/html.js";
import { noGainLead } from "../report/no-gain.js";
import { codeVersion } from "../util/code-version.js";
import { writeFileAtomic } from "../util/fs.js";
import type { Progress } from "../util/progress.js";
import { CONFIG_FILE, RUN_FORMAT, RunFolder, STATE_FILE, type RunState } from "../distill/run-folder.js";
import { Interrupted } from "../distill/train-stage.js";
import { trainChain } from "./chain-stage.js";
import { evaluate, summaryLine } from "./evaluate-stage.js";
import { makePlan, type PipelineOptions } from "./plan.js";
import { trainStudents } from "./student-stage.js";
import { teacherOutputs, trainTeacher } from "./teacher-stage.js";

export type { PipelineOptions } from "./plan.js";

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
  const state = readRunState(runDir);
  if (state.task === "seq2seq") throw new UserError(runDir, "a sequence-to-sequence run folder: continue it with `distill resume` (or resumeSeq2SeqRun)");
  // Re-validated: the resolved config is written by us, but a hand edit should fail here, clearly.
  const config = loadConfig(join(runDir, CONFIG_FILE));
  return execute(runDir, { ...config, output: runDir }, state, { ...opts, configPath: state.configPath, ...(state.skipBaseline ? { skipBaseline: true } : {}) });
}

/** run.json of a run folder, checked: a folder of another format is refused by name. */
export function readRunState(runDir: string): RunState {
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
  return state;
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
  try {
    stopIfAborted();
    const teacher = await trainChain(plan, run, outputs);
    stopIfAborted();
    await trainStudents(plan, run, teacher);
  } finally {
    // A consistent teacher's own session (kd.teaching: consistent with an .onnx teacher).
    if (outputs.kind !== "in-graph") await outputs.dispose?.();
  }
  stopIfAborted();
  const results = await evaluate(plan, run);
  writeFileAtomic(join(run.dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  writeReport(run.dir);
  // Every stage is finished and exported: its checkpoints can no longer be resumed from.
  if (!config.keepCheckpoints) rmSync(join(run.dir, "checkpoints"), { recursive: true, force: true });
  plan.progress.log(summaryLine(results));
  if (results.noGain) plan.progress.log(`${noGainLead(headline(results))}: ${results.noGain.summary}`);
  return { runDir: run.dir, results };
}
