// Writes a preset dataset (mnist or fashion-mnist) as PNG image folders — <out>/train/<class>/<n>.png
// and <out>/test/<class>/<n>.png — the layout `data.format: image-folder` reads. Used by
// examples/fashion-folder.yaml to show that a folder of images distils exactly like the IDX preset.
//
//   node dist/examples/write-image-folders.js fashion-mnist data/fashion-folder [--limit 10000]

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { DATASET_NAMES, loadDataset, type DatasetName } from "../src/data/datasets.js";
import { imageShape, sampleSize, type SampleSet } from "../src/data/sample-set.js";

/** A class name as a folder name: "T-shirt/top" → "T-shirt_top". */
export function folderName(label: string): string {
  return label.replace(/[/\\:*?"<>|]/g, "_");
}

/** [C, H, W] planes (as models see images) → the [H, W, C] pixels sharp's raw input takes. */
function interleaved(planes: Uint8Array, channels: number): Uint8Array {
  if (channels === 1) return planes;
  const plane = planes.length / channels;
  return Uint8Array.from({ length: planes.length }, (_, k) => planes[(k % channels) * plane + Math.floor(k / channels)]!);
}

export async function writeImageFolders(set: SampleSet, classLabels: string[], root: string, limit = set.count): Promise<number> {
  const { channels, height, width } = imageShape(set);
  const size = sampleSize(set);
  for (const label of classLabels) mkdirSync(join(root, folderName(label)), { recursive: true });
  const n = Math.min(limit, set.count);
  // Files named by their index in the IDX file, zero-padded so sorted order is index order.
  const pad = String(set.count - 1).length;
  for (let start = 0; start < n; start += 64) {
    await Promise.all(Array.from({ length: Math.min(64, n - start) }, (_, j) => {
      const i = start + j;
      const image = sharp(interleaved(set.inputs.subarray(i * size, (i + 1) * size) as Uint8Array, channels), { raw: { width, height, channels: channels as 1 | 3 } });
      const file = join(root, folderName(classLabels[set.labels[i]!]!), `${String(i).padStart(pad, "0")}.png`);
      return (channels === 1 ? image.toColourspace("b-w") : image).png().toFile(file);
    }));
  }
  return n;
}

async function main(): Promise<void> {
  const [name, out, flag, value] = process.argv.slice(2);
  if (!name || !out || !(DATASET_NAMES as readonly string[]).includes(name) || (flag !== undefined && (flag !== "--limit" || !(Number(value) > 0)))) {
    process.stderr.write(`usage: write-image-folders <${DATASET_NAMES.join("|")}> <out-folder> [--limit N]\n`);
    process.exit(2);
  }
  const limit = flag ? Number(value) : undefined;
  const data = loadDataset(name as DatasetName);
  for (const split of ["train", "test"] as const) {
    const n = await writeImageFolders(data[split], data.classLabels, join(out, split), limit);
    process.stdout.write(`${join(out, split)}: ${n} images in ${data.classLabels.length} class folders\n`);
  }
}

if (process.argv[1]?.endsWith("write-image-folders.js")) await main();
