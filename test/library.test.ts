// The package as a user meets it: the README's library example is examples/library.ts word for word
// and runs to the end; distill() validates its object like a YAML file; eval finds the dataset in the
// model's metadata and counts parameters as the report does; a finished run drops its checkpoints;
// the packed tarball carries the examples and the compiled library.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { distill, evaluate, UserError, type RunResults } from "../src/index.js";
import { validationSize } from "../src/config/schema.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(join(tmpdir(), "distill-library-"));

test("README's library section shows examples/library.ts exactly", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const example = readFileSync(join(root, "examples/library.ts"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.includes(example), "README.md has a ```ts block equal to examples/library.ts");
});

test("the library example runs: a distillation from an object, then evaluate() on its student", () => {
  const runDir = join(dir, "example-run");
  const r = spawnSync(process.execPath, [join(root, "dist/examples/library.js"), runDir], {
    cwd: root, encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") },
  });
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
  const student = results.models.find((m) => m.role === "student")!;
  assert.match(r.stdout, new RegExp(`student: ${student.summary.errors.mean} errors of 1000`));
  // evaluate() read the dataset from the metadata and counts parameters like the run did.
  const line = /student on 500 test images: accuracy (\d\.\d+), (\d+) parameters/.exec(r.stdout);
  assert.ok(line, r.stdout);
  assert.equal(Number(line[2]), student.perSeed[0]!.params);
  assert.ok(Number(line[1]) > 0.5, "a trained student, not chance");
  // Finished: its checkpoints are gone (keepCheckpoints defaults to false), its models are not.
  assert.equal(existsSync(join(runDir, "checkpoints")), false);
  assert.ok(existsSync(join(runDir, "models", "student-s0.onnx")));
});

test("distill() rejects a bad object like a bad YAML file: a UserError naming the key, nothing written", async () => {
  const output = join(dir, "never");
  await assert.rejects(
    distill({ name: "x", data: { dataset: "mnist" }, teacher: { onnx: "t.onnx" }, student: { model: { layers: [{ type: "linear", units: "ten" }] } } }, { output, where: "my-config" }),
    (e: unknown) => e instanceof UserError && /^my-config: student\.model\.layers\[0\]\.units: /.test(e.message),
  );
  assert.equal(existsSync(output), false);
});

test("the validation split scales down with trainLimit unless set", () => {
  assert.equal(validationSize({ validation: null } as never, 60000), 5000);
  assert.equal(validationSize({ validation: null } as never, 2000), 166);
  assert.equal(validationSize({ validation: 300 } as never, 2000), 300);
});

test("evaluate() without --data and without a dataset in the metadata says to name one", async () => {
  const runDir = join(dir, "example-run");
  // Strip the metadata by re-encoding: a model from elsewhere names no dataset.
  const { decodeModel } = await import("../src/engine/onnx.js");
  const bytes = readFileSync(join(runDir, "student.onnx"));
  assert.equal(decodeModel(bytes).metadata["distill.dataset"], "mnist");
  // Both keys that name it: distill.dataset and distill.data (every model distill writes has both).
  const stripped = Buffer.from(bytes.toString("latin1").replaceAll("distill.data", "distill.xxxx"), "latin1");
  await assert.rejects(evaluate(stripped), /metadata names no data distill can load.*--data mnist\|fashion-mnist/);
  const m = await evaluate(stripped, { data: "mnist", limit: 200 });
  assert.equal(m.total, 200);
});

test("npm pack ships the compiled library, its types and the examples", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  const files = (JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
  for (const f of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "examples/demo.yaml", "examples/library.ts", "README.md"])
    assert.ok(files.includes(f), `${f} in the tarball`);
  assert.ok(!files.some((f) => f.startsWith("dist/test/")), "no tests in the tarball");
});

test("require() loads the ESM package on Node ≥ 20.19 (require(esm))", (t) => {
  const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
  if (major === 20 && minor < 19) return t.skip(`Node ${process.versions.node} has no require(esm); the package is ESM-only there`);
  const r = spawnSync(process.execPath, ["-e", "const d = require('distill'); if (typeof d.distill !== 'function') process.exit(3)"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
