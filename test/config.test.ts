// Config loading (YAML → overrides → schema → messages), progress output, and the CLI's exit
// codes and one-line errors, both in-process and as a child process.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import { loadConfig, validateConfig } from "../src/config/load.js";
import { defaultRunDir, type DistillConfig } from "../src/config/schema.js";
import { createProgress } from "../src/util/progress.js";
import { buildProgram, runCli } from "../src/cli/args.js";

const dir = mkdtempSync(join(tmpdir(), "distill-config-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const VALID = `
name: hinton-mnist
data:
  dataset: mnist
teacher:
  model:
    layers:
      - {type: linear, units: 1200}
      - {type: relu}
      - {type: dropout, p: 0.5}
      - {type: linear, units: 10}
  train:
    epochs: 10
    optimizer: {kind: sgd, lr: 0.1}
student:
  model:
    input: flat
    layers:
      - {type: dropout, p: 0.2}
      - {type: linear, units: 800}
      - {type: relu}
      - {type: linear, units: 10}
  train:
    epochs: 12
    optimizer: {kind: adam, lr: 0.001}
`;

const validPath = file("valid.yaml", VALID);
const badPath = file("bad.yaml", VALID.replace("units: 800", 'units: "800x"'));

test("a valid config gets every default filled", () => {
  const c = loadConfig(validPath);
  const expected: DistillConfig = {
    name: "hinton-mnist",
    output: join("runs", "hinton-mnist"),
    keepCheckpoints: false,
    seeds: [0],
    data: { dataset: "mnist", format: "idx", dir: null, maxTokens: 64, vocabSize: 20000, trainLimit: null, testLimit: null, validation: null, transfer: "labeled" },
    teacher: {
      model: {
        input: "flat",
        layers: [{ type: "linear", units: 1200 }, { type: "relu" }, { type: "dropout", p: 0.5 }, { type: "linear", units: 10 }],
      },
      train: {
        epochs: 10,
        batchSize: 128,
        optimizer: { kind: "sgd", lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0 },
        schedule: { kind: "cosine", warmupEpochs: 0 },
        jitter: 0,
      },
    },
    student: {
      model: {
        input: "flat",
        layers: [{ type: "dropout", p: 0.2 }, { type: "linear", units: 800 }, { type: "relu" }, { type: "linear", units: 10 }],
      },
      train: {
        epochs: 12,
        batchSize: 128,
        optimizer: { kind: "adam", lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
        schedule: { kind: "cosine", warmupEpochs: 0 },
        jitter: 0,
      },
    },
    kd: { terms: [{ method: "logit-kd", weight: 1, temperature: 2, alpha: 0.5 }] },
  };
  assert.deepEqual(c, expected);
  // The resolved config is valid input and a fixed point, so a run folder can store and reload it.
  assert.deepEqual(validateConfig(JSON.parse(JSON.stringify(c)), "resolved"), c);
  assert.equal(defaultRunDir({ name: "x" }), join("runs", "x"));
  assert.equal(defaultRunDir({ name: "x", output: "out/x" }), "out/x");
});

test("conv models default to image input; step schedule gets gamma; unlabeled transfer forces alpha 1", () => {
  const c = loadConfig(validPath, {
    set: [
      "student.model={layers: [{type: conv, filters: 8, kernel: 3}, {type: relu}, {type: gap}, {type: flatten}, {type: linear, units: 10}]}",
      "student.train.schedule={kind: step, stepEvery: 3}",
      "data.transfer=unlabeled",
    ],
  });
  assert.equal(c.student.model.input, "image");
  assert.deepEqual(c.student.model.layers[0], { type: "conv", filters: 8, kernel: 3, stride: 1, padding: 0, groups: 1 });
  assert.deepEqual(c.student.train.schedule, { kind: "step", warmupEpochs: 0, stepEvery: 3, gamma: 0.1 });
  assert.equal(c.kd.terms[0]!.alpha, 1);
});

test('"800x" units: one message naming file, key path, expectation and value', () => {
  assert.throws(
    () => loadConfig(badPath),
    (e: Error) => {
      assert.equal(e.name, "UserError");
      assert.equal(e.message, `${badPath}: student.model.layers[1].units: expected a positive integer, got "800x"`);
      return true;
    },
  );
  // The same value through --set: the message names the command line, where the value came from.
  assert.throws(() => loadConfig(validPath, { set: ["student.model.layers[1].units=800x"] }), {
    message: `--set student.model.layers[1].units=800x: student.model.layers[1].units: expected a positive integer, got "800x"`,
  });
});

test("unknown keys are errors that list the allowed keys", () => {
  const p = file("unknown.yaml", VALID + "foo: 1\n");
  assert.throws(() => loadConfig(p), {
    message: `${p}: unknown key "foo" (allowed: name, output, seeds, data, teacher, student, kd, keepCheckpoints, compress, tune, shrink)`,
  });
  // A typo next to the key it replaces reports the typo, not the missing key.
  const typo = file("typo.yaml", VALID.replace("epochs: 12", "epoch: 12"));
  assert.throws(() => loadConfig(typo), (e: Error) => {
    assert.match(e.message, /student\.train: unknown key "epoch" \(did you mean "epochs"\? allowed: epochs, batchSize, /);
    return true;
  });
  // sgd-only options are unknown to adam.
  assert.throws(() => loadConfig(validPath, { set: ["student.train.optimizer.momentum=0.5"] }), /student\.train\.optimizer: unknown key "momentum"/);
  // The max-norm bound is optional and positive.
  assert.equal(loadConfig(validPath, { set: ["student.train.optimizer.maxNorm=3.5"] }).student.train.optimizer.maxNorm, 3.5);
  assert.throws(() => loadConfig(validPath, { set: ["student.train.optimizer.maxNorm=0"] }), /student\.train\.optimizer\.maxNorm: /);
});

test("bad enum values list the options", () => {
  assert.throws(() => loadConfig(validPath, { set: ["data.dataset=cifar"] }), {
    message: `--set data.dataset=cifar: data.dataset: expected one of mnist, fashion-mnist, got "cifar"`,
  });
  assert.throws(() => loadConfig(validPath, { set: ["student.model.layers[1].type=lin"] }), (e: Error) => {
    assert.match(e.message, /student\.model\.layers\[1\]\.type: expected one of linear, conv, .*layernorm, .*conv1d, transformer, got "lin"$/);
    return true;
  });
  assert.throws(() => loadConfig(validPath, { set: ["student.train.optimizer.kind=rmsprop"] }), /optimizer\.kind: expected one of sgd, adam, adamw, got "rmsprop"/);
});

test("missing required keys say required; range errors show the value", () => {
  assert.throws(() => loadConfig(file("noname.yaml", VALID.replace("name: hinton-mnist\n", ""))), /noname\.yaml: name: required$/);
  assert.throws(() => loadConfig(validPath, { set: ["kd.alpha=2"] }), /kd\.alpha: expected a number from 0 to 1, got 2$/);
  assert.throws(() => loadConfig(validPath, { set: ["student.train.jitter=5"] }), /student\.train\.jitter: expected an integer from 0 to 4, got 5$/);
  assert.throws(() => loadConfig(validPath, { set: ["student.model.layers[1].p=0.5"] }), /layers\[1\]: unknown key "p"/);
  assert.throws(() => loadConfig(validPath, { set: ["name=my run"] }), /name: expected a name of letters, digits/);
  assert.throws(() => loadConfig(file("empty.yaml", "")), /empty\.yaml: is empty/);
});

test("YAML syntax errors give file:line:col", () => {
  const p = file("syntax.yaml", "name: x\ndata:\n  dataset: mnist\n  bad: [1, 2\nkd: {}\n");
  assert.throws(() => loadConfig(p), (e: Error) => {
    assert.equal(e.name, "UserError");
    assert.match(e.message, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: \\S`));
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  const tabs = file("tabs.yaml", "name: x\ndata:\n\tdataset: mnist\n");
  assert.throws(() => loadConfig(tabs), (e: Error) => e.message.startsWith(`${tabs}:3:`));
});

test("a --set typo names the --set, not the file", () => {
  assert.throws(() => loadConfig(validPath, { set: ["kd.temprature=8"] }), {
    message: `--set kd.temprature=8: kd: unknown key "temprature" (did you mean "temperature"? allowed: temperature, alpha)`,
  });
  assert.throws(() => loadConfig(validPath, { set: ["student.train.epoch=3"] }), (e: Error) => e.message.startsWith(`--set student.train.epoch=3: student.train: unknown key "epoch" (did you mean "epochs"?`));
  assert.throws(() => loadConfig(validPath, { set: ["data.trainlimit=100"] }), (e: Error) => e.message.startsWith(`--set data.trainlimit=100: data: unknown key "trainlimit"`));
  // The file's own unknown key is still the file's, even next to a --set.
  const p = file("own-typo.yaml", VALID.replace("epochs: 12", "epoch: 12"));
  assert.throws(() => loadConfig(p, { set: ["kd.temperature=8"] }), (e: Error) => e.message.startsWith(`${p}: student.train: unknown key "epoch"`));
});

test("paths in a config file are relative to its folder; --set paths to the working directory", () => {
  // A config in a sub-folder naming files beside it, read from another working directory.
  const project = join(dir, "project");
  mkdirSync(join(project, "configs"), { recursive: true });
  const p = join(project, "configs", "own.yaml");
  writeFileSync(p, `name: own\ndata: { format: csv, train: ../data/train.csv, test: [../data/test.csv, /abs/extra.csv], label: y, unlabeled: [ { path: more/ } ] }\n` +
    `teacher: { softTargets: soft.npy }\nstudent: { model: { layers: [ {type: linear, units: 2} ] }, train: { epochs: 1, optimizer: {kind: adam, lr: 0.01} } }\n` +
    `kd: { temperature: 2, alpha: 0.5, teachers: [ { onnx: t2.onnx }, { softTargets: /abs/t3.npy } ] }\noutput: runs/own\n`);
  const c = loadConfig(relative(process.cwd(), p));
  assert.equal(c.data.train, join(project, "data", "train.csv"));
  assert.deepEqual(c.data.test, [join(project, "data", "test.csv"), "/abs/extra.csv"]);
  assert.equal(c.data.unlabeled![0]!.path, join(project, "configs", "more"));
  assert.equal(c.teacher!.softTargets, join(project, "configs", "soft.npy"));
  assert.deepEqual(c.kd.teachers!.map((t) => t.onnx ?? t.softTargets), [join(project, "configs", "t2.onnx"), "/abs/t3.npy"]);
  // Where the run writes is not a file it reads: output stays relative to the working directory.
  assert.equal(c.output, "runs/own");
  // The command line's paths are the working directory's, as every command-line path is.
  const set = loadConfig(p, { set: ["data.train=table.csv", "teacher.softTargets=logits.npy"] });
  assert.equal(set.data.train, resolve("table.csv"));
  assert.equal(set.teacher!.softTargets, resolve("logits.npy"));
  // A preset's folder too; a preset's name is not a path.
  const preset = file("preset.yaml", VALID.replace("dataset: mnist", "dataset: mnist\n  dir: idx-files"));
  assert.equal(loadConfig(preset).data.dir, join(dir, "idx-files"));
  assert.equal(loadConfig(preset).data.dataset, "mnist");
});

test("a missing data file is named by its resolved path, whatever the working directory", () => {
  const sub = join(dir, "sub");
  mkdirSync(sub, { recursive: true });
  const cfg = join(sub, "csv.yaml");
  writeFileSync(cfg, `name: csv\noutput: ${join(dir, "never")}\ndata: { format: csv, train: rows.csv, testFraction: 0.2, label: y }\n` +
    `teacher: { model: { layers: [ {type: linear, units: 2} ] }, train: { epochs: 1, optimizer: {kind: adam, lr: 0.01} } }\nstudent: { model: { layers: [ {type: linear, units: 2} ] }, train: { epochs: 1, optimizer: {kind: adam, lr: 0.01} } }\n`);
  const r = spawnSync(process.execPath, [CLI, "run", "sub/csv.yaml", "--quiet"], { encoding: "utf8", cwd: dir, timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^distill: .*${join(sub, "rows.csv").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}.*no such file`));
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("distill eval given a YAML file says it is not an ONNX model, not that it is truncated", async () => {
  const c = capture();
  assert.equal(await runCli(["node", "distill", "eval", validPath], c.io), 2);
  const err = c.err.join("");
  assert.match(err, /valid\.yaml: not a readable ONNX model: it is a text file \(it begins "name: hinton-mnist"\), and an ONNX model is binary/);
  assert.doesNotMatch(err, /truncated/);
});

test("a missing file is named", () => {
  const p = join(dir, "missing.yaml");
  assert.throws(() => loadConfig(p), { name: "UserError", message: `${p}: no such file` });
});

test("--set overrides parse YAML scalars and create missing blocks", () => {
  const c = loadConfig(validPath, { set: ["kd.temperature=8", "student.model.layers[1].units=400", "data.dir=/data/mnist", "seeds=[3, 5]"] });
  assert.equal(c.kd.terms[0]!.temperature, 8);
  assert.equal(c.kd.terms[0]!.alpha, 0.5); // kd was absent: --set created it, defaults filled the rest
  assert.deepEqual(c.student.model.layers[1], { type: "linear", units: 400 });
  assert.equal(c.data.dir, "/data/mnist");
  assert.deepEqual(c.seeds, [3, 5]);
  // A new block under a new key is created, then rejected by validation as unknown.
  assert.throws(() => loadConfig(validPath, { set: ["extra.deep.key=1"] }), /unknown key "extra"/);
  assert.throws(() => loadConfig(validPath, { set: ["kd.temperature"] }), /--set kd\.temperature: expected key\.path=value/);
  assert.throws(() => loadConfig(validPath, { set: ["a..b=1"] }), /is not a key path/);
  assert.throws(() => loadConfig(validPath, { set: ["student.model.layers[7].units=1"] }), /out of range/);
});

test("--epochs sets every stage; --seeds and --output", () => {
  const c = loadConfig(validPath, { epochs: 2, seeds: 3, output: "elsewhere" });
  assert.equal(c.teacher!.train?.epochs, 2);
  assert.equal(c.student.train.epochs, 2);
  assert.deepEqual(c.seeds, [0, 1, 2]);
  assert.equal(c.output, "elsewhere");
  // An ONNX teacher has no train block; --epochs must not invent one.
  const onnx = file("onnx-teacher.yaml", VALID.replace(/teacher:\n[\s\S]*?\nstudent:/, "teacher:\n  onnx: teacher.onnx\nstudent:"));
  const d = loadConfig(onnx, { epochs: 2 });
  assert.deepEqual(d.teacher, { onnx: join(dir, "teacher.onnx") });
  assert.equal(d.student.train.epochs, 2);
});

test("teacher needs exactly one of onnx, model and softTargets", () => {
  assert.throws(() => loadConfig(validPath, { set: ["teacher.onnx=t.onnx"] }), {
    message: `${validPath}: teacher: give one of onnx (a trained classifier), model (trained here) or softTargets (a file of its outputs), not onnx and model`,
  });
  assert.throws(() => loadConfig(validPath, { set: ["teacher={}"] }), /teacher: needs onnx \(a trained classifier\), model \(with train\) or softTargets \(a file of its outputs\)/);
  assert.deepEqual(loadConfig(validPath, { set: ["teacher={softTargets: soft.npy}"] }).teacher, { softTargets: resolve("soft.npy") });
  assert.throws(() => loadConfig(validPath, { set: ["teacher={softTargets: soft.npy, train: {epochs: 1, optimizer: {kind: sgd, lr: 0.1}}}"] }), /teacher\.train: only used with model/);
  assert.throws(() => loadConfig(validPath, { set: ["teacher={onnx: t.onnx, id: name}"] }), /teacher\.id: only used with softTargets/);
  assert.throws(() => loadConfig(validPath, { set: ["teacher={model: {layers: [{type: linear, units: 10}]}}"] }), /teacher\.train: required with model/);
});

test("seeds: a count or a list", () => {
  assert.deepEqual(loadConfig(validPath, { set: ["seeds=4"] }).seeds, [0, 1, 2, 3]);
  assert.deepEqual(loadConfig(validPath, { set: ["seeds=[7, 0, 2]"] }).seeds, [7, 0, 2]);
  assert.throws(() => loadConfig(validPath, { set: ["seeds=0"] }), /seeds: expected a positive integer, got 0$/);
  assert.throws(() => loadConfig(validPath, { set: ["seeds=three"] }), /seeds: expected a count K \(seeds 0\.\.K-1\) or a list like \[0, 1, 2\], got "three"$/);
  assert.throws(() => loadConfig(validPath, { set: ["seeds=[0, x]"] }), /seeds\[1\]: expected an integer ≥ 0, got "x"/);
  assert.throws(() => loadConfig(validPath, { set: ["seeds=[1, 1]"] }), /seeds: expected distinct seeds, got \[1,1\]/);
});

// ---- progress ---------------------------------------------------------------------------------

function collector(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, text: () => chunks.join("") };
}

test("quiet progress: one plain line per finished task, log lines as they come", () => {
  const out = collector();
  const p = createProgress({ quiet: false, stream: out.stream }); // not a TTY → plain lines anyway
  p.log("teacher: loaded");
  const t = p.task("student seed 0", 3);
  t.update(1, { loss: 0.123456, acc: 0.9 });
  t.update(3, { loss: 0.05, acc: 0.975 });
  t.finish();
  const u = p.task("baseline seed 0", 2);
  u.update(2);
  u.finish("acc 97.1%");
  u.finish("twice"); // ignored
  const lines = out.text().trimEnd().split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[0], "teacher: loaded");
  assert.match(lines[1]!, /^student seed 0: 3\/3 in \d+\.\ds \| loss=0\.05 acc=0\.975$/);
  assert.match(lines[2]!, /^baseline seed 0: 2\/2 in \d+\.\ds \| acc 97\.1%$/);
});

// ---- CLI --------------------------------------------------------------------------------------

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { writeOut: (t: string) => void out.push(t), writeErr: (t: string) => void err.push(t) }, out, err };
}

test("buildProgram throws CommanderError instead of exiting, also in subcommands", async () => {
  const c = capture();
  await assert.rejects(buildProgram(c.io).parseAsync(["node", "distill", "run", validPath, "--bogus"]), (e: unknown) => {
    assert.ok(e instanceof CommanderError);
    assert.equal(e.code, "commander.unknownOption");
    return true;
  });
  await assert.rejects(buildProgram(c.io).exitOverride().parseAsync(["node", "distill", "frob"]), CommanderError);
});

test("runCli: exit codes 0 (help), 2 (user errors, usage errors)", async () => {
  let c = capture();
  assert.equal(await runCli(["node", "distill", "--help"], c.io), 0);
  assert.match(c.out.join(""), /Usage: distill/);
  c = capture();
  assert.equal(await runCli(["node", "distill", "run", badPath], c.io), 2);
  assert.deepEqual(c.err, [`distill: ${badPath}: student.model.layers[1].units: expected a positive integer, got "800x"\n`]);
  c = capture();
  assert.equal(await runCli(["node", "distill", "run", validPath, "--epochs", "zero"], c.io), 2);
  assert.match(c.err.join(""), /--epochs/);
  c = capture();
  assert.equal(await runCli(["node", "distill", "eval", "m.onnx", "--data", "cifar"], c.io), 2);
  assert.match(c.err.join(""), /--data: expected mnist, fashion-mnist or a config file \(\.yaml\) with a data: block, got "cifar"/);
});

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: dir, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("CLI process: --help lists the commands", () => {
  const r = cli("--help");
  assert.equal(r.code, 0, r.stderr);
  for (const cmd of ["run", "resume", "report", "eval"]) assert.match(r.stdout, new RegExp(`^  ${cmd} `, "m"));
  const v = cli("--version");
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const sub = cli("run", "--help");
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--set <key=value>/);
});

test("CLI process: a missing config exits 2 with one line naming the file", () => {
  const r = cli("run", "missing.yaml");
  assert.equal(r.code, 2);
  assert.equal(r.stderr, "distill: missing.yaml: no such file\n");
});

test("CLI process: an invalid config exits 2 with one line and no stack trace", () => {
  const r = cli("run", "bad.yaml");
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'distill: bad.yaml: student.model.layers[1].units: expected a positive integer, got "800x"\n');
  const d = cli("run", "bad.yaml", "--debug");
  assert.equal(d.code, 2);
  assert.match(d.stderr, /\n\s+at /); // --debug adds the stack
  const u = cli("run", "bad.yaml", "--no-such-option");
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown option '--no-such-option'/);
});

test("input layout is inferred from the first shape-changing layer (input dropout keeps a model flat)", () => {
  const base = { name: "x", data: { dataset: "mnist" }, student: { model: { layers: [{ type: "linear", units: 10 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } } };
  const withTeacher = (layers: unknown[]) => validateConfig({ ...base, teacher: { model: { layers }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } } }, "t.yaml");
  assert.equal(withTeacher([{ type: "dropout", p: 0.2 }, { type: "linear", units: 10 }]).teacher!.model!.input, "flat");
  assert.equal(withTeacher([{ type: "conv", filters: 4, kernel: 3 }, { type: "flatten" }, { type: "linear", units: 10 }]).teacher!.model!.input, "image");
  assert.equal(withTeacher([{ type: "relu" }, { type: "conv", filters: 4, kernel: 3 }, { type: "flatten" }, { type: "linear", units: 10 }]).teacher!.model!.input, "image");
});
