// Optional test dependencies — Debian's redis-server and dataset-fashion-mnist, the npm package
// sentiment's texts. Locally a test that lacks one skips and says what is missing and how to get
// it; under CI=true (`.ci/run` installs them all) a missing one is a failure, never a silent skip.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { FASHION_MNIST_DIR } from "../../src/data/datasets.js";

export const CI = process.env["CI"] === "true";

/**
 * Whether the test must stop for lack of `what` (`missing`: why it is missing, or undefined when
 * it is there): skips it locally, fails it under CI=true.
 */
export function lacks(t: TestContext, what: string, missing: string | undefined): boolean {
  if (missing === undefined) return false;
  if (CI) assert.fail(`${what} is missing (${missing}), and CI=true requires it`);
  t.skip(`${what} is missing (${missing}); skipped`);
  return true;
}

/** Why Fashion-MNIST cannot be loaded, or undefined when its four IDX files are there (gzipped or not). */
export function fashionMnistMissing(): string | undefined {
  const files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
  const absent = files.filter((f) => !existsSync(join(FASHION_MNIST_DIR, f)) && !existsSync(join(FASHION_MNIST_DIR, `${f}.gz`)));
  return absent.length ? `no ${absent.join(", ")} in ${FASHION_MNIST_DIR}; apt-get install dataset-fashion-mnist` : undefined;
}

/** Why the sentiment package's UCI sentences cannot be read, or undefined when they are there. */
export function sentimentMissing(): string | undefined {
  try {
    const dir = join(createRequire(import.meta.url).resolve("sentiment/package.json"), "..", "test", "fixtures");
    return existsSync(join(dir, "amazon.json")) ? undefined : `no ${join(dir, "amazon.json")}`;
  } catch {
    return "the npm package sentiment is not installed (a devDependency: npm ci)";
  }
}
