// A whole distillation from code: the config object is what a YAML file would hold, validated by
// the same schema. Run it with `node dist/examples/library.js [run-folder]` after `npm run build`;
// test/library.test.ts runs it and checks that README.md shows exactly this file.
import { distill, evaluate, headline, type DistillConfigInput } from "distill";

const config: DistillConfigInput = {
  name: "library-example",
  seeds: 5, // baseline and distilled student trained with seeds 0–4, paired by seed
  data: { dataset: "mnist", trainLimit: 5000, testLimit: 1000 },
  // A CNN teacher (conv layers make the input [N, 1, 28, 28]); about 35 errors in 1,000.
  teacher: {
    model: {
      layers: [
        { type: "conv", filters: 16, kernel: 5 }, { type: "relu" }, { type: "maxpool", size: 2 },
        { type: "conv", filters: 32, kernel: 5 }, { type: "relu" }, { type: "maxpool", size: 2 },
        { type: "flatten" }, { type: "linear", units: 10 },
      ],
    },
    train: { epochs: 6, jitter: 1, optimizer: { kind: "adam", lr: 0.002 } },
  },
  // A one-conv student: 11,738 parameters against the teacher's 18,378, and 1.6× faster.
  student: {
    model: { layers: [{ type: "conv", filters: 8, kernel: 5, stride: 2 }, { type: "relu" }, { type: "flatten" }, { type: "linear", units: 10 }] },
    train: { epochs: 12, optimizer: { kind: "adam", lr: 0.003 } },
  },
  kd: { temperature: 4, alpha: 0.9 },
};

const { runDir, results } = await distill(config, { output: process.argv[2] ?? "runs/library-example" });
for (const m of results.models) console.log(`${m.role}: ${m.summary.errors.mean} errors of ${m.perSeed[0]!.total}`);
// The gain, paired by seed, with its 95 % interval (the report's headline).
const gain = headline(results).baseline!.errors;
console.log(`distilled − baseline: ${gain.mean.toFixed(1)} errors, 95 % interval [${gain.ci95!.map((x) => x.toFixed(1)).join(", ")}]`);

// Any exported model can be measured again; its metadata names the dataset it was trained on.
const student = await evaluate(`${runDir}/student.onnx`, { limit: 500 });
console.log(`student on 500 test images: accuracy ${student.accuracy.toFixed(3)}, ${student.params} parameters`);
