// `distill run` with a sequence-to-sequence config, end to end on a few hundred real CMUdict words:
// the artefacts, the feeds each kd method trains on (word: the teacher's top-k; sequence: the
// teacher's beam outputs as targets; both: both), an interrupted run resumed to the same models and
// scores, --jobs (student stages in child processes) to the same models, and teachers that are an
// .onnx file or a file of their outputs (both kinds).

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createHash } from "node:crypto";
import { loadRunConfig } from "../src/config/load.js";
import type { Seq2SeqConfig } from "../src/config/seq2seq.js";
import { RunFolder } from "../src/distill/run-folder.js";
import { readTopKStore, topKStoreKey } from "../src/distill/topk-store.js";
import { Seq2SeqDecoder } from "../src/eval/seq2seq-decode.js";
import type { EpochMetric } from "../src/eval/types.js";
import { exportSeq2SeqOnnx, importSeq2SeqOnnx } from "../src/nn/seq2seq-export.js";
import { evalCommand } from "../src/eval/evaluate.js";
import type { Seq2SeqEvalMetrics } from "../src/eval/seq2seq-eval.js";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel } from "../src/nn/spec.js";
import { UserError } from "../src/errors.js";
import type { Seq2SeqResults } from "../src/report/seq2seq-results.js";
import { isSeq2SeqResults, writeSeq2SeqReport } from "../src/report/seq2seq-html.js";
import { makeSeq2SeqPlan, type Seq2SeqPlan } from "../src/run/seq2seq/plan.js";
import { resumeSeq2SeqRun, runSeq2Seq } from "../src/run/seq2seq/pipeline.js";
import { methodFeeds } from "../src/run/seq2seq/student-stage.js";
import { teacherTargets } from "../src/run/seq2seq/targets-stage.js";
import { createProgress, type Progress } from "../src/util/progress.js";
import { RunAbortedError } from "../src/errors.js";
import { runCli } from "../src/cli/args.js";

// One onnxruntime thread (read when each session is made): two runs of one config must give bit-identical models.
process.env["DISTILL_THREADS"] = "1";
const dir = mkdtempSync(join(tmpdir(), "distill-seq2seq-"));
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });

// A teacher that learns enough in a few seconds to give non-empty outputs, and students two epochs.
const CONFIG = join(dir, "g2p.yaml");
writeFileSync(CONFIG, `
name: g2p-test
seeds: 2
data: { dataset: cmudict, stress: strip, trainLimit: 400, validationLimit: 20, testLimit: 30, maxSourceLength: 8, maxTargetLength: 8 }
teacher:
  model: { type: seq2seq, dims: 32, heads: 2, ffn: 64, encoderLayers: 1, decoderLayers: 1, dropout: 0 }
  train: { epochs: 5, batchSize: 16, optimizer: { kind: adam, lr: 0.01 }, schedule: { kind: constant } }
student:
  model: { type: seq2seq, dims: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1 }
  train: { epochs: 2, batchSize: 32, optimizer: { kind: adamw, lr: 0.003 } }
kd: { method: [word, sequence, both], topK: 4, beam: 2 }
evaluate: { beam: 2, latencyRuns: 5 }
`);

function config(output: string, set: string[] = []): Seq2SeqConfig {
  const loaded = loadRunConfig(CONFIG, { output, set });
  assert.equal(loaded.task, "seq2seq");
  return loaded.config as Seq2SeqConfig;
}

const run = (c: Seq2SeqConfig) => runSeq2Seq(c, { configPath: CONFIG, quiet: true, progress: silent() });
const readJson = <T>(path: string) => JSON.parse(readFileSync(path, "utf8")) as T;
const readJsonl = <T>(path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as T);
/** The plan a finished run folder was made with (the data, pairs and lengths), read again. */
function planOf(runDir: string, c: Seq2SeqConfig): Seq2SeqPlan {
  return makeSeq2SeqPlan(new RunFolder(runDir, readJson(join(runDir, "run.json"))), c, { configPath: CONFIG, quiet: true, progress: silent() });
}

const first = join(dir, "first");
let firstResults: Seq2SeqResults;

test("a sequence run trains the teacher, the baseline and a student per kd method, and writes results, report, models and vocabularies", async () => {
  firstResults = (await run(config(first))).results;
  for (const f of ["results.json", "report.html", "metrics.jsonl", "source-vocabulary.json", "target-vocabulary.json", "teacher.onnx", "baseline.onnx", "student-word.onnx", "student-sequence.onnx", "student-both.onnx", "teacher-topk.bin", "teacher-outputs.jsonl", "teacher-topk-sequence.bin"])
    assert.ok(existsSync(join(first, f)), f);
  for (const stage of ["baseline", "student-word", "student-sequence", "student-both"]) for (const seed of [0, 1]) assert.ok(existsSync(join(first, "models", `${stage}-s${seed}.onnx`)), `${stage} seed ${seed}`);
  assert.ok(!existsSync(join(first, "checkpoints")), "a finished run keeps no checkpoints");

  const r = readJson<Seq2SeqResults>(join(first, "results.json"));
  assert.equal(r.task, "seq2seq");
  assert.deepEqual(r.models.map((m) => [m.role, m.perSeed.length]), [["teacher", 1], ["baseline", 2], ["student-word", 2], ["student-sequence", 2], ["student-both", 2]]);
  for (const m of r.models)
    for (const s of m.perSeed) {
      assert.equal(s.total, 30);
      for (const d of [s.greedy, s.beam]) assert.ok(d.wordErrorRate >= 0 && d.wordErrorRate <= 1 && d.bleu >= 0 && d.bleu <= 100, `${m.role}: ${JSON.stringify(d)}`);
      assert.ok(s.latencyP50Ms > 0 && s.wordsPerSecond > 0 && s.params > 0 && s.onnxGzipBytes < s.onnxBytes, m.role);
    }
  // Sources over 8 letters are not decoded and count as errors; the count is in the results.
  assert.equal(r.models[0]!.perSeed[0]!.tooLong, r.data.leftOut.testEntries);
  assert.ok(r.data.leftOut.testEntries > 0 && r.data.leftOut.trainPairs > 0);
  // The distilled students against the baseline, paired by seed, with an interval from two seeds.
  const word = r.models.find((m) => m.role === "student-word")!;
  const baseline = r.models.find((m) => m.role === "baseline")!;
  const d = word.vsBaseline!["beam.wordErrorRate"]!;
  assert.equal(d.n, 2);
  assert.ok(Math.abs(d.mean - (word.summary["beam.wordErrorRate"].mean - baseline.summary["beam.wordErrorRate"].mean)) < 1e-12);
  assert.ok(d.ci95 && d.ci95[0] <= d.mean && d.mean <= d.ci95[1]);
  assert.equal(baseline.vsBaseline, undefined);
  // The student is the smaller model, and the exports hold the data's vocabularies.
  assert.ok(baseline.summary.params.mean * 3 < r.models[0]!.summary.params.mean);
  const exported = importSeq2SeqOnnx(readFileSync(join(first, "student-word.onnx")), "student-word.onnx");
  assert.deepEqual(exported.vocab.target, readJson(join(first, "target-vocabulary.json")));
  const html = readFileSync(join(first, "report.html"), "utf8");
  for (const role of ["teacher", "baseline", "student-word", "student-sequence", "student-both"]) assert.ok(html.includes(`data-role="${role}"`), role);
  assert.ok(html.includes('id="wer-chart"') && html.includes("student-word vs baseline") && html.includes("scored as errors"));
  // `distill report` tells a sequence run's results from a classifier's and writes the same page again.
  assert.ok(isSeq2SeqResults(first));
  assert.equal(readFileSync(writeSeq2SeqReport(first), "utf8"), html);
});

test("each kd method trains on its own feeds: word on the teacher's top-k, sequence on its beam outputs, both on both", async () => {
  const c = config(first);
  const plan = planOf(first, c);
  const folder = new RunFolder(first, readJson(join(first, "run.json")));
  const targets = await teacherTargets(plan, folder); // read back from the run folder's stores
  const { model, params } = importSeq2SeqOnnx(readFileSync(join(first, "teacher.onnx")), "teacher.onnx");
  const teacher = new Seq2SeqDecoder(model, params, { sourceLengths: plan.buckets.map(([ls]) => ls) });
  try {
    // word: the gold pairs, with the teacher's top-k on each of them as stored.
    const word = methodFeeds(plan, "word", targets);
    assert.equal(word.pairs, plan.trainPairs);
    assert.equal(word.wordKd!.teacher, targets.word);
    assert.deepEqual([word.wordKd!.alpha, word.wordKd!.temperature, word.wordKd!.topK], [0.5, 1, 4]);
    const some = [0, 7, plan.trainPairs.length - 1];
    const fresh = await teacher.topK(some.map((i) => plan.trainPairs[i]!.source), some.map((i) => plan.trainPairs[i]!.target), 4);
    some.forEach((i, j) => {
      const stored = targets.word![i]!;
      assert.equal(stored.positions, plan.trainPairs[i]!.target.length + 1);
      assert.deepEqual([...stored.ids], [...fresh[j]!.ids], `pair ${i}: the teacher's top-4 symbols`);
      stored.logProbs.forEach((lp, x) => assert.ok(Math.abs(lp - fresh[j]!.logProbs[x]!) < 1e-5, `pair ${i}: log-probability ${x}`));
    });

    // sequence: each training source with the teacher's beam output as its target, no teacher distributions.
    const sequence = methodFeeds(plan, "sequence", targets);
    assert.equal(sequence.wordKd, undefined);
    assert.equal(sequence.pairs, targets.sequencePairs);
    const stored = readJsonl<{ source: string; output: string; ids: number[] }>(join(first, "teacher-outputs.jsonl"));
    assert.deepEqual(stored.map((s) => s.source), plan.trainSources.map((s) => s.text));
    const which = stored.findIndex((s) => s.ids.length > 1);
    assert.ok(which >= 0, "the teacher gives non-empty outputs");
    const [beam] = await teacher.beamSearch([plan.trainSources[which]!.ids], 2);
    assert.deepEqual(stored[which]!.ids, beam!.ids, "the stored output is the teacher's beam-2 output");
    assert.equal(stored[which]!.output, beam!.ids.map((id) => plan.vocab.target.symbols[id]).join(" "));
    const pair = sequence.pairs.find((p) => p.source.join() === plan.trainSources[which]!.ids.join())!;
    assert.deepEqual(pair.target, beam!.ids, "the sequence-level student's target for that word");
    const gold = new Set(plan.trainPairs.map((p) => `${p.source}>${p.target}`));
    assert.ok(sequence.pairs.some((p) => !gold.has(`${p.source}>${p.target}`)), "the teacher's outputs are not the gold pairs");

    // both: the teacher's outputs as targets, and its top-k on them.
    const both = methodFeeds(plan, "both", targets);
    assert.equal(both.pairs, targets.sequencePairs);
    assert.equal(both.wordKd!.teacher, targets.sequenceTopK);
    both.pairs.forEach((p, i) => assert.equal(targets.sequenceTopK![i]!.positions, p.target.length + 1));
  } finally {
    await teacher.dispose();
  }
  // The training logs agree: a distillation term only where word-level KD is on.
  const terms = new Map(readJsonl<EpochMetric>(join(first, "metrics.jsonl")).map((m) => [m.stage, Object.keys(m.terms).sort().join()]));
  assert.deepEqual(Object.fromEntries(terms), { teacher: "loss_ce", baseline: "loss_ce", "student-word": "loss_ce,loss_kd", "student-sequence": "loss_ce", "student-both": "loss_ce,loss_kd" });
});

/**
 * Progress that aborts `controller` when the task `label` finishes (an epoch's line), so the run
 * stops at its next step; and keeps every line, to see what a resumed run redid.
 */
function stopAfter(label: string, controller: AbortController, lines: string[]): Progress {
  return {
    task: (name) => ({ update: () => undefined, finish: (summary) => (lines.push(`${name}: ${summary ?? ""}`), name === label && controller.abort("test")) }),
    log: (line) => void lines.push(line),
  };
}

test("a run stopped in the teacher, then in a student after the teacher's targets are stored, resumes to the same models and scores", async () => {
  const resumed = join(dir, "resumed");
  const stops: [string, string[]][] = [["teacher epoch 2/5", []], ["student-word seed 1 epoch 1/2", []]];
  for (const [i, [label, lines]] of stops.entries()) {
    const controller = new AbortController();
    const opts = { quiet: true, progress: stopAfter(label, controller, lines), signal: controller.signal };
    await assert.rejects(i === 0 ? runSeq2Seq(config(resumed), { ...opts, configPath: CONFIG }) : resumeSeq2SeqRun(resumed, opts), RunAbortedError);
  }
  const lines: string[] = [];
  await resumeSeq2SeqRun(resumed, { quiet: true, progress: stopAfter("", new AbortController(), lines) });
  // Each stage went on from its last checkpoint, and the stored teacher targets were read, not made again.
  const epochs = (l: string[]) => l.filter((x) => / epoch \d/.test(x)).map((x) => x.split(":")[0]);
  assert.deepEqual(epochs(stops[1]![1]).slice(0, 4), ["teacher epoch 3/5", "teacher epoch 4/5", "teacher epoch 5/5", "baseline epoch 1/2"]);
  assert.deepEqual(epochs(lines), ["student-word seed 1 epoch 2/2", "student-sequence seed 1 epoch 1/2", "student-sequence seed 1 epoch 2/2", "student-both seed 1 epoch 1/2", "student-both seed 1 epoch 2/2"]);
  for (const stored of ["teacher top-4 on the training pairs: ", "teacher outputs on ", "teacher top-4 on its own outputs: "]) assert.ok(lines.some((l) => l.startsWith(stored) && l.endsWith("stored")), stored);
  for (const f of ["teacher.onnx", "teacher-topk.bin", "teacher-outputs.jsonl", "teacher-topk-sequence.bin", ...["baseline", "student-word", "student-sequence", "student-both"].flatMap((s) => [`models/${s}-s0.onnx`, `models/${s}-s1.onnx`])])
    assert.deepEqual(readFileSync(join(resumed, f)), readFileSync(join(first, f)), `${f} is bit-identical`);
  const a = readJson<Seq2SeqResults>(join(resumed, "results.json"));
  const quality = (r: Seq2SeqResults) => r.models.map((m) => [m.role, m.perSeed.map((s) => [s.greedy, s.beam, s.params, s.onnxBytes, s.tooLong])]);
  assert.deepEqual(quality(a), quality(firstResults));
  const withoutTimes = (path: string) => readJsonl<EpochMetric>(path).map(({ seconds: _s, ...m }) => m);
  assert.deepEqual(withoutTimes(join(resumed, "metrics.jsonl")), withoutTimes(join(first, "metrics.jsonl")));
});

test("--jobs 2: the students in two child processes, stopped by the signal after one finished and resumed, give the in-process run's models and scores", async () => {
  const out = join(dir, "jobs");
  // The first run's teacher as a file: the same teacher targets, without training the teacher again.
  const c = config(out, ["teacher={onnx: " + join(first, "teacher.onnx") + "}", "kd.method=[word, sequence]"]);
  const stages = ["baseline", "student-word", "student-sequence"];
  const controller = new AbortController();
  const lines: string[] = [];
  const logTo = (list: string[], onLine = (_l: string) => undefined as unknown): Progress => ({
    task: () => ({ update: () => undefined, finish: () => undefined }),
    log: (l) => void (list.push(l), onLine(l)),
  });
  const stopOnFinish = (l: string) => / finished in /.test(l) && controller.abort("test");
  await assert.rejects(runSeq2Seq(c, { configPath: CONFIG, quiet: true, progress: logTo(lines, stopOnFinish), signal: controller.signal, jobs: 2 }), RunAbortedError);
  // A line for the stage that finished (two, when the other child finished at the same moment: no
  // further stage started), after that child's epoch lines (read from its stdout before it exited;
  // the other child may not have reported any epoch yet).
  const done = lines.filter((l) => / finished in /.test(l));
  assert.ok(done.length === 1 || done.length === 2, done.join("\n"));
  for (const l of done) {
    assert.match(l, /^(baseline|student-word) seed 0: finished in \d+\.\d s, val_word_acc=\d\.\d{4}$/);
    const epochLine = lines.findIndex((x) => x.startsWith(`${l.split(" seed ")[0]} epoch 2/2: `) && / val_word_acc=\d\.\d{4}$/.test(x));
    assert.ok(epochLine >= 0 && epochLine < lines.indexOf(l), lines.join("\n"));
  }
  const resumed: string[] = [];
  const { results } = await resumeSeq2SeqRun(out, { quiet: true, progress: logTo(resumed), jobs: 2 });
  // The finished stages were kept; the four that had not started were trained (and the other first
  // one, unless it had finished on disk just as its child was killed).
  const stage = (l: string) => l.split(":")[0]!;
  const finishedOnResume = resumed.filter((l) => / finished in /.test(l)).map(stage);
  for (const s of done.map(stage)) assert.ok(!finishedOnResume.includes(s), `${s} was trained again`);
  for (const s of ["student-sequence seed 0", ...stages.map((x) => `${x} seed 1`)]) assert.ok(finishedOnResume.includes(s), `${s}: ${resumed.join("\n")}`);
  for (const stage of stages) for (const seed of [0, 1]) assert.deepEqual(readFileSync(join(out, "models", `${stage}-s${seed}.onnx`)), readFileSync(join(first, "models", `${stage}-s${seed}.onnx`)), `${stage} seed ${seed} is bit-identical`);
  const quality = (r: Seq2SeqResults) => r.models.filter((m) => m.role === "teacher" || stages.includes(m.role)).map((m) => [m.role, m.perSeed.map((s) => [s.greedy, s.beam, s.params, s.onnxBytes, s.tooLong])]);
  assert.deepEqual(quality(results), quality(firstResults));
  assert.deepEqual(quality(readJson<Seq2SeqResults>(join(out, "results.json"))), quality(firstResults));
  // metrics.jsonl in the in-process order (stage by stage, seed by seed), whichever child finished first.
  const studentEpochs = (path: string) => readJsonl<EpochMetric>(path).filter((m) => stages.includes(m.stage)).map(({ seconds: _s, ...m }) => m);
  assert.deepEqual(studentEpochs(join(out, "metrics.jsonl")), studentEpochs(join(first, "metrics.jsonl")));
  assert.equal(readJsonl<EpochMetric>(join(out, "metrics.jsonl")).length, 12);
});

test("--jobs takes a positive integer, and a classifier config is refused in one line", async () => {
  const capture = () => {
    const err: string[] = [];
    return { io: { writeOut: () => undefined, writeErr: (t: string) => void err.push(t) }, err };
  };
  let c = capture();
  const out = join(dir, "jobs-zero");
  assert.equal(await runCli(["node", "distill", "run", CONFIG, "--output", out, "--jobs", "0"], c.io), 2);
  assert.match(c.err.join(""), /^distill: option '--jobs <n>' argument '0' is invalid\. expected a positive integer\./);
  assert.ok(!existsSync(out));
  c = capture();
  const classifier = join(import.meta.dirname, "..", "..", "examples", "demo.yaml");
  assert.equal(await runCli(["node", "distill", "run", classifier, "--output", out, "--jobs", "2"], c.io), 2);
  assert.deepEqual(c.err, ["distill: --jobs: only sequence runs train their student stages in parallel; leave it out for this config or folder\n"]);
  assert.ok(!existsSync(out));
  await assert.rejects(resumeSeq2SeqRun(first, { quiet: true, jobs: 1.5 }), (e: Error) => e instanceof UserError && e.message === "jobs: expected a positive integer, got 1.5");
});

test("a distill-exported .onnx teacher: its top-k are the ones the run's own teacher gave", async () => {
  const out = join(dir, "onnx-teacher");
  const c = config(out, ["teacher={onnx: " + join(first, "teacher.onnx") + "}", "kd.method=word", "seeds=1", "student.train.epochs=1"]);
  const { results } = await run(c);
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student-word"]);
  assert.deepEqual(readFileSync(join(out, "teacher.onnx")), readFileSync(join(first, "teacher.onnx")));
  assert.deepEqual(readFileSync(join(out, "teacher-topk.bin")), readFileSync(join(first, "teacher-topk.bin")));
  assert.deepEqual(results.models[0]!.perSeed[0]!.beam, firstResults.models[0]!.perSeed[0]!.beam);
});

test("a teacher given as a file of whole output sequences (tsv) teaches the sequence-level student", async () => {
  const rows = readJsonl<{ source: string; output: string }>(join(first, "teacher-outputs.jsonl"));
  // What an API gives: an output per word, in its own order, for more words than the run trains on;
  // an empty output cannot be written in a tsv cell, so those words get "AH".
  const line = (r: { source: string; output: string }) => `${r.source}\t${r.output || "AH"}`;
  const file = join(dir, "api-outputs.tsv");
  writeFileSync(file, ["source\toutput", "ZZZZ\tZ IY", ...rows.slice(1).reverse().map(line)].join("\n") + "\n");
  const out = join(dir, "file-sequences");
  const c = config(out, ["teacher={outputs: " + file + "}", "kd.method=sequence", "seeds=1", "student.train.epochs=1"]);
  // The first training source has no row: refused, naming it, and nothing is left behind.
  await assert.rejects(run(c), (e: Error) => e.message === `${file}: teacher.outputs: no row for the training source ${JSON.stringify(rows[0]!.source)} (1 of ${rows.length} training sources have none); the file must cover every one`);
  assert.ok(!existsSync(out));
  writeFileSync(file, readFileSync(file, "utf8") + line(rows[0]!) + "\n");
  const { results } = await run(c);
  assert.deepEqual(results.models.map((m) => m.role), ["baseline", "student-sequence"], "no teacher row: there is no model to run");
  assert.equal(results.teacherTargets!["sequence"]!.seconds, 0);
  const given = new Map(readFileSync(file, "utf8").split("\n").slice(1).filter(Boolean).map((l) => l.split("\t") as [string, string]));
  const stored = readJsonl<{ source: string; output: string }>(join(out, "teacher-outputs.jsonl"));
  assert.deepEqual(stored.map((s) => s.source), rows.map((r) => r.source));
  for (const s of stored) assert.equal(s.output, given.get(s.source), s.source);
});

test("a teacher given as a file of top-k distributions (jsonl) teaches the word-level student", async () => {
  const c = config(first);
  const plan = planOf(first, c);
  const topk = readTopKStore(join(first, "teacher-topk.bin"), topKStoreKey(plan.trainPairs, 4, teacherDigest()))!;
  const symbols = plan.vocab.target.symbols;
  const file = join(dir, "api-topk.jsonl");
  writeFileSync(file, plan.trainPairTexts.map((p, i) => {
    const t = topk[i]!;
    const positions = Array.from({ length: t.positions }, (_, pos) => Array.from({ length: t.k }, (_, j) => [symbols[t.ids[pos * t.k + j]!], t.logProbs[pos * t.k + j]]));
    return JSON.stringify({ source: p.source, target: p.target.join(" "), topk: positions });
  }).join("\n") + "\n");
  const out = join(dir, "file-topk");
  const { results } = await run(config(out, ["teacher={outputs: " + file + "}", "kd.method=word", "seeds=1", "student.train.epochs=1"]));
  assert.deepEqual(results.models.map((m) => m.role), ["baseline", "student-word"]);
  const fromFile = readTopKStore(join(out, "teacher-topk.bin"), topKStoreKey(plan.trainPairs, 4, "teacher.outputs"))!;
  assert.equal(fromFile.length, topk.length);
  fromFile.forEach((t, i) => {
    assert.deepEqual([...t.ids], [...topk[i]!.ids]);
    t.logProbs.forEach((lp, x) => assert.ok(Math.abs(lp - topk[i]!.logProbs[x]!) < 1e-6));
  });
  assert.ok(readJsonl<EpochMetric>(join(out, "metrics.jsonl")).some((m) => m.stage === "student-word" && m.terms["loss_kd"]! > 0));
});

test("distill eval of a run's sequence models finds their test split in the metadata and gives the run's own scores", async () => {
  const lines: string[] = [];
  const files = ["teacher.onnx", "student-word.onnx"].map((f) => join(first, f));
  await evalCommand(files, { json: true, beam: 2, write: (l) => void lines.push(l) });
  const rows = lines.map((l) => JSON.parse(l) as Seq2SeqEvalMetrics & { model: string; data: string; beamWidth: number });
  const r = readJson<Seq2SeqResults>(join(first, "results.json"));
  for (const [i, role] of ["teacher", "student-word"].entries()) {
    const run = r.models.find((m) => m.role === role)!.perSeed[0]!;
    const row = rows[i]!;
    assert.deepEqual([row.model, row.data, row.beamWidth], [files[i], "cmudict", 2]);
    // The same 30 test words (the run's testLimit, drawn again from the metadata) and the same outputs.
    assert.deepEqual([row.total, row.tooLong, row.greedy, row.beam, row.params, row.onnxBytes], [run.total, run.tooLong, run.greedy, run.beam, run.params, run.onnxBytes], role);
    assert.ok(row.latencyP50Ms > 0 && row.wordsPerSecond > 0, role);
  }
  // The same split given as the config; the table names the beam width and the words scored as errors.
  const table: string[] = [];
  await evalCommand([files[0]!], { json: false, beam: 2, data: CONFIG, write: (l) => void table.push(l) });
  assert.ok(table.join("").startsWith(`${files[0]} on cmudict test\n  words            30 (${r.data.leftOut.testEntries} longer than the model takes, scored as errors)\n  greedy           WER `), table.join(""));
  assert.ok(table.join("").includes("  beam 2 "));
});

test("distill eval refuses, in one line, a classifier beside a sequence model and a sequence model without its data", async () => {
  const classifier = join(dir, "eval-classifier.onnx");
  const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 2 }] }, ["a", "b"], { kind: "table", sampleShape: [3] } as never);
  writeFileSync(classifier, exportOnnx(m, m.initParameters(0)));
  const teacher = join(first, "teacher.onnx");
  const errorOf = async (paths: string[], data?: string) => {
    try {
      await evalCommand(paths, { json: true, beam: 2, write: () => undefined, ...(data ? { data } : {}) });
    } catch (e) {
      assert.ok(e instanceof UserError, String(e));
      return e.message;
    }
    assert.fail("accepted");
  };
  assert.equal(await errorOf([teacher, classifier]), `${classifier}: not a sequence model, unlike ${teacher}: evaluate classifiers and sequence models separately`);
  assert.equal(await errorOf([teacher], "mnist"), `--data: a sequence model is scored on a sequence config's data: block; expected a .yaml file, got "mnist"`);
  // A sequence file made without a run's data block (the library's export) needs --data.
  const bare = join(dir, "bare-seq2seq.onnx");
  const { model, params, vocab } = importSeq2SeqOnnx(readFileSync(teacher), teacher);
  writeFileSync(bare, exportSeq2SeqOnnx(model, params, vocab));
  assert.equal(await errorOf([bare]), `${bare}: metadata distill.data is missing (not exported by a distill run): give --data with a sequence config`);
});

/** The first run's teacher's key in its stores (targets-stage.ts: the teacher file's digest). */
function teacherDigest(): string {
  return createHash("sha256").update(readFileSync(join(first, "teacher.onnx"))).digest("hex").slice(0, 16);
}
