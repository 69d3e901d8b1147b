// The run config a queue job carries (a trial's, a labelling shard's), validated in the worker
// before anything runs: whoever can write to Redis wrote it. A bad one is refused naming the key.

import { validateConfig } from "../config/load.js";
import type { DistillConfig } from "../config/schema.js";
import { UserError } from "../errors.js";
import { RefusedJob } from "../queue/job.js";

export async function validateJobConfig(doc: Record<string, unknown>): Promise<DistillConfig> {
  await import("./methods/index.js"); // the kd: block validates against the registered methods
  try {
    return validateConfig(doc, "config");
  } catch (e) {
    if (e instanceof UserError) throw new RefusedJob("config", e.what);
    throw e;
  }
}
