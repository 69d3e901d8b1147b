// Writes that never leave a half-written file: write a temporary sibling, then rename over.

import { mkdirSync, renameSync, writeFileSync, rmSync } from "node:fs";
import { dirname, basename, join } from "node:path";

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    // A failed write(2) on the descriptor carries no path: name the file we were writing.
    const err = e as NodeJS.ErrnoException;
    if (err && typeof err === "object" && !err.path) err.path = path;
    throw e;
  }
}
