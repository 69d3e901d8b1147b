// Symbol sequences → the padded id matrices a sequence model is fed: ids, per-row lengths and a
// padding mask. The id buffer's type follows the dtype asked for (as onnxruntime's js API ties
// tensor types to buffers), so a feed needs no copy or cast.

import { SPECIAL_SYMBOLS, SYMBOL_IDS, symbolIds, type SymbolVocabulary } from "./symbols.js";

export type IdDType = "int32" | "int64";
interface IdBuffers {
  int32: Int32Array;
  int64: BigInt64Array;
}

export interface EncodedBatch<D extends IdDType> {
  /** [count × width] ids, row-major; positions past a row's length hold SYMBOL_IDS.pad. */
  ids: IdBuffers[D];
  /** [count × width]: 1 where a symbol is (<bos>/<eos> included), 0 at padding. */
  mask: Uint8Array;
  /** Symbols in each row, <bos>/<eos> included. */
  lengths: Int32Array;
  count: number;
  width: number;
}

export interface EncodeOptions<D extends IdDType> {
  dtype: D;
  /** Start each row with <bos> (a decoder's input). */
  bos?: boolean;
  /** End each row with <eos> (a decoder's target, so the model learns where to stop). */
  eos?: boolean;
  /** Pad every row to this width (a model with a fixed length); default: the batch's longest row. */
  width?: number;
}

/** Encodes a batch; a row longer than `width` is a RangeError (the caller chose the width, so it is a programming error). */
export function encodeBatch<D extends IdDType>(sequences: readonly (readonly string[])[], vocab: SymbolVocabulary, o: EncodeOptions<D>): EncodedBatch<D> {
  const rows = sequences.map((s) => [...(o.bos ? [SYMBOL_IDS.bos] : []), ...symbolIds(s, vocab), ...(o.eos ? [SYMBOL_IDS.eos] : [])]);
  const longest = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const width = o.width ?? longest;
  if (!Number.isInteger(width) || width < 0) throw new RangeError(`width must be an integer ≥ 0, got ${width}`);
  const tooLong = rows.findIndex((r) => r.length > width);
  if (tooLong >= 0) throw new RangeError(`row ${tooLong} has ${rows[tooLong]!.length} ids, more than the width ${width}`);
  const count = rows.length;
  const ids = (o.dtype === "int64" ? new BigInt64Array(count * width) : new Int32Array(count * width)) as IdBuffers[D];
  // Padding is id 0, the value new buffers hold: only the symbols are written.
  const mask = new Uint8Array(count * width);
  const lengths = new Int32Array(count);
  rows.forEach((row, i) => {
    lengths[i] = row.length;
    mask.fill(1, i * width, i * width + row.length);
    if (ids instanceof BigInt64Array) row.forEach((id, j) => (ids[i * width + j] = BigInt(id)));
    else ids.set(row, i * width);
  });
  return { ids, mask, lengths, count, width };
}

/** A decoded row's symbols: up to the first <eos>, with <pad> and <bos> skipped; other specials (<unk>) are kept by name. */
export function decodeIds(ids: ArrayLike<number | bigint>, vocab: SymbolVocabulary): string[] {
  const out: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = Number(ids[i]!);
    if (id === SYMBOL_IDS.eos) break;
    if (id === SYMBOL_IDS.pad || id === SYMBOL_IDS.bos) continue;
    out.push(vocab.symbols[id] ?? SPECIAL_SYMBOLS[SYMBOL_IDS.unk]);
  }
  return out;
}
