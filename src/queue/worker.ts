// `distill worker`: pulls jobs from the queue and runs them, one at a time, until stopped. Redis is
// the trust boundary: whoever can write to it can enqueue anything, so before a job runs it is
// parsed against its kind's schema and format (src/queue/job.ts), the config it carries is
// validated, and every path it names must lie under the worker's --root after symlinks. A job that
// fails any of these is moved to failed with one line naming the field, and the worker goes on.
// A worker killed mid-job stops renewing the job's lock, and BullMQ's stalled-job check hands the
// job to another worker; a worker whose lock renewal fails (the job was taken over, or Redis
// restarted empty) kills the job's child process, so that two workers never run one job together.

import { hostname } from "node:os";
import { UnrecoverableError, Worker, type Job } from "bullmq";
import { confineUnder, parseJob, RefusedJob, type Envelope, type JobKind } from "./job.js";
import { LOCK_RENEW_MS, QUEUE_NAME } from "./producer.js";
import { checkRedis, displayUrl, redisErrorText, redisOptions, type RedisTarget } from "./redis.js";

export interface WorkerOptions {
  /** Every path a job names must resolve inside this folder (absolute, real: see realRoot). */
  root: string;
  kinds: readonly JobKind[];
  /** A dead worker's job goes back to the queue after about this long (lock duration and stalled-check interval). */
  stallSeconds: number;
  /** Stop after this many jobs, finished or failed (tests, batch machines); default: run until killed. */
  maxJobs?: number;
  log: (line: string) => void;
}

export async function runWorker(target: RedisTarget, opts: WorkerOptions): Promise<void> {
  await checkRedis(target, "--queue");
  const options = redisOptions(target, "--queue");
  const me = `${hostname()}:${process.pid}`;
  const say = (line: string) => opts.log(`worker ${me}: ${line}`);
  let handled = 0;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));
  const count = () => {
    handled += 1;
    if (opts.maxJobs !== undefined && handled >= opts.maxJobs) finish();
  };

  const handle = async (job: Job<unknown>, _token: string | undefined, signal?: AbortSignal) => {
    let kind: JobKind;
    let parsed: Envelope;
    try {
      ({ kind, job: parsed } = parseJob(job.data, opts.kinds));
      parsed = await kind.prepare(parsed, (field, path) => confineUnder(opts.root, field, path));
    } catch (e) {
      if (!(e instanceof RefusedJob)) throw e;
      // Unrecoverable: refused for good, whatever the job's attempts say.
      throw new UnrecoverableError(`refused: ${e.message}`);
    }
    const what = kind.describe(parsed);
    say(`${what} started`);
    const result = await kind.run(parsed, { root: opts.root, worker: me, signal: signal ?? new AbortController().signal });
    say(`${what} finished${kind.summarize ? `, ${kind.summarize(result)}` : ""}`);
    return result;
  };

  const worker = new Worker(QUEUE_NAME, handle, {
    // Reconnect every second, whatever the outage's length: a Redis back up empty must be seen within
    // the coordinator's grace for lost jobs (src/queue/producer.ts), before it enqueues them again.
    connection: { ...options, maxRetriesPerRequest: null, retryStrategy: () => 1000 },
    concurrency: 1,
    lockDuration: opts.stallSeconds * 1000,
    lockRenewTime: Math.min(LOCK_RENEW_MS, (opts.stallSeconds * 1000) / 2),
    stalledInterval: opts.stallSeconds * 1000,
    // A trial killed twice is a trial that kills workers: fail it rather than loop.
    maxStalledCount: 2,
  });
  worker.on("completed", count);
  worker.on("failed", (job, err) => {
    // The job id is whatever was written to Redis: quoted unless plain, so that it cannot forge log lines.
    const id = job?.id === undefined ? "?" : /^[\w.:-]{1,200}$/.test(job.id) ? job.id : JSON.stringify(job.id);
    say(`job ${id} ${err.message.startsWith("refused: ") ? "" : "failed: "}${err.message.split("\n")[0]}`);
    if (job) count();
  });
  worker.on("lockRenewalFailed", (jobIds: string[]) => {
    for (const id of jobIds) if (worker.cancelJob(id, "this worker lost the job (taken over by another, or Redis restarted)")) say(`job ${id}: lost its lock; stopped it`);
  });
  let down = false;
  worker.on("error", (err) => {
    const text = redisErrorText(err, options);
    // One line per outage, not one per reconnection attempt.
    // A lost lock was reported once, by the lockRenewalFailed listener.
    if (/could not renew lock for job|Missing lock for job/.test(text)) return;
    if (/ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed/.test(text)) {
      if (!down) say(`lost Redis at ${displayUrl(target.url)} (${text}); reconnecting`);
      down = true;
    } else say(text);
  });
  worker.on("ready", () => {
    if (down) say(`Redis at ${displayUrl(target.url)} is back`);
    down = false;
  });
  const stop = () => finish();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  say(`waiting for jobs (${opts.kinds.map((k) => k.kind).join(", ")}) on ${displayUrl(target.url)}; root ${opts.root}`);
  await finished;
  await worker.close();
}
