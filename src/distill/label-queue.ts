// `distill label <config> --queue redis://… --shards N`: the labelling pass as N BullMQ jobs, one
// per shard (chunks c with c % N == i), run by `distill worker`s into one shared cache folder. The
// producer waits for every shard and reports who labelled what; the cache then holds the same
// files `distill label` writes locally. Jobs carry the resolved config and the producer's working
// folder, so relative paths (the teacher, data files) mean what they mean here: the workers must
// see the same folders, as they must for tune and shrink trials.

import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import type { DistillConfig } from "../config/schema.js";
import { UserError } from "../errors.js";
import type { LabelSummary } from "./label.js";
import { teacherFileFor } from "./label.js";
import type { Shard } from "./shard.js";
import { defaultCacheDir } from "./soft-targets.js";

export interface LabelJob {
  kind: "label";
  id: string;
  config: Record<string, unknown>;
  configPath: string;
  /** The producer's working folder: the config's relative paths are read from there. */
  cwd: string;
  cacheDir: string;
  shard: Shard;
  /** A run folder whose teacher.onnx is labelled (absolute). */
  run?: string;
  threads: number;
}

export interface LabelShardDone extends LabelSummary {
  shard: Shard;
  worker: string;
}

/** "N" ≥ 1 for --shards; anything else names the option. */
export function parseShardCount(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) throw new UserError("--shards", `expected a number of shards ≥ 1, got ${JSON.stringify(text)}`);
  return Number(text);
}

export interface LabelQueueOptions {
  queue: string;
  shards: number;
  cacheDir?: string;
  run?: string;
  log: (line: string) => void;
}

/** Enqueues the shards and waits for all of them. */
export async function labelOnQueue(config: DistillConfig, configPath: string, o: LabelQueueOptions): Promise<LabelShardDone[]> {
  teacherFileFor(config, configPath, o.run); // a teacher that does not exist yet is refused here, before anything is queued
  const { checkRedis, QueueExecutor } = await import("../tune/queue.js");
  await checkRedis(o.queue, "--queue");
  const fixed = Number(process.env["DISTILL_THREADS"]);
  const key = randomUUID().slice(0, 8);
  const jobs: LabelJob[] = Array.from({ length: o.shards }, (_, index) => ({
    kind: "label", id: `label-${index}of${o.shards}`, config: JSON.parse(JSON.stringify(config)) as Record<string, unknown>, configPath,
    cwd: process.cwd(), cacheDir: resolve(o.cacheDir ?? defaultCacheDir()), shard: { index, count: o.shards },
    ...(o.run !== undefined ? { run: resolve(o.run) } : {}), threads: fixed > 0 ? fixed : 1,
  }));
  const q = new QueueExecutor(o.queue, "--queue");
  const started = performance.now();
  try {
    o.log(`queued ${o.shards} labelling shards on ${o.queue}; waiting for distill worker`);
    const done = await Promise.all(
      jobs.map(async (job) => {
        let r: LabelShardDone;
        try {
          r = (await q.submit(job, `${key}-${job.id}`)) as LabelShardDone;
        } catch (e) {
          throw new UserError(`--queue shard ${job.shard.index}/${job.shard.count}`, (e as Error).message);
        }
        o.log(`shard ${r.shard.index}/${r.shard.count}: ${r.chunks} chunks, ${r.samples} samples (${r.computedSamples} computed) by ${r.worker} in ${r.seconds.toFixed(1)} s`);
        return r;
      }),
    );
    const samples = done.reduce((n, r) => n + r.samples, 0);
    o.log(`labelled ${samples} samples in ${o.shards} shards on the queue: ${done.reduce((n, r) => n + r.computedSamples, 0)} computed, ${((performance.now() - started) / 1000).toFixed(1)} s; cache ${jobs[0]!.cacheDir}`);
    return done;
  } finally {
    await q.close();
  }
}

/** In the worker's child process: one shard, as `distill label --shard i/N` would label it. */
export async function runLabelHere(job: LabelJob): Promise<LabelSummary & { shard: Shard }> {
  process.chdir(job.cwd);
  await import("./methods/index.js"); // the kd: block validates against the registered methods
  const { validateConfig } = await import("../config/load.js");
  const { labelCommand } = await import("./label.js");
  const config = validateConfig(job.config, job.configPath);
  const summary = await labelCommand(config, job.configPath, { shard: job.shard, cacheDir: job.cacheDir, ...(job.run ? { run: job.run } : {}), quiet: true, log: () => undefined });
  return { ...summary, shard: job.shard };
}
