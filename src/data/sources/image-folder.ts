// `format: image-folder`: `<split>/<class>/<file>.png|.jpg|.jpeg`, class names = sub-folder names,
// sorted. Decoding and resizing are sharp's (libvips, shipped as a native binary inside its npm
// packages — no apt step): it reads PNG and JPEG, converts colour spaces and resizes fast.

import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { extname, join, relative, resolve, sep } from "node:path";
import { cachedPayload, defaultCacheDir } from "../../util/cache-file.js";
import sharp, { type OutputInfo } from "sharp";
import { UserError } from "../../errors.js";
import type { SampleSet } from "../sample-set.js";

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);

export interface ImageSize {
  width?: number | undefined;
  height?: number | undefined;
  channels?: 1 | 3 | undefined;
}

interface Listing {
  files: string[];
  labels: number[];
}

function folderEntries(dir: string, field: string): string[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UserError(dir, `${field}: no such folder`);
  }
  if (!st.isDirectory()) throw new UserError(dir, `${field}: is not a folder (an image folder holds one sub-folder per class)`);
  return readdirSync(dir).sort();
}

/** Class names of a training folder: its sub-folders, sorted. */
export function imageFolderClasses(dir: string, field = "data.train"): string[] {
  const classes = folderEntries(dir, field).filter((name) => !name.startsWith(".") && statSync(join(dir, name)).isDirectory());
  if (classes.length === 0) throw new UserError(dir, `${field}: no class sub-folders (expected ${dir}/<class>/<image>.png)`);
  if (classes.length < 2) throw new UserError(dir, `${field}: only one class sub-folder (${classes[0]}); a classifier needs at least two`);
  return classes;
}

function listImages(dir: string, classes: string[], field: string, requireEvery: boolean): Listing {
  const present = folderEntries(dir, field).filter((name) => !name.startsWith(".") && statSync(join(dir, name)).isDirectory());
  const unknown = present.find((name) => !classes.includes(name));
  if (unknown !== undefined) throw new UserError(join(dir, unknown), `${field}: class "${unknown}" is not among the training classes (${classes.join(", ")})`);
  if (present.length === 0) throw new UserError(dir, `${field}: no class sub-folders (expected ${dir}/<class>/<image>.png)`);
  const files: string[] = [], labels: number[] = [];
  classes.forEach((name, label) => {
    if (!present.includes(name)) return;
    const folder = join(dir, name);
    const images = readdirSync(folder).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
    if (images.length === 0 && requireEvery) throw new UserError(folder, `${field}: class folder has no .png, .jpg or .jpeg images`);
    for (const f of images) {
      files.push(join(folder, f));
      labels.push(label);
    }
  });
  return { files, labels };
}

/** The size and channels every image becomes: the config's, else the first training image's. */
async function targetSize(first: string, size: ImageSize): Promise<Required<ImageSize>> {
  if (size.width && size.height && size.channels) return size as Required<ImageSize>;
  let meta;
  try {
    meta = await sharp(first).metadata();
  } catch (e) {
    throw new UserError(first, `cannot read the image (${(e as Error).message})`);
  }
  const channels = size.channels ?? ((meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) >= 3 ? 3 : 1);
  return { width: size.width ?? meta.width!, height: size.height ?? meta.height!, channels };
}

/**
 * One image as [C, H, W] uint8. Without a configured size, an image of another size than the
 * target is an error (silently squashing a dataset of mixed shapes hides a data problem).
 */
async function decode(file: string, target: Required<ImageSize>, resize: boolean, out: Uint8Array, at: number): Promise<void> {
  const { width, height, channels } = target;
  let data: Buffer, info: OutputInfo;
  try {
    let img = sharp(file).removeAlpha();
    if (resize) img = img.resize(width, height, { fit: "fill" });
    img = channels === 1 ? img.greyscale() : img.toColourspace("srgb");
    ({ data, info } = await img.raw().toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new UserError(file, `cannot read the image (${(e as Error).message})`);
  }
  if (info.width !== width || info.height !== height)
    throw new UserError(file, `is ${info.width}×${info.height} pixels but the first training image is ${width}×${height}; set data.image.width and data.image.height to resize every image`);
  // sharp gives interleaved [H, W, C]; models take [C, H, W].
  const plane = width * height;
  if (info.channels === 1) out.set(data.subarray(0, plane), at);
  else for (let p = 0; p < plane; p++) for (let c = 0; c < channels; c++) out[at + c * plane + p] = data[p * info.channels + c]!;
}

/** Bumped when decoding changes (invalidates decoded-image caches). */
const DECODE_VERSION = "image-folder-v1";

/**
 * Every image of a listing decoded, through a cache: decoding is ~2 ms an image (70,000 Fashion-MNIST
 * PNGs took 143 s), so a resume, a second seed's run or `distill eval` reads the decoded pixels back
 * instead. The key covers each file's path, size and modification time and the target size, so an
 * added, removed or replaced image decodes everything afresh.
 */
async function decodeAll(listing: Listing, target: Required<ImageSize>, resize: boolean, cacheDir: string, onProgress?: (done: number, total: number) => void): Promise<SampleSet> {
  const size = target.channels * target.height * target.width;
  const key = createHash("sha256").update(`${DECODE_VERSION}:${JSON.stringify(target)}:${resize}`);
  listing.files.forEach((file, i) => {
    const st = statSync(file);
    key.update(`\0${resolve(file)}:${st.size}:${st.mtimeMs}:${listing.labels[i]}`);
  });
  const cacheFile = join(cacheDir, "decoded-images", `${key.digest("hex").slice(0, 32)}.bin`);
  const { payload } = await cachedPayload(cacheFile, listing.files.length * size, async () => {
    const inputs = new Uint8Array(listing.files.length * size);
    // sharp decodes on libuv's thread pool; a bounded number in flight keeps memory flat.
    const inFlight = 16;
    for (let start = 0; start < listing.files.length; start += inFlight) {
      const chunk = listing.files.slice(start, start + inFlight);
      await Promise.all(chunk.map((file, i) => decode(file, target, resize, inputs, (start + i) * size)));
      onProgress?.(start + chunk.length, listing.files.length);
    }
    return inputs;
  });
  const inputs = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
  return { kind: "image", inputs, labels: Int32Array.from(listing.labels), count: listing.files.length, sampleShape: [target.channels, target.height, target.width] };
}

/** Both splits of an image folder dataset; classes come from the training folder. */
export async function loadImageFolders(
  trainDir: string,
  testDir: string,
  size: ImageSize = {},
  o: { cacheDir?: string; onProgress?: (split: string, done: number, total: number) => void } = {},
): Promise<{ train: SampleSet; test: SampleSet; classLabels: string[] }> {
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  const classLabels = imageFolderClasses(trainDir);
  const trainList = listImages(trainDir, classLabels, "data.train", true);
  const testList = listImages(testDir, classLabels, "data.test", false);
  if (testList.files.length === 0) throw new UserError(testDir, "data.test: no .png, .jpg or .jpeg images in its class folders");
  const target = await targetSize(trainList.files[0]!, size);
  const resize = size.width !== undefined && size.height !== undefined;
  const decodeSplit = async (list: Listing, split: string, dir: string) => ({
    ...(await decodeAll(list, target, resize, cacheDir, o.onProgress && ((d, t) => o.onProgress!(split, d, t)))),
    ids: idsOf(list.files, dir),
  });
  return { train: await decodeSplit(trainList, "train", trainDir), test: await decodeSplit(testList, "test", testDir), classLabels };
}

/** Each image's id: its path relative to the split folder, with "/" between parts on every system ("3/img_001.png"). */
function idsOf(files: string[], dir: string): string[] {
  return files.map((f) => relative(dir, f).split(sep).join("/"));
}

/** Every image under `dir`, at any depth (class sub-folders or none), sorted by path. */
function listAllImages(dir: string, field: string): string[] {
  const files: string[] = [];
  const walk = (folder: string) => {
    for (const name of folderEntries(folder, field)) {
      if (name.startsWith(".")) continue;
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (IMAGE_EXTENSIONS.has(extname(name).toLowerCase())) files.push(path);
    }
  };
  walk(dir);
  return files;
}

/**
 * Unlabelled images for a transfer set: every image under `dir`, converted (resized, greyed or
 * coloured) to the training images' size and channels, through the same decoded-image cache.
 */
export async function loadUnlabeledImages(
  dir: string,
  target: { channels: 1 | 3; height: number; width: number },
  field: string,
  o: { cacheDir?: string; onProgress?: (done: number, total: number) => void } = {},
): Promise<SampleSet> {
  const files = listAllImages(dir, field);
  if (files.length === 0) throw new UserError(dir, `${field}: no .png, .jpg or .jpeg images in the folder or its sub-folders`);
  return { ...(await decodeAll({ files, labels: files.map(() => -1) }, target, true, o.cacheDir ?? defaultCacheDir(), o.onProgress)), ids: idsOf(files, dir) };
}
