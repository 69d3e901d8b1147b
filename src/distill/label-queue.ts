// `distill label <config> --queue redis://… --shards N`: the labelling pass as N queue jobs of kind
// "label", one per shard (chunks c with c % N == i), run by `distill worker`s into one shared cache
// folder. The producer waits for every shard and reports who labelled what; the cache then holds
// the same files `distill label` writes locally. Jobs carry the resolved config with every path
// (the teacher, data files, the cache, --run) relative to the queue root (--root, default: the
// working folder), which the workers' --root names on their machines.

import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { z } from "zod";
import { mapConfigPaths } from "../config/paths.js";
import type { DistillConfig } from "../config/schema.js";
import { UserError } from "../errors.js";
import { lastJsonLine, runInChild } from "../queue/child-process.js";
import { jobId, jobPath, realRoot, relativeToRoot, threadCount, type Envelope, type JobKind } from "../queue/job.js";
import { QueueProducer } from "../queue/producer.js";
import { checkRedis } from "../queue/redis.js";
import { validateJobConfig } from "./job-config.js";
import type { LabelSummary } from "./label.js";
import { teacherFileFor } from "./label.js";
import type { Shard } from "./shard.js";
import { defaultCacheDir } from "./soft-targets.js";

export interface LabelJob {
  kind: "label";
  id: string;
  config: Record<string, unknown>;
  /** The config file's name in messages (never opened: the config travels in `config`). */
  configName: string;
  cacheDir: string;
  shard: Shard;
  /** A run folder whose teacher.onnx is labelled. */
  run?: string;
  threads: number;
}

export type QueuedLabelJob = Envelope & LabelJob;

const labelSchema = z.strictObject({
  format: z.number(),
  distill: z.string(),
  kind: z.literal("label"),
  id: jobId,
  config: z.record(z.string(), z.unknown()),
  configName: z.string().max(4096),
  cacheDir: jobPath,
  shard: z.strictObject({ index: z.number().int().min(0), count: z.number().int().min(1).max(100_000) }).refine((s) => s.index < s.count, { message: "expected index < count", path: ["index"] }),
  run: jobPath.optional(),
  threads: threadCount,
});

export interface LabelShardDone extends LabelSummary {
  shard: Shard;
  worker: string;
}

/** What `distill worker` runs for a labelling shard. */
export const labelJobKind: JobKind<QueuedLabelJob> = {
  kind: "label",
  schema: labelSchema as z.ZodType<QueuedLabelJob>,
  describe: (job) => `label shard ${job.shard.index}/${job.shard.count}`,
  async prepare(job, confine) {
    const config = await validateJobConfig(job.config);
    return {
      ...job,
      config: JSON.parse(JSON.stringify(mapConfigPaths(config, (key, p) => confine(`config.${key}`, p)))) as Record<string, unknown>,
      cacheDir: confine("cacheDir", job.cacheDir),
      ...(job.run !== undefined ? { run: confine("run", job.run) } : {}),
    };
  },
  run: (job, { root, worker, signal }) =>
    runInChild(
      { module: import.meta.url, fn: "runLabelHere", job, what: labelJobKind.describe(job), threads: job.threads, cacheDir: job.cacheDir, cwd: root, signal },
      (stdout) => ({ ...(lastJsonLine(stdout) as object), worker }),
    ),
};

/** "N" ≥ 1 for --shards; anything else names the option. */
export function parseShardCount(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1) throw new UserError("--shards", `expected a number of shards ≥ 1, got ${JSON.stringify(text)}`);
  return Number(text);
}

export interface LabelQueueOptions {
  queue: string;
  queueCa?: string;
  /** The folder the workers' --root names (default: the working folder). */
  queueRoot?: string;
  shards: number;
  cacheDir?: string;
  run?: string;
  log: (line: string) => void;
}

/** Enqueues the shards and waits for all of them. */
export async function labelOnQueue(config: DistillConfig, configPath: string, o: LabelQueueOptions): Promise<LabelShardDone[]> {
  teacherFileFor(config, configPath, o.run); // a teacher that does not exist yet is refused here, before anything is queued
  const root = realRoot(o.queueRoot ?? ".", "--root");
  const rel = (field: string, p: string) => relativeToRoot(root, field, p);
  const cacheDir = resolve(o.cacheDir ?? defaultCacheDir());
  // A labelling pass writes no run folder; `output` still must name a place the workers may write.
  const paths = { cacheDir: rel("--cache-dir", cacheDir), ...(o.run !== undefined ? { run: rel("--run", o.run) } : {}) };
  const jobConfig = JSON.parse(JSON.stringify(mapConfigPaths({ ...config, output: cacheDir }, rel))) as Record<string, unknown>;
  const common = { config: jobConfig, configName: configPath, ...paths };
  const target = { url: o.queue, ...(o.queueCa ? { caFile: o.queueCa } : {}) };
  await checkRedis(target, "--queue");
  const fixed = Number(process.env["DISTILL_THREADS"]);
  const key = randomUUID().slice(0, 8);
  const jobs: LabelJob[] = Array.from({ length: o.shards }, (_, index) => ({
    kind: "label", id: `label-${index}of${o.shards}`, ...common, shard: { index, count: o.shards }, threads: fixed > 0 ? fixed : 1,
  }));
  const q = new QueueProducer(target, "--queue", o.log);
  const started = performance.now();
  try {
    o.log(`queued ${o.shards} labelling shards; waiting for distill worker`);
    const done = await Promise.all(
      jobs.map(async (job) => {
        let r: LabelShardDone;
        try {
          r = (await q.submit("label", job.id, job, `${key}-${job.id}`)) as LabelShardDone;
        } catch (e) {
          throw new UserError(`--queue shard ${job.shard.index}/${job.shard.count}`, (e as Error).message);
        }
        o.log(`shard ${r.shard.index}/${r.shard.count}: ${r.chunks} chunks, ${r.samples} samples (${r.computedSamples} computed) by ${r.worker} in ${r.seconds.toFixed(1)} s`);
        return r;
      }),
    );
    const samples = done.reduce((n, r) => n + r.samples, 0);
    o.log(`labelled ${samples} samples in ${o.shards} shards on the queue: ${done.reduce((n, r) => n + r.computedSamples, 0)} computed, ${((performance.now() - started) / 1000).toFixed(1)} s; cache ${cacheDir}`);
    return done;
  } finally {
    await q.close();
  }
}

/** In the worker's child process: one shard, as `distill label --shard i/N` would label it. */
export async function runLabelHere(job: LabelJob): Promise<LabelSummary & { shard: Shard }> {
  const config = await validateJobConfig(job.config);
  const { labelCommand } = await import("./label.js");
  const summary = await labelCommand(config, job.configName, { shard: job.shard, cacheDir: job.cacheDir, ...(job.run ? { run: job.run } : {}), quiet: true, log: () => undefined });
  return { ...summary, shard: job.shard };
}
