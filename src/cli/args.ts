// The `distill` command line: commander setup (buildProgram) and the error policy (runCli).
// Exit codes: 0 ok, 1 internal error (a bug), 2 the user can fix it (bad config, missing file,
// unknown option). Heavy modules (onnxruntime via the pipeline) load only inside the actions, so
// --help and config errors answer at once.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { loadConfig, loadRunConfig } from "../config/load.js";
import { RunAbortedError } from "../errors.js";
// Registers the distillation methods that the config's `kd:` block accepts (src/config/methods.ts).
import "../distill/methods/index.js";
import { UserError } from "../errors.js";
import type { JobKind } from "../queue/job.js";
import { stopAllProgress } from "../util/progress.js";
import { distillVersion } from "../util/version.js";

export interface CliIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const defaultIo: CliIo = {
  writeOut: (t) => void process.stdout.write(t),
  writeErr: (t) => void process.stderr.write(t),
};

function positiveIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError("expected a positive integer.");
  return Number(value);
}

const JOBS_HELP = "sequence runs: train n student stages at once, each in a child process with cores/n onnxruntime threads (default 1: one after another)";

const jobsOption = (jobs: number | undefined) => (jobs !== undefined ? { jobs } : {});

/** --jobs on a classifier run, tune or shrink: their stages stay in one process (1, today's behaviour, is accepted). */
function refuseJobs(jobs: number | undefined): void {
  if (jobs !== undefined && jobs > 1) throw new UserError("--jobs", "only sequence runs train their student stages in parallel; leave it out for this config or folder");
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * The commander program. Errors throw CommanderError (exitOverride is set before the subcommands
 * are added, so they inherit it) and output goes to `io`; runCli turns both into exit codes.
 */
export function buildProgram(io: CliIo = defaultIo): Command {
  const program = new Command("distill");
  program
    .description("Knowledge distillation: train a teacher, distill soft targets into a student, compare against a baseline, report.")
    .version(distillVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    // One prefix for every error, commander's own ("error: unknown option") included.
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr, outputError: (text, write) => write(text.replace(/^error: /, "distill: ")) })
    .showHelpAfterError("(run with --help for usage)")
    .helpCommand(false);

  addRunCommand(program, io);
  addLabelCommand(program, io);
  addResumeCommand(program, io);
  addTuneCommand(program, io);
  addShrinkCommand(program, io);
  addWorkerCommand(program, io);
  addReportCommand(program, io);
  addEvalCommand(program, io);
  addShiftCommand(program, io);
  addQuantizeCommand(program, io);
  addPruneCommand(program, io);
  addCompareCommand(program, io);
  addExportWebCommand(program, io);
  return program;
}

function addRunCommand(program: Command, io: CliIo): void {
  program
    .command("run")
    .description("run a distillation experiment described by a YAML config (teacher, baseline, student, report)")
    .argument("<config>", "YAML config file")
    .option("--set <key=value>", "override a config value, e.g. kd.temperature=8 or student.model.layers[1].units=400 (repeatable)", collect)
    .option("--epochs <n>", "set train.epochs of every stage", positiveIntArg)
    .option("--seeds <k>", "run seeds 0..k-1", positiveIntArg)
    .option("--output <dir>", "run folder (default: runs/<name>)")
    .option("--jobs <n>", JOBS_HELP, positiveIntArg)
    .option("-q, --quiet", "no progress bars: one line per finished task")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { set?: string[]; epochs?: number; seeds?: number; output?: string; jobs?: number; quiet?: boolean }) => {
      const loaded = loadRunConfig(configPath, { set: opts.set, epochs: opts.epochs, seeds: opts.seeds, output: opts.output });
      const resumeLine = `distill resume ${loaded.config.output}`;
      if (loaded.task === "seq2seq") {
        const { runSeq2Seq } = await import("../run/seq2seq/pipeline.js");
        const { runDir } = await withSignals(io, resumeLine, (signal) => runSeq2Seq(loaded.config, { configPath, quiet: opts.quiet === true, signal, ...jobsOption(opts.jobs) }));
        return reportWhere(io, runDir);
      }
      refuseJobs(opts.jobs);
      const { runDistillation } = await import("../run/pipeline.js");
      const { runDir } = await withSignals(io, resumeLine, (signal) => runDistillation(loaded.config, { configPath, quiet: opts.quiet === true, signal }));
      reportWhere(io, runDir);
    });
}

function addLabelCommand(program: Command, io: CliIo): void {
  program
    .command("label")
    .description("the teacher's labelling pass alone: its logits on the transfer set into the soft-target cache, in chunks; --shard splits it over machines (merge by copying the cache files), --queue runs the shards as jobs for distill worker")
    .argument("<config>", "YAML config file (its teacher: an .onnx, or --run for a teacher trained by a run)")
    .option("--shard <i/N>", "label shard i of N (chunks c with c % N == i), e.g. 0/2")
    .option("--queue <redis-url>", "enqueue the shards as BullMQ jobs on Redis for distill worker (shared cache folder) and wait for them")
    .option("--shards <n>", "with --queue: the number of shards to enqueue")
    .option("--root <dir>", "with --queue: the folder the workers' --root names; job paths are written relative to it (default: the current folder)")
    .option("--queue-ca <file>", "with a rediss:// queue: the CA certificate (PEM) that signed Redis's (default: $DISTILL_REDIS_CA)")
    .option("--cache-dir <dir>", "cache folder (default: $DISTILL_CACHE or .cache/distill)")
    .option("--run <dir>", "a run folder whose teacher has finished training: label with its teacher.onnx")
    .option("--export <file.npy>", "label every training-source sample and write the logits there (float32 .npy, row i = sample i): a teacher.softTargets file")
    .option("--set <key=value>", "override a config value, as with distill run (repeatable)", collect)
    .option("-q, --quiet", "no progress bars: one line per finished task")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { shard?: string; queue?: string; shards?: string; root?: string; queueCa?: string; cacheDir?: string; run?: string; export?: string; set?: string[]; quiet?: boolean }) => {
      // The shard spec first: a bad one is refused before anything is loaded, read or written.
      const { parseShard } = await import("../distill/shard.js");
      const shard = opts.shard === undefined ? undefined : parseShard(opts.shard);
      if (opts.queue !== undefined) {
        const { redisOptions } = await import("../queue/redis.js");
        const { labelOnQueue, parseShardCount } = await import("../distill/label-queue.js");
        redisOptions({ url: opts.queue, ...(opts.queueCa ? { caFile: opts.queueCa } : {}) }, "--queue");
        if (shard) throw new UserError("--shard", "with --queue the workers take the shards: give --shards N instead");
        if (opts.export !== undefined) throw new UserError("--export", "writes one file from this machine's pass; leave out --queue");
        if (opts.shards === undefined) throw new UserError("--queue", "give the number of shards to enqueue with --shards N");
        const shards = parseShardCount(opts.shards);
        const config = loadConfig(configPath, { set: opts.set });
        await labelOnQueue(config, configPath, { queue: opts.queue, shards, ...(opts.root ? { queueRoot: opts.root } : {}), ...(opts.queueCa ? { queueCa: opts.queueCa } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(opts.run ? { run: opts.run } : {}), log: (l) => io.writeOut(l + "\n") });
        return;
      }
      if (opts.shards !== undefined) throw new UserError("--shards", "only with --queue (on one machine, label shard i of N with --shard i/N)");
      for (const [given, name] of [[opts.root, "--root"], [opts.queueCa, "--queue-ca"]] as const) if (given !== undefined) throw new UserError(name, "only with --queue");
      const config = loadConfig(configPath, { set: opts.set });
      const { labelCommand } = await import("../distill/label.js");
      await labelCommand(config, configPath, {
        ...(shard ? { shard } : {}), ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(opts.run ? { run: opts.run } : {}), ...(opts.export ? { export: opts.export } : {}),
        quiet: opts.quiet === true, log: (l) => io.writeOut(l + "\n"),
      });
    });
}

function addResumeCommand(program: Command, io: CliIo): void {
  program
    .command("resume")
    .description("continue an interrupted run, tune or shrink from its folder (finished stages and trials are kept)")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("--jobs <n>", JOBS_HELP, positiveIntArg)
    .option("-q, --quiet", "no progress bars: one line per finished task")
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string, opts: { jobs?: number; quiet?: boolean }) => {
      // A tune or shrink folder (its state file) continues its search; finished trials are kept.
      const search = ["tune", "shrink"].find((k) => existsSync(join(runDir, `${k}.json`)));
      if (search) {
        refuseJobs(opts.jobs);
        const m = search === "tune" ? await import("../tune/search.js") : await import("../tune/shrink.js");
        const log = (l: string) => io.writeOut(l + "\n");
        await withSignals<unknown>(io, `distill resume ${runDir}`, (signal) => ("resumeTune" in m ? m.resumeTune(runDir, log, signal) : m.resumeShrink(runDir, log, signal)));
        return;
      }
      const { readRunState, resumeDistillation } = await import("../run/pipeline.js");
      if (readRunState(runDir).task === "seq2seq") {
        const { resumeSeq2SeqRun } = await import("../run/seq2seq/pipeline.js");
        const result = await withSignals(io, `distill resume ${runDir}`, (signal) => resumeSeq2SeqRun(runDir, { quiet: opts.quiet === true, signal, ...jobsOption(opts.jobs) }));
        return reportWhere(io, result.runDir);
      }
      refuseJobs(opts.jobs);
      const result = await withSignals(io, `distill resume ${runDir}`, (signal) => resumeDistillation(runDir, { quiet: opts.quiet === true, signal }));
      reportWhere(io, result.runDir);
    });
}

function addTuneCommand(program: Command, io: CliIo): void {
  program
    .command("tune")
    .description("search the config's tune: space (T, α, lr, …) on validation accuracy; retrain the winner and the config's setting with K seeds and test both")
    .argument("<config>", "YAML config file with a tune: section")
    .option("--set <key=value>", "override a config value, as with distill run (repeatable)", collect)
    .option("--output <dir>", "tune folder (default: runs/<name>-tune)")
    .option("--concurrency <n>", "trials at once on this machine (default: one per core)", positiveIntArg)
    .option("--queue <redis-url>", "run trials as BullMQ jobs on Redis, e.g. redis://127.0.0.1:6379 or rediss://user:password@host:6380 (start workers with distill worker)")
    .option("--root <dir>", "with --queue: the folder the workers' --root names; job paths are written relative to it (default: the current folder)")
    .option("--queue-ca <file>", "with a rediss:// queue: the CA certificate (PEM) that signed Redis's (default: $DISTILL_REDIS_CA)")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { set?: string[]; output?: string; concurrency?: number; queue?: string; root?: string; queueCa?: string }) => {
      const { tuneCommand } = await import("../tune/search.js");
      await withSignals(io, "distill resume <the tune folder>", (signal) => tuneCommand(configPath, { ...searchOptions(opts), log: (l) => io.writeOut(l + "\n"), signal }));
    });
}

function addShrinkCommand(program: Command, io: CliIo): void {
  program
    .command("shrink")
    .description("find the smallest student (width × depth multipliers or the config's shrink.models, ordered by parameters; bisection) whose validation accuracy is ≥ keep × the teacher's")
    .argument("<config>", "YAML config file (an optional shrink: {models: [{name, model}, …]} section lists the ladder)")
    .requiredOption("--keep <fraction>", "fraction of the teacher's validation accuracy to keep, e.g. 0.99")
    .option("--widths <list>", "width multipliers of the student's hidden layers (default: 0.0625,0.125,0.25,0.5,1)")
    .option("--depths <list>", "depth multipliers: the student's hidden linear layers (MLP) or conv blocks (CNN) × d, e.g. 0.5,1,2 (default: 1)")
    .option("--every-rung", "train every rung instead of bisecting (the whole accuracy/size curve)")
    .option("--assistant", "afterwards, train the rung below the chosen one again through a teacher assistant")
    .option("--assistant-gap <gap>", "the same, only when the chosen rung's validation accuracy is more than this below the teacher's, e.g. 0.02")
    .option("--set <key=value>", "override a config value, as with distill run (repeatable)", collect)
    .option("--output <dir>", "shrink folder (default: runs/<name>-shrink)")
    .option("--concurrency <n>", "trials at once on this machine", positiveIntArg)
    .option("--queue <redis-url>", "run rungs as BullMQ jobs on Redis, e.g. redis://127.0.0.1:6379 or rediss://user:password@host:6380 (start workers with distill worker)")
    .option("--root <dir>", "with --queue: the folder the workers' --root names; job paths are written relative to it (default: the current folder)")
    .option("--queue-ca <file>", "with a rediss:// queue: the CA certificate (PEM) that signed Redis's (default: $DISTILL_REDIS_CA)")
    .option("--debug", "print stack traces of errors")
    .action(async (configPath: string, opts: { keep: string; widths?: string; depths?: string; everyRung?: boolean; assistant?: boolean; assistantGap?: string; set?: string[]; output?: string; concurrency?: number; queue?: string; root?: string; queueCa?: string }) => {
      const { shrinkCommand, parseKeep, parseLadder, parseDepths, parseGap } = await import("../tune/shrink.js");
      const { UserError } = await import("../errors.js");
      const keep = parseKeep(opts.keep);
      const widths = opts.widths === undefined ? undefined : parseLadder(opts.widths);
      const depths = opts.depths === undefined ? undefined : parseDepths(opts.depths);
      if (opts.assistant && opts.assistantGap !== undefined) throw new UserError("--assistant-gap", "give --assistant (always) or --assistant-gap (when the gap is larger), not both");
      const assistant = opts.assistant ? { always: true as const } : opts.assistantGap !== undefined ? { gap: parseGap(opts.assistantGap) } : undefined;
      await withSignals(io, "distill resume <the shrink folder>", (signal) => shrinkCommand(configPath, {
        keep, ...(widths ? { widths } : {}), ...(depths ? { depths } : {}), everyRung: opts.everyRung === true, ...(assistant ? { assistant } : {}),
        ...searchOptions(opts), log: (l) => io.writeOut(l + "\n"), signal,
      }));
    });
}

function addWorkerCommand(program: Command, io: CliIo): void {
  program
    .command("worker")
    .description("run tune/shrink trials and distill label --queue shards from a BullMQ queue on Redis until stopped")
    .requiredOption("--queue <redis-url>", "Redis URL, e.g. redis://127.0.0.1:6379 or rediss://user:password@host:6380 (or the password in $DISTILL_REDIS_PASSWORD)")
    .requiredOption("--root <dir>", "every path a job names (trial and run folders, cache, teacher, data) must lie in this folder, after symlinks; other jobs are refused")
    .option("--queue-ca <file>", "with rediss://: the CA certificate (PEM) that signed Redis's (default: $DISTILL_REDIS_CA)")
    .option("--stall-seconds <n>", "a dead worker's trial goes back to the queue after about this long (default 30)", positiveIntArg)
    .option("--max-jobs <n>", "exit after this many jobs (finished or failed)", positiveIntArg)
    .option("--debug", "print stack traces of errors")
    .action(async (opts: { queue: string; root: string; queueCa?: string; stallSeconds?: number; maxJobs?: number }) => {
      const { runWorker } = await import("../queue/worker.js");
      const { realRoot } = await import("../queue/job.js");
      const { trialJobKind } = await import("../tune/queue.js");
      const { labelJobKind } = await import("../distill/label-queue.js");
      await runWorker({ url: opts.queue, ...(opts.queueCa ? { caFile: opts.queueCa } : {}) }, {
        root: realRoot(opts.root, "--root"), kinds: [trialJobKind, labelJobKind] as JobKind[], stallSeconds: opts.stallSeconds ?? 30, ...(opts.maxJobs ? { maxJobs: opts.maxJobs } : {}), log: (l) => io.writeOut(l + "\n"),
      });
    });
}

function addReportCommand(program: Command, io: CliIo): void {
  program
    .command("report")
    .description("(re)write report.html of a run folder from its results.json and metrics.jsonl")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string) => {
      const { isSeq2SeqResults, writeSeq2SeqReport } = await import("../report/seq2seq-html.js");
      if (isSeq2SeqResults(runDir)) return io.writeOut(`report: ${writeSeq2SeqReport(runDir)}\n`);
      const { writeReport } = await import("../report/html.js");
      io.writeOut(`report: ${writeReport(runDir)}\n`);
    });
}

function addEvalCommand(program: Command, io: CliIo): void {
  program
    .command("eval")
    .description("measure ONNX classifiers on a test set: accuracy, F1, NLL, calibration, size, latency; given several, also their ensemble (mean of probabilities). Sequence models (distill run on a sequence config): WER, PER, BLEU, chrF greedy and beam, size, latency per word")
    .argument("<model.onnx...>", "ONNX models taking the data's inputs and returning class logits")
    .option("--data <dataset|config.yaml>", "test set: mnist, fashion-mnist, or a run config whose data: block names it (default: the data in the model's metadata)")
    .option("--limit <n>", "use only the first n test samples", positiveIntArg)
    .option("--beam <n>", "sequence models: beam width of the beam decoding (greedy is scored too)", positiveIntArg, 4)
    .option("--json", "print the metrics as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (modelPaths: string[], opts: { data?: string; limit?: number; beam: number; json?: boolean }) => {
      const { evalCommand } = await import("../eval/evaluate.js");
      await evalCommand(modelPaths, { data: opts.data, limit: opts.limit, beam: opts.beam, json: opts.json === true, write: io.writeOut });
    });
}

function addShiftCommand(program: Command, io: CliIo): void {
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
}

// quantize, prune, compare, export-web: the after-distillation commands (src/compress, src/web).

function addQuantizeCommand(program: Command, io: CliIo): void {
  program
    .command("quantize")
    .description("quantize an ONNX classifier (dynamic int8, static int8 QDQ, or fp16 weights) and check it against the source")
    .argument("<model.onnx>", "ONNX model taking images and returning class logits")
    .addOption(new Option("--mode <mode>", "quantization").choices(["dynamic", "static", "fp16"]).makeOptionMandatory())
    .requiredOption("-o, --output <file>", "quantized model to write")
    .addOption(new Option("--format <form>", "dynamic int8 form: integer ops, QDQ, weight-only, or auto (integer Gemm, weight-only Conv)").choices(["auto", "integer", "qdq", "weights"]).default("auto"))
    .addOption(new Option("--data <dataset>", "calibration (training images) and check (test images) data; default: the model's distill.dataset").choices(["mnist", "fashion-mnist"]))
    .addOption(new Option("--calibration <method>", "static: how activation ranges are chosen").choices(["minmax", "percentile"]).default("percentile"))
    .option("--percentile <p>", "static, percentile: central share of values kept, in %", percentArg, 99.99)
    .option("--calibration-samples <n>", "static: training images to calibrate on", positiveIntArg, 512)
    .option("--limit <n>", "check on the first n test images only", positiveIntArg)
    .option("--no-check", "write the model without measuring it")
    .option("--wasm", "also time both models under onnxruntime-web (wasm)")
    .option("--json", "print the result as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (modelPath: string, opts: { mode: "dynamic" | "static" | "fp16"; output: string; format: "auto" | "integer" | "qdq" | "weights"; data?: "mnist" | "fashion-mnist"; calibration: "minmax" | "percentile"; percentile: number; calibrationSamples: number; limit?: number; check: boolean; wasm?: boolean; json?: boolean }) => {
      const { quantizeFile, formatQuantizeResult } = await import("../compress/commands.js");
      const result = await quantizeFile(modelPath, {
        mode: opts.mode, output: opts.output, format: opts.format, method: opts.calibration, percentile: opts.percentile,
        calibrationSamples: opts.calibrationSamples, check: opts.check, wasm: opts.wasm === true,
        ...(opts.data ? { data: opts.data } : {}), ...(opts.limit ? { limit: opts.limit } : {}),
      });
      io.writeOut(opts.json ? JSON.stringify(result) + "\n" : formatQuantizeResult(result));
    });
}

function addPruneCommand(program: Command, io: CliIo): void {
  program
    .command("prune")
    .description("prune an ONNX classifier: unstructured (zero the smallest weights) or structured (remove whole units/channels)")
    .argument("<model.onnx>", "ONNX model taking images and returning class logits")
    .requiredOption("-o, --output <file>", "pruned model to write")
    .option("--sparsity <s>", "unstructured: share of Conv/Gemm weights to zero, 0–1", shareArg)
    .addOption(new Option("--scope <scope>", "unstructured: one threshold over all layers, or the same share in each").choices(["global", "layer"]).default("global"))
    .option("--keep <r>", "structured: share of channels/units kept in every inner layer, 0–1", shareArg)
    .option("--params <n>", "structured: keep about n parameters (e.g. a student's count)", positiveIntArg)
    .option("--finetune <run-dir>", "fine-tune with the KD loss against this run's teacher: after structured pruning (the model must be that teacher), or with --sparsity while pruning gradually (the run's teacher or student)")
    .option("--finetune-epochs <n>", "epochs of KD fine-tuning", positiveIntArg, 2)
    .option("--ramp <share>", "gradual: share of the fine-tune over which sparsity rises to --sparsity, in (0, 1] (default 0.75)", rampArg)
    .option("--interval <steps>", "gradual: optimizer steps between mask updates (default 50)", positiveIntArg)
    .addOption(new Option("--data <dataset>", "check data (test images); default: the model's distill.dataset").choices(["mnist", "fashion-mnist"]))
    .option("--limit <n>", "check on the first n test images only", positiveIntArg)
    .option("--no-check", "write the model without measuring it")
    .option("--json", "print the result as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (modelPath: string, opts: { output: string; sparsity?: number; scope: "global" | "layer"; keep?: number; params?: number; data?: "mnist" | "fashion-mnist"; limit?: number; check: boolean; json?: boolean; finetune?: string; finetuneEpochs: number; ramp?: number; interval?: number }) => {
      const { pruneFile, formatPruneResult } = await import("../compress/commands.js");
      const result = await pruneFile(modelPath, {
        output: opts.output, scope: opts.scope, check: opts.check, finetuneEpochs: opts.finetuneEpochs,
        onEpoch: (e, loss) => io.writeErr(`fine-tune epoch ${e}/${opts.finetuneEpochs}: KD loss ${loss.toFixed(4)}\n`),
        ...(opts.finetune ? { finetune: opts.finetune } : {}),
        ...(opts.sparsity !== undefined ? { sparsity: opts.sparsity } : {}), ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
        ...(opts.params !== undefined ? { params: opts.params } : {}), ...(opts.data ? { data: opts.data } : {}), ...(opts.limit ? { limit: opts.limit } : {}),
        ...(opts.ramp !== undefined ? { ramp: opts.ramp } : {}), ...(opts.interval !== undefined ? { interval: opts.interval } : {}),
      });
      io.writeOut(opts.json ? JSON.stringify(result) + "\n" : formatPruneResult(result));
    });
}

function addCompareCommand(program: Command, io: CliIo): void {
  program
    .command("compare")
    .description("measure teacher, baseline, student and their int8/fp16/pruned variants side by side; writes compare.json and compare.html")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("--limit <n>", "use only the first n test images", positiveIntArg)
    .option("--rounds <n>", "latency rounds per model, interleaved across models", positiveIntArg, 3)
    .option("--finetune-epochs <n>", "KD fine-tune epochs of the pruned teacher (0: none)", nonNegativeIntArg, 2)
    .option("--json", "print the result as JSON")
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string, opts: { limit?: number; rounds: number; finetuneEpochs: number; json?: boolean }) => {
      const { compareRun, formatCompare } = await import("../compress/compare.js");
      const result = await compareRun(runDir, { rounds: opts.rounds, finetuneEpochs: opts.finetuneEpochs, log: (l) => io.writeErr(l + "\n"), ...(opts.limit ? { limit: opts.limit } : {}) });
      // The run's report gains a link to the comparison.
      const { writeReport } = await import("../report/html.js");
      writeReport(runDir);
      io.writeOut(opts.json ? JSON.stringify(result) + "\n" : formatCompare(result) + `compare: ${join(runDir, "compare.html")}\n`);
    });
}

function addExportWebCommand(program: Command, io: CliIo): void {
  program
    .command("export-web")
    .description("write a static page that runs teacher, student and int8 student in the browser (onnxruntime-web, wasm); for a sequence run, its models convert typed text")
    .argument("<run-dir>", "run folder written by `distill run`")
    .option("-o, --output <dir>", "folder to write (default: <run-dir>/web)")
    .option("--samples <n>", "test images offered on the page", positiveIntArg, 24)
    .option("--beam <k>", "sequence runs: beam width the page offers beside greedy", positiveIntArg, 4)
    .option("--debug", "print stack traces of errors")
    .action(async (runDir: string, opts: { output?: string; samples: number; beam: number }) => {
      const { exportWeb } = await import("../web/export.js");
      const { dir, manifest } = await exportWeb(runDir, { samples: opts.samples, beam: opts.beam, ...(opts.output ? { output: opts.output } : {}) });
      const wasm = manifest.runtime.files.reduce((a, f) => a + f.gzipBytes, 0);
      io.writeOut(`page: ${join(dir, "index.html")} (${manifest.models.map((m) => `${m.name} ${Math.round(m.gzipBytes / 1024)} KiB gzip`).join(", ")}; runtime ${Math.round(wasm / 1024)} KiB gzip)\n` +
        `serve it over http, e.g.: python3 -m http.server -d ${dir} 8000   (a file:// page cannot fetch its models)\n`);
    });
}

function nonNegativeIntArg(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError("expected a non-negative integer.");
  return Number(value);
}

function shareArg(value: string): number {
  const v = Number(value);
  if (!(v > 0 && v < 1)) throw new InvalidArgumentError("expected a number between 0 and 1 (exclusive).");
  return v;
}

/** --ramp: 1 is a whole fine-tune of rising sparsity, as the library's rampShare allows. */
function rampArg(value: string): number {
  const v = Number(value);
  if (!(v > 0 && v <= 1)) throw new InvalidArgumentError("expected a number in (0, 1].");
  return v;
}

function percentArg(value: string): number {
  const p = Number(value);
  if (!(p > 50 && p <= 100)) throw new InvalidArgumentError("expected a percentage in (50, 100].");
  return p;
}

function searchOptions(o: { set?: string[]; output?: string; concurrency?: number; queue?: string; root?: string; queueCa?: string }) {
  if (!o.queue) for (const [given, name] of [[o.root, "--root"], [o.queueCa, "--queue-ca"]] as const) if (given !== undefined) throw new UserError(name, "only with --queue");
  return {
    ...(o.set ? { set: o.set } : {}), ...(o.output ? { output: o.output } : {}), ...(o.concurrency ? { concurrency: o.concurrency } : {}),
    ...(o.queue ? { queue: o.queue } : {}), ...(o.root ? { queueRoot: o.root } : {}), ...(o.queueCa ? { queueCa: o.queueCa } : {}),
  };
}

function reportWhere(io: CliIo, runDir: string): void {
  const report = join(runDir, "report.html");
  io.writeOut(existsSync(report) ? `report: ${report}\n` : `run folder: ${runDir} (write the report with: distill report ${runDir})\n`);
}

/**
 * Runs `work` with an AbortSignal that Ctrl-C and SIGTERM abort: the library stops at its next safe
 * point and throws a RunAbortedError, which runCli turns into the resume line and exit code 130 or
 * 143 (the shell's 128 + signal number). A second signal stops at once — a labelling pass, say, has
 * no safe point before its end — which is safe too, as every file is written atomically.
 */
async function withSignals<T>(io: CliIo, resumeCommand: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const onSignal = () => {
      if (!controller.signal.aborted) return controller.abort(name);
      stopAllProgress();
      io.writeErr(`\n${stoppedLine(name, resumeCommand)}\n`);
      process.exit(signalExitCode(name));
    };
    process.on(name, onSignal);
    return [name, onSignal] as const;
  });
  try {
    return await work(controller.signal);
  } finally {
    for (const [name, onSignal] of handlers) process.removeListener(name, onSignal);
  }
}

function stoppedLine(signal: unknown, resumeCommand: string): string {
  return `${signal === "SIGTERM" ? "terminated" : "interrupted"}; continue with: ${resumeCommand}`;
}

function signalExitCode(signal: unknown): number {
  return signal === "SIGTERM" ? 143 : 130;
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
    if (err instanceof RunAbortedError) {
      io.writeErr(`\n${stoppedLine(err.reason, err.resumeCommand)}\n`);
      return signalExitCode(err.reason);
    }
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
