// A job (a trial, a labelling shard) in a child process of its own: a queue worker's event loop
// stays free to renew the job's lock while the child trains, and a worker that loses the job can
// kill it. The child runs `fn` of `module` on the job (./job-child.ts) and dies with its parent.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { UserError } from "../errors.js";

const ENTRY = fileURLToPath(new URL("./job-child.js", import.meta.url));

export interface ChildJob {
  /** The module (a file URL) whose export `fn(job)` runs the job in the child; its result is printed as JSON. */
  module: string;
  fn: string;
  job: object;
  /** The job in messages, e.g. "trial t003". */
  what: string;
  /** onnxruntime intra-op threads of the child. */
  threads: number;
  cacheDir: string;
  cwd?: string;
  /** Kills the child (the job was lost: another worker may take it over). */
  signal?: AbortSignal;
  /** Each complete stdout line as it comes (a child's progress), besides the tail given to `read`. */
  onLine?: (line: string) => void;
}

/**
 * Runs the job; `read(stdout)` makes its result once the child has exited 0. Exit code 2 (the user
 * can fix it) comes back as a UserError naming `what`, with the child's own message.
 */
export function runInChild<T>(c: ChildJob, read: (stdout: string) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENTRY, c.module, c.fn, JSON.stringify(c.job)], {
      // The parent's pid, not the child's own ppid at start-up: a parent killed while the child is
      // still starting would otherwise be missed (the child would see init as its parent from the start).
      env: { ...process.env, DISTILL_THREADS: String(c.threads), DISTILL_CACHE: c.cacheDir, DISTILL_JOB_PARENT: String(process.pid) },
      stdio: ["ignore", "pipe", "pipe"],
      ...(c.cwd !== undefined ? { cwd: c.cwd } : {}),
    });
    let stderr = "";
    let stdout = "";
    let aborted: string | undefined;
    const abort = () => {
      aborted = String(c.signal?.reason ?? "aborted");
      child.kill("SIGKILL");
    };
    c.signal?.addEventListener("abort", abort, { once: true });
    let partial = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-4000);
      if (!c.onLine) return;
      const lines = (partial + d.toString()).split("\n");
      partial = lines.pop()!;
      for (const line of lines) c.onLine(line);
    });
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      c.signal?.removeEventListener("abort", abort);
      const last = stderr.split("\n").find((l) => l.startsWith("distill: ")) ?? stderr.trim().split("\n").pop() ?? "";
      if (aborted !== undefined) reject(new Error(`${c.what} stopped: ${aborted}`));
      else if (code === 0) {
        try {
          resolve(read(stdout));
        } catch (e) {
          reject(e as Error);
        }
      } else if (code === 2) reject(new UserError(c.what, last.replace(/^distill: /, "")));
      else reject(new Error(`${c.what} stopped (${signal ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ""}`));
    });
  });
}

/** The last stdout line of a child as JSON (what job-child.ts prints). */
export function lastJsonLine(stdout: string): unknown {
  return JSON.parse(stdout.trim().split("\n").pop()!);
}
