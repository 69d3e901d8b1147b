// A sequence model in an ONNX file (exportSeq2SeqOnnx's form: source [B, Ls] + target prefix
// [B, Lt] → logits [B, Lt, V], vocabularies in metadata), decoded in Node by the same driver the
// exported web page runs (src/report/assets/web/seq2seq-driver.js). So distill scores any such file
// — its own export, or one made elsewhere with the same inputs and metadata — exactly as a browser
// user of the page would see it.

import { readFileSync } from "node:fs";
import { decodeModel } from "../engine/onnx.js";
import { Session, type RuntimeOptions } from "../engine/runtime.js";
import { UserError } from "../errors.js";

export interface Seq2SeqVocabularyJson {
  split: "chars" | "whitespace";
  symbols: string[];
}

/** What the driver reads from the file's metadata. */
export interface Seq2SeqDriverMetadata {
  sourceLength: number;
  targetLength: number;
  sourceVocabulary: Seq2SeqVocabularyJson;
  targetVocabulary: Seq2SeqVocabularyJson;
  specialIds: { pad: number; bos: number; eos: number; unk: number };
}

export interface Seq2SeqOutput {
  /** Output ids, <bos>/<eos> left out. */
  ids: number[];
  /** Sum of the log-probabilities of its symbols, <eos> included. */
  logProb: number;
}

/** The driver module's API (plain JavaScript, typed here). */
interface DriverModule {
  seq2seqMetadata(metadata: Record<string, string>): Seq2SeqDriverMetadata;
  Seq2SeqDriver: new (run: (source: BigInt64Array, target: BigInt64Array, batch: number) => Promise<Float32Array>, metadata: Seq2SeqDriverMetadata) => Seq2SeqDriverApi;
}
interface Seq2SeqDriverApi {
  encode(text: string): number[];
  unknownSymbols(text: string): string[];
  decode(ids: readonly number[]): string;
  convert(texts: readonly string[], beam?: number): Promise<(Seq2SeqOutput & { text: string })[]>;
  search(sources: readonly (readonly number[])[], beam?: number): Promise<Seq2SeqOutput[]>;
}

// From dist/src/eval/ (compiled) to the uncompiled asset, as report/assets.ts finds its files.
const DRIVER_URL = new URL("../../../src/report/assets/web/seq2seq-driver.js", import.meta.url);
let driverModule: Promise<DriverModule> | undefined;
const loadDriver = () => (driverModule ??= import(DRIVER_URL.href) as Promise<DriverModule>);

export class OnnxSeq2Seq {
  private constructor(
    private readonly session: Session,
    private readonly driver: Seq2SeqDriverApi,
    readonly metadata: Seq2SeqDriverMetadata,
    /** The file's whole metadata (distill.parameters, distill.seq2seq, …). */
    readonly onnxMetadata: Record<string, string>,
  ) {}

  /** Opens a file (a path, or its bytes with `where` naming it in errors); a file that is not a sequence model is one UserError. */
  static async load(model: string | Uint8Array, o: RuntimeOptions & { where?: string } = {}): Promise<OnnxSeq2Seq> {
    const where = o.where ?? (typeof model === "string" ? model : "model");
    let bytes: Uint8Array;
    try {
      bytes = typeof model === "string" ? readFileSync(model) : model;
    } catch (e) {
      throw new UserError(where, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    let decoded: ReturnType<typeof decodeModel>;
    try {
      decoded = decodeModel(bytes);
    } catch (e) {
      throw new UserError(where, `not an ONNX model (${(e as Error).message})`);
    }
    const { seq2seqMetadata, Seq2SeqDriver } = await loadDriver();
    let metadata: Seq2SeqDriverMetadata;
    try {
      metadata = seq2seqMetadata(decoded.metadata);
    } catch (e) {
      throw new UserError(where, (e as Error).message);
    }
    const [sourceName, targetName] = decoded.metadata["distill.input_names"] ? (JSON.parse(decoded.metadata["distill.input_names"]) as string[]) : ["source", "target"];
    const outputName = decoded.metadata["distill.output_name"] ?? "logits";
    const session = await Session.create(bytes, o);
    const run = async (source: BigInt64Array, target: BigInt64Array, batch: number): Promise<Float32Array> => {
      const out = await session.run({
        [sourceName!]: { dtype: "int64", shape: [batch, metadata.sourceLength], data: source },
        [targetName!]: { dtype: "int64", shape: [batch, metadata.targetLength], data: target },
      }, undefined, [outputName]);
      return out[outputName]!.data as Float32Array;
    };
    return new OnnxSeq2Seq(session, new Seq2SeqDriver(run, metadata), metadata, decoded.metadata);
  }

  /** Source ids of a string (unknown symbols → <unk>); a RangeError when longer than the model takes. */
  encode(text: string): number[] {
    return this.driver.encode(text);
  }

  unknownSymbols(text: string): string[] {
    return this.driver.unknownSymbols(text);
  }

  /** Output ids → the output string. */
  decode(ids: readonly number[]): string {
    return this.driver.decode(ids);
  }

  /** Strings in, strings out (beam 1 = greedy). */
  convert(texts: readonly string[], beam = 1): Promise<(Seq2SeqOutput & { text: string })[]> {
    return this.driver.convert(texts, beam);
  }

  /** Beam search over source ids, by Seq2SeqDecoder.beamSearch's rules. */
  search(sources: readonly (readonly number[])[], beam = 1): Promise<Seq2SeqOutput[]> {
    return this.driver.search(sources, beam);
  }

  dispose(): Promise<void> {
    return this.session.dispose();
  }
}
