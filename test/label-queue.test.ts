// `distill label --queue redis://… --shards N` on a real Redis (Debian's redis-server on a free
// 127.0.0.1 port, started here): the shards go to two `distill worker`s as BullMQ jobs, each shard
// is labelled exactly once, and the shared cache folder then holds the same files, byte for byte,
// as a local `distill label`. Bad combinations of the options are one line, exit 2, nothing written.
// Without redis-server (apt-get install redis-server) the queue test says it skipped.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildModel } from "../src/nn/spec.js";
import { skipWithoutRedis, startRedis } from "./helpers/redis.js";
import { exportOnnx } from "../src/nn/model.js";

const dir = mkdtempSync(join(tmpdir(), "distill-label-queue-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const env = { ...process.env, DISTILL_CACHE: join(dir, "default-cache"), DISTILL_THREADS: "1" };

function teacherFile(): string {
  const path = join(dir, "teacher.onnx");
  const layers = [{ type: "linear" as const, units: 32 }, { type: "relu" as const }, { type: "linear" as const, units: 10 }];
  const m = buildModel({ input: "flat", layers }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  writeFileSync(path, exportOnnx(m, m.initParameters(0)));
  return path;
}

// 20,000 training images less 1,000 for validation: 19,000 transfer samples in 3 chunks (8,192, 8,192, 2,616).
const cfg = join(dir, "queued-label.yaml");
writeFileSync(cfg, `
name: queued-label
seeds: 1
data: { dataset: mnist, trainLimit: 20000, validation: 1000, testLimit: 300 }
teacher: { onnx: ${JSON.stringify(teacherFile())} }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 256, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
`);

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env, cwd: dir });
}

/** A CLI run that leaves this process's event loop free (the workers' output is read meanwhile). */
function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    c.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    c.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function collect(child: ChildProcess): string[] {
  const seen: string[] = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      seen.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return seen;
}

const chunkFiles = (cache: string) => readdirSync(join(cache, "soft-targets")).filter((f) => f.endsWith(".bin")).sort();

test("distill label --queue --shards 3 with two workers on a real Redis: every shard labelled exactly once, the cache equal byte for byte to a local distill label", { skip: skipWithoutRedis }, async () => {
  const local = cli(["label", cfg, "--cache-dir", join(dir, "local"), "--quiet"]);
  assert.equal(local.status, 0, local.stderr);
  assert.equal(chunkFiles(join(dir, "local")).length, 3);

  const redis = await startRedis();
  const url = redis.url;
  const started: ChildProcess[] = [redis.process];
  try {
    const workers = [0, 1].map(() => {
      const w = spawn(process.execPath, [CLI, "worker", "--queue", url, "--root", dir], { env, cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
      started.push(w);
      return collect(w);
    });
    const producer = await cliAsync(["label", cfg, "--queue", url, "--shards", "3", "--cache-dir", join(dir, "queued")]);
    assert.equal(producer.status, 0, producer.stderr);
    // Every shard reported once by the producer, and finished once across the two workers.
    const reported = producer.stdout.split("\n").filter((l) => /^shard \d\/3: /.test(l)).map((l) => l.slice(0, 9)).sort();
    assert.deepEqual(reported, ["shard 0/3", "shard 1/3", "shard 2/3"]);
    assert.match(producer.stdout, /labelled 19000 samples in 3 shards on the queue: 19000 computed/);
    // A worker logs "finished" just before BullMQ reports the job done; give its line a moment to arrive.
    for (let i = 0; i < 50 && workers.flat().filter((l) => / finished$/.test(l)).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    const finished = workers.flat().filter((l) => / finished$/.test(l)).map((l) => /label shard (\d\/3) finished/.exec(l)![1]!).sort();
    assert.deepEqual(finished, ["0/3", "1/3", "2/3"], "each shard finished exactly once across the workers");

    const files = chunkFiles(join(dir, "queued"));
    assert.deepEqual(files, chunkFiles(join(dir, "local")), "the same chunk files");
    for (const f of files) assert.ok(readFileSync(join(dir, "queued", "soft-targets", f)).equals(readFileSync(join(dir, "local", "soft-targets", f))), `${f}: the same bytes`);

    // Labelled already: the same command again finds every chunk in the cache.
    const again = await cliAsync(["label", cfg, "--queue", url, "--shards", "3", "--cache-dir", join(dir, "queued")]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /labelled 19000 samples in 3 shards on the queue: 0 computed/);
  } finally {
    for (const c of started.reverse()) if (c.exitCode === null) c.kill("SIGKILL");
  }
});

test("distill label --queue / --shards misused: one line naming the option, exit 2, nothing written", () => {
  const cache = join(dir, "bad-cache");
  const cases: Array<[string[], RegExp]> = [
    [["--shards", "2"], /^distill: --shards: only with --queue \(on one machine, label shard i of N with --shard i\/N\)$/],
    [["--queue", "redis://127.0.0.1:1"], /^distill: --queue: give the number of shards to enqueue with --shards N$/],
    [["--queue", "redis://127.0.0.1:1", "--shards", "0"], /^distill: --shards: expected a number of shards ≥ 1, got "0"$/],
    [["--queue", "redis://127.0.0.1:1", "--shards", "x"], /^distill: --shards: expected a number of shards ≥ 1, got "x"$/],
    [["--queue", "redis://127.0.0.1:1", "--shard", "0/2"], /^distill: --shard: with --queue the workers take the shards: give --shards N instead$/],
    [["--queue", "http://x", "--shards", "2"], /^distill: --queue: expected a URL like redis:\/\/127\.0\.0\.1:6379/],
    [["--queue", "redis://127.0.0.1:1", "--shards", "2"], /^distill: --queue: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(["label", cfg, ...args, "--cache-dir", cache]);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
    assert.ok(!existsSync(cache), `${args.join(" ")}: nothing written`);
  }
});
