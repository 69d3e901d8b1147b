// The exported pages' files: index.html, app.js (an ES module that imports onnxruntime-web's wasm
// build from ./ort/ and reads ./model.json) and timing.js (app.js's clock arithmetic); a sequence
// run's page has its own index.html and app, and the decoding driver. They are assets like every
// page's (src/report/assets/web/), written out as they are.

import { assetText } from "../report/assets.js";

export const PAGE_FILES = ["index.html", "app.js", "timing.js"] as const;

/** A sequence run's page: [name written, asset]. */
export const SEQ2SEQ_PAGE_FILES = [
  ["index.html", "seq2seq.html"],
  ["seq2seq-app.js", "seq2seq-app.js"],
  ["seq2seq-driver.js", "seq2seq-driver.js"],
  ["timing.js", "timing.js"],
] as const;

type PageAsset = (typeof PAGE_FILES)[number] | (typeof SEQ2SEQ_PAGE_FILES)[number][1];

/** The text of one of the pages' files. */
export function pageFile(name: PageAsset): string {
  return assetText(`web/${name}`);
}
