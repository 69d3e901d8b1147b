// What a queue job is, as far as the queue is concerned: an envelope naming the job format and the
// distill that made it, a kind, an id, and the kind's own fields. Redis is the trust boundary: a
// worker takes nothing in a job as given. Each kind brings a zod schema (strict: an unknown field is
// refused too) and a `prepare` step that checks what a schema cannot (the config a job carries) and
// confines every path the job names under the worker's --root, after symlinks.

import { lstatSync, realpathSync } from "node:fs";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { UserError } from "../errors.js";
import { distillVersion } from "../util/version.js";

/**
 * The layout of a job's data. Format 1 was the jobs before the envelope (absolute paths, no format
 * field); 2 adds the envelope and paths relative to the worker's root.
 */
export const JOB_FORMAT = 2;

export interface Envelope {
  format: number;
  /** The version of the distill that enqueued the job. */
  distill: string;
  kind: string;
  id: string;
}

export function envelope(kind: string, id: string): Envelope {
  return { format: JOB_FORMAT, distill: distillVersion(), kind, id };
}

/** A job refused before it ran: `field` names what is wrong in the job's data. */
export class RefusedJob extends Error {
  override name = "RefusedJob";
  constructor(
    readonly field: string,
    readonly why: string,
  ) {
    super(`${field}: ${why}`);
  }
}

// ---- fields that kinds' schemas share --------------------------------------------------------

export const jobId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, "expected an id of letters, digits, '.', '_' and '-'");
/** A path as a job carries it: relative to the worker's root (an absolute one must lie inside it too). */
export const jobPath = z.string().min(1).max(4096).refine((p) => !p.includes("\0"), "expected a path without NUL characters");
export const threadCount = z.number().int().min(1).max(1024);

const envelopeSchema = z.object({
  format: z.number().int(),
  distill: z.string().regex(/^[A-Za-z0-9.+_-]{1,100}$/, "expected a version like 0.1.0"),
  kind: z.string().max(100),
  id: jobId,
});

/** A kind of job a worker runs, T being its data (envelope fields included). */
export interface JobKind<T extends Envelope = Envelope> {
  kind: string;
  schema: z.ZodType<T>;
  /** Log and message name, e.g. "trial t003" or "label shard 1/4". */
  describe(job: T): string;
  /**
   * Checks beyond the schema and rewrites every path the job names through `confine` (which
   * returns it absolute, real and inside the root, or throws RefusedJob naming `field`).
   */
  prepare(job: T, confine: (field: string, path: string) => string): Promise<T>;
  /** Its result in a few words for the worker's log, e.g. "val_acc=0.9120". */
  summarize?(result: unknown): string;
  /** Runs the prepared job (its paths absolute, inside `root`); `signal` aborts it when the worker loses the job. */
  run(job: T, context: { root: string; worker: string; signal: AbortSignal }): Promise<unknown>;
}

/** The first problem with `data` as a job of one of `kinds`, as a RefusedJob; else the kind and the parsed job. */
export function parseJob(data: unknown, kinds: readonly JobKind[]): { kind: JobKind; job: Envelope } {
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new RefusedJob("data", "expected a job object");
  const record = data as Record<string, unknown>;
  if (!("format" in record)) throw new RefusedJob("format", `missing: the job was made by a distill before job format ${JOB_FORMAT}; run workers of the coordinator's version`);
  const head = envelopeSchema.safeParse(data);
  if (!head.success) throw refusal(head.error);
  const { format, distill, kind: name } = head.data;
  if (format !== JOB_FORMAT)
    throw new RefusedJob("format", `job format ${format} (made by distill ${distill}); this worker (distill ${distillVersion()}) reads job format ${JOB_FORMAT}: run workers of the coordinator's version`);
  const kind = kinds.find((k) => k.kind === name);
  if (!kind) throw new RefusedJob("kind", `expected one of ${kinds.map((k) => k.kind).join(", ")}, got ${JSON.stringify(name)}`);
  const body = kind.schema.safeParse(data);
  if (!body.success) throw refusal(body.error);
  return { kind, job: body.data };
}

function refusal(error: z.ZodError): RefusedJob {
  const issue = error.issues[0]!;
  const field = issue.path.length ? issue.path.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i ? "." : ""}${String(k)}`)).join("") : "data";
  return new RefusedJob(field, issue.message);
}

// ---- paths under a root -----------------------------------------------------------------------

/**
 * `path` (relative to `base`, by default the root, or absolute) as an absolute path with every symlink of its existing
 * part resolved; refused when that lies outside `root` (itself real and absolute). The part that
 * does not exist yet is taken as written: the job would create it, inside whatever it hangs from.
 */
export function confineUnder(root: string, field: string, path: string, base = root): string {
  const wanted = resolve(base, path);
  const rest: string[] = [];
  let existing = wanted;
  for (;;) {
    try {
      lstatSync(existing);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new RefusedJob(field, `${JSON.stringify(path)}: cannot look it up (${code ?? String(e)})`);
      rest.unshift(basename(existing));
      existing = dirname(existing);
    }
  }
  let real: string;
  try {
    real = join(realpathSync(existing), ...rest);
  } catch (e) {
    // A symlink that leads nowhere: where a write through it would land cannot be checked.
    throw new RefusedJob(field, `${JSON.stringify(path)}: ${existing} is a symlink to nothing (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!isInside(root, real)) throw new RefusedJob(field, `${JSON.stringify(path)} resolves to ${real}, outside the root ${root}`);
  return real;
}

export function isInside(root: string, path: string): boolean {
  const r = relative(root, path);
  return r === "" || (!r.startsWith(`..${sep}`) && r !== ".." && !isAbsolute(r));
}

/**
 * On the coordinator: `path` as it names it (relative to its working folder) → relative to the
 * queue root, as jobs carry it; a UserError naming `field` when it lies outside the root.
 */
export function relativeToRoot(root: string, field: string, path: string): string {
  try {
    return relative(root, confineUnder(root, field, path, process.cwd())) || ".";
  } catch (e) {
    if (e instanceof RefusedJob) throw new UserError("--root", `${e.message}: workers see only paths under their --root; choose a --root that holds it, or move it there`);
    throw e;
  }
}

/** The root as given on the command line (`where`): absolute, symlinks resolved; it must be an existing folder. */
export function realRoot(dir: string, where: string): string {
  let real: string;
  try {
    real = realpathSync(resolve(dir));
  } catch (e) {
    throw new UserError(where, `${dir}: no such folder (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!lstatSync(real).isDirectory()) throw new UserError(where, `${dir}: not a folder`);
  return real;
}
