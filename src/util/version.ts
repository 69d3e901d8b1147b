// The version of this distill, from its package.json: shown by --version and written into every
// queue job, so that a worker of another version can say which one made a job it cannot read.

import { readFileSync } from "node:fs";

let cached: string | undefined;

export function distillVersion(): string {
  if (cached !== undefined) return cached;
  // dist/src/util/version.js (or src/util/version.ts) → package.json at the repository or installed package root.
  for (const rel of ["../../../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "distill" && pkg.version) return (cached = pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return (cached = "unknown");
}
