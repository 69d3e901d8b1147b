// `distill shrink <config> --keep 0.99`: a ladder of width multipliers of the config's student
// (every hidden linear layer's units and every conv's filters scaled; the output layer keeps one
// unit per class), each rung distilled from the same teacher with the config's own T, α and budget.
// Bisection over the ladder (validation accuracy is taken to grow with width) finds the smallest
// rung whose validation accuracy is ≥ keep × the teacher's, training about log2(rungs) + 1 of them.

import { join } from "node:path";
import { loadConfig } from "../config/load.js";
import type { LayerSpec } from "../config/schema.js";
import { validationSize, type DataSpec } from "../config/schema.js";
import { loadData } from "../data/load.js";
import { allIndices, firstN, splitTrainValidation } from "../data/split.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { writeFileAtomic } from "../util/fs.js";
import { writeShrinkReport } from "./report.js";
import { createState, loadState, saveState, Session, type SessionOptions, type SessionState } from "./session.js";

export const DEFAULT_LADDER = [0.0625, 0.125, 0.25, 0.5, 1];

interface ShrinkState extends SessionState {
  keep: number;
  ladder: number[];
}

export interface Rung {
  width: number;
  id: string;
  params: number;
  latencyP50Ms: number;
  valAccuracy: number;
  testErrors: number;
  passes: boolean;
  pareto: boolean;
}

export interface ShrinkResults {
  name: string;
  configPath: string;
  keep: number;
  ladder: number[];
  teacherValAccuracy: number;
  teacherParams: number;
  teacherLatencyP50Ms: number;
  testTotal: number;
  rungs: Rung[];
  chosen?: Rung;
  wallSeconds: number;
}

export function parseKeep(text: string): number {
  const keep = Number(text);
  if (!/^\s*[\d.eE+-]+\s*$/.test(text) || !(keep > 0 && keep <= 1)) throw new UserError("--keep", `expected a fraction in (0, 1] like 0.99, got ${JSON.stringify(text)}`);
  return keep;
}

export function parseLadder(text: string): number[] {
  const widths = text.split(",").map((s) => Number(s.trim()));
  if (widths.length === 0 || widths.some((w) => !(w > 0)) || !text.trim())
    throw new UserError("--widths", `expected width multipliers > 0 separated by commas like 0.25,0.5,1, got ${JSON.stringify(text)}`);
  return [...new Set(widths)].sort((a, b) => a - b);
}

/** `student.model.layers[i].units|filters=n` for one width multiplier. */
export function widthSets(layers: LayerSpec[], width: number, where: string): string[] {
  const lastLinear = layers.map((l) => l.type).lastIndexOf("linear");
  const sets: string[] = [];
  layers.forEach((l, i) => {
    if (l.type === "linear" && i !== lastLinear) sets.push(`student.model.layers[${i}].units=${Math.max(1, Math.round(l.units * width))}`);
    if (l.type === "conv") {
      if (l.groups !== 1) throw new UserError(where, `student.model.layers[${i}]: shrink does not scale grouped convolutions (groups: ${l.groups})`);
      sets.push(`student.model.layers[${i}].filters=${Math.max(1, Math.round(l.filters * width))}`);
    }
  });
  if (sets.length === 0) throw new UserError(where, "student.model: no hidden linear or conv layer to scale");
  return sets;
}

export async function shrinkCommand(configPath: string, keep: number, ladder: number[], opts: SessionOptions): Promise<ShrinkResults> {
  const config = loadConfig(configPath, { set: opts.set ?? [] });
  widthSets(config.student.model.layers, 1, configPath);
  if (opts.queue) {
    const { checkRedis } = await import("./queue.js");
    await checkRedis(opts.queue, "--queue");
  }
  const dir = opts.output ?? join("runs", `${config.name}-shrink`);
  const state: ShrinkState = { ...createState("shrink", configPath, config, dir, opts), keep, ladder };
  saveState(dir, state);
  return executeShrink(dir, state, opts.log);
}

export async function resumeShrink(dir: string, log: (line: string) => void): Promise<ShrinkResults> {
  return executeShrink(dir, loadState(dir, "shrink") as ShrinkState, log);
}

async function executeShrink(dir: string, state: ShrinkState, log: (line: string) => void): Promise<ShrinkResults> {
  const session = await Session.open(dir, state, log);
  try {
    await session.ensureTeacher();
    const teacherValAccuracy = await teacherValidationAccuracy(state.base, state.teacherOnnx!);
    log(`teacher: val_acc=${teacherValAccuracy.toFixed(4)}; target ≥ ${(state.keep * teacherValAccuracy).toFixed(4)}`);
    const layers = (state.base["student"] as { model: { layers: LayerSpec[] } }).model.layers;
    const seed = (state.base["seeds"] as number[])[0]!;
    const studentEpochs = (state.base["student"] as { train: { epochs: number } }).train.epochs;
    const tried = new Map<number, Rung & { teacherParams?: number; teacherLatencyP50Ms: number; testTotal: number }>();
    const train = async (index: number) => {
      const width = state.ladder[index]!;
      const id = `w${width}`;
      const p = session.plan(id, [`seeds=[${seed}]`, ...widthSets(layers, width, state.configPath)], { kind: "rung", rung: index, epochs: studentEpochs, setting: { width } });
      const [entry] = await session.runner.runAll([p]);
      const o = entry!.outcome;
      const rung = { width, id, params: o.params, latencyP50Ms: o.latencyP50Ms, valAccuracy: o.valAccuracy, testErrors: o.testErrors[0]!, passes: o.valAccuracy >= state.keep * teacherValAccuracy, pareto: false, ...(o.teacherParams ? { teacherParams: o.teacherParams } : {}), teacherLatencyP50Ms: o.teacherLatencyP50Ms, testTotal: o.testTotal };
      tried.set(index, rung);
      return rung.passes;
    };
    // Bisection for the first passing rung; the widest is tried first: if it fails, none passes.
    let lo = 0;
    let hi = state.ladder.length - 1;
    const widestPasses = await train(hi);
    while (widestPasses && lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (await train(mid)) hi = mid;
      else lo = mid + 1;
    }
    const rungs = [...tried.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    for (const r of rungs) r.pareto = !rungs.some((o) => o !== r && o.params <= r.params && o.valAccuracy >= r.valAccuracy && (o.params < r.params || o.valAccuracy > r.valAccuracy));
    const any = rungs[0]!;
    const strip = ({ teacherParams: _p, teacherLatencyP50Ms: _l, testTotal: _t, ...r }: (typeof rungs)[number]): Rung => r;
    const chosen = widestPasses ? tried.get(hi) : undefined;
    const results: ShrinkResults = {
      name: String(state.base["name"]), configPath: state.configPath, keep: state.keep, ladder: state.ladder, teacherValAccuracy,
      teacherParams: any.teacherParams ?? NaN, teacherLatencyP50Ms: any.teacherLatencyP50Ms, testTotal: any.testTotal,
      rungs: rungs.map(strip), ...(chosen ? { chosen: strip(chosen) } : {}), wallSeconds: Math.round(session.elapsed() * 10) / 10,
    };
    writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
    writeShrinkReport(dir, results);
    log(chosen ? `${results.name}: smallest student keeping ${state.keep} × teacher: width × ${chosen.width}, ${chosen.params} parameters, val_acc ${chosen.valAccuracy.toFixed(4)}; ${dir}` : `${results.name}: no rung keeps ${state.keep} × teacher; ${dir}`);
    return results;
  } finally {
    await session.close();
  }
}

/** The teacher's accuracy on the run's validation split (the split every stage of a run uses). */
async function teacherValidationAccuracy(base: Record<string, unknown>, teacherOnnx: string): Promise<number> {
  const data = base["data"] as DataSpec;
  const dataset = await loadData(data);
  const pool = firstN(allIndices(dataset.train.count), data.trainLimit ?? undefined);
  const split = splitTrainValidation(pool.length, validationSize(data, pool.length), 0);
  const indices = new Int32Array(split.validation.length);
  split.validation.forEach((p, i) => (indices[i] = pool[p]!));
  const teacher = await OnnxClassifier.fromFile(teacherOnnx);
  try {
    const logits = await teacher.logits(dataset.train, indices);
    const k = teacher.numClasses;
    let correct = 0;
    for (let i = 0; i < indices.length; i++) {
      let arg = 0;
      for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + arg]!) arg = c;
      if (arg === dataset.train.labels[indices[i]!]) correct++;
    }
    return correct / indices.length;
  } finally {
    await teacher.dispose();
  }
}
