import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import "../src/distill/methods/index.js";
import { loadConfig } from "../src/config/load.js";

// Every shipped config must load as written: a renamed key or a stale value in an example is a
// broken README line. (Files a config points at are checked when it runs, not here.)
test("every examples/*.yaml loads and validates", () => {
  const dir = join(import.meta.dirname, "..", "..", "examples");
  const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
  assert.ok(files.length >= 20, `found ${files.length} example configs`);
  for (const f of files) {
    const config = loadConfig(join(dir, f));
    assert.equal(typeof config.name, "string", f);
  }
  const long = loadConfig(join(dir, "hinton-mnist-long.yaml"));
  assert.equal(long.teacher?.train?.optimizer.maxNorm, 3.5);
});
