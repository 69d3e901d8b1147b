// Trials over the queue (src/queue/): `distill tune --queue` and `distill shrink --queue` submit
// their trials as jobs of kind "trial", which any number of `distill worker`s (on machines that see
// the same folders) run, one at a time, each in a child process. Paths travel relative to the queue
// root (--root on both sides), so a shared folder may be mounted in different places. A worker
// killed mid-trial stops renewing the job's lock and BullMQ hands the job to another worker, which
// continues the trial folder with `distill resume` semantics.

import { z } from "zod";
import { mapConfigPaths } from "../config/paths.js";
import type { DistillConfig } from "../config/schema.js";
import { validateJobConfig } from "../distill/job-config.js";
import { defaultCacheDir } from "../distill/soft-targets.js";
import { jobId, jobPath, realRoot, relativeToRoot, threadCount, type Envelope, type JobKind } from "../queue/job.js";
import { QueueProducer } from "../queue/producer.js";
import { checkRedis, type RedisTarget } from "../queue/redis.js";
import type { Executor } from "./runner.js";
import { runTrialChild, type TrialJob, type TrialOutcome } from "./trial.js";

export type QueuedTrial = Envelope & TrialJob & { kind: "trial" };

const trialSchema = z.strictObject({
  format: z.number(),
  distill: z.string(),
  kind: z.literal("trial"),
  id: jobId,
  config: z.record(z.string(), z.unknown()),
  output: jobPath,
  cacheDir: jobPath,
  threads: threadCount,
  skipBaseline: z.boolean().optional(),
});

/** What `distill worker` runs for a tune or shrink trial. */
export const trialJobKind: JobKind<QueuedTrial> = {
  kind: "trial",
  schema: trialSchema as z.ZodType<QueuedTrial>,
  describe: (job) => `trial ${job.id}`,
  async prepare(job, confine) {
    const output = confine("output", job.output);
    const config = await validateJobConfig({ ...job.config, output });
    return { ...job, output, cacheDir: confine("cacheDir", job.cacheDir), config: asDocument(mapConfigPaths(config, (key, p) => confine(`config.${key}`, p))) };
  },
  summarize: (outcome) => `val_acc=${(outcome as TrialOutcome).valAccuracy.toFixed(4)}`,
  run: (job, { root, signal }) => runTrialChild(job, { cwd: root, signal }),
};

function asDocument(config: DistillConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config)) as Record<string, unknown>;
}

export interface QueueOptions {
  queue: string;
  /** CA file for rediss:// */
  queueCa?: string;
  /** The folder the workers' --root names (default: the working folder). */
  queueRoot?: string;
}

/**
 * Before a queued search writes anything: Redis answers, then the search folder, the soft-target
 * cache and every path of the config lie under the queue root (else one line naming the path).
 */
export async function checkQueue(o: QueueOptions, config: DistillConfig, dir: string, cacheDir: string = defaultCacheDir()): Promise<void> {
  await checkRedis({ url: o.queue, ...(o.queueCa ? { caFile: o.queueCa } : {}) }, "--queue");
  const root = realRoot(o.queueRoot ?? ".", "--root");
  relativeToRoot(root, "the search folder (--output)", dir);
  relativeToRoot(root, "the soft-target cache (DISTILL_CACHE)", cacheDir);
  // Trials run in folders under the search folder, whatever the config's own output says.
  mapConfigPaths({ ...config, output: dir }, (key, p) => relativeToRoot(root, key, p));
}

/** Runs trials as queue jobs under `key` (unique per search folder), paths relative to `root`. */
export function queueExecutor(target: RedisTarget, root: string, key: string, log: (line: string) => void): Executor {
  const producer = new QueueProducer(target, "--queue", log);
  return {
    run: async (job) => {
      const rel = (field: string, p: string) => relativeToRoot(root, field, p);
      const output = rel("output", job.output);
      const config = mapConfigPaths({ ...(job.config as unknown as DistillConfig), output: job.output }, rel);
      const data = { ...job, output, cacheDir: rel("cacheDir", job.cacheDir), config: asDocument(config) };
      // A resumed search re-submitting a trial still queued or running waits for that job (same id).
      return (await producer.submit("trial", job.id, data, `${key}-${job.id}`)) as TrialOutcome;
    },
    close: () => producer.close(),
  };
}
