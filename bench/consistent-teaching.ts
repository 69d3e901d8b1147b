// `node dist/bench/consistent-teaching.js [IMAGES] [ROUNDS]`: what kd.teaching: consistent costs per
// optimizer step against cached soft targets, with examples/fashion-mnist.yaml's teacher (CNN,
// 0.82M parameters) and student (CNN, 20k), batch 128, on MNIST images (same geometry). Each round
// trains one student epoch on IMAGES images three ways, interleaved so they share the machine's
// load: cached (teacher logits gathered from memory), consistent with the teacher built into the
// step graph, consistent with the teacher's .onnx in a session of its own per batch. Prints
// milliseconds per step of each (JSON lines) and the load average.

import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig } from "../src/config/load.js";
import { loadDataset } from "../src/data/datasets.js";
import { InGraphTeacher, SessionTeacher } from "../src/distill/consistent-teacher.js";
import { TeacherOutputs, type BatchTeacher } from "../src/distill/teacher-outputs.js";
import { trainStage } from "../src/distill/train-stage.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel, dataGeometry } from "../src/nn/spec.js";
import { createProgress } from "../src/util/progress.js";
import "../src/distill/methods/index.js";

const [imagesArg = "2048", roundsArg = "3"] = process.argv.slice(2);
const images = Number(imagesArg), rounds = Number(roundsArg);
const config = loadConfig(join(import.meta.dirname, "..", "..", "examples", "fashion-mnist.yaml"));
const mnist = loadDataset("mnist");
const geometry = dataGeometry(mnist.train);
const teacherModel = buildModel(config.teacher!.model!, mnist.classLabels, geometry);
const teacherBytes = exportOnnx(teacherModel, teacherModel.initParameters(1));
const indices = Int32Array.from({ length: images }, (_, i) => i);
const classifier = await OnnxClassifier.fromBytes(teacherBytes, "teacher");
const cached = new TeacherOutputs(TeacherOutputs.rowsFor(indices, mnist.train.count), { sampleShape: [10], data: await classifier.logits(mnist.train, indices) }, new Map());
await classifier.dispose();
const train = { ...config.student.train, epochs: 1, jitter: 2, flip: true };
const dir = mkdtempSync(join(os.tmpdir(), "distill-bench-consistent-"));
const silent = createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });

async function msPerStep(name: string, teacher: BatchTeacher | InGraphTeacher): Promise<number> {
  const model = buildModel(config.student.model, mnist.classLabels, geometry);
  const { history } = await trainStage({
    stage: name, seed: 0, model, train, terms: config.kd.terms, set: mnist.train, trainIndices: indices, validationIndices: new Int32Array(0),
    useLabels: true, teacher, checkpointPath: join(dir, `${name}.ckpt`), progress: silent,
  });
  rmSync(join(dir, `${name}.ckpt`), { force: true });
  return (history[0]!.seconds * 1000) / Math.floor(images / train.batchSize);
}

for (let round = 0; round < rounds; round++) {
  const session = await SessionTeacher.open({ bytes: teacherBytes, inputName: "input", sampleShape: teacherModel.input.shape, inputDType: "float32", logitsName: "logits", taps: new Map() });
  const row = {
    round,
    cachedMs: await msPerStep("cached", cached),
    inGraphMs: await msPerStep("in-graph", InGraphTeacher.fromExport(teacherModel, teacherBytes, "teacher")),
    sessionMs: await msPerStep("session", session),
    loadavg1m: Number(os.loadavg()[0]!.toFixed(2)),
  };
  await session.dispose();
  console.log(JSON.stringify({ ...row, cachedMs: Number(row.cachedMs.toFixed(1)), inGraphMs: Number(row.inGraphMs.toFixed(1)), sessionMs: Number(row.sessionMs.toFixed(1)) }));
}
rmSync(dir, { recursive: true, force: true });
