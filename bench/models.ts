// The two benchmark students (bench/main.ts, bench/loop-vs-step.ts): the MLP and CNN the PyTorch
// peer (../shared/peers/torch_peer.py) builds too.

import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";

const digits = [..."0123456789"];

export function mlp800(): Model {
  return new Model(
    new L.Sequential([new L.Linear({ outFeatures: 800 }), new L.ReLU(), new L.Linear({ outFeatures: 800 }), new L.ReLU(), new L.Linear({ outFeatures: 10 })]),
    { shape: [784], scale: 1 / 255 },
    digits,
  );
}

export function cnn(): Model {
  return new Model(
    new L.Sequential([
      new L.Conv2d({ outChannels: 32, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Conv2d({ outChannels: 64, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Flatten(),
      new L.Linear({ outFeatures: 128 }),
      new L.ReLU(),
      new L.Linear({ outFeatures: 10 }),
    ]),
    { shape: [1, 28, 28], scale: 1 / 255 },
    digits,
  );
}
