// Errors a user can fix (bad config, missing data, truncated model): the CLI prints the message
// as one line and exits with code 2, without a stack trace unless --debug.

export class UserError extends Error {
  override name = "UserError";
  /** `where` is the file (and field) at fault, e.g. "examples/x.yaml: student.layers[1].units". */
  constructor(
    readonly where: string,
    readonly what: string,
  ) {
    super(`${where}: ${what}`);
  }
}

/**
 * A run or search stopped by its AbortSignal (the CLI's Ctrl-C or SIGTERM) at a safe point: every
 * file is written whole, finished work is kept, and `resumeCommand` continues it.
 */
export class RunAbortedError extends Error {
  override name = "RunAbortedError";
  constructor(
    /** The run, tune or shrink folder. */
    readonly folder: string,
    readonly resumeCommand: string,
    /** The signal's reason (the CLI aborts with the signal's name, "SIGINT" or "SIGTERM"). */
    readonly reason?: unknown,
  ) {
    super(`stopped; finished work is kept, continue with: ${resumeCommand}`);
  }
}
