// A whole distillation from code: the config object is what a YAML file would hold, validated by
// the same schema. Run it with `node dist/examples/library.js [run-folder]` after `npm run build`;
// test/library.test.ts runs it and checks that README.md shows exactly this file.
import { distill, evaluate, type DistillConfigInput } from "distill";

const config: DistillConfigInput = {
  name: "library-example",
  data: { dataset: "mnist", trainLimit: 3000, testLimit: 1000 },
  teacher: {
    model: { layers: [{ type: "linear", units: 256 }, { type: "relu" }, { type: "linear", units: 10 }] },
    train: { epochs: 2, optimizer: { kind: "adam", lr: 0.001 } },
  },
  // A custom student: a tiny CNN on 28×28 images (conv layers make the input [N, 1, 28, 28]).
  student: {
    model: {
      layers: [
        { type: "conv", filters: 4, kernel: 5, stride: 2 }, { type: "relu" },
        { type: "flatten" }, { type: "linear", units: 10 },
      ],
    },
    train: { epochs: 2, optimizer: { kind: "adam", lr: 0.003 } },
  },
  kd: { temperature: 4, alpha: 0.7 },
};

const { runDir, results } = await distill(config, { output: process.argv[2] ?? "runs/library-example" });
for (const m of results.models) console.log(`${m.role}: ${m.summary.errors.mean} errors of ${m.perSeed[0]!.total}`);

// Any exported model can be measured again; its metadata names the dataset it was trained on.
const student = await evaluate(`${runDir}/student.onnx`, { limit: 500 });
console.log(`student on 500 test images: accuracy ${student.accuracy.toFixed(3)}, ${student.params} parameters`);
