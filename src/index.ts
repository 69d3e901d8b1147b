// Public API of distill.
export { Graph, Value, ShapeError, type Shape, type Dim, type DType } from "./engine/graph.js";
export * as ops from "./engine/ops.js";
export { gradients } from "./engine/autodiff.js";
export { encodeModel, decodeModel, OPSET } from "./engine/onnx.js";
export { Session, type HostTensor } from "./engine/runtime.js";
export { type OptimizerConfig } from "./engine/optimizers.js";
export { compileTrainStep, TrainingSession } from "./engine/training.js";
export * from "./nn/layers.js";
export { Module, ForwardContext, ParameterSet, type ParamDecl } from "./nn/module.js";
export { Model, exportOnnx, type InputSpec, type ExportOptions } from "./nn/model.js";
export { ModelTrainer, type LossContext, type LossResult } from "./nn/train-step.js";
export * as losses from "./nn/losses.js";
export { Rng } from "./nn/random.js";
export { kdLoss, type KdLossInput } from "./distill/kd-loss.js";
