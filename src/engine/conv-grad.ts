// Convolution gradients, built from onnxruntime's fast kernels: the input gradient as a forward
// Conv (stride 1) or a ConvTranspose, the weight gradient as im2col + one GEMM or a Conv over
// batch-swapped tensors. Measured choices are in docs/engine.md ("Convolutions").

import type { Attrs, Dim, Graph, Value } from "./graph.js";
import { emit, intAttr, intsAttr, one } from "./ops.js";
import { concat, gather, gemm, reduceSum, reshape, slice, transpose } from "./functional.js";

export function convTransposeTo(g: Graph, dy: Value, w: Value, like: Value, o: { strides: number[]; pads: number[]; group: number }): Value {
  // output_padding makes ConvTranspose land exactly on the forward input size when a stride
  // dropped trailing rows/columns.
  const [sh, sw] = o.strides as [number, number];
  const [pt, pl, pb, pr] = o.pads as [number, number, number, number];
  const kh = w.shape[2] as number, kw = w.shape[3] as number;
  const h = like.shape[2] as number, wd = like.shape[3] as number;
  const ho = dy.shape[2] as number, wo = dy.shape[3] as number;
  const oph = h - (sh * (ho - 1) + kh - pt - pb), opw = wd - (sw * (wo - 1) + kw - pl - pr);
  const attrs: Attrs = { strides: { ints: o.strides }, pads: { ints: o.pads }, group: { i: o.group } };
  if (oph || opw) attrs["output_padding"] = { ints: [oph, opw] };
  return one("ConvTranspose", [dy, w], attrs, like.shape);
}

/**
 * Input channels from which the weight gradient is im2col + GEMM rather than a Conv over
 * batch-swapped tensors (strided layers only: stride-1 thin layers take the tap slices). The
 * swapped Conv runs C thin GEMMs only kh·kw wide, slow for many. Measured crossover at C = 4
 * when im2col copied C floats per tap; since it copies the batch's N floats, the two are even at
 * C = 1 (14.5 against 13.7 ms, stride 1), so the threshold stays (bench/conv-weight-grad-variants.ts,
 * docs/engine.md "Weight gradient").
 */
const IM2COL_MIN_CHANNELS = 4;

/**
 * Below this many input channels a stride-1 weight gradient is the tap slices' batched GEMM
 * (`weightGradByTapSlices`): it reads dY as it lies and needs no Gather, which wins while the
 * per-image GEMMs stay thin. Measured crossover between 8 (tap slices 1.1× faster) and 16
 * (im2col 1.2× faster) channels (bench/conv-weight-grad-variants.ts, docs/engine.md).
 */
const TAP_SLICES_BELOW_CHANNELS = 16;

/**
 * Ungrouped Conv weight gradient as im2col + one GEMM, im2col transposed: one Gather over the
 * padded input laid out [C, Hp·Wp, N] picks, for every kernel tap and output pixel, the N floats
 * of the whole batch, which makes colsᵀ [C·kh·kw, Ho·Wo·N] (rows already in dW's (c, a, b) order);
 * dWᵀ = colsᵀ · dY with dY as [Ho·Wo·N, M]. The reduction over pixels and batch is the GEMM's long
 * inner dimension. Any stride and padding.
 */
export function weightGradByIm2col(g: Graph, x: Value, dy: Value, kh: number, kw: number, strides: number[], pads: number[]): Value {
  const [n, c, h, wd] = x.shape as [Dim, number, number, number];
  const [, m, ho, wo] = dy.shape as [Dim, number, number, number];
  const [sh, sw] = strides as [number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const hp = h + pt + pb, wp = wd + pl + pr;
  // Both layout changes are ones onnxruntime does fast: a 2-D transpose, and one axis moved to
  // the front ([N, M, P] → [P, N, M]); a general 4-D permutation took 10× longer.
  const batchLast = reshape(transpose(reshape(x, [0, -1], [n!, c * h * wd]), [1, 0]), [c, h, wd, -1], [c, h, wd, n!]);
  const padded = pads.some((p) => p) ? emit("Pad", [batchLast, g.constInt64([0, pt, pl, 0, 0, pb, pr, 0])])[0]! : batchLast; // [C, Hp, Wp, N]
  const taps: number[] = [];
  for (let a = 0; a < kh; a++)
    for (let b = 0; b < kw; b++)
      for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) taps.push((i * sh + a) * wp + j * sw + b);
  const cols = gather(reshape(padded, [c, hp * wp, -1], [c, hp * wp, n!]), g.constInt64(taps, [kh * kw, ho * wo]), 1); // [C, kh·kw, Ho·Wo, N]
  const pixels = `${String(n)}*${ho}*${wo}`;
  const colsT = reshape(cols, [c * kh * kw, -1], [c * kh * kw, pixels]);
  const dyPixels = reshape(transpose(reshape(dy, [0, m, ho * wo], [n!, m, ho * wo]), [2, 0, 1]), [-1, m], [pixels, m]);
  // MLAS packs dY (the smaller operand) and reads colsᵀ's rows as they lie: 1.35–1.45× faster than
  // dY[M, P] · cols[P, C·kh·kw] (bench/gemm-orientation.ts, docs/engine.md "GEMM
  // orientation"). The reshape keeps onnxruntime from fusing the transpose into the Gemm (slower).
  return transpose(reshape(gemm(colsT, dyPixels), [c, kh, kw, m]), [3, 0, 1, 2]); // [C·kh·kw, M] → [M, C, kh, kw]
}

/**
 * Weight gradient of a stride-1, ungrouped convolution as one batched GEMM over the kernel taps:
 * each tap (a, b) is one Slice of the padded input, per image they stack into [kh·kw·C, Ho·Wo]
 * (blocks of whole rows, no transpose), dW = Σₙ dYₙ[M, Ho·Wo] · tapsₙᵀ as one batched MatMul
 * (onnxruntime fuses the transpose into it) and a sum over the batch. dY is read as it lies.
 */
export function weightGradByTapSlices(g: Graph, x: Value, dy: Value, kh: number, kw: number, pads: number[]): Value {
  const [n, c] = x.shape as [Dim, number];
  const [, m, ho, wo] = dy.shape as [Dim, number, number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const padded = pads.some((p) => p) ? emit("Pad", [x, g.constInt64([0, 0, pt, pl, 0, 0, pb, pr])])[0]! : x;
  const taps: Value[] = [];
  for (let a = 0; a < kh; a++) for (let b = 0; b < kw; b++) taps.push(slice(padded, [a, b], [a + ho, b + wo], [2, 3]));
  const cols = reshape(concat(taps, 1), [0, kh * kw * c, ho * wo], [n!, kh * kw * c, ho * wo]); // [N, kh·kw·C, Ho·Wo]
  const perImage = one("MatMul", [reshape(dy, [0, m, ho * wo], [n!, m, ho * wo]), transpose(cols, [0, 2, 1])]); // [N, M, kh·kw·C]
  // [M, kh·kw·C] → [M, C, kh, kw]
  return transpose(reshape(reduceSum(perImage, [0]), [m, kh, kw, c]), [0, 3, 1, 2]);
}

export function convGrad(g: Graph, x: Value, w: Value, b: Value | undefined, _y: Value, dy: Value, attrs: Attrs): (Value | undefined)[] {
  const strides = intsAttr(attrs, "strides", [1, 1]);
  const pads = intsAttr(attrs, "pads", [0, 0, 0, 0]);
  const group = intAttr(attrs, "group", 1);
  if (intsAttr(attrs, "dilations", [1, 1]).some((d) => d !== 1)) throw g.shapeError("Conv gradient: dilation is not supported");
  const [m, cPerGroup, kh, kw] = w.shape as number[];
  const c = cPerGroup! * group;

  const dx = strides.every((v) => v === 1) && group === 1 && pads.every((p, i) => p <= [kh!, kw!][i % 2]! - 1)
    ? inputGradByConv(g, dy, w, pads)
    : convTransposeTo(g, dy, w, x, { strides, pads, group });

  // Weight gradient, ungrouped: at stride 1 with few input channels, a batched GEMM over the
  // kernel taps as slices; else im2col + GEMM from IM2COL_MIN_CHANNELS inputs; else (and for
  // groups) a convolution of the input with the output gradient, batch and channel axes swapped
  // so the batch is summed over by the convolution itself (the forward stride becomes the dilation).
  const h = x.shape[2] as number, wd = x.shape[3] as number;
  const ho = dy.shape[2] as number, wo = dy.shape[3] as number;
  // Full correlation extent; can exceed the kernel when the stride dropped trailing input rows.
  const fullH = h + pads[0]! + pads[2]! - strides[0]! * (ho - 1), fullW = wd + pads[1]! + pads[3]! - strides[1]! * (wo - 1);
  const cropKernel = (v: Value): Value => (fullH === kh && fullW === kw ? v : slice(v, [0, 0], [kh!, kw!], [2, 3]));
  // Conv's static channel check cannot see through the symbolic batch that becomes the channel
  // axis here, so these nodes are added with their (known) output shape directly.
  const weightGradConv = (input: Value, kernel: Value, grp: number, outChannels: number, outBatch: number): Value =>
    g.addNode("Conv", [input, kernel], { dilations: { ints: strides }, pads: { ints: pads }, group: { i: grp } }, [
      { shape: [outBatch, outChannels, fullH, fullW], dtype: "float32" },
    ])[0]!;
  let dw: Value;
  if (group === 1 && c < TAP_SLICES_BELOW_CHANNELS && strides.every((v) => v === 1)) {
    dw = weightGradByTapSlices(g, x, dy, kh!, kw!, pads);
  } else if (group === 1 && c >= IM2COL_MIN_CHANNELS) {
    dw = weightGradByIm2col(g, x, dy, kh!, kw!, strides, pads);
  } else if (group === 1) {
    const xt = transpose(x, [1, 0, 2, 3]); // [C, N, H, W]
    const dyt = transpose(dy, [1, 0, 2, 3]); // [M, N, Ho, Wo]
    dw = transpose(cropKernel(weightGradConv(xt, dyt, 1, m!, c)), [1, 0, 2, 3]);
  } else if (cPerGroup === 1) {
    // Depthwise: every input channel is its own group; the batch becomes the group's channels.
    const xt = reshape(transpose(x, [1, 0, 2, 3]), [1, -1, h, wd], [1, `${c}*N`, h, wd]);
    const dyt = transpose(dy, [1, 0, 2, 3]); // [M, N, Ho, Wo]: group g reads its N channels
    dw = cropKernel(reshape(weightGradConv(xt, dyt, group, m!, 1), [m!, 1, fullH, fullW]));
  } else {
    // General grouped convolution: one groups=1 weight gradient per group, concatenated.
    const mPerGroup = m! / group;
    const parts: Value[] = [];
    for (let gi = 0; gi < group; gi++) {
      const xs = transpose(slice(x, [gi * cPerGroup!], [(gi + 1) * cPerGroup!], [1]), [1, 0, 2, 3]);
      const dys = transpose(slice(dy, [gi * mPerGroup], [(gi + 1) * mPerGroup], [1]), [1, 0, 2, 3]);
      parts.push(transpose(cropKernel(weightGradConv(xs, dys, 1, mPerGroup, cPerGroup!)), [1, 0, 2, 3]));
    }
    dw = concat(parts, 0);
  }
  const db = b ? reduceSum(biasGradSource(dy), [0, 2, 3]) : undefined;
  return [dx, dw, db];
}

/**
 * What the bias gradient sums: dY itself, or, where dY is a max-pool gradient (MaxUnpool of the
 * pooled gradient), the pooled gradient, 4× smaller for a 2×2 pool. MaxUnpool only places values
 * (the windows do not overlap), so both have the same per-channel sums.
 */
function biasGradSource(dy: Value): Value {
  const p = dy.producer;
  const pooled = p?.opType === "MaxUnpool" ? p.inputs[0] : undefined;
  return pooled && pooled.rank === 4 && pooled.shape[1] === dy.shape[1] ? pooled : dy;
}

/**
 * Input gradient of a stride-1, ungrouped convolution as a forward `Conv` of dY with the kernel
 * flipped in space and its channel axes swapped, padded by k−1−p. Whole CNN training step at two
 * threads: 1.28× faster than with ConvTranspose (at one thread ConvTranspose was 1.11× faster;
 * docs/engine.md, "Weight gradient").
 */
function inputGradByConv(g: Graph, dy: Value, w: Value, pads: number[]): Value {
  const [m, c, kh, kw] = w.shape as [number, number, number, number];
  // [M, C, kh, kw] → [kh·kw, C, M], taps reversed (a flip of both spatial axes) → [C, M, kh, kw]
  const taps = reshape(transpose(w, [2, 3, 1, 0]), [kh * kw, c, m]);
  const reversed = gather(taps, g.constInt64(Array.from({ length: kh * kw }, (_, i) => kh * kw - 1 - i)));
  const kernel = transpose(reshape(reversed, [kh, kw, c, m]), [2, 3, 0, 1]);
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  return one("Conv", [dy, kernel], { kernel_shape: { ints: [kh, kw] }, pads: { ints: [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr] } });
}
