// Reverse-mode automatic differentiation over a Graph: walks the nodes backwards from a scalar
// and appends gradient nodes (built by each op's rule in gradients.ts) to the same graph.

import { type Graph, type Value, type GraphNode, formatShape } from "./graph.js";
import { add, expandLike, unbroadcast, zerosLike } from "./functional.js";
import { GRADIENTS, type GradContext } from "./gradients.js";

/**
 * Gradients of `output` with respect to each of `wrt`. `seed` is dL/d(output); by default 1
 * (output must then be a scalar). Only nodes on a path from some `wrt` to `output` are
 * differentiated, so constants such as teacher logits or labels cost nothing.
 */
export function gradients(graph: Graph, output: Value, wrt: Value[], seed?: Value): Value[] {
  if (!seed && output.rank !== 0) throw new Error(`gradients: output ${output.name} must be a scalar, got ${formatShape(output.shape)}`);

  // Forward reachability: which values depend on something we differentiate for.
  const depends = new Set<Value>(wrt);
  for (const node of graph.nodes) {
    if (node.inputs.some((v) => v && depends.has(v))) for (const o of node.outputs) depends.add(o);
  }
  if (!depends.has(output)) throw new Error(`gradients: ${output.name} does not depend on the requested values`);

  const grads = new Map<Value, Value>();
  const accumulate = (v: Value, d: Value) => {
    const prev = grads.get(v);
    grads.set(v, prev ? graph.withScope("grad", () => add(prev, d)) : d);
  };
  accumulate(output, seed ?? graph.constFloat([1]));

  // graph.nodes is in topological order (a node is appended after its inputs exist); the
  // gradient nodes appended below come after the position we walk from, so they are never visited.
  const forwardNodes: GraphNode[] = graph.nodes.slice();
  for (let i = forwardNodes.length - 1; i >= 0; i--) {
    const node = forwardNodes[i]!;
    if (!node.outputs.some((o) => depends.has(o))) continue;
    const dOut = node.outputs.map((o) => grads.get(o));
    if (dOut.every((d) => !d)) continue;
    const grad = GRADIENTS[node.opType];
    if (!grad) {
      if (node.inputs.some((v) => v && depends.has(v) && v.dtype === "float32"))
        throw new Error(`${node.scope || "<graph>"}: op ${node.opType} is not differentiable`);
      continue;
    }
    graph.withScope(`grad${node.scope ? "/" + node.scope : ""}`, () => {
      const dIn = grad(gradContext(graph, node, dOut));
      node.inputs.forEach((v, k) => {
        const d = dIn[k];
        // Broadcasting is undone here, once, rather than in every rule.
        if (v && d && depends.has(v)) accumulate(v, unbroadcast(d, v));
      });
    });
  }
  return wrt.map((v) => {
    const d = grads.get(v);
    // A parameter that does not influence the output has a zero gradient.
    return d ?? graph.withScope("grad", () => expandLike(graph.constFloat([0]), v));
  });
}

/** The named view of one node that a gradient rule reads (see GradContext in gradients.ts). */
function gradContext(g: Graph, node: GraphNode, dOut: (Value | undefined)[]): GradContext {
  const input = (i: number): Value => {
    const v = node.inputs[i];
    if (!v) throw new Error(`${node.scope || "<graph>"}: ${node.opType} has no input ${i}, which its gradient needs`);
    return v;
  };
  const y = node.outputs[0]!;
  // Where only a later output received a gradient, the first contributes zeros.
  const dy = dOut[0] ?? zerosLike(y);
  return { g, x: input(0), y, dy, attrs: node.attrs, input, inputs: node.inputs, outputs: node.outputs };
}
