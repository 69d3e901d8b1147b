// Public API of distill (ESM only: `import … from "distill"`).
//
// Top level — everything the CLI does:
//   distill(config) runs a whole distillation from the same object as a YAML config;
//   resume(runDir), evaluate(model), loadDataset(name), writeReport(runDir).
// Loss functions on plain arrays (kdLoss, dkdLoss, rkdLoss, attentionLoss, similarityLoss) sit next to their graph-building forms (losses.kdLossGraph).
// Lower levels — data, models, methods, the soft-target cache, the trainer and the engine — are
// exported for custom pipelines.

// ---- the whole job ----
export { distill, resume, evaluate, type DistillOptions, type EvaluateOptions } from "./api.js";
export { runDistillation, resumeDistillation, type PipelineOptions } from "./run/pipeline.js";
export { loadConfig, loadRunConfig, validateConfig, validateSeq2SeqConfig, configFromObject, type ConfigOverrides, type RunConfig } from "./config/load.js";
export { runSeq2Seq, resumeSeq2SeqRun, type Seq2SeqRunOptions } from "./run/seq2seq/pipeline.js";
export type { Seq2SeqConfig } from "./config/seq2seq.js";
export type { Seq2SeqResults } from "./report/seq2seq-results.js";
export { distillConfigSchema, type DistillConfig, type DistillConfigInput, type ModelSpec, type TrainSpec, type KdSpec } from "./config/schema.js";
export { UserError, RunAbortedError } from "./errors.js";

// ---- data ----
export { loadDataset, DATASET_NAMES, type DatasetName, type Dataset, type SampleSet } from "./data/datasets.js";
export { splitTrainValidation, seededPermutation, allIndices, firstN } from "./data/split.js";
export { Batches, type Batch, type BatchOptions } from "./data/batches.js";
export { loadData, holdOut, subset, type DataSource, type LoadOptions } from "./data/load.js";
export { sampleSize, imageShape, gatherSamples, gatherLabels, type InputKind } from "./data/sample-set.js";
export { buildVocabulary, tokenize, tokenizeAll, words, PAD_ID, UNKNOWN_ID, type Vocabulary, type VocabularyOptions, type TokenizerRules } from "./data/tokenizer.js";
export { tokenizerOnnx, readVocabulary } from "./data/text-onnx.js";
export { exportTextOnnx, type TextExportOptions } from "./nn/text-export.js";

// ---- distillation ----
export { kdLoss, type KdLossInput } from "./distill/kd-loss.js";
export { dkdLoss, rkdLoss, attentionLoss, similarityLoss, type DkdLossInput, type RkdLossInput, type AttentionLossInput, type SimilarityLossInput, type NestedArray } from "./distill/loss-api.js";
export { METHODS, methodNamed, type DistillMethod, type MethodNeeds, type TermInputs, type TermResult, type TapShapes } from "./distill/methods/index.js";
export { teacherSoftTargets, softTargetKey, defaultCacheDir, labelTransferSet, residentSource, parseShard, CHUNK_SAMPLES, type SoftTargets, type TransferSource, type Shard, type LabelResult } from "./distill/soft-targets.js";
export { averageSoftTargets } from "./distill/teacher-ensemble.js";
export { trainStage, type StageJob } from "./distill/train-stage.js";
export { learningRate } from "./distill/schedule.js";

// ---- tuning: T and α search, the smallest student that keeps X% (as `distill tune` / `distill shrink`) ----
export { tuneCommand as tune, resumeTune, type TuneResults } from "./tune/search.js";
export { shrinkCommand as shrink, resumeShrink, DEFAULT_LADDER, type ShrinkResults } from "./tune/shrink.js";
export type { SessionOptions as TuneOptions } from "./tune/session.js";

// ---- evaluation and report ----
export { OnnxClassifier, evaluateClassifier, type EvaluationInput } from "./eval/evaluate.js";
export { OnnxSeq2Seq, type Seq2SeqDriverMetadata, type Seq2SeqOutput } from "./eval/onnx-seq2seq.js";
export { measureOnnx, sizeOf, formatMs } from "./eval/latency.js";
export * as metrics from "./eval/metrics.js";
export type { ModelMetrics, ModelResult, RunResults, EpochMetric, MetricSummary, MeanStd } from "./eval/types.js";
export { renderReport, writeReport } from "./report/html.js";
export { headline, pairedDifference, type Headline, type PairedDifference } from "./report/headline.js";

// ---- models ----
export { buildModel, pixelStatistics, type DataGeometry, dataGeometry } from "./nn/spec.js";
export * from "./nn/layers.js";
export * from "./nn/attention.js";
export { Module, ForwardContext, ParameterSet, type ParamDecl } from "./nn/module.js";
export { Model, exportOnnx, type InputSpec, type ExportOptions } from "./nn/model.js";
export { ModelTrainer, type LossContext, type LossResult } from "./nn/train-step.js";
export * as losses from "./nn/losses.js";
export { Rng } from "./util/random.js";

// ---- engine ----
export { Graph, Value, ShapeError, type Shape, type Dim, type DType } from "./engine/graph.js";
export * as ops from "./engine/functional.js";
export { gradients } from "./engine/autodiff.js";
export { encodeModel, decodeModel, OPSET } from "./engine/onnx.js";
export { Session, type Tensor } from "./engine/runtime.js";
export { type OptimizerConfig } from "./engine/optimizers.js";
export { compileTrainStep, TrainingSession } from "./engine/training.js";
