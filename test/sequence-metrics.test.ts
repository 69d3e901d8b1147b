// Sequence metrics against their reference definitions: worked examples derived by hand in the
// comments, the test vectors of sacreBLEU's own test suite (test/test_bleu.py, test/test_chrf.py)
// and of its README, and G2P-shaped examples whose values sacreBLEU 2.6.0 gives (BLEU with
// tokenize='none', CHRF() defaults). Then real data: CMUdict test words scored against themselves
// and against their stress-stripped pronunciations; and latency per word of a dictionary lookup.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { readCmudict } from "../src/data/sequence/cmudict.js";
import { splitEntries, type SequenceEntry } from "../src/data/sequence/entries.js";
import { bleuFromStatistics, bleuStatistics, corpusBleu, corpusChrf, editDistance, sequenceScores, tokenErrorRate, wordErrorRate } from "../src/eval/sequence-metrics.js";
import { measurePerWord } from "../src/eval/latency.js";

const tokens = (s: string) => s.split(/\s+/).filter(Boolean);
const close = (actual: number, expected: number, tolerance = 1e-8) => assert.ok(Math.abs(actual - expected) <= tolerance, `${actual} ≠ ${expected}`);

// sacreBLEU's README example: three outputs, two reference streams.
const README_REFS = [
  ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
  ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
];
const README_OUTPUTS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."];
const README_PER_ITEM = README_OUTPUTS.map((_, i) => README_REFS.map((stream) => stream[i]!));

// A G2P-shaped corpus: five words, two pronunciations each; the fourth output is empty.
const G2P_OUT = ["AH0 B", "EY1", "T AH0 M EY1 T OW0", "", "K AE1 T"];
const G2P_REF1 = ["AH0 B", "AH0", "T AH0 M AA1 T OW0", "D AO1 G", "K AE1 T S"];
const G2P_REF2 = ["AH1 B", "EY1", "T AH0 M EY1 T OW0", "D AA1 G", "K AE1 T"];
const G2P_BOTH = G2P_OUT.map((_, i) => [G2P_REF1[i]!, G2P_REF2[i]!]);

describe("edit distance, word and token error rates", () => {
  it("Levenshtein distance counts insertions, deletions and substitutions", () => {
    assert.equal(editDistance(tokens("K AE1 T"), tokens("K AE1 T")), 0);
    assert.equal(editDistance(tokens("K AE1 T"), tokens("K AE1 T S")), 1);
    assert.equal(editDistance(tokens("K AE1 T"), tokens("B AE1 D")), 2);
    assert.equal(editDistance([], tokens("D AO1 G")), 3);
    assert.equal(editDistance([..."kitten"], [..."sitting"]), 3, "Levenshtein's own example");
  });

  it("a word is right when its output equals any reference; tokens count against the closest", () => {
    const out = G2P_OUT.map(tokens), refs = G2P_BOTH.map((r) => r.map(tokens));
    // Outputs 1, 2, 3 and 5 equal one of their references (the second, for EY1 and K AE1 T); the empty one does not.
    assert.deepEqual(wordErrorRate(out, refs), { errors: 1, items: 5, rate: 0.2 });
    // Closest references: AH0 B (2 symbols, 0 edits), EY1 (1, 0), the EY1 tomato (6, 0), D AO1 G (3, 3 deletions), K AE1 T (3, 0).
    assert.deepEqual(tokenErrorRate(out, refs), { edits: 3, referenceTokens: 15, rate: 0.2 });
    // With the first references alone: 0 + 1 + 1 + 3 + 1 edits over 2 + 1 + 6 + 3 + 4 symbols.
    assert.deepEqual(tokenErrorRate(out, G2P_REF1.map((r) => [tokens(r)])), { edits: 6, referenceTokens: 16, rate: 6 / 16 });
  });

  it("at equal distance the first listed reference is the one a token error is counted against", () => {
    // A B is one edit from A (delete B) and one from A B C (insert C): 1/1 or 1/3 by the order given.
    assert.equal(tokenErrorRate([tokens("A B")], [[tokens("A"), tokens("A B C")]]).rate, 1);
    assert.equal(tokenErrorRate([tokens("A B")], [[tokens("A B C"), tokens("A")]]).rate, 1 / 3);
  });

  it("refuses a corpus it cannot score", () => {
    assert.throws(() => wordErrorRate([], []), /no outputs/);
    assert.throws(() => tokenErrorRate([["A"]], []), /1 outputs but 0 reference lists/);
    assert.throws(() => tokenErrorRate([["A"]], [[]]), /item 0 has no reference/);
    assert.throws(() => tokenErrorRate([["A"]], [[[]]]), /undefined/);
  });
});

describe("BLEU", () => {
  it("n-gram statistics: sacreBLEU's test_case_statistics", () => {
    // test_bleu.py: "am I am a character sequence" vs "I am a symbol string sequence a a" →
    // matches [4, 2, 1, 0] of [6, 5, 4, 3]. By hand: unigrams am×2 (ref has 1, clipped to 1), I, a,
    // sequence → 4; bigrams "I am", "am a" → 2; trigram "I am a" → 1.
    const s = bleuStatistics([tokens("am I am a character sequence")], [[tokens("I am a symbol string sequence a a")]]);
    assert.deepEqual(s, { matches: [4, 2, 1, 0], totals: [6, 5, 4, 3], outputLength: 6, referenceLength: 8 });
  });

  it("score from statistics: sacreBLEU's test_case_scoring", () => {
    // (9/10 · 7/8 · 5/6 · 3/4)^(1/4) with no brevity penalty = 0.8375922397.
    close(bleuFromStatistics({ matches: [9, 7, 5, 3], totals: [10, 8, 6, 4], outputLength: 11, referenceLength: 11 }, "none").score, 83.75922397, 1e-6);
  });

  it("two references per segment, tokenize=none: sacreBLEU's test_corpus_bleu, 49.1919566", () => {
    const b = corpusBleu(README_OUTPUTS.map(tokens), README_PER_ITEM.map((r) => r.map(tokens)));
    close(b.score, 49.1919566, 1e-6);
    // Output lengths 5 + 3 + 6 = 14; closest reference lengths 5 (itself), 4 (both references are 4 long), 6 → 15.
    assert.deepEqual({ matches: b.matches, totals: b.totals, c: b.outputLength, r: b.referenceLength }, { matches: [10, 6, 4, 2], totals: [14, 11, 8, 5], c: 14, r: 15 });
    close(b.brevityPenalty, Math.exp(1 - 15 / 14));
  });

  it("the brevity penalty takes the closest reference length, the shorter on a tie", () => {
    // 4 symbols out; references of 3 and 5 are equally close → 3, no penalty, and every n-gram
    // matches (the 4-gram in the second reference): 100. The longer would give exp(1 − 5/4) · 100.
    const b = corpusBleu([tokens("a b c d")], [[tokens("a b c"), tokens("a b c d e")]]);
    assert.equal(b.referenceLength, 3);
    close(b.score, 100, 1e-9);
  });

  it("exp smoothing gives the k-th order without matches 1/(2^k · total); none gives 0; floor gives value/total", () => {
    // "a b c d" vs "a b x d": 3/4 unigrams, 1/3 bigrams, 0/2 trigrams, 0/1 four-grams.
    // exp: p3 = 1/(2·2), p4 = 1/(4·1) → 100 · (3/4 · 1/3 · 1/4 · 1/4)^(1/4) = 100 · 64^(−1/4) = 35.3553391.
    const out = [tokens("a b c d")], ref = [[tokens("a b x d")]];
    close(corpusBleu(out, ref).score, 100 / Math.sqrt(8));
    assert.equal(corpusBleu(out, ref, "none").score, 0);
    // test_bleu.py test_raw_bleu: "this is a fest" vs "this is a test", floor 0.01 → (3/4 · 2/3 · 1/2 · 0.01)^(1/4) = 0.2236068.
    close(corpusBleu([tokens("this is a fest")], [[tokens("this is a test")]], { floor: 0.01 }).score, 22.360679775, 1e-6);
  });

  it("pronunciations with alternatives: the values sacreBLEU 2.6.0 gives", () => {
    close(corpusBleu(G2P_OUT.map(tokens), G2P_BOTH.map((r) => r.map(tokens))).score, 77.88007830714052);
    close(corpusBleu(G2P_OUT.map(tokens), G2P_REF1.map((r) => [tokens(r)])).score, 32.372956394183184);
  });

  it("edge cases: empty outputs, no match at all, outputs shorter than 4 symbols", () => {
    // test_bleu.py: empty hypotheses score 0 (and are not removed).
    assert.equal(corpusBleu([[], [], []], README_PER_ITEM.map((r) => r.map(tokens))).score, 0);
    // No match at any order: 0 whatever the smoothing (sacreBLEU #141).
    assert.equal(corpusBleu([tokens("this is a test"), tokens("another test")], [[tokens("ref1")], [tokens("ref2")]]).score, 0);
    // A corpus with no 4-gram has no 4-gram precision: BLEU-4 is 0 even for a perfect output.
    assert.equal(corpusBleu([tokens("K AE1 T")], [[tokens("K AE1 T")]]).score, 0);
    // exp(mean log 100%) is 100 up to rounding, in sacreBLEU too.
    close(corpusBleu([tokens("K AE1 T S")], [[tokens("K AE1 T S")]]).score, 100, 1e-9);
  });
});

describe("chrF", () => {
  it("by hand: 'ab' against 'abc' is 7/11 with β = 2", () => {
    // Unigrams: P = 2/2, R = 2/3. Bigrams: P = 1/1, R = 1/2. Trigrams and up: the output has none,
    // so they leave the average. P̄ = 1, R̄ = 7/12; F2 = 5 · P̄R̄ / (4P̄ + R̄) = (35/12)/(55/12) = 7/11.
    close(corpusChrf(["ab"], [["abc"]]).score, 700 / 11);
  });

  it("effective-order mode, β = 3: sacreBLEU's test_chrf_eff_order", () => {
    for (const [outs, refs, expected] of [[["a b c"], ["abc"], 100], [["a", "b"], ["a", "c"], 50], [["aa"], ["ab"], 25], [[""], ["reference"], 0], [["a"], ["a"], 100]] as const)
      close(corpusChrf(outs, refs.map((r) => [r]), { beta: 3 }).score, expected, 1e-4);
  });

  it("eps smoothing (chrF++.py's): sacreBLEU's test_chrf and its sentence-level Czech example", () => {
    for (const [outs, refs, expected] of [
      [["aa"], ["ab"], 8.3333],
      [["a"], ["a"], 16.6667],
      [["a b c"], ["abc"], 50.0],
      [[" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."], ["risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."], 63.36173],
      [[" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "], ["Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."], 64.1302698],
    ] as const)
      close(corpusChrf(outs, refs.map((r) => [r]), { beta: 3, epsSmoothing: true }).score, expected, 1e-4);
    close(corpusChrf(["Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře."], [["Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře."]], { epsSmoothing: true }).score, 39.14078509, 1e-4);
  });

  it("an order the reference has no n-gram of does not count the output's either (sacreBLEU 2.x)", () => {
    // "abc" vs "ab" and "xyz" vs "xyz". Corpus counts per order (output, reference, matches):
    // 1: (6, 5, 5), 2: (4, 3, 3), 3: (1, 1, 1) — "abc"'s trigram is not counted, "ab" having none.
    // P̄ = (5/6 + 3/4 + 1)/3 = 31/36, R̄ = 1; F2 = 5 · 31/36 / (4 · 31/36 + 1) = 155/160.
    close(corpusChrf(["abc", "xyz"], [["ab"], ["xyz"]]).score, 96.875, 1e-9);
  });

  it("each item takes the reference with the best sentence chrF, the first of equal ones", () => {
    // "aaaa" scores exactly 5/24 against "aabb" (P̄ = R̄ = (1/2 + 1/3)/4) and against "aba"
    // (P̄ = 1/6, R̄ = 2/9 over three orders), but their counts differ, so the corpus score depends
    // on which is taken: sacreBLEU 2.6.0 gives 22.0959596 and 26.5557940 for the two orders.
    close(corpusChrf(["aaaa"], [["aabb"]]).score, 2500 / 120, 1e-12);
    close(corpusChrf(["aaaa"], [["aba"]]).score, 2500 / 120, 1e-12);
    close(corpusChrf(["aaaa", "ab"], [["aabb", "aba"], ["abab"]]).score, 22.095959595959595);
    close(corpusChrf(["aaaa", "ab"], [["aba", "aabb"], ["abab"]]).score, 26.55579399141631);
  });

  it("the default chrF2 with two references: sacreBLEU's README, 59.73", () => {
    close(corpusChrf(README_OUTPUTS, README_PER_ITEM).score, 59.72751782684763, 1e-9);
  });

  it("pronunciations with alternatives: each word scored against its best reference, as sacreBLEU 2.6.0 does", () => {
    close(corpusChrf(G2P_OUT, G2P_BOTH).score, 89.8861503727153);
    close(corpusChrf(G2P_OUT, G2P_REF1.map((r) => [r])).score, 43.77977683049147);
  });

  it("edge cases: empty outputs and no shared character score 0", () => {
    assert.equal(corpusChrf(["", ""], [["a b"], ["c"]]).score, 0);
    assert.equal(corpusChrf(["abcdefg"], [["hijklmnop"]]).score, 0);
  });
});

describe("on CMUdict test words", () => {
  let test: SequenceEntry[];
  before(() => (test = splitEntries(readCmudict().entries, { test: 0.1, validation: 0.05 }, 0, "data").test));

  it("the references themselves score WER 0, PER 0, BLEU 100, chrF 100 — whichever alternative is output", () => {
    const refs = test.map((e) => e.targets);
    for (const pick of [(e: SequenceEntry) => e.targets[0]!, (e: SequenceEntry) => e.targets.at(-1)!]) {
      const scores = sequenceScores(test.map(pick), refs);
      assert.deepEqual([scores.wordErrorRate, scores.tokenErrorRate, scores.chrf], [0, 0, 100]);
      close(scores.bleu, 100, 1e-9);
    }
  });

  it("stress-stripped outputs: every vowel is one substitution, so PER is the share of vowels", () => {
    const single = test.filter((e) => e.targets.length === 1);
    const stripped = single.map((e) => e.targets[0]!.map((p) => p.replace(/\d$/, "")));
    const refs = single.map((e) => e.targets);
    const vowels = refs.reduce((n, [t]) => n + t!.filter((p) => /\d$/.test(p)).length, 0);
    const symbols = refs.reduce((n, [t]) => n + t!.length, 0);
    assert.deepEqual(tokenErrorRate(stripped, refs), { edits: vowels, referenceTokens: symbols, rate: vowels / symbols });
    // Every CMUdict word has a vowel, so every stripped output is wrong.
    assert.equal(wordErrorRate(stripped, refs).rate, 1);
  });
});

describe("latency per word", () => {
  it("times one-word calls and fixed batches of real words, in turn", async () => {
    const { entries } = readCmudict();
    const lookup = new Map(entries.map((e) => [e.text, e.targets[0]!]));
    const words = entries.slice(0, 10).map((e) => e.text);
    const calls: string[][] = [];
    const predict = (batch: readonly string[]) => (calls.push([...batch]), batch.map((w) => lookup.get(w) ?? []));
    const result = await measurePerWord(predict, words, { warmup: 4, runs: 8, throughputBatch: 12 });
    // 4 warm-up and 8 timed one-word calls, then max(2, ⌈4/2⌉) warm-up and 15 timed calls on one batch of 12.
    assert.equal(calls.length, 4 + 8 + 2 + 15);
    assert.deepEqual(calls.slice(0, 12), [...words, ...words.slice(0, 2)].map((w) => [w]), "one word at a time, in turn");
    assert.deepEqual(calls[12], [...words, ...words.slice(0, 2)], "the batch: the words from the first, wrapping round");
    assert.ok(calls.slice(12).every((c) => c.join() === calls[12]!.join()));
    assert.ok(Number.isFinite(result.latencyP50Ms) && result.latencyP50Ms >= 0 && result.latencyP50Ms <= result.latencyP95Ms);
    assert.ok(Number.isFinite(result.throughput) && result.throughput > 0);
  });

  it("refuses a predict function that drops words", async () => {
    await assert.rejects(measurePerWord((batch) => batch.slice(1), ["A", "B"], { warmup: 0, runs: 1, throughputBatch: 2 }), /returned 0 outputs for 1 words/);
  });
});
