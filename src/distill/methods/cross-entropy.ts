// The baseline: the student trained on hard labels alone (no teacher), with the same budget; also
// the hard-label term next to feature and relation terms.

import { z } from "zod";
import { obj } from "../../config/fields.js";
import { crossEntropy } from "../../nn/losses.js";
import { defineMethod } from "./types.js";

export const crossEntropyMethod = defineMethod({
  name: "cross-entropy",
  reference: "hard-label training (the no-distillation baseline)",
  settings: obj({}) as z.ZodType<Record<string, never>>,
  includesCrossEntropy: true,
  needs: () => ({ labels: "required", partialLabels: true }),
  loss({ ctx, labels, labeledShare }) {
    const ce = crossEntropy(ctx.logits, labels!, { labeledShare });
    return { loss: ce, parts: { loss_ce: ce } };
  },
});
