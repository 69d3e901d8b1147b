// `distill label <config> [--shard i/N] [--cache-dir D]`: the teacher's labelling pass on its own,
// ahead of a run and possibly split over machines. It labels exactly what `distill run` would
// (planData's transferIndices, the teacher bytes the run uses) into the chunked soft-target cache,
// so a run that finds every chunk computes nothing. Shard i of N takes chunks c with c % N == i;
// shards made on different machines merge by copying their cache files into one folder.
// `--export soft.npy` labels every sample of the training source instead and writes the logits as a
// float32 .npy file (row i = training sample i): a teacher.softTargets file for runs elsewhere.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DistillConfig } from "../config/schema.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { createProgress } from "../util/progress.js";
import { writeFileAtomic } from "../util/fs.js";
import { allIndices } from "../data/split.js";
import { npyBytes } from "./soft-target-file.js";
import { planData } from "./data-plan.js";
import { adaptedTeacher, checkTeacher } from "./user-teacher.js";
import { CHUNK_SAMPLES, chunkCount, defaultCacheDir, labelTransferSet, labelWorkers, residentSource, shardChunks, type Shard } from "./soft-targets.js";

export interface LabelCommandOptions {
  shard?: Shard;
  cacheDir?: string;
  /** A run folder whose teacher has trained: its teacher.onnx is labelled (for a teacher.model config). */
  run?: string;
  /** Write the teacher's logits on every training-source sample to this .npy file (row i = sample i). */
  export?: string;
  quiet: boolean;
  log: (line: string) => void;
}

export interface LabelSummary {
  samples: number;
  computedSamples: number;
  chunks: number;
  seconds: number;
}

export async function labelCommand(config: DistillConfig, configPath: string, o: LabelCommandOptions): Promise<LabelSummary> {
  const progress = createProgress({ quiet: o.quiet });
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  if (o.export !== undefined && !o.export.toLowerCase().endsWith(".npy")) throw new UserError(o.export, "--export: expected a .npy file name (float32 logits, one row per training sample)");
  if (o.export !== undefined && o.shard) throw new UserError(o.export, "--export: writes every sample's logits in one file; leave out --shard");
  const teacherPath = teacherFileFor(config, configPath, o.run);
  const plan = await planData(config, configPath, {
    ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
    onProgress: (split, done, total) => {
      if (done === total) progress.log(`decoded ${total} ${split} images`);
    },
  });
  // The bytes `distill run` labels with: a user's .onnx adapted to distill's contract, or the run's own teacher file.
  const bytes = teacherPath.adapt ? await adaptedTeacher({ ...plan, config }, teacherPath.adapt) : readFileSync(teacherPath.file);
  const teacher = await OnnxClassifier.fromBytes(bytes, teacherPath.file);
  try {
    checkTeacher(plan, teacher, teacherPath.file);
    // --export: the whole training source, in order (labelled pool, then data.unlabeled's samples).
    const indices = o.export !== undefined ? allIndices(plan.dataset.train.count) : plan.transferIndices;
    const samples = indices.length;
    const chunks = shardChunks(samples, o.shard);
    const shardText = o.shard ? ` (shard ${o.shard.index}/${o.shard.count}: ${chunks.length} of ${chunkCount(samples)} chunks)` : "";
    const task = progress.task(`label ${samples} ${o.export !== undefined ? "training-source" : "transfer"} samples${shardText}`, chunks.reduce((a, c) => a + Math.min(CHUNK_SAMPLES, samples - c * CHUNK_SAMPLES), 0));
    const started = performance.now();
    const result = await labelTransferSet({
      teacher, source: residentSource(plan.dataset.train, indices), cacheDir, collect: o.export !== undefined, workers: labelWorkers(),
      ...(o.shard ? { shard: o.shard } : {}),
      onProgress: (done) => task.update(done),
      onWarning: (m) => progress.log(`warning: ${m}`),
    });
    const seconds = (performance.now() - started) / 1000;
    task.finish(`${result.computedSamples} computed, ${result.samples - result.computedSamples} from cache`);
    if (o.export !== undefined) writeFileAtomic(o.export, npyBytes(result.logits!, samples, result.classes));
    o.log(
      `labelled ${result.samples} samples${shardText}: ${result.computedSamples} computed, ${result.samples - result.computedSamples} from cache, ` +
        `${seconds.toFixed(1)} s, ${Math.round(result.samples / Math.max(seconds, 1e-9))} samples/s; cache ${join(cacheDir, "soft-targets")}` +
        (o.export !== undefined ? `; logits [${samples}, ${result.classes}] written to ${o.export}` : ""),
    );
    return { samples: result.samples, computedSamples: result.computedSamples, chunks: chunks.length, seconds };
  } finally {
    await teacher.dispose();
  }
}

/** The teacher to label with; one that the run would train has to exist first. */
export function teacherFileFor(config: DistillConfig, configPath: string, run: string | undefined): { file: string; adapt?: DistillConfig["teacher"] & { onnx: string } } {
  if (run !== undefined) {
    const file = join(run, "teacher.onnx");
    if (!existsSync(file)) throw new UserError(run, "no teacher.onnx in this run folder: its teacher has not finished training (label after the run's teacher stage, or give the config a teacher.onnx)");
    return { file };
  }
  const teacher = config.teacher;
  if (teacher?.softTargets !== undefined)
    throw new UserError(configPath, `teacher.softTargets: the teacher is a file of its outputs (${teacher.softTargets}) already; distill label runs an .onnx teacher, there is nothing to label`);
  if (teacher?.onnx !== undefined) return { file: teacher.onnx, adapt: teacher as NonNullable<DistillConfig["teacher"]> & { onnx: string } };
  throw new UserError(configPath, "teacher: distill label needs a teacher that exists before the run: teacher.onnx, or --run <folder> of a run whose teacher has finished training");
}
