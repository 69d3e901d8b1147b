// `kd.assistants: {count: n}`: teacher assistants chosen between teacher and student — widths
// interpolated geometrically for MLPs and CNNs of the same layers, recorded as plain specs in the
// resolved config (which reloads to itself), and a one-line error naming kd.assistants otherwise.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify, parse } from "yaml";
import { validateConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import { decodeModel } from "../src/engine/onnx.js";
import { createProgress } from "../src/util/progress.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts

const train = { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } };
const mlp = (...hidden: number[]) => ({ layers: [...hidden.flatMap((units) => [{ type: "linear", units }, { type: "relu" }]), { type: "linear", units: 10 }] });
const cnn = (c1: number, c2: number, fc: number) => ({
  layers: [
    { type: "conv", filters: c1, kernel: 3, padding: 1 }, { type: "relu" }, { type: "maxpool", size: 2 },
    { type: "conv", filters: c2, kernel: 3, padding: 1 }, { type: "relu" }, { type: "maxpool", size: 2 },
    { type: "flatten" }, { type: "linear", units: fc }, { type: "relu" }, { type: "linear", units: 10 },
  ],
});
const config = (teacher: object, student: object, assistants: unknown) =>
  validateConfig({ name: "a", data: { dataset: "mnist" }, teacher: "onnx" in teacher ? teacher : { model: teacher, train }, student: { model: student, train }, kd: { temperature: 4, assistants } }, "a.yaml");
const widths = (m: { layers: { type: string; units?: number; filters?: number }[] }) => m.layers.flatMap((l) => (l.type === "linear" ? [l.units] : l.type === "conv" ? [l.filters] : []));

test("assistants {count}: MLP hidden widths geometrically between teacher and student, largest first", () => {
  const c = config(mlp(256, 64), mlp(16, 8), { count: 2 });
  // 256·(16/256)^(1/3) = 101.6, 256·(16/256)^(2/3) = 40.3; 64·(1/8)^(1/3) = 32, 64·(1/8)^(2/3) = 16.
  assert.deepEqual(c.kd.assistants!.map(widths), [[102, 32, 10], [40, 16, 10]]);
  assert.deepEqual(c.kd.assistants![0]!.layers.map((l) => l.type), ["linear", "relu", "linear", "relu", "linear"]);
  // Recorded as specs: the resolved config, written and read back as run folders do, is the same.
  const again = validateConfig(parse(stringify(c)), "config.yaml");
  assert.deepEqual(again.kd, c.kd);
});

test("assistants {count}: CNN channel counts (and the hidden linear width) interpolated; other settings are the student's", () => {
  const c = config(cnn(32, 64, 64), cnn(8, 16, 32), { count: 1 });
  assert.deepEqual(c.kd.assistants!.map(widths), [[16, 32, 45, 10]]);
  assert.deepEqual(c.kd.assistants![0]!.layers[0], { type: "conv", filters: 16, kernel: 3, padding: 1, stride: 1, groups: 1 });
});

test("assistants {count}: a teacher without a spec, other layers, equal widths or a bad count is one line naming kd.assistants", () => {
  assert.throws(() => config({ onnx: "t.onnx" }, mlp(16), { count: 1 }), /a\.yaml: kd\.assistants: \{count: 1\} chooses sizes between teacher\.model and student\.model, but the teacher is not trained here \(an \.onnx or soft-target file\); give the assistants as model specs/);
  assert.throws(() => config(mlp(256, 64), mlp(16), { count: 1 }), /a\.yaml: kd\.assistants: .*the teacher has 5 layers and the student 3; give the assistants as model specs/);
  assert.throws(() => config(cnn(32, 64, 64), mlp(16), { count: 1 }), /kd\.assistants: .*give the assistants as model specs/);
  assert.throws(() => config(mlp(16), mlp(16), { count: 1 }), /kd\.assistants: .*same widths/);
  assert.throws(() => config(mlp(64), mlp(16), { count: 0 }), /kd\.assistants\.count: expected a positive integer/);
  assert.throws(() => config(mlp(64), mlp(16), { count: 1, cuont: 2 }), /kd\.assistants: unknown key "cuont" \(did you mean "count"\?/);
  assert.throws(() => config(mlp(64), mlp(16), 3), /kd\.assistants: expected a list of models .* or \{count: n\}/);
});

test("a chain's student learns from its last link's logits: distilled from generation1.onnx as the teacher, it comes out bit-identical", async () => {
  const dir = mkdtempSync(join(tmpdir(), "distill-chain-"));
  const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
  const small = { epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } };
  const data = { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 200 };
  const kd = { temperature: 2, alpha: 0.5 };
  const chain = await runDistillation(validateConfig({
    name: "chain", output: join(dir, "chain"), data, teacher: { model: mlp(64), train: small }, student: { model: mlp(8), train: small },
    kd: { ...kd, assistants: [mlp(24)], generations: 2 },
  }, "chain.yaml"), { configPath: "chain.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent(), skipBaseline: true });
  assert.deepEqual(chain.results.models.map((m) => m.role), ["teacher", "assistant1", "generation1", "student"]);
  // The same student, seed and budget distilled straight from the chain's last link.
  const direct = await runDistillation(validateConfig({
    name: "direct", output: join(dir, "direct"), data, teacher: { onnx: join(chain.runDir, "models", "generation1-s0.onnx") }, student: { model: mlp(8), train: small }, kd,
  }, "direct.yaml"), { configPath: "direct.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent(), skipBaseline: true });
  const weights = (runDir: string, file: string) => decodeModel(readFileSync(join(runDir, file))).initializers;
  const viaChain = weights(chain.runDir, "student.onnx"), straight = weights(direct.runDir, "student.onnx");
  assert.deepEqual([...viaChain.keys()], [...straight.keys()]);
  for (const [name, t] of viaChain) assert.deepEqual(t.data, straight.get(name)!.data, `${name} equal`);
  // And not what the assistant alone would have taught: its student differs.
  const fromAssistant = await runDistillation(validateConfig({
    name: "assistant", output: join(dir, "assistant"), data, teacher: { onnx: join(chain.runDir, "models", "assistant1-s0.onnx") }, student: { model: mlp(8), train: small }, kd,
  }, "assistant.yaml"), { configPath: "assistant.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent(), skipBaseline: true });
  assert.notDeepEqual(weights(fromAssistant.runDir, "student.onnx").get("linear1.weight")!.data, viaChain.get("linear1.weight")!.data);
});
