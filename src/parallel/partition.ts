// Work partition: splits a range of rows, heads, tokens or elements into consecutive per-thread ranges
// in proportion to each thread's weight, with aligned boundaries so that every range but the last is a
// whole number of row groups (and of SIMD lanes, so no element lands in a kernel's scalar tail that the
// one-thread run computes in its vector body).

/** Row ranges of matmuls are multiples of this, ready for packed 16-row weight groups. */
export const ROW_ALIGN = 16;
/** Element ranges of elementwise kernels (addRows) are multiples of this: whole f32x4 vectors, 64 bytes. */
export const ELEMENT_ALIGN = 16;

/**
 * Splits [0, total) among `count` participants: participant p gets [out[base+2p], out[base+2p+1]),
 * about total × weights[p] / Σweights long. Boundaries are multiples of `align`, except that the last
 * participant with a positive weight ends at `total`; participants of weight 0 (or ≤ 0, NaN) get an
 * empty range. When no weight is positive, participant 0 gets everything.
 */
export function partitionRange(total: number, weights: ArrayLike<number>, count: number, align: number, out: Int32Array, base: number): void {
  let sum = 0;
  let last = -1;
  for (let p = 0; p < count; p++) {
    const w = weights[p]!;
    if (w > 0) {
      sum += w;
      last = p;
    }
  }
  if (last < 0) {
    out[base] = 0;
    out[base + 1] = total;
    for (let p = 1; p < count; p++) out[base + 2 * p] = out[base + 2 * p + 1] = total;
    return;
  }
  let acc = 0;
  let prev = 0;
  for (let p = 0; p < count; p++) {
    const w = weights[p]!;
    let end = prev;
    if (w > 0) {
      acc += w;
      end = p === last ? total : Math.round((total * acc) / sum / align) * align;
      end = Math.min(total, Math.max(prev, end));
    }
    out[base + 2 * p] = prev;
    out[base + 2 * p + 1] = end;
    prev = end;
  }
}
