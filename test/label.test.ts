// `distill label`: the teacher's labelling pass alone, split into shards, with real processes and
// real MNIST. Shards labelled into separate cache folders and merged by copying leave a run
// nothing to compute, with the same bytes an unsharded pass writes; a labelling process killed
// with -9 keeps its finished chunks; bad shard specs and teachers that do not exist yet are one
// line, exit 2, nothing written.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { CHUNK_SAMPLES } from "../src/distill/soft-targets.js";
import { loadConfig } from "../src/config/load.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts

const dir = mkdtempSync(join(tmpdir(), "distill-label-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
// 20,000 training images less 1,000 for validation: 19,000 transfer samples, chunks of 8,192, 8,192 and 2,616.
const TRANSFER = 19_000;

function teacherFile(name: string, hidden: number[]): string {
  const path = join(dir, `${name}.onnx`);
  const layers = [...hidden.flatMap((units) => [{ type: "linear" as const, units }, { type: "relu" as const }]), { type: "linear" as const, units: 10 }];
  const m = buildModel({ input: "flat", layers }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  writeFileSync(path, exportOnnx(m, m.initParameters(0)));
  return path;
}

function config(name: string, teacher: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 20000, validation: 1000, testLimit: 300 }
teacher: ${teacher}
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 256, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
`);
  return path;
}

function cli(args: string[], env: Record<string, string> = {}, cwd = dir) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd, env: { ...process.env, DISTILL_CACHE: join(dir, "default-cache"), ...env } });
}

const chunkFiles = (cache: string) => (existsSync(join(cache, "soft-targets")) ? readdirSync(join(cache, "soft-targets")).sort() : []);
/** Samples held by a chunk file: 40 header bytes, then 10 float32 logits per sample. */
const samplesIn = (file: string) => (statSync(file).size - 40) / 40;

test("shards 0/2 and 1/2 in separate cache folders, merged by copying: the run computes nothing, the bytes equal an unsharded pass", () => {
  // Untrained weights: the run goes on though the teacher scores at chance.
  const cfg = config("sharded", `{ onnx: ${JSON.stringify(teacherFile("small", [64]))}, allowChanceAccuracy: true }`);
  const shard = (spec: string, cache: string) => {
    const r = cli(["label", cfg, "--shard", spec, "--cache-dir", cache, "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  const a = join(dir, "cache-a"), b = join(dir, "cache-b");
  // Shard 0 of 2: chunks 0 and 2; shard 1: chunk 1.
  assert.match(shard("0/2", a), /^labelled 10808 samples \(shard 0\/2: 2 of 3 chunks\): 10808 computed, 0 from cache, [\d.]+ s, \d+ samples\/s; cache .*cache-a\/soft-targets\n$/);
  assert.match(shard("1/2", b), /^labelled 8192 samples \(shard 1\/2: 1 of 3 chunks\): 8192 computed, 0 from cache, /);
  assert.deepEqual([chunkFiles(a).length, chunkFiles(b).length], [2, 1]);

  const merged = join(dir, "cache-merged");
  mkdirSync(join(merged, "soft-targets"), { recursive: true });
  for (const from of [a, b]) for (const f of chunkFiles(from)) copyFileSync(join(from, "soft-targets", f), join(merged, "soft-targets", f));
  const again = cli(["label", cfg, "--cache-dir", merged, "--quiet"]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, new RegExp(`^labelled ${TRANSFER} samples: 0 computed, ${TRANSFER} from cache, `));

  const run = cli(["run", cfg, "--quiet", "--output", join(dir, "sharded-run")], { DISTILL_CACHE: merged });
  assert.equal(run.status, 0, run.stderr);
  const state = JSON.parse(readFileSync(join(dir, "sharded-run", "run.json"), "utf8")) as { softTargets: { samples: number; computedSamples: number } };
  assert.deepEqual(state.softTargets, { ...state.softTargets, samples: TRANSFER, computedSamples: 0 }, "the run's teacher labelled nothing");

  // A config whose teacher the run trains labels with a finished run's teacher.onnx (here the copied .onnx: same bytes, same chunks).
  const fromRun = config("from-run", "{ model: { layers: [ {type: linear, units: 10} ] }, train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05} } }");
  const viaRun = cli(["label", fromRun, "--run", join(dir, "sharded-run"), "--cache-dir", merged, "--quiet"]);
  assert.equal(viaRun.status, 0, viaRun.stderr);
  assert.match(viaRun.stdout, new RegExp(`^labelled ${TRANSFER} samples: 0 computed, ${TRANSFER} from cache, `));

  const whole = join(dir, "cache-whole");
  const unsharded = cli(["label", cfg, "--cache-dir", whole, "--quiet"]);
  assert.match(unsharded.stdout, new RegExp(`^labelled ${TRANSFER} samples: ${TRANSFER} computed, 0 from cache, `));
  assert.deepEqual(chunkFiles(merged), chunkFiles(whole), "the same chunks, by content address");
  for (const f of chunkFiles(whole)) assert.ok(readFileSync(join(merged, "soft-targets", f)).equals(readFileSync(join(whole, "soft-targets", f))), `${f}: bit for bit`);
});

test("a labelling process killed with -9: the chunks it finished are kept, the next pass computes only the rest", async () => {
  // A teacher slow enough (≈ 4.6 MFLOP a sample) that the kill lands while chunks remain.
  const cfg = config("killed", `{ onnx: ${JSON.stringify(teacherFile("slow", [1500, 1500]))} }`);
  const cache = join(dir, "cache-killed");
  const child = spawn(process.execPath, [CLI, "label", cfg, "--cache-dir", cache, "--quiet"], { stdio: "ignore" });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_code, signal) => res(signal)));
  const deadline = Date.now() + 120_000;
  while (chunkFiles(cache).filter((f) => f.endsWith(".bin")).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  const kept = chunkFiles(cache).filter((f) => f.endsWith(".bin"));
  const keptSamples = kept.reduce((a, f) => a + samplesIn(join(cache, "soft-targets", f)), 0);
  assert.ok(kept.length >= 1 && keptSamples < TRANSFER, `killed mid-pass: ${kept.length} chunk files, ${keptSamples} samples`);
  // The dead process's lock on the chunk it was computing is taken over.
  const r = cli(["label", cfg, "--cache-dir", cache, "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^labelled ${TRANSFER} samples: ${TRANSFER - keptSamples} computed, ${keptSamples} from cache, `));
  // (A write cut by the kill may leave its hidden temporary file, .<chunk>.bin.<pid>.tmp; never a chunk file.)
  const left = chunkFiles(cache).filter((f) => !/^\..*\.tmp$/.test(f));
  assert.deepEqual(left.length, Math.ceil(TRANSFER / CHUNK_SAMPLES), `every chunk, no lock left (the killed process's locks are removed): ${left}`);
});

test("two labelling processes at once on one cache folder: each chunk is computed once, by one of them", async () => {
  const cfg = config("twins", `{ onnx: ${JSON.stringify(teacherFile("slow-twins", [1500, 1500]))} }`);
  const cache = join(dir, "cache-twins");
  const start = () => {
    const child = spawn(process.execPath, [CLI, "label", cfg, "--cache-dir", cache, "--quiet"], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on("exit", (code) => res({ code, stdout, stderr })));
  };
  const both = await Promise.all([start(), start()]);
  let computed = 0;
  for (const r of both) {
    assert.equal(r.code, 0, r.stderr);
    const m = new RegExp(`^labelled ${TRANSFER} samples: (\\d+) computed, (\\d+) from cache, `).exec(r.stdout);
    assert.ok(m, r.stdout);
    computed += Number(m[1]);
  }
  assert.equal(computed, TRANSFER, "19,000 samples labelled once in all");
  assert.equal(chunkFiles(cache).length, 3, `three chunk files, no lock or temporary file left: ${chunkFiles(cache)}`);
});

test("bad shard specs and teachers that do not exist yet: one line naming the option or file, exit 2, nothing written", () => {
  const cwd = mkdtempSync(join(tmpdir(), "distill-label-cwd-"));
  const cfg = config("bad", `{ onnx: ${JSON.stringify(teacherFile("bad", []))} }`);
  const oneLine = (r: ReturnType<typeof cli>, pattern: RegExp) => {
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
  };
  const cache = join(cwd, "cache");
  const env = { DISTILL_CACHE: join(cwd, "default-cache") };
  oneLine(cli(["label", cfg, "--shard", "3/2", "--cache-dir", cache], env, cwd), /^distill: --shard 3\/2: shard 3 of 2 does not exist: shards are numbered 0 to 1$/);
  oneLine(cli(["label", cfg, "--shard", "2/2", "--cache-dir", cache], env, cwd), /^distill: --shard 2\/2: shard 2 of 2 does not exist/);
  oneLine(cli(["label", cfg, "--shard", "0/0", "--cache-dir", cache], env, cwd), /^distill: --shard 0\/0: the shard count must be at least 1, got 0$/);
  for (const spec of ["a/b", "-1/2", "1", "1/2/3", "0.5/2", ""])
    oneLine(cli(["label", cfg, "--shard", spec, "--cache-dir", cache], env, cwd), new RegExp(`^distill: --shard ${spec.replace(/[./]/g, "\\$&")}: expected i/N \\(shard i of N, counting from 0\\), e\\.g\\. 0/2$`));

  // A teacher the run would train does not exist before the run.
  const trained = config("trained", "{ model: { layers: [ {type: linear, units: 10} ] }, train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05} } }");
  oneLine(cli(["label", trained, "--cache-dir", cache], env, cwd), /trained\.yaml: teacher: distill label needs a teacher that exists before the run: teacher\.onnx, or --run <folder> of a run whose teacher has finished training$/);
  oneLine(cli(["label", trained, "--run", join(cwd, "no-run"), "--cache-dir", cache], env, cwd), /no-run: no teacher\.onnx in this run folder: its teacher has not finished training/);
  assert.deepEqual(readdirSync(cwd), [], "no cache folder, no file of any kind");
});

test("the example config loads and names an .onnx teacher (labelled ahead of its run)", () => {
  const examples = join(dirname(fileURLToPath(import.meta.url)), "../../examples");
  const example = loadConfig(join(examples, "label-sharded.yaml"));
  // Relative to the config's folder: the repository's runs/, whatever the working directory.
  assert.equal(example.teacher!.onnx, join(examples, "../runs/hinton-mnist/teacher.onnx"));
});
