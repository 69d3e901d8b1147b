// A finished `distill run` folder in seconds: MNIST subset, MLP teacher, small CNN student, 1 epoch
// each — for tests of the commands that work on run folders (compare, export-web).

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig } from "../../src/config/load.js";
import { runDistillation } from "../../src/run/pipeline.js";
import { createProgress } from "../../src/util/progress.js";

export async function tinyRun(name: string): Promise<{ runDir: string; cacheDir: string; root: string }> {
  const root = mkdtempSync(join(tmpdir(), `distill-${name}-`));
  const path = join(root, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 3000, validation: 500, testLimit: 500 }
teacher:
  model: { layers: [ {type: linear, units: 128}, {type: relu}, {type: linear, units: 64}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: adam, lr: 0.002} }
student:
  model:
    input: image
    layers: [ {type: conv, filters: 4, kernel: 3, padding: 1}, {type: relu}, {type: maxpool, size: 2}, {type: flatten}, {type: linear, units: 10} ]
  train: { epochs: 2, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
kd: { temperature: 2, alpha: 0.5 }
`);
  const cacheDir = join(root, "cache");
  const silent = createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
  const { runDir } = await runDistillation(loadConfig(path, { output: join(root, "run") }), { configPath: path, quiet: true, cacheDir, progress: silent });
  return { runDir, cacheDir, root };
}
