// Trials over BullMQ on a real Redis (Debian's redis-server on a free 127.0.0.1 port, started
// here): `distill tune --queue` enqueues, two `distill worker`s run the trials, one worker is
// killed with SIGKILL mid-trial, BullMQ's stalled-job check hands its trial to the other, every
// trial finishes exactly once, and the search's result equals the same search run locally. Then
// Redis is restarted empty mid-search (once the first trial's result is recorded, with the only
// worker frozen meanwhile so that jobs are surely pending): the coordinator says its jobs were
// lost, enqueues them again, and the search ends with the local search's result. Without
// redis-server (apt-get install redis-server; .ci/run installs it) the tests say they skipped
// (under CI=true they fail).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TuneResults } from "../src/tune/search.js";
import type { LedgerEntry } from "../src/tune/runner.js";
import { skipWithoutRedis, startRedis } from "./helpers/redis.js";

const dir = mkdtempSync(join(tmpdir(), "distill-queue-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const env = { ...process.env, DISTILL_CACHE: join(dir, "cache"), DISTILL_THREADS: "1" };

const CONFIG = `name: queued
seeds: 1
data: { dataset: mnist, trainLimit: 2000, validation: 500, testLimit: 500 }
teacher:
  model: { layers: [ {type: linear, units: 64}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
tune:
  space: { temperature: [2, 4], alpha: [0.5, 0.9] }
  seeds: 1
`;

/** Collects a process's stdout lines; `waitFor` resolves at the first line matching, or rejects at the deadline. */
function lines(child: ChildProcess) {
  const seen: string[] = [];
  const waiters: Array<[RegExp, (line: string) => void]> = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      seen.push(line);
      for (const w of waiters.splice(0)) (w[0].test(line) ? w[1](line) : waiters.push(w));
    }
  });
  return {
    seen,
    waitFor: (re: RegExp, deadlineMs = 300_000) => new Promise<string>((resolve, reject) => {
      const hit = seen.find((l) => re.test(l));
      if (hit) return resolve(hit);
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} within ${deadlineMs / 1000} s; seen:\n${seen.join("\n")}`)), deadlineMs);
      waiters.push([re, (line) => (clearTimeout(timer), resolve(line))]);
    }),
  };
}

function childrenOf(pid: number): number[] {
  const out = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" }).stdout;
  return out.split("\n").map((l) => Number(l.trim())).filter((n) => n > 0);
}

/** Running (a zombie left to a container's init counts as ended). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** The exit code, or a rejection at the deadline. */
function exited(c: ChildProcess, deadlineMs = 600_000): Promise<number | null> {
  return new Promise((resolve, reject) => {
    if (c.exitCode !== null) return resolve(c.exitCode);
    const timer = setTimeout(() => reject(new Error(`pid ${c.pid} still running after ${deadlineMs / 1000} s`)), deadlineMs);
    c.once("exit", (code) => (clearTimeout(timer), resolve(code)));
  });
}

let localSearch: TuneResults | undefined;
/** The same search run locally (once for both tests). */
function localResults(cfg: string): TuneResults {
  if (!localSearch) {
    const local = spawnSync(process.execPath, [CLI, "tune", cfg, "--output", join(dir, "local"), "--concurrency", "2"], { encoding: "utf8", env, timeout: 600_000 });
    assert.equal(local.status, 0, local.stderr);
    localSearch = JSON.parse(readFileSync(join(dir, "local", "results.json"), "utf8")) as TuneResults;
  }
  return localSearch;
}

test("two workers on a real Redis, one killed with SIGKILL mid-trial: every trial finishes exactly once and the result equals the local search's", { skip: skipWithoutRedis }, async () => {
  const cfg = join(dir, "queued.yaml");
  writeFileSync(cfg, CONFIG);
  const whole = localResults(cfg);

  const redis = await startRedis();
  const url = redis.url;
  const started: ChildProcess[] = [redis.process];
  try {
    const worker = () => {
      const w = spawn(process.execPath, [CLI, "worker", "--queue", url, "--root", dir, "--stall-seconds", "5"], { env, stdio: ["ignore", "pipe", "inherit"] });
      started.push(w);
      return { proc: w, out: lines(w) };
    };
    const a = worker();
    const b = worker();
    const producer = spawn(process.execPath, [CLI, "tune", cfg, "--output", join(dir, "queued"), "--queue", url, "--root", dir], { env, stdio: ["ignore", "pipe", "pipe"] });
    started.push(producer);
    let producerErr = "";
    producer.stderr!.on("data", (d: Buffer) => (producerErr += d.toString()));
    lines(producer);

    // Kill worker a while it runs a trial of the search (not the teacher: it runs before any trial).
    const line = await a.out.waitFor(/trial t\d+ started/);
    const killedTrial = /trial (t\d+) started/.exec(line)![1]!;
    // The line comes as the child is spawned; on a loaded machine it may take a moment to be listed.
    let trialProcs = childrenOf(a.proc.pid!);
    for (let i = 0; i < 50 && trialProcs.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      trialProcs = childrenOf(a.proc.pid!);
    }
    assert.equal(trialProcs.length, 1, "the worker runs its trial in one child process");
    a.proc.kill("SIGKILL");
    // The worker's trial process notices its parent is gone (watchdog thread) and ends too, so it
    // cannot write the trial folder while the other worker continues it.
    for (let waited = 0; trialProcs.some(alive) && waited < 5000; waited += 200) await new Promise((r) => setTimeout(r, 200));
    for (const pid of trialProcs) assert.ok(!alive(pid), `trial process ${pid} of the killed worker ended`);
    assert.equal(await exited(producer), 0, producerErr);

    const queued = JSON.parse(readFileSync(join(dir, "queued", "results.json"), "utf8")) as TuneResults;
    const ledger = readFileSync(join(dir, "queued", "trials.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as LedgerEntry);
    const ids = ledger.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, "each trial once in the ledger");
    const localIds = readFileSync(join(dir, "local", "trials.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as LedgerEntry).id);
    assert.deepEqual([...ids].sort(), [...localIds].sort(), "the same trials as the local search");
    // Finished exactly once across both workers; the killed worker's trial was finished by the other.
    const finished = [...a.out.seen, ...b.out.seen].filter((l) => / finished, /.test(l)).map((l) => /trial (\S+) finished/.exec(l)![1]!);
    assert.deepEqual([...finished].sort(), [...ids].sort());
    assert.ok(!a.out.seen.some((l) => l.includes(`trial ${killedTrial} finished`)));
    assert.ok(b.out.seen.some((l) => l.includes(`trial ${killedTrial} finished`)), "the dead worker's trial went back to the queue");
    // The same trials, the same validation accuracies, the same winner and final figures.
    assert.deepEqual(queued.trials.map((t) => [t.id, t.valAccuracy]), whole.trials.map((t) => [t.id, t.valAccuracy]));
    assert.deepEqual(queued.winner, whole.winner);
    assert.deepEqual(queued.final, whole.final);
  } finally {
    for (const c of started.reverse()) if (c.exitCode === null) c.kill("SIGKILL");
  }
});

test("Redis restarted empty mid-search: the coordinator says its jobs were lost, enqueues them again, and ends with the local search's result", { skip: skipWithoutRedis }, async () => {
  const cfg = join(dir, "restarted.yaml");
  writeFileSync(cfg, CONFIG);
  const whole = localResults(cfg);
  let redis = await startRedis();
  const started: ChildProcess[] = [];
  try {
    const worker = spawn(process.execPath, [CLI, "worker", "--queue", redis.url, "--root", dir, "--stall-seconds", "5"], { env, stdio: ["ignore", "pipe", "inherit"] });
    started.push(worker);
    lines(worker);
    const producer = spawn(process.execPath, [CLI, "tune", cfg, "--output", join(dir, "restarted"), "--queue", redis.url, "--root", dir], { env, stdio: ["ignore", "pipe", "pipe"] });
    started.push(producer);
    let producerErr = "";
    producer.stderr!.on("data", (d: Buffer) => (producerErr += d.toString()));
    const out = lines(producer);

    // The first trial's result is recorded (the teacher was the first entry): three trials remain,
    // queued or running, and the only worker is frozen so that none can finish meanwhile.
    await out.waitFor(/^trial t\d+ .*\[2 done\]$/);
    worker.kill("SIGSTOP");
    await redis.kill();
    redis = await startRedis({ port: redis.port });
    worker.kill("SIGCONT");
    await out.waitFor(/^trial job \S+ is no longer in Redis \(restarted empty\?\); enqueued again in 10 s$/, 60_000);
    assert.equal(await exited(producer), 0, producerErr);

    const queued = JSON.parse(readFileSync(join(dir, "restarted", "results.json"), "utf8")) as TuneResults;
    const ids = readFileSync(join(dir, "restarted", "trials.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as LedgerEntry).id);
    assert.equal(new Set(ids).size, ids.length, "each trial once in the ledger");
    assert.deepEqual(queued.trials.map((t) => [t.id, t.valAccuracy]), whole.trials.map((t) => [t.id, t.valAccuracy]));
    assert.deepEqual(queued.winner, whole.winner);
    assert.deepEqual(queued.final, whole.final);
  } finally {
    for (const c of started.reverse()) if (c.exitCode === null) c.kill("SIGKILL");
    await redis.kill();
  }
});
