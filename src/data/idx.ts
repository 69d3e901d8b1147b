// IDX files (the MNIST family's format), raw or gzipped: magic 0x00000803 for uint8 images
// [count, rows, cols], 0x00000801 for uint8 labels [count].

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { UserError } from "../errors.js";

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** A missing, unreadable or malformed data file. A UserError (the user can fix or re-fetch the
 * file), so the CLI prints it as one line "path: what". */
export class DataFileError extends UserError {
  override name = "DataFileError";
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(path, what);
  }
}

/** Reads an IDX file of unsigned bytes. Errors name the file and what is wrong with it. */
export function readIdx(path: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataFileError(path, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch {
      throw new DataFileError(path, `gzip data is corrupt or truncated`);
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw new DataFileError(path, `not an IDX file (bad magic number)`);
  if (bytes[2] !== 0x08) throw new DataFileError(path, `IDX element type 0x${bytes[2]!.toString(16)} is not unsigned byte (0x08)`);
  const rank = bytes[3]!;
  if (rank < 1 || rank > 4 || bytes.length < 4 + 4 * rank) throw new DataFileError(path, `IDX header is truncated or has rank ${rank}`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(bytes.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = 4 + 4 * rank;
  if (bytes.length - offset !== count)
    throw new DataFileError(path, `header promises ${dims.join("×")} = ${count} bytes of data, file has ${bytes.length - offset}`);
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + offset, count) };
}
