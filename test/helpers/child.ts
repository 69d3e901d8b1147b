// A real `distill` child process for the tests that stop one mid-run (kill -9, Ctrl-C, SIGTERM):
// output collected, every wait with a deadline, and a child that exits early fails the wait at once
// with its stderr instead of hanging the suite. The run is held at a known point by the test-only
// barrier DISTILL_TEST_PAUSE_AFTER_EPOCH (src/distill/train-stage.ts), never by timing.

import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const CLI = join(dirname(fileURLToPath(import.meta.url)), "../../src/cli/main.js");

/** Generous: the slowest of these waits is a few epochs of a small MLP; a 5× slower machine fits. */
export const DEADLINE_MS = 600_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CliChild {
  readonly process: ChildProcess;
  readonly exited: Promise<Exit>;
  stdout = "";
  stderr = "";
  private exit: Exit | undefined;
  private readonly detached: boolean;

  /** `distill <args>`; `detached` puts it in a process group of its own (see killGroup). */
  constructor(args: string[], env: Record<string, string | undefined>, opts: { detached?: boolean } = {}) {
    this.detached = opts.detached === true;
    this.process = spawn(process.execPath, [CLI, ...args], { env, stdio: ["ignore", "pipe", "pipe"], detached: this.detached });
    this.process.stdout!.on("data", (d: Buffer) => (this.stdout += d.toString()));
    this.process.stderr!.on("data", (d: Buffer) => (this.stderr += d.toString()));
    // "close", not "exit": the output pipes are drained by then.
    this.exited = new Promise((resolve) => this.process.on("close", (code, signal) => resolve((this.exit = { code, signal }))));
  }

  /** Waits for a line of stdout matching `pattern` (the pause barrier's marker). */
  async waitForLine(pattern: RegExp, timeoutMs = DEADLINE_MS): Promise<string> {
    await this.waitUntil(() => this.stdout.split("\n").some((l) => pattern.test(l)), `a line matching ${pattern}`, timeoutMs);
    return this.stdout.split("\n").find((l) => pattern.test(l))!;
  }

  /** Polls `ready` until it holds; fails when the child exits first or the deadline passes (killing it). */
  async waitUntil(ready: () => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.exit) throw new Error(`distill exited (${this.exit.signal ?? `code ${this.exit.code}`}) before ${what}:\n${this.output()}`);
      if (Date.now() > deadline) {
        this.killAll();
        throw new Error(`no ${what} within ${timeoutMs / 1000} s:\n${this.output()}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** The end of what it printed, for a failure message. */
  output(): string {
    return `stdout: ${this.stdout.slice(-2000)}\nstderr: ${this.stderr.slice(-2000)}`;
  }

  /** SIGKILL to the child's whole process group (it must be `detached`): it and every process it started. */
  killGroup(): void {
    process.kill(-this.process.pid!, "SIGKILL");
  }

  /** After a failed wait: nothing of it may outlive the test. */
  private killAll(): void {
    if (this.exit) return;
    if (this.detached) this.killGroup();
    else this.process.kill("SIGKILL");
  }

  /** Waits for the exit, with a deadline (a child that ignores its signal fails the test, not hangs it). */
  async exitWithin(timeoutMs = DEADLINE_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.killAll();
        reject(new Error(`distill did not exit within ${timeoutMs / 1000} s:\n${this.output()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Computes `make()` once, on first use: a test that needs a fixture works run alone or after the others. */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}
