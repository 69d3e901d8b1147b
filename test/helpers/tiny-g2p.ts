// A tiny grapheme-to-phoneme model on real CMUdict words for the sequence tests: a few hundred
// training pairs spread over the dictionary, a 1+1-layer transformer of width 16, trained for a
// few seconds with two length buckets. Small enough to train inside a test, trained enough that
// its outputs depend on the word (not one string for every input).

import { sequenceDataSchema } from "../../src/config/sequence-data.js";
import { loadSequenceData, type SequenceData } from "../../src/data/sequence/load.js";
import { trainingPairs } from "../../src/data/sequence/entries.js";
import { symbolIds } from "../../src/data/sequence/symbols.js";
import { batchFeeds, epochBatches, type IdPair } from "../../src/distill/seq2seq-stage.js";
import { Seq2SeqModel, type Seq2SeqSpec } from "../../src/nn/seq2seq.js";
import { Seq2SeqTrainer } from "../../src/nn/seq2seq-trainer.js";
import type { ParameterSet } from "../../src/nn/module.js";
import type { Seq2SeqVocabularies } from "../../src/nn/seq2seq-export.js";

export const TINY_BUCKETS: [number, number][] = [[6, 7], [10, 11]];

export interface TinyG2p {
  data: SequenceData;
  vocab: Seq2SeqVocabularies;
  spec: Seq2SeqSpec;
  /** About 300 training pairs, every ~370th of the dictionary's, that fit the model's lengths. */
  pairs: IdPair[];
  /** Test-split words that fit the model (none seen in training), as typed: "PHONE". */
  words: string[];
}

let loaded: TinyG2p | undefined;

export function tinyG2pData(): TinyG2p {
  if (loaded) return loaded;
  const data = loadSequenceData(sequenceDataSchema.parse({ dataset: "cmudict", stress: "strip" }));
  const vocab = { source: data.sourceVocabulary, target: data.targetVocabulary };
  const [ls, lt] = TINY_BUCKETS[TINY_BUCKETS.length - 1]!;
  const spec: Seq2SeqSpec = {
    dims: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1, dropout: 0,
    sourceVocab: vocab.source.symbols.length, targetVocab: vocab.target.symbols.length, sourceLength: ls, targetLength: lt,
  };
  const fits = (p: { source: string[]; target: string[] }) => p.source.length <= ls && p.target.length + 1 <= lt;
  const all = trainingPairs(data.train).filter(fits);
  const stride = Math.floor(all.length / 300);
  const pairs = all.filter((_, i) => i % stride === 0).map((p) => ({ source: symbolIds(p.source, vocab.source), target: symbolIds(p.target, vocab.target) }));
  const words = data.test.filter((e) => e.source.length <= ls && e.source.length >= 2).filter((_, i) => i % 97 === 0).map((e) => e.text);
  loaded = { data, vocab, spec, pairs, words };
  return loaded;
}

/** Trains the tiny model for `epochs` epochs (Adam, lr 5e-3, batch 16); returns its parameters and every step's loss. */
export async function trainTinyG2p(epochs: number, seed = 1): Promise<{ model: Seq2SeqModel; params: ParameterSet; losses: number[] }> {
  const { spec, pairs } = tinyG2pData();
  const model = new Seq2SeqModel(spec);
  const trainer = await Seq2SeqTrainer.create({
    model, params: model.initParameters(seed), optimizer: { kind: "adam" }, loss: {}, buckets: TINY_BUCKETS, seed, threads: 1,
  });
  const losses: number[] = [];
  try {
    for (let epoch = 0; epoch < epochs; epoch++)
      for (const { bucket, rows } of epochBatches(pairs, TINY_BUCKETS, 16, seed, epoch))
        losses.push((await trainer.step(bucket, batchFeeds(pairs, rows, TINY_BUCKETS[bucket]!), 5e-3)).loss);
    return { model, params: trainer.parameters(), losses };
  } finally {
    await trainer.dispose();
  }
}
