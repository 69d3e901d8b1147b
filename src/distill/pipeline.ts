// `distill run`: config → stages → artefacts in the run folder.
//
//   1. teacher: trained here (its own recipe) or loaded from an .onnx file; frozen from then on
//   2. soft targets: the teacher's logits on the transfer set, computed once, cached on disk
//   3. baseline: the student trained on hard labels only (α = 0), same budget     } per seed
//   4. student: the same student trained with the distillation loss               }
//   5. evaluation on the test set (quality, size, latency), results.json, report.html
//
// Run folder: config.yaml (resolved), run.json (state), checkpoints/, models/<stage>-s<seed>.onnx,
// stages/<stage>-s<seed>.json (finished stage: history + metrics), teacher.onnx, baseline.onnx,
// student.onnx (the first seed's), metrics.jsonl, results.json, report.html. A finished stage is
// never redone, a stage in progress resumes from its last epoch checkpoint.

import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { validationSize, type DistillConfig } from "../config/schema.js";
import { loadConfig } from "../config/load.js";
import { loadDataset, type ImageDataset } from "../data/datasets.js";
import { allIndices, firstN, splitTrainValidation } from "../data/split.js";
import { UserError } from "../errors.js";
import { ShapeError } from "../engine/graph.js";
import { evaluateClassifier, OnnxClassifier } from "../eval/evaluate.js";
import { machineFacts, runDetails } from "../eval/details.js";
import { summarize } from "../eval/metrics.js";
import type { EpochMetric, ModelMetrics, ModelResult, RunResults } from "../eval/types.js";
import { exportOnnx, type Model } from "../nn/model.js";
import { buildModel, pixelStatistics } from "../nn/spec.js";
import { writeReport } from "../report/html.js";
import { writeFileAtomic } from "../util/fs.js";
import { createProgress, stopAllProgress, type Progress } from "../util/progress.js";
import { methodNamed } from "./methods/index.js";
import { defaultCacheDir, teacherSoftTargets } from "./soft-targets.js";
import { Interrupted, trainStage } from "./train-stage.js";
import { prepareTeacher, type TeacherInterface } from "./teacher-adapter.js";

export interface PipelineOptions {
  /** Path of the YAML file the config came from (recorded in run.json). */
  configPath: string;
  quiet: boolean;
  /** Soft-target cache folder (default: $DISTILL_CACHE or .cache/distill). */
  cacheDir?: string;
  /** Tests: stop as if interrupted once this many epochs of some stage are checkpointed. */
  stopAfterEpochs?: number;
  progress?: Progress;
}

/** Layout of a run folder (run.json, stages/, models/, checkpoints/). Bump on any incompatible change. */
const RUN_FORMAT = 1;

interface RunState {
  /** Absent in folders written before it was recorded; those have format 1's layout. */
  formatVersion?: number;
  configPath: string;
  createdAt: string;
  codeVersion: string;
  /** Seconds spent working, summed over run + resumes. */
  activeSeconds: number;
  softTargets?: { key: string; samples: number; computedSamples: number };
}

interface StageRecord {
  stage: string;
  seed: number;
  history: EpochMetric[];
  metrics?: ModelMetrics;
}

const CONFIG_FILE = "config.yaml";
const STATE_FILE = "run.json";

export async function runDistillation(config: DistillConfig, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  const runDir = config.output;
  if (existsSync(runDir) && !statSync(runDir).isDirectory()) throw new UserError(runDir, "exists and is not a folder; choose a run folder with --output");
  if (existsSync(runDir) && readdirSync(runDir).length > 0)
    throw new UserError(runDir, `the run folder already exists and is not empty; continue it with \`distill resume ${runDir}\`, or choose another with --output`);
  mkdirSync(runDir, { recursive: true });
  writeFileAtomic(join(runDir, CONFIG_FILE), `# resolved from ${opts.configPath} (defaults filled in)\n` + toYaml(config));
  const state: RunState = { formatVersion: RUN_FORMAT, configPath: opts.configPath, createdAt: new Date().toISOString(), codeVersion: codeVersion(), activeSeconds: 0 };
  writeFileAtomic(join(runDir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
  try {
    return await execute(runDir, config, state, opts);
  } catch (e) {
    // Failed before any stage produced anything (bad data, shapes, a teacher that outputs NaN):
    // leave no run folder behind, so fixing the config and running again just works. A copied
    // teacher file is no progress; a checkpoint or a finished stage is, and stays for `resume`.
    const progressMade = existsSync(join(runDir, "stages")) || existsSync(join(runDir, "checkpoints"));
    if (!progressMade && !(e instanceof Interrupted)) rmSync(runDir, { recursive: true, force: true });
    throw e;
  }
}

export async function resumeDistillation(runDir: string, opts: { quiet: boolean; cacheDir?: string; progress?: Progress }): Promise<{ runDir: string; results: RunResults }> {
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
  // Re-validated: the resolved config is written by us, but a hand edit should fail here, clearly.
  const config = loadConfig(join(runDir, CONFIG_FILE));
  return execute(runDir, { ...config, output: runDir }, state, { ...opts, configPath: state.configPath });
}

async function execute(runDir: string, config: DistillConfig, state: RunState, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  // Ctrl-C, or SIGTERM from Docker, Kubernetes or CI: every file is written atomically, so stopping
  // at once is safe; say how to continue. Exit codes follow the shell's 128 + signal number.
  const handlers = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const onSignal = () => {
      stopAllProgress();
      process.stderr.write(`\n${signal === "SIGINT" ? "interrupted" : "terminated"}; continue with: distill resume ${runDir}\n`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    };
    process.once(signal, onSignal);
    return [signal, onSignal] as const;
  });
  try {
    return await executeStages(runDir, config, state, opts);
  } finally {
    for (const [signal, onSignal] of handlers) process.removeListener(signal, onSignal);
  }
}

async function executeStages(runDir: string, config: DistillConfig, state: RunState, opts: PipelineOptions): Promise<{ runDir: string; results: RunResults }> {
  const started = performance.now();
  const progress = opts.progress ?? createProgress({ quiet: opts.quiet });
  const saveState = () => {
    const now = performance.now();
    state.activeSeconds += (now - lastSave) / 1000;
    lastSave = now;
    writeFileAtomic(join(runDir, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
  };
  let lastSave = started;

  const dataset = loadDataset(config.data.dataset, config.data.dir ?? undefined);
  const trainPool = firstN(allIndices(dataset.train.count), config.data.trainLimit ?? undefined);
  const validation = validationSize(config.data, trainPool.length);
  if (validation >= trainPool.length)
    throw new UserError(opts.configPath, `data.validation: ${validation} validation examples leave none of the ${trainPool.length} training examples for training; set data.validation below ${trainPool.length} (or leave it out: a twelfth of the pool)`);
  // The split is a property of the data, not of the seed: every seed and stage sees the same one.
  const split = splitTrainValidation(trainPool.length, validation, 0);
  const trainIndices = pick(trainPool, split.train);
  const validationIndices = pick(trainPool, split.validation);
  const testIndices = firstN(allIndices(dataset.test.count), config.data.testLimit ?? undefined);
  const stats = pixelStatistics(dataset.train.images);
  const geometry = { height: dataset.train.height, width: dataset.train.width, ...stats };
  const classLabels = dataset.classLabels;
  const teacherSeed = config.seeds[0]!;
  const records = new Map<string, StageRecord>();
  const recordPath = (stage: string, seed: number) => join(runDir, "stages", `${stage}-s${seed}.json`);
  const modelPath = (stage: string, seed: number) => join(runDir, "models", `${stage}-s${seed}.onnx`);
  const loadRecord = (stage: string, seed: number): StageRecord | undefined => {
    const p = recordPath(stage, seed);
    if (!existsSync(p) || !existsSync(modelPath(stage, seed))) return undefined;
    const r = JSON.parse(readFileSync(p, "utf8")) as StageRecord;
    records.set(`${stage}-s${seed}`, r);
    return r;
  };
  const writeMetricsLog = (current?: EpochMetric[]) => {
    const lines = [...records.values()].flatMap((r) => r.history);
    if (current) lines.push(...current.filter((m) => !records.has(`${m.stage}-s${m.seed}`)));
    writeFileAtomic(join(runDir, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + (lines.length ? "\n" : ""));
  };
  const studentModel = () => buildModel(config.student.model, classLabels, geometry);
  // Impossible shapes fail here, before any training, naming the model and the layer.
  checkBuilds("student.model", studentModel);
  if (config.teacher.model) {
    const spec = config.teacher.model;
    checkBuilds("teacher.model", () => buildModel(spec, classLabels, geometry));
  }

  // ---- 1. teacher ----
  const teacherFile = join(runDir, "teacher.onnx");
  let teacherParams: number | undefined;
  let loadedTeacher: OnnxClassifier | undefined; // a user's teacher, already loaded and checked
  if (config.teacher.onnx !== undefined) {
    if (!existsSync(teacherFile)) {
      // Adapted to raw pixels in, logits out (src/distill/teacher-adapter.ts) and checked before
      // anything is written, so a wrong teacher leaves no run folder behind.
      const adapted = await userTeacher(config.teacher.onnx, config.teacher);
      loadedTeacher = await OnnxClassifier.fromBytes(adapted, config.teacher.onnx);
      try {
        checkTeacher(loadedTeacher, config.teacher.onnx);
      } catch (err) {
        await loadedTeacher.dispose();
        throw err;
      }
      writeFileAtomic(teacherFile, adapted);
    }
  } else if (!loadRecord("teacher", teacherSeed)) {
    const teacherSpec = config.teacher;
    const model = buildModel(teacherSpec.model, classLabels, geometry);
    const { params, history } = await trainStage({
      stage: "teacher", seed: teacherSeed, model, train: teacherSpec.train, method: methodNamed("cross-entropy"),
      settings: config.kd, set: dataset.train, trainIndices, validationIndices, useLabels: true,
      checkpointPath: join(runDir, "checkpoints", `teacher-s${teacherSeed}.ckpt`), progress,
      onEpoch: (h) => writeMetricsLog(h), stopAfterEpochs: opts.stopAfterEpochs,
    });
    finishStage("teacher", teacherSeed, model, params, history);
  }
  if (config.teacher.model && !existsSync(teacherFile)) copyFileSync(modelPath("teacher", teacherSeed), teacherFile);
  if (config.teacher.model) teacherParams = buildModel(config.teacher.model, classLabels, geometry).initParameters(0).count();

  // ---- 2. soft targets ----
  const teacher = loadedTeacher ?? (await OnnxClassifier.fromBytes(readFileSync(teacherFile), config.teacher.onnx ?? teacherFile));
  let softTargets;
  try {
    if (!loadedTeacher) checkTeacher(teacher, config.teacher.onnx ?? teacherFile);
    const task = progress.task("soft targets (teacher logits on the transfer set)", trainIndices.length);
    softTargets = await teacherSoftTargets({
      teacher, set: dataset.train, indices: trainIndices, cacheDir: opts.cacheDir ?? defaultCacheDir(),
      onProgress: (done) => task.update(done),
      onWarning: (message) => progress.log(`warning: ${message}`),
    });
    task.finish(softTargets.computedSamples ? `computed ${softTargets.computedSamples} samples, cached` : "from cache");
    state.softTargets = { key: softTargets.key, samples: trainIndices.length, computedSamples: softTargets.computedSamples };
    saveState();
  } finally {
    await teacher.dispose();
  }
  const rowOf = new Int32Array(dataset.train.count).fill(-1);
  trainIndices.forEach((idx, row) => (rowOf[idx] = row));
  const teacherLogits = { data: softTargets.logits, rowOf, classes: softTargets.classes };

  // ---- 3, 4. baseline and distilled student, per seed ----
  const labeled = config.data.transfer === "labeled";
  for (const seed of config.seeds) {
    for (const stage of ["baseline", "student"] as const) {
      if (loadRecord(stage, seed)) continue;
      if (stage === "baseline" && !labeled) continue; // no labels, no hard-label baseline
      const model = studentModel();
      const { params, history } = await trainStage({
        stage, seed, model, train: config.student.train,
        method: methodNamed(stage === "baseline" ? "cross-entropy" : "logit-kd"),
        settings: config.kd, set: dataset.train, trainIndices, validationIndices, useLabels: labeled,
        ...(stage === "student" ? { teacherLogits } : {}),
        checkpointPath: join(runDir, "checkpoints", `${stage}-s${seed}.ckpt`), progress,
        onEpoch: (h) => writeMetricsLog(h), stopAfterEpochs: opts.stopAfterEpochs,
      });
      finishStage(stage, seed, model, params, history);
      saveState();
    }
  }

  // ---- 5. evaluation ----
  const machine = machineFacts(); // the load average as timing starts
  const teacherEval = await evaluateOnce("teacher", teacherSeed, teacherFile, teacherParams, undefined);
  const roles: ModelResult[] = [{ role: "teacher", file: "teacher.onnx", perSeed: [teacherEval.metrics], summary: summarize([teacherEval.metrics]) }];
  for (const stage of labeled ? (["baseline", "student"] as const) : (["student"] as const)) {
    const perSeed: ModelMetrics[] = [];
    for (const seed of config.seeds) {
      const m = await evaluateOnce(stage, seed, modelPath(stage, seed), studentModel().initParameters(0).count(), teacherEval.logits);
      perSeed.push(m.metrics);
    }
    const top = join(runDir, `${stage}.onnx`);
    if (!existsSync(top)) copyFileSync(modelPath(stage, config.seeds[0]!), top);
    roles.push({ role: stage, file: `${stage}.onnx`, perSeed, summary: summarize(perSeed) });
  }
  const details = await runDetails({
    files: roles.map((r) => ({ role: r.role, perSeed: r.role === "teacher" ? [teacherFile] : config.seeds.map((seed) => modelPath(r.role, seed)) })),
    set: dataset.test, indices: testIndices, classLabels,
  });
  writeMetricsLog();
  saveState();
  const results: RunResults = {
    name: config.name,
    createdAt: state.createdAt,
    codeVersion: state.codeVersion,
    seeds: config.seeds,
    dataset: config.data.dataset,
    temperature: config.kd.temperature,
    alpha: config.kd.alpha,
    epochs: config.student.train.epochs,
    wallSeconds: Math.round(state.activeSeconds * 10) / 10,
    models: roles,
    data: { train: trainIndices.length, validation: validationIndices.length, test: testIndices.length, transfer: trainIndices.length, transferLabeled: labeled },
    setup: { teacher: config.teacher, student: config.student, kd: config.kd, seeds: config.seeds },
    machine,
    details,
  };
  writeFileAtomic(join(runDir, "results.json"), JSON.stringify(results, null, 2) + "\n");
  writeReport(runDir);
  // Every stage is finished and exported: its checkpoints can no longer be resumed from.
  if (!config.keepCheckpoints) rmSync(join(runDir, "checkpoints"), { recursive: true, force: true });
  progress.log(summaryLine(results));
  return { runDir, results };

  // -- helpers (closures over the run) --

  function checkTeacher(teacher: OnnxClassifier, where: string): void {
    teacher.checkFits(dataset.train, `${config.data.dataset} training images`);
    if (teacher.numClasses !== classLabels.length)
      throw new UserError(where, `the teacher outputs ${teacher.numClasses} classes, but the student and ${config.data.dataset} have ${classLabels.length}`);
  }

  /** The user's .onnx teacher in distill's contract; "auto" outputs are judged on 64 training images. */
  async function userTeacher(path: string, spec: TeacherInterface): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(path, code === "ENOENT" ? "no such file" : `cannot read (${code ?? String(e)})`);
    }
    const image = { height: dataset.train.height, width: dataset.train.width, channels: 1 };
    return prepareTeacher(bytes, spec, image, path, async (adapted) => {
      const probe = await OnnxClassifier.fromBytes(adapted, path);
      try {
        return { scores: await probe.logits(dataset.train, trainIndices.subarray(0, 64)), classes: probe.numClasses };
      } finally {
        await probe.dispose();
      }
    });
  }

  function checkBuilds(key: string, make: () => Model): void {
    try {
      make().declarations();
    } catch (e) {
      if (e instanceof ShapeError) throw new UserError(opts.configPath, `${key}: ${e.message}`);
      throw e;
    }
  }

  function finishStage(stage: string, seed: number, model: Model, params: ReturnType<Model["initParameters"]>, history: EpochMetric[]): void {
    const bytes = exportOnnx(model, params, {
      probabilitiesName: "probabilities",
      metadata: { "distill.stage": stage, "distill.seed": String(seed), "distill.run": config.name, "distill.dataset": config.data.dataset },
    });
    writeFileAtomic(modelPath(stage, seed), bytes);
    const record: StageRecord = { stage, seed, history };
    writeFileAtomic(recordPath(stage, seed), JSON.stringify(record) + "\n");
    records.set(`${stage}-s${seed}`, record);
  }

  /** Test-set metrics of one model, measured once and kept in its stage record (a resume does not re-time it). */
  async function evaluateOnce(stage: string, seed: number, file: string, params: number | undefined, teacherTestLogits: Float32Array | undefined) {
    const recPath = recordPath(stage, seed);
    const record: StageRecord = existsSync(recPath) ? (JSON.parse(readFileSync(recPath, "utf8")) as StageRecord) : { stage, seed, history: [] };
    const needLogits = stage === "teacher"; // the others' agreement is measured against them
    if (record.metrics && !needLogits) return { metrics: record.metrics, logits: new Float32Array(0) };
    const classifier = await OnnxClassifier.fromFile(file);
    try {
      if (record.metrics) return { metrics: record.metrics, logits: await classifier.logits(dataset.test, testIndices) };
      const task = progress.task(`evaluate ${stage}${seed === teacherSeed ? "" : ` seed ${seed}`}`, 1);
      const out = await evaluateClassifier({ classifier, set: dataset.test, indices: testIndices, params, teacherLogits: teacherTestLogits });
      task.update(1);
      task.finish(`acc=${out.metrics.accuracy.toFixed(4)} errors=${out.metrics.errors} p50=${out.metrics.latencyP50Ms.toFixed(3)}ms`);
      record.metrics = out.metrics;
      writeFileAtomic(recPath, JSON.stringify(record) + "\n");
      return out;
    } finally {
      await classifier.dispose();
    }
  }
}

function pick(pool: Int32Array, positions: Int32Array): Int32Array {
  const out = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) out[i] = pool[positions[i]!]!;
  return out;
}

function summaryLine(r: RunResults): string {
  const acc = (role: string) => {
    const m = r.models.find((x) => x.role === role);
    if (!m) return "";
    const s = m.summary;
    return `${role} ${s.errors.mean.toFixed(1)} errors${s.errors.values.length > 1 ? ` ± ${s.errors.std.toFixed(1)}` : ""}`;
  };
  return `${r.name}: ${["teacher", "baseline", "student"].map(acc).filter(Boolean).join(", ")} (of ${r.models[0]!.perSeed[0]!.total})`;
}

/** git describe of the checkout when there is one, else the package version. */
function codeVersion(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  let version = "unknown";
  try {
    version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // installed without package.json next to it
  }
  try {
    const git = execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return `${version}+${git}`;
  } catch {
    return version;
  }
}

export type { ImageDataset };
