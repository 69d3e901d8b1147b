// What a `distill worker` trusts (issue #30), on a real Redis (Debian's redis-server on a free
// 127.0.0.1 port, started here): hand-written jobs that name paths outside the worker's --root
// (`../`, absolute, through a symlink), a malformed job, a job of another format and of an unknown
// kind are each refused with one line naming the field, nothing is written outside the root, and
// the worker then serves a good job. A Redis with requirepass refuses a wrong password in one line
// that does not contain it, and serves the right one end to end; a TLS-only Redis with a
// self-signed certificate made here serves rediss:// with the certificate as CA (skipped, saying
// why, when redis-server is built without TLS). Without redis-server the tests say they skipped
// (under CI=true they fail).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Queue, QueueEvents } from "bullmq";
import "../src/distill/methods/index.js";
import { loadConfig } from "../src/config/load.js";
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { JOB_FORMAT } from "../src/queue/job.js";
import { QUEUE_NAME } from "../src/queue/producer.js";
import { distillVersion } from "../src/util/version.js";
import { skipWithoutRedis, startRedis, type RunningRedis } from "./helpers/redis.js";

const dir = mkdtempSync(join(tmpdir(), "distill-queue-trust-"));
const root = join(dir, "root");
const outside = join(dir, "outside");
mkdirSync(root);
mkdirSync(outside);
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const env: NodeJS.ProcessEnv = { ...process.env, DISTILL_CACHE: join(root, "default-cache"), DISTILL_THREADS: "1" };
delete env["DISTILL_REDIS_PASSWORD"];
delete env["DISTILL_REDIS_CA"];

// A small labelling job: 1,800 transfer samples, one chunk.
writeFileSync(join(root, "teacher.onnx"), (() => {
  const layers = [{ type: "linear" as const, units: 32 }, { type: "relu" as const }, { type: "linear" as const, units: 10 }];
  const m = buildModel({ input: "flat", layers }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  return exportOnnx(m, m.initParameters(0));
})());
const cfg = join(root, "label.yaml");
writeFileSync(cfg, `
name: trust
seeds: 1
data: { dataset: mnist, trainLimit: 2000, validation: 200, testLimit: 100 }
teacher: { onnx: teacher.onnx }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 256, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
`);

function cli(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...env, ...extraEnv }, cwd: root, timeout: 120_000 });
}

/** A CLI run that leaves this process's event loop free; killed at the deadline. */
function cliAsync(args: string[], extraEnv: NodeJS.ProcessEnv = {}, deadlineMs = 180_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const timer = setTimeout(() => c.kill("SIGKILL"), deadlineMs);
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    c.on("close", (status) => (clearTimeout(timer), resolve({ status, stdout, stderr })));
  });
}

function startWorker(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const w = spawn(process.execPath, [CLI, "worker", ...args], { env: { ...env, ...extraEnv }, cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const out: string[] = [];
  let buf = "";
  const read = (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      out.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  w.stdout.on("data", read);
  w.stderr.on("data", read);
  /** Resolves once `count` lines match (a job's log line may follow its state change in Redis), or rejects at the deadline. */
  const waitForLines = async (re: RegExp, count = 1, deadlineMs = 30_000) => {
    for (let waited = 0; out.filter((l) => re.test(l)).length < count; waited += 50) {
      if (waited > deadlineMs) throw new Error(`no ${count} worker lines matching ${re} within ${deadlineMs / 1000} s:\n${out.join("\n")}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { proc: w, out, waitForLines };
}

const envelope = (kind: string, id: string) => ({ format: JOB_FORMAT, distill: distillVersion(), kind, id });

function labelJob(id: string, overrides: Record<string, unknown> = {}) {
  const config = JSON.parse(JSON.stringify(loadConfig(cfg))) as Record<string, unknown>;
  return { ...envelope("label", id), config, configName: "label.yaml", cacheDir: "cache", shard: { index: 0, count: 1 }, threads: 1, ...overrides };
}

function trialJob(id: string, overrides: Record<string, unknown> = {}) {
  const config = JSON.parse(JSON.stringify(loadConfig(cfg))) as Record<string, unknown>;
  return { ...envelope("trial", id), config, output: `trials/${id}`, cacheDir: "cache", threads: 1, skipBaseline: true, ...overrides };
}

/** Everything under a folder, as relative paths. */
function tree(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: "utf8" }).sort();
}

test("a worker refuses jobs naming paths outside its --root, malformed jobs and jobs of another format, one line each, writes nothing outside, and serves the next good job", { skip: skipWithoutRedis }, async () => {
  symlinkSync(outside, join(root, "escape"));
  const redis = await startRedis();
  const worker = startWorker(["--queue", redis.url, "--root", root, "--stall-seconds", "5"]);
  const queue = new Queue(QUEUE_NAME, { connection: { host: "127.0.0.1", port: redis.port } });
  const events = new QueueEvents(QUEUE_NAME, { connection: { host: "127.0.0.1", port: redis.port } });
  try {
    await events.waitUntilReady();
    const refused: Array<[string, unknown, RegExp]> = [
      // ../../… up to / and down again into the outside folder.
      ["dotdot", trialJob("dotdot", { output: `${"../".repeat(root.split("/").length)}${outside.slice(1)}/escaped` }), /^refused: output: "(\.\.\/)+.*outside\/escaped" resolves to .*outside\/escaped, outside the root /],
      ["dotdot-cache", labelJob("dotdot-cache", { cacheDir: "../outside/cache" }), /^refused: cacheDir: "\.\.\/outside\/cache" resolves to .*outside\/cache, outside the root /],
      ["absolute", labelJob("absolute", { cacheDir: join(outside, "cache") }), /^refused: cacheDir: ".*outside\/cache" resolves to .*, outside the root /],
      ["config-path", trialJob("config-path", { config: { ...trialJob("x").config, teacher: { onnx: "/etc/passwd" } } }), /^refused: config\.teacher\.onnx: "\/etc\/passwd" resolves to \/etc\/passwd, outside the root /],
      ["data-path", labelJob("data-path", { config: { ...labelJob("x").config, data: { format: "csv", train: "../outside/train.csv", test: "test.csv", label: "y" } } }), /^refused: config\.data\.train: /],
      ["symlink", trialJob("symlink", { output: "escape/trial" }), /^refused: output: "escape\/trial" resolves to .*outside\/trial, outside the root /],
      ["run-symlink", labelJob("run-symlink", { run: "escape" }), /^refused: run: "escape" resolves to .*outside, outside the root /],
      ["malformed", trialJob("malformed", { threads: "lots" }), /^refused: threads: /],
      ["unknown-field", labelJob("unknown-field", { command: "rm -rf /" }), /^refused: data: .*command/],
      ["bad-config", trialJob("bad-config", { config: { ...trialJob("x").config, student: { model: { layers: "many" } } } }), /^refused: config: student\./],
      ["other-format", { ...trialJob("other-format"), format: JOB_FORMAT + 1, distill: "9.9.9" }, new RegExp(`^refused: format: job format ${JOB_FORMAT + 1} \\(made by distill 9\\.9\\.9\\); this worker \\(distill ${distillVersion().replace(/\./g, "\\.")}\\) reads job format ${JOB_FORMAT}`)],
      ["no-format", { id: "no-format", config: {}, output: "/tmp/x", cacheDir: "/tmp/y", threads: 1 }, /^refused: format: missing: the job was made by a distill before job format/],
      ["unknown-kind", { ...envelope("shell", "unknown-kind"), command: "touch /tmp/pwned" }, /^refused: kind: expected one of trial, label, got "shell"$/],
    ];
    for (const [id, data, reason] of refused) {
      const job = await queue.add(id, data, { jobId: id, attempts: 1 });
      await assert.rejects(job.waitUntilFinished(events, 60_000), (e: Error) => (assert.match(e.message, reason, id), true));
    }
    // Each refusal is one line of the worker's, naming the job and the field.
    for (const [id] of refused) {
      await worker.waitForLines(new RegExp(`job ${id} refused: `));
      assert.equal(worker.out.filter((l) => l.includes(`job ${id} refused: `)).length, 1, `${id}: ${worker.out.join("\n")}`);
    }
    // A job id cannot forge a worker log line: one that is not plain is quoted.
    const forged = await queue.add("forged", { ...labelJob("forged"), distill: "0.1.0\nworker x: trial t000 finished" }, { jobId: "forged\nworker x. trial t001 finished", attempts: 1 });
    await assert.rejects(forged.waitUntilFinished(events, 60_000), (e: Error) => (assert.equal(e.message, "refused: distill: expected a version like 0.1.0"), true));
    await worker.waitForLines(/job "forged\\nworker x\. trial t001 finished" refused: distill: /);
    assert.ok(!worker.out.some((l) => /^worker x[.:]/.test(l)), worker.out.join("\n"));
    assert.deepEqual(tree(outside), [], "nothing written outside the root");

    // The worker goes on: a good labelling shard runs, its chunk lands in the root's cache.
    const good = await queue.add("good", labelJob("good"), { jobId: "good", attempts: 1 });
    const result = (await good.waitUntilFinished(events, 120_000)) as { samples: number; shard: { index: number } };
    assert.equal(result.samples, 1800);
    assert.equal(readdirSync(join(root, "cache", "soft-targets")).filter((f) => f.endsWith(".bin")).length, 1);
    assert.deepEqual(tree(outside), []);
  } finally {
    worker.proc.kill("SIGKILL");
    await events.close();
    await queue.close();
    await redis.kill();
  }
});

test("the coordinator and the worker refuse a root that does not hold the job's paths: one line, exit 2, nothing written", { skip: skipWithoutRedis }, async () => {
  const redis = await startRedis();
  try {
    const cases: Array<[string[], RegExp]> = [
      [["label", cfg, "--queue", redis.url, "--shards", "1", "--cache-dir", join(outside, "cache")], /^distill: --root: --cache-dir: ".*outside\/cache" resolves to .*, outside the root .*: workers see only paths under their --root/],
      [["label", cfg, "--queue", redis.url, "--shards", "1", "--root", outside, "--cache-dir", join(outside, "cache")], /^distill: --root: teacher\.onnx: "[^"]*teacher\.onnx" resolves to .*root\/teacher\.onnx, outside the root .*outside: workers see only/],
      [["label", cfg, "--root", root], /^distill: --root: only with --queue$/],
      [["worker", "--queue", redis.url, "--root", join(dir, "missing")], /^distill: --root: .*missing: no such folder/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
    }
    // A worker without --root: commander's usage error (and its hint line).
    const noRoot = cli(["worker", "--queue", redis.url]);
    assert.equal(noRoot.status, 2);
    assert.match(noRoot.stderr, /^distill: required option '--root <dir>' not specified\n/);
    assert.deepEqual(tree(outside), []);
  } finally {
    await redis.kill();
  }
});

test("Redis with requirepass: a wrong or missing password is one line without the password, exit 2; the right one labels end to end", { skip: skipWithoutRedis }, async () => {
  const password = "Sup3r-s3cret-pa55word";
  const wrong = "wr0ng-guess-pa55";
  const redis = await startRedis({ password });
  const port = redis.port;
  let worker: ReturnType<typeof startWorker> | undefined;
  try {
    const refusedCases: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [["worker", "--queue", `redis://:${wrong}@127.0.0.1:${port}`, "--root", root], {}, /^distill: --queue: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the user name or password \(WRONGPASS\)$/],
      [["worker", "--queue", `redis://default:${wrong}@127.0.0.1:${port}`, "--root", root], {}, /refused the user name or password/],
      [["worker", "--queue", `redis://127.0.0.1:${port}`, "--root", root], { DISTILL_REDIS_PASSWORD: wrong }, /refused the user name or password/],
      [["label", cfg, "--queue", `redis://127.0.0.1:${port}`, "--shards", "1", "--cache-dir", "refused-cache"], {}, /^distill: --queue: Redis at redis:\/\/127\.0\.0\.1:\d+ needs a password: give it in the URL \(redis:\/\/:PASSWORD@host\) or in DISTILL_REDIS_PASSWORD$/],
    ];
    for (const [args, extraEnv, pattern] of refusedCases) {
      const r = cli(args, extraEnv);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
      for (const secret of [wrong, password]) assert.ok(!(r.stdout + r.stderr).includes(secret), `the password is not printed: ${r.stderr}`);
    }
    assert.ok(!existsSync(join(root, "refused-cache")));

    // The right password: in the URL for the worker, in DISTILL_REDIS_PASSWORD for the producer.
    worker = startWorker(["--queue", `redis://:${password}@127.0.0.1:${port}`, "--root", root]);
    const producer = await cliAsync(["label", cfg, "--queue", `redis://127.0.0.1:${port}`, "--shards", "2", "--cache-dir", "auth-cache"], { DISTILL_REDIS_PASSWORD: password });
    assert.equal(producer.status, 0, producer.stderr);
    assert.match(producer.stdout, /labelled 1800 samples in 2 shards on the queue: 1800 computed/);
    assert.ok(!(producer.stdout + producer.stderr + worker.out.join("\n")).includes(password), "the password is not printed");
    assert.ok(worker.out.some((l) => l.includes("redis://:***@127.0.0.1")), worker.out.join("\n"));
  } finally {
    worker?.proc.kill("SIGKILL");
    await redis.kill();
  }
});

/** A self-signed certificate for 127.0.0.1 made with openssl, or why not. */
function selfSigned(): { cert: string; key: string } | string {
  const cert = join(dir, "redis.crt");
  const key = join(dir, "redis.key");
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return `openssl could not make a certificate (${r.error?.message ?? r.stderr.trim().split("\n").pop()})`;
  return { cert, key };
}

test("rediss:// to a TLS-only Redis with a self-signed certificate: refused in one line without the CA, labels end to end with --queue-ca", { skip: skipWithoutRedis }, async (t) => {
  const files = selfSigned();
  if (typeof files === "string") return t.skip(`${files}; skipped`);
  let redis: RunningRedis;
  try {
    redis = await startRedis({ tls: files });
  } catch (e) {
    // Debian builds redis-server with TLS; another build may not have it.
    return t.skip(`this redis-server does not serve TLS (${(e as Error).message}); skipped`);
  }
  let worker: ReturnType<typeof startWorker> | undefined;
  try {
    const noCa = cli(["worker", "--queue", redis.url, "--root", root]);
    assert.equal(noCa.status, 2, noCa.stderr);
    assert.equal(noCa.stderr.trim().split("\n").length, 1, noCa.stderr);
    assert.match(noCa.stderr.trim(), /^distill: --queue: Redis at rediss:\/\/127\.0\.0\.1:\d+: TLS failed \(.*self.signed.*\); give the server's CA file with --queue-ca or DISTILL_REDIS_CA$/);
    const plain = cli(["worker", "--queue", redis.url.replace("rediss:", "redis:"), "--root", root, "--queue-ca", files.cert]);
    assert.equal(plain.status, 2);
    assert.match(plain.stderr.trim(), /^distill: --queue: a CA file \(.*\) is for TLS: use rediss:\/\/ instead of redis:\/\/$/);

    worker = startWorker(["--queue", redis.url, "--root", root, "--queue-ca", files.cert]);
    const producer = await cliAsync(["label", cfg, "--queue", redis.url, "--shards", "1", "--cache-dir", "tls-cache"], { DISTILL_REDIS_CA: files.cert });
    assert.equal(producer.status, 0, producer.stderr);
    assert.match(producer.stdout, /labelled 1800 samples in 1 shards on the queue: 1800 computed/);
  } finally {
    worker?.proc.kill("SIGKILL");
    await redis.kill();
  }
});
