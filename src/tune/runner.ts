// Runs planned trials, in order, at most `concurrency` at a time, on an executor (local child
// processes or the BullMQ queue), and keeps the ledger: trials.jsonl, one line per finished trial,
// rewritten atomically (temporary file + rename) by this one process, so a kill -9 at any moment
// leaves either the old file or the new one. A trial already in the ledger is never run again.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RunAbortedError, UserError } from "../errors.js";
import { writeFileAtomic } from "../util/fs.js";
import type { Setting } from "./space.js";
import { runTrialChild, type TrialJob, type TrialOutcome } from "./trial.js";

export const LEDGER_FILE = "trials.jsonl";

export interface TrialMeta {
  kind: "teacher" | "trial" | "final" | "rung";
  /** Successive-halving rung (0 for grid and random). */
  rung: number;
  /** Student epochs of this trial. */
  epochs: number;
  setting: Setting;
}

export interface LedgerEntry extends TrialMeta {
  id: string;
  outcome: TrialOutcome;
  finishedAt: string;
  /** Seconds since the search started (active time, summed over resumes). */
  elapsedSeconds: number;
}

export interface Planned {
  job: TrialJob;
  meta: TrialMeta;
}

export interface Executor {
  /** Aborting `signal` settles the promise soon (rejected), with nothing of the trial left writing. */
  run(job: TrialJob, signal?: AbortSignal): Promise<TrialOutcome>;
  close(): Promise<void>;
}

export const localExecutor: Executor = { run: (job, signal) => runTrialChild(job, signal ? { signal } : {}), close: async () => undefined };

export class Runner {
  private ledgerText: string;
  readonly ledger = new Map<string, LedgerEntry>();

  constructor(
    private readonly dir: string,
    private readonly executor: Executor,
    private readonly concurrency: number,
    private readonly elapsed: () => number,
    private readonly log: (line: string) => void,
    /** Aborted: no trial starts, running ones are stopped, and runAll throws a RunAbortedError. */
    private readonly signal?: AbortSignal,
  ) {
    const path = join(dir, LEDGER_FILE);
    this.ledgerText = existsSync(path) ? readFileSync(path, "utf8") : "";
    for (const line of this.ledgerText.split("\n").filter(Boolean)) {
      const e = JSON.parse(line) as LedgerEntry;
      this.ledger.set(e.id, e);
    }
  }

  /**
   * Runs `planned` in order; `admit(p, finished)` is asked for every one (finished: already in the
   * ledger, which it must count but cannot refuse) and may refuse a new one (budget spent).
   * Returns the finished entries in plan order.
   */
  async runAll(planned: Planned[], admit: (p: Planned, finished: boolean) => boolean = () => true): Promise<LedgerEntry[]> {
    const running = new Set<Promise<void>>();
    let failure: Error | undefined;
    const aborted = () => this.signal?.aborted === true;
    for (const p of planned) {
      if (failure || aborted()) break;
      if (this.ledger.has(p.job.id)) {
        admit(p, true);
        continue;
      }
      while (running.size >= this.concurrency && !failure && !aborted()) await Promise.race(running);
      if (failure || aborted() || !admit(p, false)) continue;
      const started = this.executor.run(p.job, this.signal).then(
        (outcome) => this.record(p, outcome),
        (e: unknown) => void (failure ??= e instanceof Error ? e : new Error(String(e))),
      );
      const tracked: Promise<void> = started.finally(() => running.delete(tracked));
      running.add(tracked);
    }
    await Promise.all(running);
    // A trial stopped by the abort failed because of it: the search was stopped, not broken.
    if (aborted()) throw new RunAbortedError(this.dir, `distill resume ${this.dir}`, this.signal!.reason);
    if (failure) {
      if (failure instanceof UserError) throw failure;
      throw new Error(`${failure.message}; finished trials are kept, continue with: distill resume ${this.dir}`);
    }
    return planned.map((p) => this.ledger.get(p.job.id)).filter((e): e is LedgerEntry => e !== undefined);
  }

  private record(p: Planned, outcome: TrialOutcome): void {
    const entry: LedgerEntry = { id: p.job.id, ...p.meta, outcome, finishedAt: new Date().toISOString(), elapsedSeconds: Math.round(this.elapsed() * 10) / 10 };
    this.ledger.set(entry.id, entry);
    this.ledgerText += JSON.stringify(entry) + "\n";
    writeFileAtomic(join(this.dir, LEDGER_FILE), this.ledgerText);
    const what = p.meta.kind === "teacher" ? `teacher val_acc=${outcome.teacherValAccuracy?.toFixed(4) ?? "—"}` : `val_acc=${outcome.valAccuracy.toFixed(4)}`;
    this.log(`${p.meta.kind} ${entry.id}${Object.keys(p.meta.setting).length ? ` (${describe(p.meta.setting)}, ${p.meta.epochs} epochs)` : ""}: ${what} in ${outcome.seconds.toFixed(1)}s [${this.ledger.size} done]`);
  }
}

function describe(setting: Setting): string {
  return Object.entries(setting).map(([k, v]) => `${k}=${v}`).join(" ");
}
