import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** git describe of the checkout when there is one, else the package version. */
export function codeVersion(): string {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  let version = "unknown";
  try {
    version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    // installed without package.json next to it
  }
  try {
    const git = execFileSync("git", ["describe", "--always", "--dirty"], { cwd: root, stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    return `${version}+${git}`;
  } catch {
    return version;
  }
}
