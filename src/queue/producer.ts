// The coordinator's side of the queue (`distill tune --queue`, `distill label --queue`): submit a
// job, get its result once some worker has finished it. The coordinator checks its jobs in Redis
// every second rather than listening for events alone, so that a Redis restarted empty (every job
// gone, and with them the events that would have finished them) is noticed: each lost job is
// enqueued again, after a grace period in which a worker still running it loses its lock renewal
// and stops (src/queue/worker.ts), so that two workers never write one trial folder together.

import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { envelope } from "./job.js";
import { displayUrl, redisErrorText, redisOptions, type RedisTarget } from "./redis.js";

export const QUEUE_NAME = "distill-trials";

/** A worker renews its job's lock at most this often apart (src/queue/worker.ts): it notices a lost job within about this long. */
export const LOCK_RENEW_MS = 2000;
/** A lost job waits this long before it is enqueued again: several lock renewals, and a child process killed. */
export const LOST_JOB_GRACE_MS = 5 * LOCK_RENEW_MS;
const CHECK_EVERY_MS = 1000;

interface Pending {
  kind: string;
  data: object;
  resolve: (result: unknown) => void;
  reject: (e: Error) => void;
}

export class QueueProducer {
  private readonly queue: Queue;
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;

  constructor(
    private readonly target: RedisTarget,
    where: string,
    private readonly log: (line: string) => void,
  ) {
    const options = redisOptions(target, where);
    this.queue = new Queue(QUEUE_NAME, { connection: { ...options, maxRetriesPerRequest: null } });
    // Without a listener an unreachable Redis prints ioredis' own warnings; say it once per outage instead.
    let down = false;
    this.queue.on("error", (e) => {
      if (down || this.closed) return;
      down = true;
      this.log(`lost Redis at ${displayUrl(target.url)} (${redisErrorText(e, options)}); waiting for it to come back`);
    });
    void this.queue.client.then((client) =>
      (client as unknown as Redis).on("ready", () => {
        if (!down) return;
        down = false;
        this.log(`Redis at ${displayUrl(target.url)} is back; checking this run's jobs`);
      }),
    );
  }

  /**
   * Adds a job of `kind` under `jobId` (or finds it queued, running or finished before: a resumed
   * search re-submitting a trial waits for that job instead of adding a second) and waits for its result.
   */
  async submit(kind: string, id: string, data: object, jobId: string): Promise<unknown> {
    const job = { ...envelope(kind, id), ...data };
    // A job that failed before an earlier `distill resume` (a bug, a dead disk) is tried again.
    const earlier = await this.queue.getJob(jobId);
    if (earlier && (await earlier.isFailed())) await earlier.retry();
    await this.add(jobId, job, 0);
    return new Promise((resolve, reject) => {
      this.pending.set(jobId, { kind, data: job, resolve, reject });
      this.timer ??= setInterval(() => void this.check(), CHECK_EVERY_MS);
    });
  }

  private add(jobId: string, job: object & { id: string }, delay: number) {
    return this.queue.add(job.id, job, { jobId, attempts: 1, removeOnComplete: false, removeOnFail: false, ...(delay ? { delay } : {}) });
  }

  /** One pass over the pending jobs: finished ones settle, lost ones are enqueued again. */
  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [jobId, p] of this.pending) {
        const state = await this.queue.getJobState(jobId);
        if (state === "completed" || state === "failed") {
          const job = await this.queue.getJob(jobId);
          if (!job) continue; // gone between the two calls: the next pass sees it as lost
          this.pending.delete(jobId);
          if (state === "completed") p.resolve(job.returnvalue);
          else p.reject(new Error(job.failedReason || `job ${jobId} failed`));
        } else if (state === "unknown") {
          this.log(`${p.kind} job ${jobId} is no longer in Redis (restarted empty?); enqueued again in ${LOST_JOB_GRACE_MS / 1000} s`);
          await this.add(jobId, p.data as object & { id: string }, LOST_JOB_GRACE_MS);
        }
      }
    } catch {
      // Redis unreachable: the error listener has said so; the next pass tries again.
    } finally {
      this.checking = false;
      if (this.pending.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const p of this.pending.values()) p.reject(new Error("the queue was closed"));
    this.pending.clear();
    await this.queue.close();
  }
}
