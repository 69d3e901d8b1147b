// The `distill` command line: commander setup (buildProgram) and the error policy (runCli).
// Exit codes: 0 ok, 1 internal error (a bug), 2 the user can fix it (bad config, missing file,
// unknown option). Heavy modules (onnxruntime via the pipeline) load only inside the actions, so
// --help and config errors answer at once.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { loadConfig } from "../config/load.js";
import { stopAllProgress } from "../util/progress.js";

export interface CliIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const defaultIo: CliIo = {
  writeOut: (t) => void process.stdout.write(t),
  writeErr: (t) => void process.stderr.write(t),
};

/** What `distill eval` calls; the module is loaded on demand (../eval/evaluate.js). */
export interface EvalOptions {
  /** Default: the dataset named in the model's metadata. */
  data?: "mnist" | "fashion-mnist";
  limit?: number;
  json: boolean;
}
interface EvalModule {
  evalCommand(modelPath: string, opts: EvalOptions): Promise<void>;
}

function positiveIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError("expected a positive integer.");
  return Number(value);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function packageVersion(): string {
  // dist/src/cli/args.js → package.json at the repository (or installed package) root.
  for (const rel of ["../../../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "distill" && pkg.version) return pkg.version;
    } catch {
      // try the next candidate
    }
  }
  return "unknown";
}

/**
 * The commander program. Errors throw CommanderError (exitOverride is set before the subcommands
 * are added, so they inherit it) and output goes to `io`; runCli turns both into exit codes.
 */
export function buildProgram(io: CliIo = defaultIo): Command {
  const program = new Command("distill");
  program
    .description("Knowledge distillation: train a teacher, distill soft targets into a student, compare against a baseline, report.")
    .version(packageVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    // One prefix for every error, commander's own ("error: unknown option") included.
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr, outputError: (text, write) => write(text.replace(/^error: /, "distill: ")) })
    .showHelpAfterError("(run with --help for usage)")
    .helpCommand(false);

  program
    .command("run")
    .description("run a distillation experiment described by a YAML config (teacher, baseline, student, report)")
    .argument("<config>", "YAML config file")
    .option("--set <key=value>", "override a config value, e.g. kd.temperature=8 or student.model.layers[1].units=400 (repeatable)", collect)
    .option("--epochs <n>", "set train.epochs of every stage", positiveIntArg)
    .option("--seeds <k>", "run seeds 0..k-1", positiveIntArg)
    .option("--output <dir>", "run folder (default: runs/<name>)")
    .option("-q, --quiet", "no progress bars: one line per finished task")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { set?: string[]; epochs?: number; seeds?: number; output?: string; quiet?: boolean }) => {
      const config = loadConfig(configPath, { set: opts.set, epochs: opts.epochs, seeds: opts.seeds, output: opts.output });
      const { runDistillation } = await import("../distill/pipeline.js");
      const { runDir } = await runDistillation(config, { configPath, quiet: opts.quiet === true });
      reportWhere(io, runDir);
    });

  program
    .command("resume")
    .description("continue an interrupted run, tune or shrink from its folder (finished stages and trials are kept)")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("-q, --quiet", "no progress bars: one line per finished task")
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string, opts: { quiet?: boolean }) => {
      // A tune or shrink folder (its state file) continues its search; finished trials are kept.
      const search = ["tune", "shrink"].find((k) => existsSync(join(runDir, `${k}.json`)));
      if (search) {
        const m = search === "tune" ? await import("../tune/search.js") : await import("../tune/shrink.js");
        const result = await ("resumeTune" in m ? m.resumeTune : m.resumeShrink)(runDir, (l) => io.writeOut(l + "\n"));
        return void result;
      }
      const { resumeDistillation } = await import("../distill/pipeline.js");
      const result = await resumeDistillation(runDir, { quiet: opts.quiet === true });
      reportWhere(io, result.runDir);
    });

  program
    .command("tune")
    .description("search the config's tune: space (T, α, lr, …) on validation accuracy; retrain the winner and the config's setting with K seeds and test both")
    .argument("<config>", "YAML config file with a tune: section")
    .option("--set <key=value>", "override a config value, as with distill run (repeatable)", collect)
    .option("--output <dir>", "tune folder (default: runs/<name>-tune)")
    .option("--concurrency <n>", "trials at once on this machine (default: one per core)", positiveIntArg)
    .option("--queue <redis-url>", "run trials as BullMQ jobs on Redis, e.g. redis://127.0.0.1:6379 (start workers with distill worker)")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { set?: string[]; output?: string; concurrency?: number; queue?: string }) => {
      const { tuneCommand } = await import("../tune/search.js");
      await tuneCommand(configPath, { ...searchOptions(opts), log: (l) => io.writeOut(l + "\n") });
    });

  program
    .command("shrink")
    .description("find the smallest student (width multipliers, bisection) whose validation accuracy is ≥ keep × the teacher's")
    .argument("<config>", "YAML config file")
    .requiredOption("--keep <fraction>", "fraction of the teacher's validation accuracy to keep, e.g. 0.99")
    .option("--widths <list>", "width multipliers of the student's hidden layers (default: 0.0625,0.125,0.25,0.5,1)")
    .option("--set <key=value>", "override a config value, as with distill run (repeatable)", collect)
    .option("--output <dir>", "shrink folder (default: runs/<name>-shrink)")
    .option("--concurrency <n>", "trials at once on this machine", positiveIntArg)
    .option("--queue <redis-url>", "run rungs as BullMQ jobs on Redis")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { keep: string; widths?: string; set?: string[]; output?: string; concurrency?: number; queue?: string }) => {
      const { shrinkCommand, parseKeep, parseLadder, DEFAULT_LADDER } = await import("../tune/shrink.js");
      const keep = parseKeep(opts.keep);
      const ladder = opts.widths === undefined ? DEFAULT_LADDER : parseLadder(opts.widths);
      await shrinkCommand(configPath, keep, ladder, { ...searchOptions(opts), log: (l) => io.writeOut(l + "\n") });
    });

  program
    .command("worker")
    .description("run tune/shrink trials from a BullMQ queue on Redis until stopped")
    .requiredOption("--queue <redis-url>", "Redis URL, e.g. redis://127.0.0.1:6379")
    .option("--stall-seconds <n>", "a dead worker's trial goes back to the queue after about this long (default 30)", positiveIntArg)
    .option("--max-jobs <n>", "exit after this many trials", positiveIntArg)
    .option("--debug", "print stack traces of errors")
    .action(async (opts: { queue: string; stallSeconds?: number; maxJobs?: number }) => {
      const { runWorker } = await import("../tune/queue.js");
      await runWorker(opts.queue, { stallSeconds: opts.stallSeconds ?? 30, ...(opts.maxJobs ? { maxJobs: opts.maxJobs } : {}), log: (l) => io.writeOut(l + "\n") });
    });

  program
    .command("report")
    .description("(re)write report.html of a run folder from its results.json and metrics.jsonl")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string) => {
      const { writeReport } = await import("../report/html.js");
      io.writeOut(`report: ${writeReport(runDir)}\n`);
    });

  program
    .command("eval")
    .description("measure an ONNX classifier on a test set: accuracy, F1, NLL, calibration, size, latency")
    .argument("<model.onnx>", "ONNX model taking images and returning class logits")
    .addOption(new Option("--data <dataset>", "test set (default: the dataset in the model's metadata)").choices(["mnist", "fashion-mnist"]))
    .option("--limit <n>", "use only the first n test samples", positiveIntArg)
    .option("--json", "print the metrics as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (modelPath: string, opts: { data?: EvalOptions["data"]; limit?: number; json?: boolean }) => {
      // A computed specifier: the module is written separately and typed by EvalModule above.
      const specifier = new URL("../eval/evaluate.js", import.meta.url).href;
      const { evalCommand } = (await import(specifier)) as EvalModule;
      await evalCommand(modelPath, { data: opts.data, limit: opts.limit, json: opts.json === true });
    });

  program
    .command("shift")
    .description("before distilling on a transfer set: does it look like the teacher's own data? (teacher confidence, entropy, input statistics, KS tests)")
    .argument("<teacher.onnx>", "the teacher (distill's contract: raw pixels in, logits out)")
    .requiredOption("--transfer <data>", "mnist | fashion-mnist (their training images) or an IDX images file")
    .addOption(new Option("--reference <dataset>", "the teacher's data (default: from its metadata)").choices(["mnist", "fashion-mnist"]))
    .option("--invert", "invert the transfer images (255 − x)")
    .option("--limit <n>", "samples per side (default 5000)", positiveIntArg)
    .option("--json", "print the report as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (teacherPath: string, opts: { transfer: string; reference?: "mnist" | "fashion-mnist"; invert?: boolean; limit?: number; json?: boolean }) => {
      const { shiftCommand } = await import("../eval/domain-shift.js");
      await shiftCommand(teacherPath, { transfer: opts.transfer, reference: opts.reference, invert: opts.invert, limit: opts.limit ?? 5000, json: opts.json === true });
    });

  return program;
}

function searchOptions(o: { set?: string[]; output?: string; concurrency?: number; queue?: string }) {
  return { ...(o.set ? { set: o.set } : {}), ...(o.output ? { output: o.output } : {}), ...(o.concurrency ? { concurrency: o.concurrency } : {}), ...(o.queue ? { queue: o.queue } : {}) };
}

function reportWhere(io: CliIo, runDir: string): void {
  const report = join(runDir, "report.html");
  io.writeOut(existsSync(report) ? `report: ${report}\n` : `run folder: ${runDir} (write the report with: distill report ${runDir})\n`);
}

/** Errors the user can fix: printed as one line, exit code 2. */
export function isUserError(e: unknown): boolean {
  return e instanceof Error && (e.name === "UserError" || e.name === "DataFileError");
}

// File-system failures are the machine's state, not a bug: a full disk, a read-only or missing
// folder, a file where a folder should be. Each names its path and what to do.
const FS_FAULTS: Record<string, string> = {
  ENOSPC: "no space left on the device; free some and resume",
  EDQUOT: "disk quota exceeded; free some and resume",
  EFBIG: "file too large for this process's limit (ulimit -f) or the file system; raise it and resume",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "a part of this path is a file, not a folder",
  EISDIR: "is a folder, a file was expected",
  ENOENT: "no such file or folder",
  EMFILE: "too many open files (raise ulimit -n)",
};

function fileSystemFault(e: unknown): { where: string; what: string } | undefined {
  const err = e as NodeJS.ErrnoException;
  const what = err?.code ? FS_FAULTS[err.code] : undefined;
  if (!what) return undefined;
  const where = (err as { dest?: string }).dest ?? err.path ?? "file system";
  return { where, what: `${err.syscall ? `cannot ${err.syscall}: ` : ""}${what} (${err.code})` };
}

/** Parses `argv` (process.argv form), runs the command, and returns the exit code. */
export async function runCli(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const debug = argv.includes("--debug");
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Commander has already printed its message (or the help/version text).
      return e.exitCode === 0 ? 0 : 2;
    }
    stopAllProgress();
    const err = e instanceof Error ? e : new Error(String(e));
    if (isUserError(err)) {
      io.writeErr(`distill: ${oneLine(err.message)}\n`);
      if (debug && err.stack) io.writeErr(err.stack + "\n");
      return 2;
    }
    const fault = fileSystemFault(err);
    if (fault) {
      io.writeErr(`distill: ${fault.where}: ${fault.what}\n`);
      if (debug && err.stack) io.writeErr(err.stack + "\n");
      return 2;
    }
    io.writeErr(`distill: internal error: ${oneLine(err.message)}${debug ? "" : " (run with --debug for details)"}\n`);
    if (debug && err.stack) io.writeErr(err.stack + "\n");
    return 1;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}
