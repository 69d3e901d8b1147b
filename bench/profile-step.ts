// `node dist/bench/profile-step.js mlp|cnn|transformer [CALLS] [--nodes]`: onnxruntime's per-op kernel time of
// the training step as the trainer runs it (K = 16 steps per call, ModelTrainer.stepMany), summed
// by op type (by node with --nodes) and divided by the steps timed; the warm-up call is left out.
// One JSON line per op type, largest first, then the totals. The figures behind docs/engine.md's per-op tables.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Tensor } from "../src/engine/runtime.js";
import { kdStepFixture } from "./models.js";

interface ProfileEvent {
  cat: string;
  name: string;
  ts: number;
  dur: number;
  args?: { op_name?: string };
}

const [which = "cnn", callsArg = "3"] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const byNode = process.argv.includes("--nodes");
const calls = Number(callsArg), k = 16, batch = which === "transformer" ? 64 : 128;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "distill-profile-"));
// Session.create reads it: every session of this process writes its profile under `dir`.
process.env["DISTILL_PROFILE"] = path.join(dir, "step");

const { trainer, feeds } = await kdStepFixture(which, batch);
const feedsList = new Array<Record<string, Tensor>>(k).fill(feeds), lrs = new Array<number>(k).fill(0.01);
for (let i = 0; i <= calls; i++) await trainer.stepMany(feedsList, lrs);
await trainer.dispose();

// The Loop session's profile holds calls + 1 model runs; the first is the warm-up.
const events = fs.readdirSync(dir).flatMap((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as ProfileEvent[]);
const runs = events.filter((e) => e.name === "model_run").sort((a, b) => a.ts - b.ts);
const timedFrom = runs[1]!.ts;
const byOp = new Map<string, number>();
for (const e of events)
  if (e.cat === "Node" && e.name.endsWith("_kernel_time") && e.ts >= timedFrom && e.args?.op_name !== "Loop")
  {
    const key = byNode ? e.name.slice(0, -"_kernel_time".length) : e.args!.op_name!;
    byOp.set(key, (byOp.get(key) ?? 0) + e.dur);
  }
const steps = calls * k;
const msPerStep = (us: number) => Number((us / 1000 / steps).toFixed(2));
const kernels = [...byOp.values()].reduce((a, b) => a + b, 0);
for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) console.log(JSON.stringify({ [byNode ? "node" : "op"]: op, msPerStep: msPerStep(us), share: Number((us / kernels).toFixed(3)) }));
const runUs = runs.slice(1).reduce((a, e) => a + e.dur, 0);
console.log(JSON.stringify({ which, steps, kernelMsPerStep: msPerStep(kernels), modelRunMsPerStep: msPerStep(runUs), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
fs.rmSync(dir, { recursive: true, force: true });
