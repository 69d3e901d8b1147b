// What the frozen teacher gives the student's training: its logits and, for feature and relation
// methods, some of its intermediate tensors ("taps"), on every example of the transfer set.
//
// Choice: both are computed once and cached on disk (float32), never recomputed per epoch, seed or
// run. At this project's scale (≤ 60k 28×28 images) a tap after a pooling layer is a few MB to a
// few hundred MB, so one teacher pass over the transfer set beats running the frozen teacher inside
// every training step (epochs × seeds × stages passes), and the same code serves a user's .onnx
// teacher, which we could not rebuild inside our training graph. A tap bigger than
// MAX_TAP_CACHE_BYTES is refused before training with a hint to tap a smaller layer. The cost is
// that feature targets come from unjittered images (as the logits already did). Every teacher pass
// is counted (`computedSamples`), so "teacher forward passes" in the run stays honest. The other
// choice, the teacher run on each (augmented) training batch, is kd.teaching: consistent
// (consistent-teacher.ts); this file's TeacherOutputs is its cached counterpart.
//
// Taps are exposed by graph surgery: the tapped tensors become extra graph outputs. Our own
// exports record where each layer's output lives (metadata "distill.taps"); for any other .onnx
// teacher a tap is named by its tensor name.

import { createHash } from "node:crypto";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import type { Batch } from "../data/batches.js";
import { gatherSamples, type SampleSet } from "../data/sample-set.js";
import { tensorOf, type Shape } from "../engine/graph.js";
import type { Tensor } from "../engine/runtime.js";
import { Session } from "../engine/runtime.js";
import { cachedPayload } from "../util/cache-file.js";
import { softTargetKey } from "./soft-targets.js";

const { onnx } = onnxProto;

/** Cached taps larger than this are refused (tap a pooled layer, or lower data.trainLimit). */
export const MAX_TAP_CACHE_BYTES = 1 << 30;

/** One cached teacher tensor: row r = the example trainIndices[r]. */
export interface CachedTensor {
  sampleShape: number[];
  data: Float32Array;
}

/** What the loss is fed from the teacher for one batch: its logits [N, K] and taps [N, …]. */
export interface TeacherBatch {
  logits?: Tensor;
  taps: Map<string, Tensor>;
}

/** Where a stage gets the teacher's outputs batch by batch (cached rows, or the teacher run on the batch: consistent-teacher.ts). */
export interface BatchTeacher {
  readonly kind: "cached" | "session";
  /** Per-sample shapes of the taps it can give. */
  readonly tapShapes: Map<string, number[]>;
  forBatch(batch: Pick<Batch, "input" | "size" | "indices">, want: { logits: boolean; taps: readonly string[] }): Promise<TeacherBatch>;
  dispose?(): Promise<void>;
}

/** The teacher's cached outputs on the transfer set, and the per-batch gather the trainer feeds. */
export class TeacherOutputs implements BatchTeacher {
  readonly kind = "cached";

  constructor(
    /** Row of each example index in the cached tensors (-1: not in the transfer set). */
    readonly rowOf: Int32Array,
    readonly logits: CachedTensor | undefined,
    readonly taps: Map<string, CachedTensor>,
  ) {}

  get tapShapes(): Map<string, number[]> {
    return new Map([...this.taps].map(([name, t]) => [name, t.sampleShape]));
  }

  /** The cached rows of a batch's examples: the teacher's outputs on their clean, unaugmented inputs. */
  async forBatch(batch: Pick<Batch, "indices">, want: { logits: boolean; taps: readonly string[] }): Promise<TeacherBatch> {
    if (want.logits && !this.logits) throw new Error("the loss needs the teacher's logits, but none were cached");
    return {
      ...(want.logits ? { logits: this.gather(this.logits!, batch.indices) } : {}),
      taps: new Map(want.taps.map((t) => [t, this.gather(this.taps.get(t)!, batch.indices)])),
    };
  }

  static rowsFor(indices: Int32Array, exampleCount: number): Int32Array {
    const rowOf = new Int32Array(exampleCount).fill(-1);
    indices.forEach((idx, row) => (rowOf[idx] = row));
    return rowOf;
  }

  /** The rows of `t` for a batch of example indices, as a graph feed. */
  gather(t: CachedTensor, indices: ArrayLike<number>): Tensor {
    const size = t.sampleShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(indices.length * size);
    for (let i = 0; i < indices.length; i++) {
      const row = this.rowOf[indices[i]!]!;
      if (row < 0) throw new Error(`example ${indices[i]} has no cached teacher output`);
      out.set(t.data.subarray(row * size, (row + 1) * size), i * size);
    }
    return { dtype: "float32", shape: [indices.length, ...t.sampleShape], data: out };
  }
}

/** Where each tap lives in a teacher .onnx, and its shape when known. */
export interface TeacherTap {
  tensor: string;
  shape?: Shape;
}

/** Available taps of a teacher .onnx: our layer names (from metadata), else every node output by tensor name. */
export function teacherTapsOf(bytes: Uint8Array): Map<string, TeacherTap> {
  const model = onnx.ModelProto.decode(bytes);
  const recorded = (model.metadataProps ?? []).find((p) => p.key === "distill.taps")?.value;
  if (recorded) return new Map(Object.entries(JSON.parse(recorded) as Record<string, TeacherTap>));
  const taps = new Map<string, TeacherTap>();
  for (const node of model.graph?.node ?? []) for (const out of node.output ?? []) if (out) taps.set(out, { tensor: out });
  return taps;
}

/** The model with `tensors` added as float outputs (shapes left for onnxruntime to infer). */
export function exposeTensors(bytes: Uint8Array, tensors: string[]): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((o) => o.name));
  for (const name of tensors)
    if (!present.has(name)) graph.output = [...(graph.output ?? []), { name, type: { tensorType: { elemType: 1 } } }];
  return onnx.ModelProto.encode(model).finish();
}

/** Runs the teacher once on one example to learn the shapes of taps whose shapes are not recorded. */
export async function probeTapShapes(bytes: Uint8Array, inputName: string, sampleShape: number[], tensors: string[]): Promise<Map<string, number[]>> {
  const session = await Session.create(exposeTensors(bytes, tensors), { threads: 1 });
  try {
    const x: Tensor = { dtype: "float32", shape: [1, ...sampleShape], data: new Float32Array(sampleShape.reduce((a, b) => a * b, 1)) };
    const out = await session.run({ [inputName]: x }, undefined, tensors);
    return new Map(tensors.map((t) => [t, out[t]!.shape.slice(1)]));
  } finally {
    await session.dispose();
  }
}

/**
 * The teacher's taps on the transfer set, each from the cache or, if any is missing, all computed
 * in one teacher pass and cached (checksummed, under a lock: src/util/cache-file.ts).
 * `computedSamples` is the number of teacher forward passes this call ran.
 */
export async function teacherTapTargets(o: {
  teacherBytes: Uint8Array;
  inputName: string;
  inputShape: number[];
  taps: Map<string, { tensor: string; sampleShape: number[] }>;
  set: SampleSet;
  indices: Int32Array;
  cacheDir: string;
  onProgress?: (done: number) => void;
  onWarning?: (message: string) => void;
}): Promise<{ taps: Map<string, CachedTensor>; computedSamples: number }> {
  const base = softTargetKey(o.teacherBytes, o.set, o.indices);
  const fileOf = (tensor: string) => join(o.cacheDir, "teacher-taps", `${createHash("sha256").update(`${base}:${tensor}`).digest("hex").slice(0, 32)}.bin`);
  const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  let pass: Promise<Map<string, Float32Array>> | undefined;
  const taps = new Map<string, CachedTensor>();
  for (const [name, tap] of o.taps) {
    const { payload } = await cachedPayload(fileOf(tap.tensor), o.indices.length * sizeOf(tap.sampleShape) * 4, async () => {
      pass ??= runTeacherPass(o);
      const data = (await pass).get(name)!;
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    }, { onWarning: o.onWarning });
    taps.set(name, { sampleShape: tap.sampleShape, data: new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength)) });
  }
  return { taps, computedSamples: pass ? o.indices.length : 0 };
}

/** One forward pass of the teacher over the transfer set, fetching every requested tap. */
async function runTeacherPass(o: Parameters<typeof teacherTapTargets>[0]): Promise<Map<string, Float32Array>> {
  const named = [...o.taps];
  const tensors = named.map(([, t]) => t.tensor);
  const session = await Session.create(exposeTensors(o.teacherBytes, tensors));
  try {
    const outs = named.map(([, t]) => new Float32Array(o.indices.length * t.sampleShape.reduce((a, b) => a * b, 1)));
    const batchSize = 250;
    for (let start = 0; start < o.indices.length; start += batchSize) {
      const n = Math.min(batchSize, o.indices.length - start);
      const x = gatherSamples(o.set, o.indices.subarray(start, start + n));
      const res = await session.run({ [o.inputName]: tensorOf([n, ...o.inputShape], x) }, undefined, tensors);
      named.forEach(([, t], j) => outs[j]!.set(res[t.tensor]!.data as Float32Array, (start * outs[j]!.length) / o.indices.length));
      o.onProgress?.(start + n);
    }
    return new Map(named.map(([name], j) => [name, outs[j]!]));
  } finally {
    await session.dispose();
  }
}
