// Model building: shape errors at build time naming the layer, seeded initialisation, stable
// layer names for taps, and PyTorch-style init bounds.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Graph, ShapeError } from "../src/engine/graph.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";

const digits = [..."0123456789"];

describe("model building", () => {
  it("a width mismatch is a ShapeError naming the layer and both shapes", () => {
    const model = new Model(new L.Sequential([new L.Linear({ outFeatures: 32 }), new L.ReLU(), new L.Linear({ inFeatures: 64, outFeatures: 10 })]), { shape: [784] }, digits);
    assert.throws(
      () => model.initParameters(0),
      (e: unknown) => e instanceof ShapeError && /linear2/.test(e.message) && /expected 64, got 32/.test(e.message) && /\[N, 32\]/.test(e.message),
    );
  });
  it("a conv on a flat input, and a wrong class count, are named errors", () => {
    const conv = new Model(new L.Sequential([new L.Conv2d({ outChannels: 4, kernelSize: 3 })]), { shape: [784] }, digits);
    assert.throws(() => conv.initParameters(0), /conv1: Conv2d expects \[batch, channels, height, width\], got \[N, 784\]/);
    const classes = new Model(new L.Sequential([new L.Linear({ outFeatures: 7 })]), { shape: [4] }, digits);
    assert.throws(() => classes.initParameters(0), /ends in \[N, 7\].*10 classes/);
    const big = new Model(new L.Sequential([new L.Conv2d({ outChannels: 4, kernelSize: 9 })]), { shape: [1, 5, 5] }, digits);
    assert.throws(() => big.initParameters(0), /conv1: kernel 9 .* does not fit input size 5/);
  });
  it("same seed gives the same bits; another seed differs", () => {
    const make = () => new Model(new L.Sequential([new L.Conv2d({ outChannels: 4, kernelSize: 3 }), new L.Flatten(), new L.Linear({ outFeatures: 10 })]), { shape: [1, 8, 8] }, digits);
    const a = make().initParameters(42), b = make().initParameters(42), c = make().initParameters(43);
    for (const d of a.decls) assert.deepEqual(a.get(d.name).data, b.get(d.name).data);
    assert.notDeepEqual(a.get("conv1.weight").data, c.get("conv1.weight").data);
  });
  it("initialises like PyTorch: U(±1/√fan_in) for Linear and Conv weights and biases", () => {
    const m = new Model(new L.Sequential([new L.Conv2d({ outChannels: 16, kernelSize: 3 }), new L.Flatten(), new L.Linear({ outFeatures: 10 })]), { shape: [2, 6, 6] }, digits);
    const p = m.initParameters(0);
    const check = (name: string, fanIn: number) => {
      const d = p.get(name).data, bound = 1 / Math.sqrt(fanIn);
      const max = d.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
      assert.ok(max <= bound && max > 0.8 * bound, `${name}: max |w| ${max}, bound ${bound}`);
    };
    check("conv1.weight", 2 * 9);
    check("conv1.bias", 2 * 9);
    check("linear1.weight", 16 * 16);
    assert.equal(p.count(), 16 * 2 * 9 + 16 + 10 * 256 + 10);
  });
  it("every layer's output is a tap addressable by its path", () => {
    const net = new L.Sequential([
      new L.Residual(new L.Sequential([new L.Linear({ outFeatures: 8 }), new L.ReLU()])),
      new L.Linear({ outFeatures: 10 }, ),
    ], ["block", "head"]);
    const model = new Model(net, { shape: [8] }, digits);
    const g = new Graph();
    model.build(g, "eval", { kind: "initializers", params: model.initParameters(0) }, model.inputValue(g));
    assert.deepEqual([...g.taps.keys()].sort(), ["block", "block.body", "block.body.linear1", "block.body.relu1", "head"]);
    assert.deepEqual(g.taps.get("block.body.linear1")!.shape, ["N", 8]);
  });
});
