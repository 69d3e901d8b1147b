// What `distill tune` and `distill shrink` share: the folder and its state file, the executor
// (local child processes or the BullMQ queue), the one teacher every trial distils from, and the
// way a trial's config is made from the base config (the same assignments as `distill run --set`).

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { configDocument, configFromObject, loadConfig, readConfigDocument } from "../config/load.js";
import type { DistillConfig, DistillConfigInput } from "../config/schema.js";
import { defaultCacheDir } from "../distill/soft-targets.js";
import { UserError } from "../errors.js";
import { realRoot } from "../queue/job.js";
import { urlWithoutPassword } from "../queue/redis.js";
import { writeFileAtomic } from "../util/fs.js";
import { localExecutor, Runner, type Executor, type Planned } from "./runner.js";
import type { Setting } from "./space.js";
import type { TrialJob, TrialOutcome } from "./trial.js";

/** Trials measure the test set only because the pipeline always evaluates; nothing reads it, so keep it small. */
export const TRIAL_TEST_LIMIT = 200;

const QUEUED_AT_ONCE = 64;

export interface SessionState {
  kind: "tune" | "shrink";
  configPath: string;
  createdAt: string;
  /** The resolved config without `tune` and `output`: every trial's config starts from it. */
  base: Record<string, unknown>;
  /**
   * The config file as written (minus `tune` and `output`) and the command line's --set: trials are
   * made from these, so a searched key such as kd.temperature means what it means in the file.
   */
  raw: Record<string, unknown>;
  sets: string[];
  /** Absolute path of the teacher every trial distils from, once known. */
  teacherOnnx?: string;
  /** The queue's Redis URL, without its password (DISTILL_REDIS_PASSWORD gives it back on resume). */
  queue?: string;
  /** CA file for a rediss:// queue. */
  queueCa?: string;
  /** The folder the workers' --root names: queued jobs' paths are relative to it (absent in older folders: the working folder). */
  queueRoot?: string;
  concurrency: number;
  threads: number;
  cacheDir: string;
  /** Prefix of the queue's job ids: unique per search folder. */
  key: string;
  activeSeconds: number;
}

export interface SessionOptions {
  /** `distill run --set` overrides of the config file. */
  set?: string[];
  output?: string;
  /** Redis URL (it may hold the password: it is kept only in memory). */
  queue?: string;
  queueCa?: string;
  queueRoot?: string;
  concurrency?: number;
  cacheDir?: string;
  log: (line: string) => void;
  /** Aborting stops the search (running trials too) with a RunAbortedError; `distill resume` continues it. */
  signal?: AbortSignal;
  /** A config given as an object: names it in messages (default "config"). */
  where?: string;
  /**
   * Runs one trial in place of a child process or the queue: lets a test script the outcomes
   * ("rungs below k fail") and check what the search chose from them.
   */
  runTrial?: (job: TrialJob) => Promise<TrialOutcome>;
}

/** How a session runs its trials: aborted by `signal`; on the queue at `queueUrl` (as given, with its password; on resume, the state's); or by `runTrial`. */
export interface OpenOptions {
  signal?: AbortSignal;
  queueUrl?: string;
  runTrial?: SessionOptions["runTrial"];
}

/** What a search starts from: a YAML file, or an object as `distill()` takes (paths relative to the working directory). */
export type ConfigSource = string | DistillConfigInput;

/** The validated config, the document trials are made from, and the name messages give it. */
export function openSource(source: ConfigSource, opts: SessionOptions): { configPath: string; config: DistillConfig; raw: Record<string, unknown> } {
  checkSessionOptions(opts);
  const set = opts.set ?? [];
  if (typeof source === "string") return { configPath: source, config: loadConfig(source, { set }), raw: rawDocument(source) };
  const configPath = opts.where ?? "config";
  return { configPath, config: configFromObject(source, configPath, { set }), raw: withoutSearchKeys(configDocument(source) as Record<string, unknown>) };
}

/** Option checks the CLI's parsers make for its flags, made here too for library callers. */
function checkSessionOptions(opts: SessionOptions): void {
  if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1))
    throw new UserError("concurrency", `expected a positive integer, got ${opts.concurrency}`);
}

export function stateFile(kind: SessionState["kind"]): string {
  return `${kind}.json`;
}

/** The YAML file as parsed (already validated by loadConfig; its paths absolute), minus what a trial must not inherit. */
export function rawDocument(configPath: string): Record<string, unknown> {
  return withoutSearchKeys(readConfigDocument(configPath) as Record<string, unknown>);
}

function withoutSearchKeys(doc: Record<string, unknown>): Record<string, unknown> {
  delete doc["tune"];
  delete doc["shrink"];
  delete doc["output"];
  return doc;
}

/**
 * `--set` assignments a trial inherits: those to `tune.*`, `shrink.*` and `output` configure the
 * search itself (as the sections `rawDocument` drops), so trials leave them out.
 */
export function trialSets(sets: string[]): string[] {
  return sets.filter((s) => !/^\s*(tune|shrink|output)\s*[.=]/.test(s));
}

/** The resolved config as a plain document, minus what a trial must not inherit. */
export function baseDocument(config: DistillConfig): Record<string, unknown> {
  const { tune: _tune, shrink: _shrink, output: _output, ...rest } = config as DistillConfig & { tune?: unknown; shrink?: unknown };
  return JSON.parse(JSON.stringify(rest)) as Record<string, unknown>;
}

/**
 * Default concurrency: one trial per core. Students are small, so one more intra-op thread buys
 * little, while a second process doubles throughput. A local trial gets cores / concurrency
 * onnxruntime threads (createState), one at this default; since the thread count may change float
 * results, a local search's results depend on its concurrency. Queued trials always get one thread,
 * and DISTILL_THREADS fixes the count everywhere.
 */
export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism());
}

export function createState(kind: SessionState["kind"], configPath: string, config: DistillConfig, raw: Record<string, unknown>, dir: string, opts: SessionOptions, configConcurrency?: number): SessionState {
  if (existsSync(dir) && readdirSync(dir).length > 0)
    throw new UserError(dir, `the ${kind} folder already exists and is not empty; continue it with \`distill resume ${dir}\`, or choose another with --output`);
  // With a queue this is how many trials wait in it at once: the workers decide how many run.
  const concurrency = opts.concurrency ?? configConcurrency ?? (opts.queue ? QUEUED_AT_ONCE : defaultConcurrency());
  // Queued trials run one per worker with one thread, so a result is the same whoever runs it.
  // DISTILL_THREADS, when set, fixes it everywhere (tests compare local and queued results).
  const fixed = Number(process.env["DISTILL_THREADS"]);
  const threads = fixed > 0 ? fixed : opts.queue ? 1 : Math.max(1, Math.floor(availableParallelism() / concurrency));
  const createdAt = new Date().toISOString();
  const state: SessionState = {
    kind, configPath, createdAt, base: baseDocument(config), raw, sets: trialSets(opts.set ?? []),
    ...(config.teacher?.onnx !== undefined ? { teacherOnnx: resolve(config.teacher.onnx) } : {}),
    ...(opts.queue ? { queue: urlWithoutPassword(opts.queue), queueRoot: realRoot(opts.queueRoot ?? ".", "--root"), ...(opts.queueCa ? { queueCa: resolve(opts.queueCa) } : {}) } : {}),
    concurrency, threads,
    cacheDir: resolve(opts.cacheDir ?? defaultCacheDir()),
    key: createHash("sha256").update(`${resolve(dir)} ${createdAt}`).digest("hex").slice(0, 12),
    activeSeconds: 0,
  };
  mkdirSync(dir, { recursive: true });
  saveState(dir, state);
  return state;
}

export function loadState(dir: string, kind: SessionState["kind"]): SessionState {
  const path = join(dir, stateFile(kind));
  try {
    return JSON.parse(readFileSync(path, "utf8")) as SessionState;
  } catch (e) {
    throw new UserError(path, `not a readable ${kind} state file (${(e as Error).message})`);
  }
}

export function saveState(dir: string, state: SessionState): void {
  writeFileAtomic(join(dir, stateFile(state.kind)), JSON.stringify(state, null, 2) + "\n");
}

/** A live session: runner, clock and executor over a folder. */
export class Session {
  readonly runner: Runner;
  private readonly started = performance.now();
  private readonly executor: Executor;

  private constructor(
    readonly dir: string,
    readonly state: SessionState,
    executor: Executor,
    readonly log: (line: string) => void,
    signal?: AbortSignal,
  ) {
    this.executor = executor;
    this.runner = new Runner(dir, executor, state.concurrency, () => this.elapsed(), log, signal);
    // A search killed outright (kill -9, a lost machine) never saved its clock; its last finished
    // trial did, so the time before the kill still counts.
    for (const e of this.runner.ledger.values()) state.activeSeconds = Math.max(state.activeSeconds, e.elapsedSeconds);
  }

  static async open(dir: string, state: SessionState, log: (line: string) => void, o: OpenOptions = {}): Promise<Session> {
    let executor: Executor = localExecutor;
    const queueUrl = o.queueUrl ?? state.queue;
    if (o.runTrial) executor = { run: o.runTrial, close: async () => undefined };
    else if (queueUrl) {
      const { queueExecutor } = await import("./queue.js");
      const { checkRedis } = await import("../queue/redis.js");
      const target = { url: queueUrl, ...(state.queueCa ? { caFile: state.queueCa } : {}) };
      await checkRedis(target, "--queue");
      const q = queueExecutor(target, state.queueRoot ?? realRoot(".", "--root"), state.key, log);
      // A queued trial runs on a worker and stays queued; an abort only stops waiting for it (a
      // resumed search finds the same job id and waits again).
      executor = { run: (job, s) => untilAborted(q.run(job), s), close: () => q.close() };
    }
    return new Session(dir, state, executor, log, o.signal);
  }

  /** Active seconds: earlier sessions' plus this one's. */
  elapsed(): number {
    return this.state.activeSeconds + (performance.now() - this.started) / 1000;
  }

  async close(): Promise<void> {
    this.state.activeSeconds = this.elapsed();
    saveState(this.dir, this.state);
    await this.executor.close();
  }

  /** A trial: the base config with `sets` applied (`key=value`, as `distill run --set`), as a planned job. */
  plan(id: string, sets: string[], meta: Planned["meta"]): Planned {
    const config = configFromObject(this.state.raw, `${this.state.configPath} (trial ${id})`, {
      set: [...this.state.sets, `name=${String(this.state.base["name"])}-${id}`, ...this.teacherSets(), ...sets],
    });
    return {
      job: {
        id, config: JSON.parse(JSON.stringify(config)) as Record<string, unknown>, output: resolve(this.dir, "trials", id), cacheDir: this.state.cacheDir, threads: this.state.threads,
        ...(meta.kind === "final" ? {} : { skipBaseline: true }),
      },
      meta,
    };
  }

  private teacherSets(): string[] {
    return this.state.teacherOnnx ? [`teacher=${JSON.stringify({ onnx: this.state.teacherOnnx })}`] : [];
  }

  /**
   * The one teacher of the search: the config's own .onnx, or trained once by a first run (seed =
   * the config's first, one student epoch: its baseline and student are not used); none for a
   * config without one.
   */
  async ensureTeacher(): Promise<void> {
    if (this.state.teacherOnnx) return;
    // A file of soft targets is the teacher already: every trial reads it.
    const teacher = this.state.base["teacher"] as { softTargets?: unknown } | undefined;
    if (teacher?.softTargets !== undefined) return;
    // No separate teacher (ema-teacher: the student's own average teaches it): nothing to train.
    if (teacher === undefined) return;
    const seed = (this.state.base["seeds"] as number[])[0]!;
    const p = this.plan("teacher", [`seeds=[${seed}]`, "student.train.epochs=1", `data.testLimit=${TRIAL_TEST_LIMIT}`], { kind: "teacher", rung: 0, epochs: 1, setting: {} });
    await this.runner.runAll([p]);
    this.state.teacherOnnx = join(p.job.output, "teacher.onnx");
    saveState(this.dir, this.state);
  }
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error("stopped waiting: aborted"));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The value at a config key path ("student.model.layers[0].units") of a document, or undefined. */
export function valueAt(doc: unknown, keyPath: string): unknown {
  let node: unknown = doc;
  for (const part of keyPath.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== "")) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

export function settingOf(doc: unknown, keys: string[]): Setting {
  return Object.fromEntries(keys.map((k) => [k, valueAt(doc, k) as Setting[string]]));
}
