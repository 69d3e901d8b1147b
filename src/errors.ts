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
