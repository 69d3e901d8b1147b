// The choices `distill shrink` and `distill tune` make from their trials' outcomes, pinned with a
// scripted trial runner in place of training: for every position of the first passing rung the
// bisection must choose exactly that rung, with the number of trials bisection needs; the grid
// search must pick the best validation accuracy, ties going to the earlier setting. The teacher,
// the data and the validation split are real (MNIST); only the trials' outcomes are scripted.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { shrinkCommand, type ShrinkResults } from "../src/tune/shrink.js";
import { tuneCommand } from "../src/tune/search.js";
import type { TrialJob, TrialOutcome } from "../src/tune/trial.js";
import { assertBisection } from "./helpers/bisection.js";

const dir = mkdtempSync(join(tmpdir(), "distill-scripted-"));
const quiet = () => undefined;

// An untrained linear teacher: its validation accuracy (about chance) only sets the target.
const teacherPath = join(dir, "teacher.onnx");
const teacher = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
writeFileSync(teacherPath, exportOnnx(teacher, teacher.initParameters(0)));

function config(name: string, extra = ""): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 1000, validation: 200, testLimit: 200 }
teacher: { onnx: ${JSON.stringify(teacherPath)} }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
${extra}`);
  return path;
}

/** A trial that "measured" `valAccuracy`; the other figures only need to be well-formed. */
function outcome(valAccuracy: number, params: number): TrialOutcome {
  return { valAccuracy, valLoss: 1 - valAccuracy, testErrors: [Math.round(200 * (1 - valAccuracy))], testTotal: 200, params, latencyP50Ms: 0.01, teacherLatencyP50Ms: 0.02, seconds: 0 };
}

const WIDTHS = [0.125, 0.25, 0.5, 1, 1.5, 2, 3, 4];
const IDS = WIDTHS.map((w) => `w${w}`);

test("shrink's bisection chooses exactly the smallest passing rung, in log2(rungs) + 1 trials, wherever that rung is", async () => {
  // Rungs from `first` up pass (validation accuracy 1 against a target of keep × the teacher's), those below fail (0).
  for (let first = 0; first <= WIDTHS.length; first++) {
    const trials: string[] = [];
    const runTrial = async (job: TrialJob) => {
      trials.push(job.id);
      const index = IDS.indexOf(job.id);
      assert.ok(index >= 0, `a rung of the ladder: ${job.id}`);
      return outcome(index >= first ? 1 : 0, 1000 * (index + 1));
    };
    const out = join(dir, `bisect-${first}`);
    const s = await shrinkCommand(config(`bisect-${first}`), { keep: 0.5, widths: WIDTHS, output: out, log: quiet, runTrial });
    assert.ok(s.teacherValAccuracy > 0, "a target above 0, so a rung at 0 fails");
    assert.equal(s.chosen?.id, IDS[first], `first passing rung ${IDS[first] ?? "none"}`);
    // 8 rungs: the largest, then 3 halvings of 8 candidates when it passes; nothing more when it fails.
    assert.equal(trials.length, first < WIDTHS.length ? 4 : 1, `trials: ${trials.join(" ")}`);
    assert.equal(trials[0], "w4", "the largest first");
    assert.deepEqual(s.rungs.map((g) => g.id).sort(), [...trials].sort(), "every trial is a recorded rung");
    assertBisection(s);
    assert.deepEqual(JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as ShrinkResults, JSON.parse(JSON.stringify(s)), "results.json holds what was returned");
  }
});

test("assertBisection rejects a search that chose a rung whose smaller neighbour passed, or trained past the largest's failure", () => {
  const rung = (id: string, passes: boolean) => ({ id, params: 1, latencyP50Ms: 1, valAccuracy: passes ? 1 : 0, testErrors: 0, passes, pareto: true, latencyPareto: true });
  const ladder = ["a", "b", "c", "d"].map((id, i) => ({ id, params: i + 1, trained: true }));
  const results = (rungs: ReturnType<typeof rung>[], chosen?: string): ShrinkResults => ({
    name: "x", configPath: "x.yaml", keep: 1, ladder: ladder.map((l) => ({ ...l, trained: rungs.some((g) => g.id === l.id) })), everyRung: false,
    teacherValAccuracy: 1, teacherParams: 10, teacherLatencyP50Ms: 1, testTotal: 1, rungs, ...(chosen ? { chosen: rungs.find((g) => g.id === chosen)! } : {}), wallSeconds: 0,
  });
  assert.doesNotThrow(() => assertBisection(results([rung("a", false), rung("b", true), rung("d", true)], "b")));
  assert.throws(() => assertBisection(results([rung("b", true), rung("c", true), rung("d", true)], "c")), /smallest trained rung that passes/);
  assert.throws(() => assertBisection(results([rung("c", true), rung("d", true)], "c")), /the rung below c was trained and failed/);
  assert.throws(() => assertBisection(results([rung("a", true), rung("d", false)])), /nothing smaller is tried/);
});

test("tune's grid search picks the setting with the best validation accuracy, the earlier of a tie, and retrains it beside the config's own", async () => {
  const scripted: Record<string, number> = { "2/0.5": 0.7, "2/0.9": 0.9, "4/0.5": 0.9, "4/0.9": 0.8 };
  const trials: Array<{ id: string; key: string }> = [];
  const runTrial = async (job: TrialJob) => {
    const kd = job.config["kd"] as { terms: Array<{ temperature: number; alpha: number; method: string }> };
    const logit = kd.terms.find((t) => t.method === "logit-kd")!;
    const key = `${logit.temperature}/${logit.alpha}`;
    trials.push({ id: job.id, key });
    return outcome(scripted[key]!, 1000);
  };
  const r = await tuneCommand(config("grid", "tune: { space: { temperature: [2, 4], alpha: [0.5, 0.9] }, seeds: 2 }"), { output: join(dir, "grid"), log: quiet, runTrial });
  // Grid in key order; 2/0.9 and 4/0.5 tie at 0.9: the first planned wins.
  assert.deepEqual(trials.slice(0, 4).map((t) => `${t.id} ${t.key}`), ["t000 2/0.5", "t001 2/0.9", "t002 4/0.5", "t003 4/0.9"]);
  assert.deepEqual(r.winner, { id: "t001", setting: { "kd.temperature": 2, "kd.alpha": 0.9 }, valAccuracy: 0.9 });
  // Final runs: 2 seeds of the config's own setting (T 4, α 0.9), then of the winner (side by side, two
  // runs of one seed would wait on one another for their shared cached baseline).
  assert.deepEqual(trials.slice(4).map((t) => `${t.id} ${t.key}`), ["final-config-s0 4/0.9", "final-config-s1 4/0.9", "final-winner-s0 2/0.9", "final-winner-s1 2/0.9"]);
  assert.deepEqual(r.final.winner.testErrors, [20, 20]);
  assert.deepEqual(r.final.config.testErrors, [40, 40]);
  assert.deepEqual(r.final.comparison!.differences, [-20, -20], "winner − config, paired by seed");

  // When the config's own setting wins, it is trained once per seed and not compared with itself.
  scripted["4/0.9"] = 0.95;
  trials.length = 0;
  const same = await tuneCommand(config("grid-same", "tune: { space: { temperature: [2, 4], alpha: [0.5, 0.9] }, seeds: 2 }"), { output: join(dir, "grid-same"), log: quiet, runTrial });
  assert.deepEqual(same.winner.setting, { "kd.temperature": 4, "kd.alpha": 0.9 });
  assert.deepEqual(trials.slice(4).map((t) => t.id), ["final-config-s0", "final-config-s1"]);
  assert.equal(same.final.comparison, undefined);
  assert.deepEqual(same.final.winner, same.final.config);
});
