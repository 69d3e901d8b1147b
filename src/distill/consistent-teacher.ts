// Consistent teaching (kd.teaching: consistent): the teacher's outputs on the very batch the student
// trains on, after that batch's augmentations — function matching, Beyer et al. 2022 ("Knowledge
// distillation: a good teacher is patient and consistent", §3), where teacher and student see the
// same view of each image. The loss terms get teacher logits and taps as with the cache
// (teacher-outputs.ts); only their source differs:
//
//   InGraphTeacher   a teacher trained in this run: its forward pass is built into the student's
//                    step graph, eval mode, weights as initializers (no gradient reaches them), so
//                    one onnxruntime call does both networks' work
//   SessionTeacher   any teacher .onnx (a user's, adapted to raw pixels): its own session, run on
//                    each batch before the step, its outputs fed to the step like cached ones
//
// Both cost one teacher forward pass per training image per epoch, instead of one per transfer
// sample for the whole run (teacherPasses counts them).

import type { Batch } from "../data/batches.js";
import { formatShape, type Graph, type Value } from "../engine/graph.js";
import { decodeModel } from "../engine/onnx.js";
import * as F from "../engine/functional.js";
import { Session, type Tensor } from "../engine/runtime.js";
import type { Model } from "../nn/model.js";
import { ParameterSet } from "../nn/module.js";
import { exposeTensors, type TeacherBatch, type BatchTeacher } from "./teacher-outputs.js";

/** A teacher model of this run, built into each training step's graph. */
export class InGraphTeacher {
  readonly kind = "in-graph";

  constructor(
    readonly model: Model,
    readonly params: ParameterSet,
  ) {}

  /** The model's weights read back from its export (exportOnnx names each initializer after its parameter or buffer). */
  static fromExport(model: Model, onnxBytes: Uint8Array, where: string): InGraphTeacher {
    const stored = decodeModel(onnxBytes).initializers;
    const decls = model.declarations();
    const tensors = new Map(decls.map((d) => {
      const t = stored.get(d.name);
      if (!t || formatShape(t.dims) !== formatShape(d.shape)) throw new Error(`${where}: no weights of shape ${formatShape(d.shape)} for ${d.name}; was it exported from this teacher model?`);
      return [d.name, { dtype: "float32" as const, shape: d.shape, data: t.data }];
    }));
    return new InGraphTeacher(model, new ParameterSet(decls, tensors));
  }

  /** Logits and the layer outputs `tapNames` of the teacher on the step's input `x` (raw values, as the student gets them). */
  build(g: Graph, x: Value, tapNames: readonly string[]): { logits: Value; taps: Map<string, Value> } {
    return g.withScope("teacher", () => {
      const own = this.model.input.shape;
      // One data geometry, two layouts: a flat teacher reads a [C, H, W] student's batch as [C·H·W].
      const input = formatShape(x.shape.slice(1)) === formatShape(own) ? x : F.reshape(x, [-1, ...own], [x.shape[0]!, ...own]);
      const recorded = new Map<string, Value>();
      const { logits } = this.model.build(g, "eval", { kind: "initializers", params: this.params }, input, recorded);
      return { logits, taps: new Map(tapNames.map((t) => [t, recorded.get(t)!])) };
    });
  }
}

/** A teacher .onnx in a session of its own, run on each training batch; its outputs feed the step. */
export class SessionTeacher implements BatchTeacher {
  readonly kind = "session";
  /** Images this teacher has been run on. */
  passes = 0;

  private constructor(
    private readonly session: Session,
    private readonly inputName: string,
    private readonly sampleShape: number[],
    private readonly inputDType: "float32" | "int64",
    private readonly logitsName: string,
    /** Tap name → the tensor holding it in the teacher's graph. */
    private readonly tapTensors: Map<string, string>,
    readonly tapShapes: Map<string, number[]>,
  ) {}

  static async open(o: { bytes: Uint8Array; inputName: string; sampleShape: number[]; inputDType: "float32" | "int64"; logitsName: string; taps: Map<string, { tensor: string; sampleShape: number[] }> }): Promise<SessionTeacher> {
    const tensors = [...o.taps.values()].map((t) => t.tensor);
    const session = await Session.create(tensors.length ? exposeTensors(o.bytes, tensors) : o.bytes);
    return new SessionTeacher(session, o.inputName, o.sampleShape, o.inputDType, o.logitsName, new Map([...o.taps].map(([n, t]) => [n, t.tensor])), new Map([...o.taps].map(([n, t]) => [n, t.sampleShape])));
  }

  async forBatch(batch: Pick<Batch, "input" | "size" | "indices">, want: { logits: boolean; taps: readonly string[] }): Promise<TeacherBatch> {
    const fetch = [...(want.logits ? [this.logitsName] : []), ...want.taps.map((t) => this.tapTensors.get(t)!)];
    const x = { dtype: this.inputDType, shape: [batch.size, ...this.sampleShape], data: batch.input } as Tensor;
    const out = await this.session.run({ [this.inputName]: x }, undefined, fetch);
    this.passes += batch.size;
    // The step is queued with copies of its feeds, so these tensors may be handed over as they are.
    return {
      ...(want.logits ? { logits: out[this.logitsName]! } : {}),
      taps: new Map(want.taps.map((t) => [t, out[this.tapTensors.get(t)!]!])),
    };
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
