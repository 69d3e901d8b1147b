// The run folder's bookkeeping: where each artefact lives, the state file, finished-stage records
// and the metrics log. Every write is atomic, so a run stopped at any moment resumes cleanly.
//
//   config.yaml  run.json  metrics.jsonl  results.json  report.html
//   teacher.onnx  baseline.onnx  student.onnx            (the first seed's)
//   models/<stage>-s<seed>.onnx  stages/<stage>-s<seed>.json  checkpoints/<stage>-s<seed>.ckpt

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BiasShiftRecord, DomainShiftRecord, EpochMetric, ModelMetrics, TeacherTraining } from "../eval/types.js";
import type { TeacherReport } from "../eval/teacher-report.js";
import { exportOnnx, type Model } from "../nn/model.js";
import type { ParameterSet } from "../nn/module.js";
import { writeFileAtomic } from "../util/fs.js";

export const CONFIG_FILE = "config.yaml";
export const STATE_FILE = "run.json";

/** Layout of a run folder (run.json, stages/, models/, checkpoints/). Bump on any incompatible change. */
export const RUN_FORMAT = 1;

export interface RunState {
  /** Absent in folders written before it was recorded; those have format 1's layout. */
  formatVersion?: number;
  configPath: string;
  createdAt: string;
  codeVersion: string;
  /** Seconds spent working, summed over run + resumes. */
  activeSeconds: number;
  /** Started without the label-only baseline (a search trial): a resume keeps it out too. */
  skipBaseline?: boolean;
  /** The teacher's logits on the transfer set (computedSamples: forward passes this run spent on them). */
  softTargets?: { key: string; samples: number; computedSamples: number };
  /** The teacher's cached taps on the transfer set, for feature and relation terms. */
  teacherTaps?: { taps: string[]; samples: number; computedSamples: number };
  /** Several teachers: their weights and the forward passes their soft targets (and accuracies) cost. */
  ensemble?: { weights: number[]; computedSamples: number };
  /** The teacher on the validation split (computedSamples: forward passes this run spent on it). */
  teacherReport?: TeacherReport & { computedSamples: number };
  /** Unlabelled transfer data against the teacher's labelled reference, before distilling (data.unlabeled). */
  domainShift?: DomainShiftRecord;
  /** data.transferOmits: the bias shifts applied to the distilled students. */
  biasShift?: BiasShiftRecord;
  /** A teacher trained here: trained in this run or reused from the teacher cache (distill/model-cache.ts). */
  teacherTraining?: TeacherTraining;
  /** Mean entropy (nats) of softmax(teacher logits / temperature) on the transfer set: how soft the soft targets are. */
  softTargetEntropy?: { temperature: number; meanNats: number; classes: number };
  /** Each teacher assistant's or born-again generation's logits on the transfer set. */
  /** Per chain link: its soft targets on the transfer set, and their mean entropy at the terms' temperature (the no-gain check reads it). */
  chain?: Record<string, { samples: number; computedSamples: number; softTargetEntropy?: number }>;
  /** A sequence-to-sequence run (src/run/seq2seq/); absent: a classifier run. */
  task?: "seq2seq";
  /**
   * Sequence runs: the teacher's stored targets (top-k per pair, beam outputs), each with what it
   * covers and the seconds it took when computed (0: read from a file of the teacher's outputs).
   */
  teacherTargets?: Record<string, { items: number; seconds: number; beam?: number; leftOut?: number }>;
}

export interface StageRecord {
  stage: string;
  seed: number;
  history: EpochMetric[];
  metrics?: ModelMetrics;
}

export class RunFolder {
  private readonly records = new Map<string, StageRecord>();
  private lastSave = performance.now();

  constructor(
    readonly dir: string,
    readonly state: RunState,
  ) {}

  get teacherFile(): string {
    return join(this.dir, "teacher.onnx");
  }
  /** The copy of kd.teachers[i] (several teachers), so a resume does not depend on the original file. */
  extraTeacherFile(i: number): string {
    return join(this.dir, "teachers", `teacher${i + 2}.onnx`);
  }
  /** The copy of a soft-target file teacher (teacher.softTargets; kd.teachers[i] with `i`), its extensions kept. */
  softTargetsFile(source: string, i?: number): string {
    return softTargetsCopy(this.dir, source, i);
  }
  modelPath(stage: string, seed: number): string {
    return join(this.dir, "models", `${stage}-s${seed}.onnx`);
  }
  recordPath(stage: string, seed: number): string {
    return join(this.dir, "stages", `${stage}-s${seed}.json`);
  }
  checkpointPath(stage: string, seed: number): string {
    return join(this.dir, "checkpoints", `${stage}-s${seed}.ckpt`);
  }

  /** Adds the time since the last save to activeSeconds and writes run.json. */
  saveState(): void {
    const now = performance.now();
    this.state.activeSeconds += (now - this.lastSave) / 1000;
    this.lastSave = now;
    writeFileAtomic(join(this.dir, STATE_FILE), JSON.stringify(this.state, null, 2) + "\n");
  }

  /** Whether the stage is done (its model and record both on disk), without registering its record for the metrics log. */
  hasFinished(stage: string, seed: number): boolean {
    return existsSync(this.recordPath(stage, seed)) && existsSync(this.modelPath(stage, seed));
  }

  /** The record of a finished stage (its model and record both on disk), else undefined; registered for the metrics log. */
  finished(stage: string, seed: number): StageRecord | undefined {
    if (!this.hasFinished(stage, seed)) return undefined;
    const r = JSON.parse(readFileSync(this.recordPath(stage, seed), "utf8")) as StageRecord;
    this.records.set(`${stage}-s${seed}`, r);
    return r;
  }

  /**
   * Exports the stage's model (with `exporter`: text models export with their tokenizer inside) and
   * writes its record; from now on the stage counts as done. Returns the exported bytes.
   */
  finishStage(stage: string, seed: number, model: Model, params: ParameterSet, history: EpochMetric[], metadata: Record<string, string>, exporter: typeof exportOnnx = exportOnnx): Uint8Array {
    const bytes = exporter(model, params, { probabilitiesName: "probabilities", metadata: { "distill.stage": stage, "distill.seed": String(seed), ...metadata } });
    this.finishStageWith(stage, seed, bytes, history);
    return bytes;
  }

  /** A finished stage from a model made elsewhere (a cached teacher): its bytes and the epochs this run trained (none). */
  finishStageWith(stage: string, seed: number, bytes: Uint8Array, history: EpochMetric[]): void {
    writeFileAtomic(this.modelPath(stage, seed), bytes);
    const record: StageRecord = { stage, seed, history };
    writeFileAtomic(this.recordPath(stage, seed), JSON.stringify(record) + "\n");
    this.records.set(`${stage}-s${seed}`, record);
  }

  /** metrics.jsonl: every finished stage's history, plus the epochs of the stage in progress. */
  writeMetricsLog(current?: EpochMetric[]): void {
    const lines = [...this.records.values()].flatMap((r) => r.history);
    if (current) lines.push(...current.filter((m) => !this.records.has(`${m.stage}-s${m.seed}`)));
    writeFileAtomic(join(this.dir, "metrics.jsonl"), lines.map((l) => JSON.stringify(l)).join("\n") + (lines.length ? "\n" : ""));
  }

  readRecord(stage: string, seed: number): StageRecord {
    const p = this.recordPath(stage, seed);
    return existsSync(p) ? (JSON.parse(readFileSync(p, "utf8")) as StageRecord) : { stage, seed, history: [] };
  }

  writeRecord(record: StageRecord): void {
    writeFileAtomic(this.recordPath(record.stage, record.seed), JSON.stringify(record) + "\n");
  }
}

/** Where a run folder keeps its copy of a soft-target file teacher (teacher.softTargets; kd.teachers[i] with `i`). */
export function softTargetsCopy(runDir: string, source: string, i?: number): string {
  const ext = (/(\.[^./\\]+)(\.gz)?$/i.exec(source)?.[0] ?? "").toLowerCase();
  return i === undefined ? join(runDir, `teacher-soft-targets${ext}`) : join(runDir, "teachers", `teacher${i + 2}-soft-targets${ext}`);
}
