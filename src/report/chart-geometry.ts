// Two pieces of chart geometry shared by the pages: where to put a point's name so names never
// overlap, and log-axis ticks for byte sizes at round binary values. compare.html calls them while
// it writes its SVG; the run report inlines their source (Function.prototype.toString) for its
// browser script, so both pages follow one implementation. Each function is therefore
// self-contained: no imports, no helpers outside its own body.

export interface LabelRequest {
  /** The point, in pixels. */
  x: number;
  y: number;
  /** The label's size in pixels. */
  width: number;
  height: number;
}

export interface PlacedLabel {
  /** Top-left corner of the label's box. */
  left: number;
  top: number;
  width: number;
  height: number;
  /** Placed away from its point: draw a line from the point to the box. */
  leader: boolean;
}

/**
 * Greedy placement, in the order given: each label takes the first spot around its point whose
 * box overlaps no earlier label and no point marker, inside `area`; failing those, spots farther
 * out (with a leader line); failing all, the spot that overlaps least.
 */
export function placeLabels(
  points: LabelRequest[],
  area: { left: number; top: number; right: number; bottom: number },
  markerRadius: number,
): PlacedLabel[] {
  const gap = markerRadius + 3;
  const markers = points.map((p) => ({ left: p.x - markerRadius, top: p.y - markerRadius, width: 2 * markerRadius, height: 2 * markerRadius }));
  const placed: PlacedLabel[] = [];
  const overlap = (a: { left: number; top: number; width: number; height: number }, b: { left: number; top: number; width: number; height: number }) =>
    Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left)) * Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));
  for (const p of points) {
    const w = p.width, h = p.height;
    const near = [
      [p.x + gap, p.y - gap - h + 4], [p.x + gap, p.y + gap - 4], [p.x - gap - w, p.y - gap - h + 4], [p.x - gap - w, p.y + gap - 4],
      [p.x + gap, p.y - h / 2], [p.x - gap - w, p.y - h / 2], [p.x - w / 2, p.y - gap - h], [p.x - w / 2, p.y + gap],
    ];
    const far: number[][] = [];
    for (let ring = 1; ring <= 8; ring++) {
      const dy = ring * (h + 2);
      for (const side of [p.x + gap + 6, p.x - gap - 6 - w]) far.push([side, p.y - h / 2 - dy], [side, p.y - h / 2 + dy]);
      far.push([p.x - w / 2, p.y - gap - h - dy], [p.x - w / 2, p.y + gap + dy]);
    }
    let best: PlacedLabel | undefined;
    let bestCost = Infinity;
    const candidates = near.map((c) => [c[0]!, c[1]!, 0]).concat(far.map((c) => [c[0]!, c[1]!, 1]));
    for (const [left, top, isFar] of candidates) {
      const box = { left: left!, top: top!, width: w, height: h, leader: isFar === 1 };
      if (box.left < area.left || box.top < area.top || box.left + w > area.right || box.top + h > area.bottom) continue;
      let cost = 0;
      for (const other of placed) cost += overlap(box, other);
      for (const m of markers) cost += overlap(box, m);
      if (cost === 0) {
        best = box;
        bestCost = 0;
        break;
      }
      if (cost < bestCost) {
        best = box;
        bestCost = cost;
      }
    }
    placed.push(best ?? { left: Math.min(Math.max(p.x + gap, area.left), area.right - w), top: Math.min(Math.max(p.y - h / 2, area.top), area.bottom - h), width: w, height: h, leader: false });
  }
  return placed;
}

/**
 * Log-axis ticks for byte counts between `lo` and `hi`: 1, 2 and 5 × 10ⁿ B, KiB, MiB and GiB, so
 * every label ("200 KiB") names its tick's exact value (204,800 bytes), not a decimal count
 * printed in binary units. A range holding fewer than two such values gets its two ends instead.
 */
export function binaryByteTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (const unit of [1, 1024, 1024 * 1024, 1024 * 1024 * 1024])
    for (const decade of [1, 10, 100])
      for (const m of [1, 2, 5]) {
        const v = m * decade * unit;
        if (v >= lo && v <= hi) ticks.push(v);
      }
  // A range too narrow for two round values gets its ends, labelled to three figures.
  return ticks.length >= 2 ? ticks.sort((a, b) => a - b) : [lo, hi];
}

/** A tick's label: "512 B", "200 KiB", "1 MiB"; exact for binaryByteTicks' values. */
export function byteTickLabel(v: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let u = 0;
  while (u < units.length - 1 && v >= 1024) {
    v /= 1024;
    u++;
  }
  return `${Number(v.toPrecision(3))} ${units[u]}`;
}
