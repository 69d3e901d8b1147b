// Trials as BullMQ jobs over Redis: `distill tune --queue redis://…` enqueues, `distill worker
// --queue redis://…` (any number, on any machine that sees the same folders) runs them. Each worker
// runs one trial at a time in a child process, so its event loop stays free to renew the job's
// lock; a worker killed mid-trial stops renewing, and BullMQ's stalled-job check hands the job back
// to the queue, where another worker continues the trial folder with `distill resume` semantics.
// The same workers run labelling shards (`distill label --queue … --shards N`, kind "label").

import { hostname } from "node:os";
import { Queue, QueueEvents, Worker, type Job } from "bullmq";
import { Redis } from "ioredis";
import { UserError } from "../errors.js";
import type { LabelJob } from "../distill/label-queue.js";
import { runJobChild, runTrialChild, type TrialJob, type TrialOutcome } from "./trial.js";

export const QUEUE_NAME = "distill-trials";

interface Connection {
  host: string;
  port: number;
  db: number;
  password?: string;
  username?: string;
}

/** redis://[user:password@]host[:port][/db] → connection options; anything else is a UserError. */
export function parseRedisUrl(url: string, where: string): Connection {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(where, `expected a URL like redis://127.0.0.1:6379, got ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "redis:" || !u.hostname) throw new UserError(where, `expected a URL like redis://127.0.0.1:6379, got ${JSON.stringify(url)}`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new UserError(where, `expected a database number after the port, got ${JSON.stringify(u.pathname.slice(1))}`);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
  };
}

/** Fails with one line when Redis does not answer a PING within a few seconds (before anything is written). */
export async function checkRedis(url: string, where: string): Promise<void> {
  const conn = parseRedisUrl(url, where);
  const client = new Redis({ ...conn, lazyConnect: true, connectTimeout: 3000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  let cause: Error | undefined;
  client.on("error", (e: Error) => (cause ??= e)); // reported below, once
  try {
    await client.connect();
    await client.ping();
  } catch (e) {
    throw new UserError(where, `cannot reach Redis at ${url} (${(cause ?? (e as Error)).message.split("\n")[0]})`);
  } finally {
    client.disconnect();
  }
}

/** The producer side: submit a trial, get its outcome when some worker has finished it. */
export class QueueExecutor {
  private readonly queue: Queue;
  private readonly events: QueueEvents;

  constructor(url: string, where: string) {
    const connection = { ...parseRedisUrl(url, where), maxRetriesPerRequest: null };
    this.queue = new Queue(QUEUE_NAME, { connection });
    this.events = new QueueEvents(QUEUE_NAME, { connection });
  }

  /**
   * `key` makes the BullMQ job id, so a resumed search re-submitting a trial that is still queued
   * or running waits for that job instead of adding a second one.
   */
  async run(job: TrialJob, key: string): Promise<TrialOutcome> {
    return (await this.submit(job, `${key}-${job.id}`)) as TrialOutcome;
  }

  /** Adds a job under `jobId` (or finds it queued, running or failed before) and waits for its result. */
  async submit(job: TrialJob | LabelJob, jobId: string): Promise<unknown> {
    await this.events.waitUntilReady();
    // A job that failed before an earlier `distill resume` (a bug, a dead disk) is tried again.
    const earlier = await this.queue.getJob(jobId);
    if (earlier && (await earlier.isFailed())) await earlier.retry();
    const added = await this.queue.add(job.id, job, { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false });
    return await added.waitUntilFinished(this.events);
  }

  async close(): Promise<void> {
    await this.events.close();
    await this.queue.close();
  }
}

export interface WorkerOptions {
  /** A dead worker's job goes back to the queue after about this long (lock duration and stalled-check interval). */
  stallSeconds: number;
  /** Stop after this many jobs (tests, batch machines); default: run until killed. */
  maxJobs?: number;
  log: (line: string) => void;
}

/** `distill worker`: pulls trials and labelling shards until killed (or maxJobs are done). */
export async function runWorker(url: string, opts: WorkerOptions): Promise<void> {
  await checkRedis(url, "--queue");
  const connection = { ...parseRedisUrl(url, "--queue"), maxRetriesPerRequest: null };
  const me = `${hostname()}:${process.pid}`;
  let done = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const runTrial = async (data: TrialJob) => {
    opts.log(`worker ${me}: trial ${data.id} started`);
    const outcome = await runTrialChild(data);
    opts.log(`worker ${me}: trial ${data.id} finished, val_acc=${outcome.valAccuracy.toFixed(4)}`);
    return outcome;
  };
  const worker = new Worker(
    QUEUE_NAME,
    async (job: Job<TrialJob | LabelJob>) => {
      const data = job.data;
      if ("kind" in data && data.kind === "label") {
        const what = `label shard ${data.shard.index}/${data.shard.count}`;
        opts.log(`worker ${me}: ${what} started`);
        const done = await runJobChild(data, what, data.threads, data.cacheDir, (stdout) => ({ ...(JSON.parse(stdout.trim().split("\n").pop()!) as object), worker: me }));
        opts.log(`worker ${me}: ${what} finished`);
        return done;
      }
      return runTrial(data as TrialJob);
    },
    {
      connection,
      concurrency: 1,
      lockDuration: opts.stallSeconds * 1000,
      stalledInterval: opts.stallSeconds * 1000,
      // A trial killed twice is a trial that kills workers: fail it rather than loop.
      maxStalledCount: 2,
    },
  );
  worker.on("completed", () => {
    done += 1;
    if (opts.maxJobs !== undefined && done >= opts.maxJobs) finish();
  });
  worker.on("failed", (job, err) => opts.log(`worker ${me}: ${job && "kind" in job.data ? "label shard" : "trial"} ${job?.data.id ?? "?"} failed: ${err.message}`));
  worker.on("error", (err) => opts.log(`worker ${me}: ${err.message}`));
  const stop = () => finish();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  opts.log(`worker ${me}: waiting for trials on ${url}`);
  await finished;
  await worker.close();
}
