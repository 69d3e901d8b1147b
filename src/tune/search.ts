// `distill tune <config>`: search the `tune:` space (grid, random, successive halving) under a
// budget, choose on validation accuracy only, then train the winner and the config's own setting
// with K seeds each and test both once. Folder: tune.json (state), trials.jsonl (ledger),
// trials/<id>/ (one `distill run` folder per trial), results.json, report.html.
//
// Every step is a function of the config and of finished trials, so a resumed search re-plans the
// same trials and skips those already in the ledger.

import { join } from "node:path";
import type { TuneSpec } from "../config/schema.js";
import { UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import { meanStd } from "../eval/metrics.js";
import type { LedgerEntry, Planned } from "./runner.js";
import { assignments, axesOf, checkSpace, gridSettings, randomSettings, type Setting, type SpaceAxis } from "./space.js";
import { createState, loadState, openSource, saveState, Session, settingOf, trialSets, TRIAL_TEST_LIMIT, type ConfigSource, type OpenOptions, type SessionOptions, type SessionState } from "./session.js";
import { writeTuneReport } from "./report.js";
import { comparePaired } from "./compare.js";
import type { SeedStats, TuneResults } from "./results.js";

export type { SeedStats, TuneResults } from "./results.js";

interface TuneState extends SessionState {
  tune: TuneSpec;
}

/** `distill tune`: `source` is a config file or an object as `distill()` takes. */
export async function tuneCommand(source: ConfigSource, opts: SessionOptions): Promise<TuneResults> {
  const { configPath, config, raw } = openSource(source, opts);
  const tune = (config as { tune?: TuneSpec }).tune;
  if (!tune) throw new UserError(configPath, "tune: required by distill tune, e.g. tune: {space: {kd.temperature: [1, 2, 4], kd.alpha: [0.5, 0.9]}}");
  if (opts.concurrency === undefined && tune.concurrency !== undefined) opts = { ...opts, concurrency: tune.concurrency };
  const axes = axesOf(tune.space);
  checkSpace(raw, axes, configPath, trialSets(opts.set ?? []));
  if (tune.strategy === "grid") {
    try {
      gridSettings(axes);
    } catch (e) {
      if (e instanceof UserError) throw new UserError(configPath, `${e.where}.${e.what}`);
      throw e;
    }
  }
  const dir = opts.output ?? join("runs", `${config.name}-tune`);
  if (opts.queue) {
    const { checkQueue } = await import("./queue.js");
    await checkQueue({ ...opts, queue: opts.queue }, config, dir, opts.cacheDir);
  }
  const state: TuneState = { ...createState("tune", configPath, config, raw, dir, opts), tune };
  saveState(dir, state);
  return executeTune(dir, state, opts.log, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.queue ? { queueUrl: opts.queue } : {}), ...(opts.runTrial ? { runTrial: opts.runTrial } : {}) });
}

/** Continues a tune folder; `signal` as in SessionOptions. */
export async function resumeTune(dir: string, log: (line: string) => void, signal?: AbortSignal): Promise<TuneResults> {
  const state = loadState(dir, "tune") as TuneState;
  return executeTune(dir, state, log, signal ? { signal } : {});
}

// Signals are the caller's (the CLI turns Ctrl-C into an abort): an aborted search stops its
// trials and throws a RunAbortedError from the runner; finished trials are in the ledger.
async function executeTune(dir: string, state: TuneState, log: (line: string) => void, open: OpenOptions = {}): Promise<TuneResults> {
  const session = await Session.open(dir, state, log, open);
  try {
    await session.ensureTeacher();
    const axes = axesOf(state.tune.space);
    const searched = await search(session, state.tune, axes);
    const results = await finish(session, state, axes, searched);
    writeFileAtomic(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n");
    writeTuneReport(dir, results);
    log(summary(results, dir));
    return results;
  } finally {
    await session.close();
  }
}

interface Searched {
  entries: LedgerEntry[];
  skipped: string[];
  winner: LedgerEntry;
}

async function search(session: Session, tune: TuneSpec, axes: SpaceAxis[]): Promise<Searched> {
  const studentEpochs = ((session.state.base["student"] as { train: { epochs: number } }).train.epochs);
  const seed = (session.state.base["seeds"] as number[])[0]!;
  const admit = budgetGate(tune.budget, () => session.elapsed());
  const skipped: string[] = [];
  const gate = (p: Planned, finished: boolean) => {
    const ok = admit(p, finished);
    if (!ok) skipped.push(p.job.id);
    return ok;
  };
  const planTrial = (id: string, setting: Setting, epochs: number, rung: number) =>
    session.plan(id, [`seeds=[${seed}]`, `student.train.epochs=${epochs}`, `data.testLimit=${TRIAL_TEST_LIMIT}`, ...assignments(setting)], { kind: "trial", rung, epochs, setting });

  const allLists = axes.every((a) => a.values);
  if (tune.strategy !== "halving") {
    const settings = tune.strategy === "grid" ? gridSettings(axes) : randomSettings(axes, tune.trials ?? 10, tune.seed);
    const epochs = tune.epochs ?? studentEpochs;
    const entries = await session.runner.runAll(settings.map((s, i) => planTrial(`t${pad(i)}`, s, epochs, 0)), gate);
    return { entries, skipped, winner: best(entries, session.dir) };
  }
  // Successive halving (Jamieson & Talwalkar 2016): every setting gets a short budget, the best
  // 1/eta are trained eta times longer, from scratch (the cosine schedule spans each trial's length).
  let settings = allLists && tune.trials === undefined ? gridSettings(axes) : randomSettings(axes, tune.trials ?? 9, tune.seed);
  let epochs = tune.epochs ?? 1;
  const entries: LedgerEntry[] = [];
  let top: LedgerEntry[] = [];
  for (let rung = 0; settings.length > 0; rung++) {
    const planned = settings.map((s, i) => planTrial(`r${rung}-${pad(i)}`, s, epochs, rung));
    const done = await session.runner.runAll(planned, gate);
    if (done.length === 0) break;
    entries.push(...done);
    top = done;
    if (settings.length === 1) break;
    const keep = Math.max(1, Math.floor(done.length / tune.eta));
    settings = rank(done).slice(0, keep).map((e) => e.setting);
    epochs = Math.min(epochs * tune.eta, Math.max(studentEpochs, epochs));
  }
  return { entries, skipped, winner: best(top, session.dir) };
}

/** Budget in student epochs (summed over trials, counted as they start) or in minutes of search. */
function budgetGate(budget: TuneSpec["budget"], elapsed: () => number) {
  let spent = 0;
  return (p: Planned, finished: boolean): boolean => {
    if (!finished) {
      if (budget?.epochs !== undefined && spent + p.meta.epochs > budget.epochs) return false;
      if (budget?.minutes !== undefined && elapsed() >= budget.minutes * 60) return false;
    }
    spent += p.meta.epochs;
    return true;
  };
}

/** Best first; ties keep plan order (stable sort), so the choice is reproducible. */
function rank(entries: LedgerEntry[]): LedgerEntry[] {
  return [...entries].sort((a, b) => b.outcome.valAccuracy - a.outcome.valAccuracy);
}

function best(entries: LedgerEntry[], dir: string): LedgerEntry {
  const first = rank(entries)[0];
  if (!first) throw new UserError(dir, "the budget admitted no trial; raise tune.budget or lower tune.epochs");
  return first;
}

/** K seeds of the winner and of the config's own setting, full epochs, tested once. */
async function finish(session: Session, state: TuneState, axes: SpaceAxis[], s: Searched): Promise<TuneResults> {
  const keys = axes.map((a) => a.key);
  const configSetting = settingOf(state.raw, keys);
  const seeds = Array.from({ length: state.tune.seeds }, (_, i) => i);
  const same = keys.every((k) => configSetting[k] === s.winner.setting[k]);
  const studentEpochs = (state.base["student"] as { train: { epochs: number } }).train.epochs;
  const finals = (who: "config" | "winner", setting: Setting) =>
    seeds.map((seed) => session.plan(`final-${who}-s${seed}`, [`seeds=[${seed}]`, ...assignments(setting)], { kind: "final", rung: 0, epochs: studentEpochs, setting }));
  const configRuns = finals("config", {});
  const winnerRuns = same ? configRuns : finals("winner", s.winner.setting);
  // Every seed of one setting before the other's: the two runs of one seed share its baseline (the
  // model cache), so side by side one would only wait on the other's lock while it trains it.
  const done = await session.runner.runAll(same ? configRuns : [...configRuns, ...winnerRuns]);
  const byId = new Map(done.map((e) => [e.id, e]));
  const stats = (runs: Planned[]): SeedStats => {
    const outcomes = runs.map((p) => byId.get(p.job.id)!.outcome);
    const errors = outcomes.map((o) => o.testErrors[0]!);
    const { mean, std } = meanStd(errors);
    return { seeds, testErrors: errors, mean, std, baselineTestErrors: outcomes.map((o) => o.baselineTestErrors?.[0] ?? NaN) };
  };
  const trials = s.entries.map((e) => ({
    id: e.id, rung: e.rung, epochs: e.epochs, setting: e.setting, valAccuracy: e.outcome.valAccuracy, valLoss: e.outcome.valLoss,
    ...(e.outcome.baselineValAccuracy !== undefined ? { baselineValAccuracy: e.outcome.baselineValAccuracy } : {}),
    seconds: e.outcome.seconds, elapsedSeconds: e.elapsedSeconds,
  }));
  return {
    name: String(state.base["name"]), configPath: state.configPath, strategy: state.tune.strategy, keys,
    ...(state.tune.budget ? { budget: state.tune.budget } : {}),
    executor: state.queue ? `BullMQ queue ${state.queue}` : `local, ${state.concurrency} at once`,
    concurrency: state.concurrency, threads: state.threads,
    trials, skipped: s.skipped,
    winner: { id: s.winner.id, setting: s.winner.setting, valAccuracy: s.winner.outcome.valAccuracy },
    configSetting,
    final: finalStats(studentEpochs, byId.get(configRuns[0]!.job.id)!.outcome.testTotal, stats(configRuns), stats(winnerRuns), same),
    wallSeconds: Math.round(session.elapsed() * 10) / 10,
  };
}

function finalStats(epochs: number, testTotal: number, config: SeedStats, winner: SeedStats, same: boolean): TuneResults["final"] {
  return { epochs, testTotal, config, winner, ...(same ? {} : { comparison: comparePaired(winner.testErrors, config.testErrors) }) };
}

function pad(i: number): string {
  return String(i).padStart(3, "0");
}

function summary(r: TuneResults, dir: string): string {
  const f = (s: SeedStats) => `${s.mean.toFixed(1)}${s.testErrors.length > 1 ? ` ± ${s.std.toFixed(1)}` : ""}`;
  const setting = (s: Setting) => Object.entries(s).map(([k, v]) => `${k}=${v}`).join(" ");
  const c = r.final.comparison;
  const paired = c?.pValue != null ? `; paired by seed ${c.meanDifference >= 0 ? "+" : ""}${c.meanDifference.toFixed(1)} errors, p = ${c.pValue.toFixed(3)}: ${c.verdict}` : "";
  return `${r.name}: best ${setting(r.winner.setting)} (val_acc ${r.winner.valAccuracy.toFixed(4)}): ${f(r.final.winner)} test errors vs the config's ${setting(r.configSetting)}: ${f(r.final.config)} (of ${r.final.testTotal}, ${r.final.winner.testErrors.length} seeds)${paired}; ${dir}`;
}
