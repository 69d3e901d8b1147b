// `distill shrink <config> --keep 0.99`: a ladder of student models (width × depth multipliers of
// the config's student, or the config's `shrink.models`; ./ladder.ts), ordered by parameter count,
// each rung distilled from the same teacher with the config's own T, α and budget. Bisection over
// the ladder (validation accuracy is taken to grow with the parameter count along it) finds the
// smallest rung whose validation accuracy is ≥ keep × the teacher's, training about
// log2(rungs) + 1 of them; `--every-rung` trains them all (the whole accuracy/size curve, and no
// monotone assumption). Then, when the gap to the teacher is large (`--assistant-gap`) or always
// (`--assistant`), the rung just below the chosen one is trained again through a teacher
// assistant (TAKD) to see whether that closes the gap.

import { join } from "node:path";
import { chooseAssistants } from "../config/assistants.js";
import type { ModelSpec } from "../config/schema.js";
import { validationSize, type DataSpec } from "../config/schema.js";
import { loadData } from "../data/load.js";
import type { Dataset } from "../data/sample-set.js";
import { allIndices, firstN, splitTrainValidation } from "../data/split.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { dataGeometry } from "../nn/spec.js";
import { writeFileAtomic } from "../util/fs.js";
import { buildLadder, parameterCount, parseMultipliers, rungLabel, type LadderRung } from "./ladder.js";
import { writeShrinkReport } from "./report.js";
import { createState, loadState, openSource, saveState, Session, type ConfigSource, type OpenOptions, type SessionOptions, type SessionState } from "./session.js";
import type { TrialOutcome } from "./trial.js";
import type { AssistantResult, Rung, ShrinkResults } from "./results.js";

export type { AssistantResult, Rung, ShrinkResults } from "./results.js";

export const DEFAULT_LADDER = [0.0625, 0.125, 0.25, 0.5, 1];

export interface ShrinkOptions extends SessionOptions {
  keep: number;
  /** Width multipliers (default DEFAULT_LADDER; not with shrink.models). */
  widths?: number[];
  /** Depth multipliers (default [1]; not with shrink.models). */
  depths?: number[];
  /** Train every rung instead of bisecting. */
  everyRung?: boolean;
  /** The assistant rung: always, or when the gap to the teacher is above this (accuracy, 0–1). */
  assistant?: { always: true } | { gap: number };
}

interface ShrinkState extends SessionState {
  keep: number;
  ladder: LadderRung[];
  everyRung: boolean;
  assistant?: { always: true } | { gap: number };
  /** The teacher's model spec when the config trains it: sizes the assistant between the two. */
  teacherModel?: ModelSpec;
}

/**
 * The ranges the CLI's parsers enforce on --keep, --widths, --depths and --assistant-gap, checked
 * for library callers too (who pass numbers, and could pass both assistant forms from plain JS).
 */
function checkShrinkOptions(o: ShrinkOptions): void {
  if (!(o.keep > 0 && o.keep <= 1)) throw new UserError("keep", `expected a fraction in (0, 1] like 0.99, got ${o.keep}`);
  for (const [name, list] of [["widths", o.widths], ["depths", o.depths]] as const)
    if (list !== undefined && (list.length === 0 || !list.every((m) => Number.isFinite(m) && m > 0)))
      throw new UserError(name, `expected a non-empty list of positive multipliers, got ${JSON.stringify(list)}`);
  const a = o.assistant as { always?: unknown; gap?: unknown } | undefined;
  if (a && a.always !== undefined && a.gap !== undefined) throw new UserError("assistant", "give {always: true} or {gap}, not both");
  if (a?.gap !== undefined && !(typeof a.gap === "number" && a.gap >= 0 && a.gap < 1)) throw new UserError("assistant.gap", `expected an accuracy gap in [0, 1) like 0.02, got ${String(a.gap)}`);
}

export function parseKeep(text: string): number {
  const keep = Number(text);
  if (!/^\s*[\d.eE+-]+\s*$/.test(text) || !(keep > 0 && keep <= 1)) throw new UserError("--keep", `expected a fraction in (0, 1] like 0.99, got ${JSON.stringify(text)}`);
  return keep;
}

export function parseLadder(text: string): number[] {
  return parseMultipliers(text, "--widths");
}

export function parseDepths(text: string): number[] {
  return parseMultipliers(text, "--depths");
}

export function parseGap(text: string): number {
  const gap = Number(text);
  if (!/^\s*[\d.eE+-]+\s*$/.test(text) || !(gap >= 0 && gap < 1)) throw new UserError("--assistant-gap", `expected an accuracy gap in [0, 1) like 0.02, got ${JSON.stringify(text)}`);
  return gap;
}

/** `distill shrink`: `source` is a config file or an object as `distill()` takes. */
export async function shrinkCommand(source: ConfigSource, o: ShrinkOptions): Promise<ShrinkResults> {
  checkShrinkOptions(o);
  const { configPath, config, raw } = openSource(source, o);
  const models = (config as typeof config & { shrink?: { models: Array<{ name: string; model: ModelSpec }> } }).shrink?.models;
  if (models && (o.widths || o.depths)) throw new UserError(o.widths ? "--widths" : "--depths", `${configPath} lists its ladder in shrink.models; give either the list or multipliers, not both`);
  const dataset = await loadData(config.data);
  const ladder = buildLadder({
    student: config.student.model, widths: o.widths ?? DEFAULT_LADDER, depths: o.depths ?? [1], ...(models ? { models } : {}),
    classLabels: dataset.classLabels, geometry: dataGeometry(dataset.train, dataset.vocabularySize), configPath,
  });
  const dir = o.output ?? join("runs", `${config.name}-shrink`);
  if (o.queue) {
    const { checkQueue } = await import("./queue.js");
    await checkQueue({ ...o, queue: o.queue }, config, dir, o.cacheDir);
  }
  const state: ShrinkState = {
    ...createState("shrink", configPath, config, raw, dir, o), keep: o.keep, ladder, everyRung: o.everyRung === true,
    ...(o.assistant ? { assistant: o.assistant } : {}), ...(config.teacher && config.teacher.onnx === undefined ? { teacherModel: config.teacher.model } : {}),
  };
  saveState(dir, state);
  return executeShrink(dir, state, o.log, { ...(o.signal ? { signal: o.signal } : {}), ...(o.queue ? { queueUrl: o.queue } : {}), ...(o.runTrial ? { runTrial: o.runTrial } : {}) });
}

/** Continues a shrink folder; `signal` as in SessionOptions. */
export async function resumeShrink(dir: string, log: (line: string) => void, signal?: AbortSignal): Promise<ShrinkResults> {
  const state = loadState(dir, "shrink") as ShrinkState;
  if (!Array.isArray(state.ladder) || typeof state.ladder[0] !== "object")
    throw new UserError(dir, "this shrink folder was made by an older distill (a ladder of widths only); start it again with distill shrink");
  return executeShrink(dir, state, log, signal ? { signal } : {});
}

type Trained = Rung & { teacherParams?: number; teacherLatencyP50Ms: number; testTotal: number };

async function executeShrink(dir: string, state: ShrinkState, log: (line: string) => void, open: OpenOptions = {}): Promise<ShrinkResults> {
  const session = await Session.open(dir, state, log, open);
  try {
    await session.ensureTeacher();
    const dataset = await loadData(state.base["data"] as DataSpec);
    const teacherValAccuracy = await teacherValidationAccuracy(state.base, dataset, state.teacherOnnx!);
    const target = state.keep * teacherValAccuracy;
    log(`teacher: val_acc=${teacherValAccuracy.toFixed(4)}; target ≥ ${target.toFixed(4)}; ${state.ladder.length} rungs from ${state.ladder[0]!.params} to ${state.ladder.at(-1)!.params} parameters`);
    const seed = (state.base["seeds"] as number[])[0]!;
    const studentEpochs = (state.base["student"] as { train: { epochs: number } }).train.epochs;
    const tried = new Map<number, Trained>();
    const plan = (index: number) => {
      const r = state.ladder[index]!;
      const setting: Record<string, string | number> = r.name !== undefined ? { model: r.name } : { width: r.width!, depth: r.depth! };
      return session.plan(r.id, [`seeds=[${seed}]`, `student.model=${JSON.stringify(r.model)}`], { kind: "rung", rung: index, epochs: studentEpochs, setting });
    };
    const record = (index: number, o: TrialOutcome): boolean => {
      const r = state.ladder[index]!;
      const rung: Trained = {
        id: r.id, ...(r.width !== undefined ? { width: r.width, depth: r.depth! } : {}), ...(r.name !== undefined ? { name: r.name } : {}),
        params: o.params, latencyP50Ms: o.latencyP50Ms, valAccuracy: o.valAccuracy, testErrors: o.testErrors[0]!, passes: o.valAccuracy >= target, pareto: false, latencyPareto: false,
        ...(o.teacherParams ? { teacherParams: o.teacherParams } : {}), teacherLatencyP50Ms: o.teacherLatencyP50Ms ?? NaN, testTotal: o.testTotal,
      };
      tried.set(index, rung);
      return rung.passes;
    };
    const train = async (index: number) => record(index, (await session.runner.runAll([plan(index)]))[0]!.outcome);

    let chosenIndex: number | undefined;
    if (state.everyRung) {
      const entries = await session.runner.runAll(state.ladder.map((_, i) => plan(i)));
      entries.forEach((e, i) => record(i, e.outcome));
      const first = state.ladder.findIndex((_, i) => tried.get(i)!.passes);
      chosenIndex = first >= 0 ? first : undefined;
    } else {
      // Bisection for the first passing rung; the largest is tried first: if it fails, none passes.
      let lo = 0;
      let hi = state.ladder.length - 1;
      const largestPasses = await train(hi);
      while (largestPasses && lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (await train(mid)) hi = mid;
        else lo = mid + 1;
      }
      chosenIndex = largestPasses ? hi : undefined;
    }

    const rungs = [...tried.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r);
    const dominates = (o: Trained, r: Trained, cost: (x: Trained) => number) => cost(o) <= cost(r) && o.valAccuracy >= r.valAccuracy && (cost(o) < cost(r) || o.valAccuracy > r.valAccuracy);
    for (const r of rungs) {
      r.pareto = !rungs.some((o) => o !== r && dominates(o, r, (x) => x.params));
      r.latencyPareto = !rungs.some((o) => o !== r && dominates(o, r, (x) => x.latencyP50Ms));
    }
    const any = rungs[0]!;
    const strip = ({ teacherParams: _p, teacherLatencyP50Ms: _l, testTotal: _t, ...r }: Trained): Rung => r;
    const chosen = chosenIndex !== undefined ? tried.get(chosenIndex) : undefined;
    const assistant = state.assistant ? await assistantRung(session, state, dataset, { tried, chosenIndex, teacherValAccuracy, target, seed, studentEpochs, log }) : undefined;
    const results: ShrinkResults = {
      name: String(state.base["name"]), configPath: state.configPath, keep: state.keep,
      ladder: state.ladder.map(({ model: _m, ...r }, i) => ({ ...r, trained: tried.has(i) })), everyRung: state.everyRung, teacherValAccuracy,
      teacherParams: any.teacherParams ?? NaN, teacherLatencyP50Ms: any.teacherLatencyP50Ms, testTotal: any.testTotal,
      rungs: rungs.map(strip), ...(chosen ? { chosen: strip(chosen) } : {}), ...(assistant ? { assistant } : {}),
      wallSeconds: Math.round(session.elapsed() * 10) / 10,
    };
    writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
    writeShrinkReport(dir, results);
    log(chosen ? `${results.name}: smallest student keeping ${state.keep} × teacher: ${rungLabel(chosen)}, ${chosen.params} parameters, val_acc ${chosen.valAccuracy.toFixed(4)}; ${dir}` : `${results.name}: no rung keeps ${state.keep} × teacher; ${dir}`);
    if (assistant) log("skipped" in assistant ? `assistant: ${assistant.skipped}` : `assistant: ${assistant.rung} through an assistant of ${assistant.assistantParams} parameters: val_acc ${assistant.valAccuracy.toFixed(4)} (${assistant.gain >= 0 ? "+" : ""}${assistant.gain.toFixed(4)}), ${assistant.passes ? "now keeps" : "still does not keep"} ${state.keep} × teacher`);
    return results;
  } finally {
    await session.close();
  }
}

interface AssistantContext {
  tried: Map<number, Trained>;
  chosenIndex: number | undefined;
  teacherValAccuracy: number;
  target: number;
  seed: number;
  studentEpochs: number;
  log: (line: string) => void;
}

/**
 * The teacher-assistant rung. Its student is the rung just below the chosen one (the largest rung
 * when none passes); the gap is the teacher's validation accuracy minus the chosen rung's (the
 * largest's when none passes). The assistant is sized between the teacher and that student as
 * `kd.assistants: {count: 1}` would (geometric widths; needs the teacher's model spec and the same
 * layers), else it is the next larger rung of the ladder.
 */
async function assistantRung(session: Session, state: ShrinkState, dataset: Dataset, c: AssistantContext): Promise<AssistantResult> {
  const last = state.ladder.length - 1;
  const reference = c.tried.get(c.chosenIndex ?? last)!;
  const gap = c.teacherValAccuracy - reference.valAccuracy;
  const setting = state.assistant!;
  const gapText = `the ${c.chosenIndex !== undefined ? "chosen" : "largest"} rung's gap to the teacher is ${gap.toFixed(4)}`;
  if ("gap" in setting && !(gap > setting.gap)) return { skipped: `not tried: ${gapText}, not above --assistant-gap ${setting.gap}` };
  const why = "gap" in setting ? `${gapText} > ${setting.gap}` : `--assistant (${gapText})`;
  if (c.chosenIndex === 0) return { skipped: `not tried (${why}): the chosen rung is the smallest, there is no rung below it` };
  const studentIndex = c.chosenIndex !== undefined ? c.chosenIndex - 1 : last;
  const student = state.ladder[studentIndex]!;
  let assistant: ModelSpec | undefined;
  let from = "";
  const between = state.teacherModel ? chooseAssistants(state.teacherModel, student.model, 1) : "the teacher is an .onnx file";
  if (typeof between !== "string") {
    assistant = between[0]!;
    from = "between the teacher and the rung (geometric widths, as kd.assistants: {count: 1})";
  } else if (studentIndex < last) {
    assistant = state.ladder[studentIndex + 1]!.model;
    from = `the next larger rung, ${rungLabel(state.ladder[studentIndex + 1]!)} (no size in between: ${between.split(";")[0]})`;
  } else return { skipped: `not tried (${why}): no assistant size between the teacher and the largest rung (${between.split(";")[0]})` };
  const geometry = dataGeometry(dataset.train, dataset.vocabularySize);
  const assistantParams = parameterCount(assistant, dataset.classLabels, geometry, state.configPath, "the assistant");
  const id = `${student.id}-ta`;
  c.log(`assistant: ${why}; training ${rungLabel(student)} again through an assistant of ${assistantParams} parameters`);
  const p = session.plan(id, [`seeds=[${c.seed}]`, `student.model=${JSON.stringify(student.model)}`, `kd.assistants=${JSON.stringify([assistant])}`], {
    kind: "rung", rung: studentIndex, epochs: c.studentEpochs, setting: { assistant: student.id },
  });
  const o = (await session.runner.runAll([p]))[0]!.outcome;
  const own = c.tried.get(studentIndex)!;
  return {
    rung: student.id, why, assistantFrom: from, assistant, assistantParams,
    valAccuracy: o.valAccuracy, gain: o.valAccuracy - own.valAccuracy, testErrors: o.testErrors[0]!, passes: o.valAccuracy >= c.target,
  };
}

/** The teacher's accuracy on the run's validation split (the split every stage of a run uses). */
async function teacherValidationAccuracy(base: Record<string, unknown>, dataset: Dataset, teacherOnnx: string): Promise<number> {
  const data = base["data"] as DataSpec;
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
