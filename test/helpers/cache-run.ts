// The config the model-cache tests run as real `distill run` processes (teacher-cache, baseline-cache):
// a slice of MNIST, an MLP teacher of 2 epochs and a linear student, written into `dir`.

import { writeFileSync } from "node:fs";
import { join } from "node:path";

export function cacheRunConfig(dir: string, name: string, kd: string, studentEpochs = 1): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 1500, validation: 300, testLimit: 300 }
teacher:
  model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
student:
  model: { layers: [ {type: linear, units: 10} ] }
  train: { epochs: ${studentEpochs}, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
${kd}
`);
  return path;
}
