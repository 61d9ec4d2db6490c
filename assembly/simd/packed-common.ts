// Helpers the packed-layout SIMD matmul kernels (simd/matmul-packed*.ts) share: the guarded store of
// one token's eight row results, a lane broadcast, and the four-row quad dot of unsigned quant bytes
// against four int8 activations. All @inline, so each kernel compiles as if they were its own.

/** i32 lane k (a constant after inlining) of v in every lane. */
// @ts-ignore: decorator
@inline export function splatLane(v: v128, k: i32): v128 {
  if (k == 0) return i32x4.shuffle(v, v, 0, 0, 0, 0);
  if (k == 1) return i32x4.shuffle(v, v, 1, 1, 1, 1);
  if (k == 2) return i32x4.shuffle(v, v, 2, 2, 2, 2);
  return i32x4.shuffle(v, v, 3, 3, 3, 3);
}

/**
 * acc + the lane sums of four rows' four quant bytes (bytes of q, lane = row, each 0..127) against the
 * activation quad x[4k..4k+3]: relaxed, from the int8 bytes at xq (q is the dot's 7-bit operand, exact
 * on every engine); SIMD128, from ev/od lane k (x's even and odd bytes as i16).
 */
// @ts-ignore: decorator
@inline export function quadDot(acc: v128, q: v128, xq: usize, k: i32, ev: v128, od: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq + (<usize>k << 2)), q, acc);
  const xe = splatLane(ev, k), xo = splatLane(od, k);
  const e = v128.and(q, i16x8.splat(0x00ff)), o = i16x8.shr_u(q, 8);
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(e, xe), i32x4.dot_i16x8_s(o, xo)));
}

/** Stores eight outputs (rows r0..r0+7 of one token) where they fall inside [rowStart, rowEnd). */
// @ts-ignore: decorator
@inline export function storeGroup(o: usize, r0: i32, rowStart: i32, rowEnd: i32, lo: v128, hi: v128): void {
  if (r0 >= rowStart && r0 + 8 <= rowEnd) {
    v128.store(o + (<usize>r0 << 2), lo);
    v128.store(o + (<usize>r0 << 2) + 16, hi);
    return;
  }
  for (let i = 0; i < 8; i++) {
    const r = r0 + i;
    if (r < rowStart || r >= rowEnd) continue;
    const v = i < 4 ? lo : hi;
    const lane = i & 3;
    const f = lane == 0 ? f32x4.extract_lane(v, 0) : lane == 1 ? f32x4.extract_lane(v, 1) : lane == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
    store<f32>(o + (<usize>r << 2), f);
  }
}
