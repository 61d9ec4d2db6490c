// SIMD128 / relaxed-SIMD matrix multiplies over the packed Q4_0x8 and Q8_0x8 layouts (formats.ts), same
// signature and same bits as their scalar twin (ref/matmul.ts, packedMatmul): out[t*rows + r] =
// dot(W row r, x row t) with Q8_0 activations, rows [rowStart, rowEnd) (any range; ranges on
// multiples of PACK_ROWS avoid computing a group twice).
//
// A group of 8 rows shares every activation load. Integer sums are exact in any grouping, so packing
// changes nothing numerically; the float steps per output are llama.cpp's x86 ones (see
// simd/matmul.ts, "x86 order"):
//   one lane  (Q4_0 with rows % 8 == 0, llama.cpp's repacked q4_0_8x8): acc = fma(f32(isum), dw*dx, acc)
//             per block; here for 8 outputs at once: relaxed, four per f32x4.relaxed_madd (fused:
//             the start-up self-test checks it); SIMD128, two per f64x2 with the exact f64 emulation
//             of lanes.ts (f64 sums, a halfway check over each step's pairs, fmaSlowPair when it
//             fires), which gives the same bits.
//   8 lanes   (Q8_0, and Q4_0 with rows % 8 != 0: ggml_vec_dot_q*_0_q8_0): lane i of an output takes
//             the integer sum over weights 4i..4i+3 of each block, one fma per block, then hsum_float_8.
//
// Q4_0 quants are used unsigned (0..15) and the zero point returns through the activation sums:
// sum_j (q_j - 8) x_j = sum_j q_j x_j - 8 * sum_j x_j. That keeps the relaxed dot's second operand in
// 0..127, where every engine computes it exactly. Q8_0 weights are signed: SIMD128 takes the widening
// i16 dot (the packed halves are stored evens first, so extend_low/high give the even and odd weights
// that x86's quad grouping needs without shuffles); the relaxed build splits the activation instead,
// x = p - n with p = max(x, 0) and n = p - x both in 0..127, so two relaxed dots of the (reordered)
// signed weights against p and n give each quad's exact sum. A block holding an activation of -128
// (never made by the quantizer: |q| <= 127) takes the widening dots.
//
// dw * dx: the product of two f16 values, rounded once to f32. Moving a scale's sign and magnitude bits
// into an f32's place makes dw * 2^-112 exactly, so (that) * (dx * 2^112) is the same real product and
// rounds to the same f32 as f32(dw) * f32(dx), in two vector instructions instead of a full f16
// conversion (scaleProducts). Infinite and NaN scales (exponent all ones) take the full conversion.
//
// Decode (one token): the relaxed build runs four whole Q4_0 groups at a time (or two), and Q8_0 a
// whole group, sharing each activation block's zero point, split and scale over 32 (Q8_0: 8) rows.
// Prefill (nTok > 1) on a whole one-lane group keeps its accumulators in `out` itself (an f32 is all
// the one-lane accumulator ever holds between blocks): blocks outer, tokens inner, so the group's
// weights are read from memory once for every token; the relaxed build takes the tokens four at a time
// there, unpacking each half group's nibbles once for the four. Decode and partial groups keep the
// accumulators in registers.
// Q8_0 takes two rows at a time (relaxed: the whole group, or four rows at a range's edges) and runs
// every token over them while their weights sit in cache.
//
// The hot loops take their v128 constants through `keep` (V8 otherwise rebuilds each at every use) and
// constant load offsets as immediates: neither changes a value.
import { BYTES_Q8_0, PACK_ROWS, PACKED_Q4_0_GROUP, PACKED_Q8_0_GROUP } from '../formats';
import { loadF16 } from '../half';
import { evenI16, fmaF32x4, fmaRound, fmaSlowPair, hsum8, hsumX86, joinF32, mulLanes, oddI16, roundToF32 } from './lanes';
import { quadDot, splatLane, storeGroup } from './packed-common';

// ---- shared pieces ----

/** [sum p0, sum p1, sum p2, sum p3]: four rows' partial i32x4 sums to one lane each (exact). */
// @ts-ignore: decorator
@inline function reduce4(p0: v128, p1: v128, p2: v128, p3: v128): v128 {
  const a = i32x4.add(i32x4.shuffle(p0, p1, 0, 1, 4, 5), i32x4.shuffle(p0, p1, 2, 3, 6, 7));
  const b = i32x4.add(i32x4.shuffle(p2, p3, 0, 1, 4, 5), i32x4.shuffle(p2, p3, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(a, b, 0, 2, 4, 6), i32x4.shuffle(a, b, 1, 3, 5, 7));
}

/** Scales of rows 0..3 (`high` false) or 4..7 of a group block, f16 to f32. */
// @ts-ignore: decorator
@inline function groupScales(gb: usize, high: bool): v128 {
  const h = v128.load(gb);
  return scalesToF32(high ? i32x4.extend_high_i16x8_s(h) : i32x4.extend_low_i16x8_s(h));
}

/**
 * Four f16 (sign-extended into i32 lanes) to f32, exact: the magnitude's bits moved into an f32's
 * place stand for the value times 2^-112 (normal or, for subnormal halves, subnormal), so one
 * multiply by 2^112 gives the value exactly; infinities and NaNs keep an all-ones exponent.
 */
// @ts-ignore: decorator
@inline function scalesToF32(h: v128): v128 {
  const mag = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  const f = f32x4.mul(mag, f32x4.splat(reinterpret<f32>(0x77800000)));
  const special = v128.bitselect(v128.or(mag, i32x4.splat(0x7f800000)), f, i32x4.gt_s(mag, i32x4.splat(0x0f7fffff)));
  return v128.or(special, v128.and(h, i32x4.splat(0x80000000)));
}

/**
 * Two one-lane steps: acc (outputs 2k, 2k+1 as f64x2 holding f32 values) = f32(isum * d + acc), isum
 * from lanes 0-1 (`high` false) or 2-3 of `s`, d from the same lanes of the f32x4 `d4`.
 */
// @ts-ignore: decorator
@inline function fmaPair(acc: v128, s: v128, d4: v128, high: bool): v128 {
  return fmaRound(pairProducts(s, d4, high), acc);
}

/** isum * d in f64 for two outputs (lanes 0-1 of s and d4, or 2-3 when `high`): exact. */
// @ts-ignore: decorator
@inline function pairProducts(s: v128, d4: v128, high: bool): v128 {
  const ss = high ? i32x4.shuffle(s, s, 2, 3, 2, 3) : s;
  const dd = high ? i32x4.shuffle(d4, d4, 2, 3, 2, 3) : d4;
  return f64x2.mul(f64x2.convert_low_i32x4_s(ss), f64x2.promote_low_f32x4(dd));
}

/** Four one-lane outputs whose accumulators are the f32x4 at p (0 when `first`), updated in place. */
// @ts-ignore: decorator
@inline function fmaStore4(p: usize, s: v128, d4: v128, first: bool): void {
  const acc = first ? f32x4.splat(0) : v128.load(p);
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(p, fmaF32x4(acc, s, d4));
    return;
  }
  const lo = fmaPair(f64x2.promote_low_f32x4(acc), s, d4, false);
  const hi = fmaPair(f64x2.promote_low_f32x4(i32x4.shuffle(acc, acc, 2, 3, 2, 3)), s, d4, true);
  v128.store(p, joinF32(lo, hi));
}

/**
 * SIMD128 fmaStore4 with its constants passed in (see keep): k29/kHalf of halfwayK, kAbs (f64 sign
 * cleared) and kTiny (2^-126 in f64 lanes); each pair checked as fmaRound checks it.
 */
// @ts-ignore: decorator
@inline function fmaStore4K(p: usize, s: v128, d4: v128, first: bool, k29: v128, kHalf: v128, kAbs: v128, kTiny: v128): void {
  const acc = first ? f32x4.splat(0) : v128.load(p);
  const lo = fmaRoundK(pairProducts(s, d4, false), f64x2.promote_low_f32x4(acc), k29, kHalf, kAbs, kTiny);
  const hi = fmaRoundK(pairProducts(s, d4, true), f64x2.promote_low_f32x4(i32x4.shuffle(acc, acc, 2, 3, 2, 3)), k29, kHalf, kAbs, kTiny);
  v128.store(p, joinF32(lo, hi));
}

/** lanes.ts's fmaRound with its constants passed in. */
// @ts-ignore: decorator
@inline function fmaRoundK(p: v128, c: v128, k29: v128, kHalf: v128, kAbs: v128, kTiny: v128): v128 {
  const s = f64x2.add(p, c);
  if (v128.any_true(v128.or(halfwayK(s, k29, kHalf), f64x2.lt(v128.and(s, kAbs), kTiny)))) return fmaSlowPair(p, c, s);
  return roundToF32(s);
}

/**
 * c, made opaque to the compilers. V8 rebuilds a v128 constant at every use (three instructions: a
 * scalar move, a move to the vector register and a shuffle), so the hot loops build theirs once before
 * the loop with this: `opaqueZero` is a splat of a value that is 0 whenever the loop runs (a count's
 * sign bit), which neither Binaryen nor V8 can fold, and the result stays in a register or a spill slot.
 */
// @ts-ignore: decorator
@inline function keep(c: v128, opaqueZero: v128): v128 {
  return v128.or(c, opaqueZero);
}

/** f32Halfway (lanes.ts) with its two constants passed in (see keep). */
// @ts-ignore: decorator
@inline function halfwayK(s: v128, kLow29: v128, kHalf: v128): v128 {
  return i64x2.eq(v128.and(s, kLow29), kHalf);
}

/**
 * dw * dx rounded to f32 for four rows: h their f16 scales sign-extended into i32 lanes, dx112 the
 * activation scale times 2^112 (exact: dx is an f16, below 2^16). The f16's sign and magnitude bits
 * moved into an f32's place stand for dw * 2^-112 exactly (subnormal for subnormal halves), so one
 * multiply gives the same real product, rounded once, as dw * dx (a subnormal scale makes a subnormal
 * operand: slow on x86, still exact). Infinite and NaN scales are not handled here: callers check
 * specialScales first. kSignMag: 0x8fffffff (see keep).
 */
// @ts-ignore: decorator
@inline function scaleProducts(h: v128, dx112: v128, kSignMag: v128): v128 {
  return f32x4.mul(v128.and(i32x4.shl(h, 13), kSignMag), dx112);
}

/** All-ones i16 lanes where a group block's f16 scale (hv: the eight raw scales) is infinite or NaN. kExp: 0x7c00 lanes. */
// @ts-ignore: decorator
@inline function specialScales(hv: v128, kExp: v128): v128 {
  return i16x8.eq(v128.and(hv, kExp), kExp);
}

// ===================== Q4_0x8 =====================
// The quants of a group block come as 8 vectors v(k, h) (k = quad 0..3, h = row half): rows 4h..4h+3,
// four quant bytes 4k..4k+3 each. One dot of v(k, h)'s low nibbles with x[4k..4k+3] repeated four times
// gives the four rows' sums over weights 4k..4k+3 in their own lanes (high nibbles: weights 16+4k..),
// so a row's block sum builds up in its lane with no horizontal reduction.

/** -8 * sum of an activation block's 32 quants, in every lane (the Q4_0 zero point). */
// @ts-ignore: decorator
@inline function zeroPoint(xq: usize): v128 {
  const xl = v128.load(xq), xh = v128.load(xq + 16);
  let s: v128;
  if (ASC_FEATURE_RELAXED_SIMD) {
    s = i32x4.relaxed_dot_i8x16_i7x16_add_s(xl, i8x16.splat(1), i32x4.relaxed_dot_i8x16_i7x16_add_s(xh, i8x16.splat(1), i32x4.splat(0)));
  } else {
    s = i32x4.extadd_pairwise_i16x8_s(i16x8.add(i16x8.extadd_pairwise_i8x16_s(xl), i16x8.extadd_pairwise_i8x16_s(xh)));
  }
  s = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
  s = i32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2));
  return i32x4.mul(s, i32x4.splat(-8));
}

/** zeroPoint with the relaxed build's ones vector passed in (see keep). */
// @ts-ignore: decorator
@inline function zeroPointK(xq: usize, ones: v128): v128 {
  let s = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq), ones, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(xq, 16), ones, i32x4.splat(0)));
  s = i32x4.add(s, i32x4.shuffle(s, s, 2, 3, 0, 1));
  s = i32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2));
  return i32x4.neg(i32x4.shl(s, 3));
}

/** Block integer sums of rows 4h..4h+3 (quants of half h at q = group block + 16 + 16h), plus z. */
// @ts-ignore: decorator
@inline function q4HalfSums(q: usize, z: v128, xq: usize, evL: v128, odL: v128, evH: v128, odH: v128): v128 {
  const m = i8x16.splat(15);
  const v0 = v128.load(q), v1 = v128.load(q + 32), v2 = v128.load(q + 64), v3 = v128.load(q + 96);
  // two chains (low and high nibbles) to halve the dependent dot latency
  let a = quadDot(z, v128.and(v0, m), xq, 0, evL, odL);
  let b = quadDot(i32x4.splat(0), i8x16.shr_u(v0, 4), xq + 16, 0, evH, odH);
  a = quadDot(a, v128.and(v1, m), xq, 1, evL, odL);
  b = quadDot(b, i8x16.shr_u(v1, 4), xq + 16, 1, evH, odH);
  a = quadDot(a, v128.and(v2, m), xq, 2, evL, odL);
  b = quadDot(b, i8x16.shr_u(v2, 4), xq + 16, 2, evH, odH);
  a = quadDot(a, v128.and(v3, m), xq, 3, evL, odL);
  b = quadDot(b, i8x16.shr_u(v3, 4), xq + 16, 3, evH, odH);
  return i32x4.add(a, b);
}

/**
 * Relaxed: z + the block sums of four rows from their unpacked nibbles (l_k: low nibbles of quad
 * vector k, h_k: high), against the activation quants at xq (two chains, as q4HalfSums).
 */
// @ts-ignore: decorator
@inline function nibbleSums(z: v128, xq: usize, l0: v128, l1: v128, l2: v128, l3: v128, h0: v128, h1: v128, h2: v128, h3: v128): v128 {
  let a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq), l0, z);
  let b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 16), h0, i32x4.splat(0));
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 4), l1, a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 20), h1, b);
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 8), l2, a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 24), h2, b);
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 12), l3, a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 28), h3, b);
  return i32x4.add(a, b);
}

/** One token, one whole group, one lane per output: the eight results stored at o where in range. */
// @ts-ignore: decorator
@inline function q4GroupOneLane(wg: usize, xt: usize, nb: i32, o: usize, r0: i32, rowStart: i32, rowEnd: i32): void {
  // relaxed: rows 0-3 in a0, 4-7 in a1 (f32x4); otherwise two rows per f64x2, a0..a3
  const zero = f64x2.splat(0);
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  const oz = i32x4.splat(nb >>> 31);
  const kNib = keep(i16x8.splat(0x000f), oz), kLow29 = keep(i64x2.splat(0x1fffffff), oz), kHalf = keep(i64x2.splat(0x10000000), oz);
  const kSignMag = keep(i32x4.splat(0x8fffffff), oz), kExp = keep(i16x8.splat(0x7c00), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q4_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const xq = xb + 2;
    let evL = i32x4.splat(0), odL = evL, evH = evL, odH = evL;
    if (!ASC_FEATURE_RELAXED_SIMD) {
      const xl = v128.load(xq), xh = v128.load(xq + 16);
      evL = evenI16(xl); odL = oddI16(xl); evH = evenI16(xh); odH = oddI16(xh);
    }
    const z = zeroPoint(xq);
    let s0: v128, s1: v128;
    if (ASC_FEATURE_RELAXED_SIMD) {
      s0 = q4HalfSums(gb + 16, z, xq, evL, odL, evH, odH);
      s1 = q4HalfSums(gb + 32, z, xq, evL, odL, evH, odH);
    } else {
      s0 = q4HalfSumsI16(gb + 16, z, evL, odL, evH, odH, kNib);
      s1 = q4HalfSumsI16(gb + 32, z, evL, odL, evH, odH, kNib);
    }
    const hv = v128.load(gb);
    let d0: v128, d1: v128;
    if (v128.any_true(specialScales(hv, kExp))) {
      const dx = f32x4.splat(loadF16(xb));
      d0 = f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hv)), dx);
      d1 = f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hv)), dx);
    } else {
      const dx112 = f32x4.splat(loadF16(xb) * reinterpret<f32>(0x77800000));
      d0 = scaleProducts(i32x4.extend_low_i16x8_s(hv), dx112, kSignMag);
      d1 = scaleProducts(i32x4.extend_high_i16x8_s(hv), dx112, kSignMag);
    }
    if (ASC_FEATURE_RELAXED_SIMD) {
      a0 = fmaF32x4(a0, s0, d0);
      a1 = fmaF32x4(a1, s1, d1);
      continue;
    }
    // eight outputs' fused multiply-adds: f64 sums, checked together for halfway cases
    const p0 = pairProducts(s0, d0, false), p1 = pairProducts(s0, d0, true);
    const p2 = pairProducts(s1, d1, false), p3 = pairProducts(s1, d1, true);
    const t0 = f64x2.add(p0, a0), t1 = f64x2.add(p1, a1), t2 = f64x2.add(p2, a2), t3 = f64x2.add(p3, a3);
    if (v128.any_true(v128.or(v128.or(halfwayK(t0, kLow29, kHalf), halfwayK(t1, kLow29, kHalf)), v128.or(halfwayK(t2, kLow29, kHalf), halfwayK(t3, kLow29, kHalf))))) {
      a0 = fmaSlowPair(p0, a0, t0); a1 = fmaSlowPair(p1, a1, t1); a2 = fmaSlowPair(p2, a2, t2); a3 = fmaSlowPair(p3, a3, t3);
    } else {
      a0 = roundToF32(t0); a1 = roundToF32(t1); a2 = roundToF32(t2); a3 = roundToF32(t3);
    }
  }
  if (ASC_FEATURE_RELAXED_SIMD) storeGroup(o, r0, rowStart, rowEnd, a0, a1);
  else storeGroup(o, r0, rowStart, rowEnd, joinF32(a0, a1), joinF32(a2, a3));
}

/**
 * SIMD128: z + the block sums of rows 4h..4h+3 (quant vectors at q, stride 32) against the activation
 * block's even/odd i16 quants (ev/od: low 16, evH/odH: high 16). Each u16 lane of a quant vector holds
 * an even byte's nibbles (bits 0-3 low, 4-7 high) and an odd byte's (8-11, 12-15), taken apart with
 * shifts and one mask (kNib: 0x000f lanes).
 */
// @ts-ignore: decorator
@inline function q4HalfSumsI16(q: usize, z: v128, evL: v128, odL: v128, evH: v128, odH: v128, kNib: v128): v128 {
  const v0 = v128.load(q), v1 = v128.load(q, 32), v2 = v128.load(q, 64), v3 = v128.load(q, 96);
  let a = nibLowDot(z, v0, splatLane(evL, 0), splatLane(odL, 0), kNib);
  let b = nibHighDot(i32x4.splat(0), v0, splatLane(evH, 0), splatLane(odH, 0), kNib);
  a = nibLowDot(a, v1, splatLane(evL, 1), splatLane(odL, 1), kNib);
  b = nibHighDot(b, v1, splatLane(evH, 1), splatLane(odH, 1), kNib);
  a = nibLowDot(a, v2, splatLane(evL, 2), splatLane(odL, 2), kNib);
  b = nibHighDot(b, v2, splatLane(evH, 2), splatLane(odH, 2), kNib);
  a = nibLowDot(a, v3, splatLane(evL, 3), splatLane(odL, 3), kNib);
  b = nibHighDot(b, v3, splatLane(evH, 3), splatLane(odH, 3), kNib);
  return i32x4.add(a, b);
}

/** acc + the dots of a quant vector's low nibbles (even bytes against xe, odd against xo). */
// @ts-ignore: decorator
@inline function nibLowDot(acc: v128, v: v128, xe: v128, xo: v128, kNib: v128): v128 {
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(v128.and(v, kNib), xe), i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 8), kNib), xo)));
}

/** acc + the dots of a quant vector's high nibbles. */
// @ts-ignore: decorator
@inline function nibHighDot(acc: v128, v: v128, xe: v128, xo: v128, kNib: v128): v128 {
  return i32x4.add(acc, i32x4.add(i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(v, 4), kNib), xe), i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), xo)));
}

/** Relaxed: z + the block sums of rows 4h..4h+3 (quant vectors at q, stride 32) against x quants at xq. */
// @ts-ignore: decorator
@inline function q4HalfSumsK(q: usize, xq: usize, m: v128, z: v128): v128 {
  const v0 = v128.load(q), v1 = v128.load(q, 32), v2 = v128.load(q, 64), v3 = v128.load(q, 96);
  let a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq), v128.and(v0, m), z);
  let b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 16), v128.and(i16x8.shr_u(v0, 4), m), i32x4.splat(0));
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 4), v128.and(v1, m), a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 20), v128.and(i16x8.shr_u(v1, 4), m), b);
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 8), v128.and(v2, m), a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 24), v128.and(i16x8.shr_u(v2, 4), m), b);
  a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 12), v128.and(v3, m), a);
  b = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(xq, 28), v128.and(i16x8.shr_u(v3, 4), m), b);
  return i32x4.add(a, b);
}

/**
 * Relaxed, one token, two whole groups (at wg and wg + groupRow) inside the range: one lane per output
 * as q4GroupOneLane, the activation block's zero point and scale shared by the sixteen rows.
 */
// @ts-ignore: decorator
@inline function q4TwoGroupsOneLaneRelaxed(wg: usize, groupRow: usize, xt: usize, nb: i32, o: usize): void {
  const zero = f32x4.splat(0);
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero;
  const oz = i32x4.splat(nb >>> 31);
  const m = keep(i8x16.splat(15), oz), ones = keep(i8x16.splat(1), oz);
  const kSignMag = keep(i32x4.splat(0x8fffffff), oz), kExp = keep(i16x8.splat(0x7c00), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q4_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const gc = gb + groupRow;
    const xq = xb + 2;
    const z = zeroPointK(xq, ones);
    const s0 = q4HalfSumsK(gb + 16, xq, m, z);
    const s1 = q4HalfSumsK(gb + 32, xq, m, z);
    const s2 = q4HalfSumsK(gc + 16, xq, m, z);
    const s3 = q4HalfSumsK(gc + 32, xq, m, z);
    const hb = v128.load(gb), hc = v128.load(gc);
    if (v128.any_true(v128.or(specialScales(hb, kExp), specialScales(hc, kExp)))) {
      const dx = f32x4.splat(loadF16(xb));
      a0 = fmaF32x4(a0, s0, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hb)), dx));
      a1 = fmaF32x4(a1, s1, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hb)), dx));
      a2 = fmaF32x4(a2, s2, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hc)), dx));
      a3 = fmaF32x4(a3, s3, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hc)), dx));
      continue;
    }
    const dx112 = f32x4.splat(loadF16(xb) * reinterpret<f32>(0x77800000));
    a0 = fmaF32x4(a0, s0, scaleProducts(i32x4.extend_low_i16x8_s(hb), dx112, kSignMag));
    a1 = fmaF32x4(a1, s1, scaleProducts(i32x4.extend_high_i16x8_s(hb), dx112, kSignMag));
    a2 = fmaF32x4(a2, s2, scaleProducts(i32x4.extend_low_i16x8_s(hc), dx112, kSignMag));
    a3 = fmaF32x4(a3, s3, scaleProducts(i32x4.extend_high_i16x8_s(hc), dx112, kSignMag));
  }
  v128.store(o, a0);
  v128.store(o, a1, 16);
  v128.store(o, a2, 32);
  v128.store(o, a3, 48);
}

/**
 * Relaxed, one token, four whole groups (at wg, wg + groupRow, ..) inside the range: one lane per output
 * as q4GroupOneLane, the activation block's zero point and scale shared by the 32 rows.
 */
// @ts-ignore: decorator
@inline function q4FourGroupsOneLaneRelaxed(wg: usize, groupRow: usize, xt: usize, nb: i32, o: usize): void {
  const zero = f32x4.splat(0);
  let a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero;
  const oz = i32x4.splat(nb >>> 31);
  const m = keep(i8x16.splat(15), oz), ones = keep(i8x16.splat(1), oz);
  const kSignMag = keep(i32x4.splat(0x8fffffff), oz), kExp = keep(i16x8.splat(0x7c00), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q4_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const gc = gb + groupRow, gd = gc + groupRow, ge = gd + groupRow;
    const xq = xb + 2;
    const z = zeroPointK(xq, ones);
    const s0 = q4HalfSumsK(gb + 16, xq, m, z);
    const s1 = q4HalfSumsK(gb + 32, xq, m, z);
    const s2 = q4HalfSumsK(gc + 16, xq, m, z);
    const s3 = q4HalfSumsK(gc + 32, xq, m, z);
    const s4 = q4HalfSumsK(gd + 16, xq, m, z);
    const s5 = q4HalfSumsK(gd + 32, xq, m, z);
    const s6 = q4HalfSumsK(ge + 16, xq, m, z);
    const s7 = q4HalfSumsK(ge + 32, xq, m, z);
    const hb = v128.load(gb), hc = v128.load(gc), hd = v128.load(gd), he = v128.load(ge);
    if (v128.any_true(v128.or(v128.or(specialScales(hb, kExp), specialScales(hc, kExp)), v128.or(specialScales(hd, kExp), specialScales(he, kExp))))) {
      const dx = f32x4.splat(loadF16(xb));
      a0 = fmaF32x4(a0, s0, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hb)), dx));
      a1 = fmaF32x4(a1, s1, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hb)), dx));
      a2 = fmaF32x4(a2, s2, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hc)), dx));
      a3 = fmaF32x4(a3, s3, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hc)), dx));
      a4 = fmaF32x4(a4, s4, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hd)), dx));
      a5 = fmaF32x4(a5, s5, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hd)), dx));
      a6 = fmaF32x4(a6, s6, f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(he)), dx));
      a7 = fmaF32x4(a7, s7, f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(he)), dx));
      continue;
    }
    const dx112 = f32x4.splat(loadF16(xb) * reinterpret<f32>(0x77800000));
    a0 = fmaF32x4(a0, s0, scaleProducts(i32x4.extend_low_i16x8_s(hb), dx112, kSignMag));
    a1 = fmaF32x4(a1, s1, scaleProducts(i32x4.extend_high_i16x8_s(hb), dx112, kSignMag));
    a2 = fmaF32x4(a2, s2, scaleProducts(i32x4.extend_low_i16x8_s(hc), dx112, kSignMag));
    a3 = fmaF32x4(a3, s3, scaleProducts(i32x4.extend_high_i16x8_s(hc), dx112, kSignMag));
    a4 = fmaF32x4(a4, s4, scaleProducts(i32x4.extend_low_i16x8_s(hd), dx112, kSignMag));
    a5 = fmaF32x4(a5, s5, scaleProducts(i32x4.extend_high_i16x8_s(hd), dx112, kSignMag));
    a6 = fmaF32x4(a6, s6, scaleProducts(i32x4.extend_low_i16x8_s(he), dx112, kSignMag));
    a7 = fmaF32x4(a7, s7, scaleProducts(i32x4.extend_high_i16x8_s(he), dx112, kSignMag));
  }
  v128.store(o, a0);
  v128.store(o, a1, 16);
  v128.store(o, a2, 32);
  v128.store(o, a3, 48);
  v128.store(o, a4, 64);
  v128.store(o, a5, 80);
  v128.store(o, a6, 96);
  v128.store(o, a7, 112);
}

/** All nTok tokens, one whole group, one lane per output, accumulating in out (see the header). */
// @ts-ignore: decorator
@inline function q4GroupOneLaneTiled(wg: usize, x: usize, xRow: usize, nb: i32, out: usize, rows: i32, r0: i32, nTok: i32): void {
  const rowBytes = <usize>rows << 2;
  const kz = i32x4.splat(nTok >>> 31);
  const kNib = keep(i16x8.splat(0x000f), kz), k29 = keep(i64x2.splat(0x1fffffff), kz), kHalf = keep(i64x2.splat(0x10000000), kz);
  const kAbs = keep(i64x2.splat(0x7fffffffffffffff), kz), kTiny = keep(f64x2.splat(1.1754943508222875e-38), kz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q4_0_GROUP;
    const dw0 = groupScales(gb, false), dw1 = groupScales(gb, true);
    const first = b == 0;
    let xb = x + <usize>b * BYTES_Q8_0;
    let o = out + (<usize>r0 << 2);
    let t = 0;
    if (ASC_FEATURE_RELAXED_SIMD) {
      // four tokens per pass: each half's nibbles are unpacked once for all four
      const oz = i32x4.splat(nTok >>> 31);
      const m = keep(i8x16.splat(15), oz), ones = keep(i8x16.splat(1), oz), kSignMagHi = keep(i32x4.splat(0x8fffe000), oz);
      const dw0x = f32x4.mul(dw0, f32x4.splat(reinterpret<f32>(0x77800000))), dw1x = f32x4.mul(dw1, f32x4.splat(reinterpret<f32>(0x77800000)));
      for (; t + 3 < nTok; t += 4) {
        const xb1 = xb + xRow, xb2 = xb1 + xRow, xb3 = xb2 + xRow;
        const o1 = o + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
        // dw * dx as (dw * 2^112) * (dx's sign and magnitude bits in an f32's place, dx * 2^-112): the
        // same real product, rounded once (see scaleProducts); infinite or NaN dx take dw * dx itself
        let dx0: v128, dx1: v128, dx2: v128, dx3: v128, dwA = dw0, dwB = dw1;
        if ((<u32>load<u16>(xb) & 0x7c00) != 0x7c00 && (<u32>load<u16>(xb1) & 0x7c00) != 0x7c00 && (<u32>load<u16>(xb2) & 0x7c00) != 0x7c00 && (<u32>load<u16>(xb3) & 0x7c00) != 0x7c00) {
          dx0 = v128.and(i32x4.shr_s(v128.load16_splat(xb), 3), kSignMagHi); dx1 = v128.and(i32x4.shr_s(v128.load16_splat(xb1), 3), kSignMagHi);
          dx2 = v128.and(i32x4.shr_s(v128.load16_splat(xb2), 3), kSignMagHi); dx3 = v128.and(i32x4.shr_s(v128.load16_splat(xb3), 3), kSignMagHi);
          dwA = dw0x; dwB = dw1x;
        } else {
          dx0 = f32x4.splat(loadF16(xb)); dx1 = f32x4.splat(loadF16(xb1));
          dx2 = f32x4.splat(loadF16(xb2)); dx3 = f32x4.splat(loadF16(xb3));
        }
        const z0 = zeroPointK(xb + 2, ones), z1 = zeroPointK(xb1 + 2, ones), z2 = zeroPointK(xb2 + 2, ones), z3 = zeroPointK(xb3 + 2, ones);
        for (let h = 0; h < 2; h++) {
          const q = gb + 16 + (<usize>h << 4);
          const v0 = v128.load(q), v1 = v128.load(q + 32), v2 = v128.load(q + 64), v3 = v128.load(q + 96);
          const l0 = v128.and(v0, m), l1 = v128.and(v1, m), l2 = v128.and(v2, m), l3 = v128.and(v3, m);
          const h0 = v128.and(i16x8.shr_u(v0, 4), m), h1 = v128.and(i16x8.shr_u(v1, 4), m);
          const h2 = v128.and(i16x8.shr_u(v2, 4), m), h3 = v128.and(i16x8.shr_u(v3, 4), m);
          const dw = h == 0 ? dwA : dwB;
          const oh = <usize>h << 4;
          fmaStore4(o + oh, nibbleSums(z0, xb + 2, l0, l1, l2, l3, h0, h1, h2, h3), f32x4.mul(dw, dx0), first);
          fmaStore4(o1 + oh, nibbleSums(z1, xb1 + 2, l0, l1, l2, l3, h0, h1, h2, h3), f32x4.mul(dw, dx1), first);
          fmaStore4(o2 + oh, nibbleSums(z2, xb2 + 2, l0, l1, l2, l3, h0, h1, h2, h3), f32x4.mul(dw, dx2), first);
          fmaStore4(o3 + oh, nibbleSums(z3, xb3 + 2, l0, l1, l2, l3, h0, h1, h2, h3), f32x4.mul(dw, dx3), first);
        }
        xb += xRow << 2;
        o += rowBytes << 2;
      }
    }
    for (; t < nTok; t++) {
      const xq = xb + 2;
      let evL = i32x4.splat(0), odL = evL, evH = evL, odH = evL;
      if (!ASC_FEATURE_RELAXED_SIMD) {
        const xl = v128.load(xq), xh = v128.load(xq + 16);
        evL = evenI16(xl); odL = oddI16(xl); evH = evenI16(xh); odH = oddI16(xh);
      }
      const z = zeroPoint(xq);
      const dx = f32x4.splat(loadF16(xb));
      if (ASC_FEATURE_RELAXED_SIMD) {
        fmaStore4(o, q4HalfSums(gb + 16, z, xq, evL, odL, evH, odH), f32x4.mul(dw0, dx), first);
        fmaStore4(o + 16, q4HalfSums(gb + 32, z, xq, evL, odL, evH, odH), f32x4.mul(dw1, dx), first);
      } else {
        fmaStore4K(o, q4HalfSumsI16(gb + 16, z, evL, odL, evH, odH, kNib), f32x4.mul(dw0, dx), first, k29, kHalf, kAbs, kTiny);
        fmaStore4K(o + 16, q4HalfSumsI16(gb + 32, z, evL, odL, evH, odH, kNib), f32x4.mul(dw1, dx), first, k29, kHalf, kAbs, kTiny);
      }
      xb += xRow;
      o += rowBytes;
    }
  }
}

/**
 * Q4_0 with rows % 8 != 0 (eight lanes per output), rows 4h..4h+3 of a group against one token: lane
 * k of each output is quad k (k < 4: weights 4k..4k+3, else 16 + 4(k-4)..), whose sums for the four
 * rows come out of one dot; sixteen f64x2 accumulators (quad k, rows 0-1 / 2-3). Rare (no common
 * vocabulary is odd), so written for clarity.
 */
// @ts-ignore: decorator
@inline function q4HalfEightLanes(wg: usize, h: i32, xt: usize, nb: i32, o: usize, r0: i32, rowStart: i32, rowEnd: i32): void {
  const zero = f64x2.splat(0);
  let p0 = zero, p1 = zero, p2 = zero, p3 = zero, p4 = zero, p5 = zero, p6 = zero, p7 = zero;
  let q0 = zero, q1 = zero, q2 = zero, q3 = zero, q4 = zero, q5 = zero, q6 = zero, q7 = zero;
  const m = i8x16.splat(15);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q4_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const xq = xb + 2;
    const xl = v128.load(xq), xh = v128.load(xq + 16);
    let evL = i32x4.splat(0), odL = evL, evH = evL, odH = evL;
    if (!ASC_FEATURE_RELAXED_SIMD) {
      evL = evenI16(xl); odL = oddI16(xl); evH = evenI16(xh); odH = oddI16(xh);
    }
    // -8 * each quad of x, in every lane: the zero point of quad k
    const zl = i32x4.mul(i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(xl)), i32x4.splat(-8));
    const zh = i32x4.mul(i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(xh)), i32x4.splat(-8));
    const d4 = f32x4.mul(groupScales(gb, h == 1), f32x4.splat(loadF16(xb)));
    const q = gb + 16 + (<usize>h << 4);
    const v0 = v128.load(q), v1 = v128.load(q + 32), v2 = v128.load(q + 64), v3 = v128.load(q + 96);
    // relaxed: quad k's four rows in p_k (f32x4); otherwise rows 0-1 in p_k, 2-3 in q_k (f64x2)
    let s = quadDot(i32x4.shuffle(zl, zl, 0, 0, 0, 0), v128.and(v0, m), xq, 0, evL, odL);
    if (ASC_FEATURE_RELAXED_SIMD) p0 = fmaF32x4(p0, s, d4);
    else { p0 = fmaPair(p0, s, d4, false); q0 = fmaPair(q0, s, d4, true); }
    s = quadDot(i32x4.shuffle(zl, zl, 1, 1, 1, 1), v128.and(v1, m), xq, 1, evL, odL);
    if (ASC_FEATURE_RELAXED_SIMD) p1 = fmaF32x4(p1, s, d4);
    else { p1 = fmaPair(p1, s, d4, false); q1 = fmaPair(q1, s, d4, true); }
    s = quadDot(i32x4.shuffle(zl, zl, 2, 2, 2, 2), v128.and(v2, m), xq, 2, evL, odL);
    if (ASC_FEATURE_RELAXED_SIMD) p2 = fmaF32x4(p2, s, d4);
    else { p2 = fmaPair(p2, s, d4, false); q2 = fmaPair(q2, s, d4, true); }
    s = quadDot(i32x4.shuffle(zl, zl, 3, 3, 3, 3), v128.and(v3, m), xq, 3, evL, odL);
    if (ASC_FEATURE_RELAXED_SIMD) p3 = fmaF32x4(p3, s, d4);
    else { p3 = fmaPair(p3, s, d4, false); q3 = fmaPair(q3, s, d4, true); }
    s = quadDot(i32x4.shuffle(zh, zh, 0, 0, 0, 0), i8x16.shr_u(v0, 4), xq + 16, 0, evH, odH);
    if (ASC_FEATURE_RELAXED_SIMD) p4 = fmaF32x4(p4, s, d4);
    else { p4 = fmaPair(p4, s, d4, false); q4 = fmaPair(q4, s, d4, true); }
    s = quadDot(i32x4.shuffle(zh, zh, 1, 1, 1, 1), i8x16.shr_u(v1, 4), xq + 16, 1, evH, odH);
    if (ASC_FEATURE_RELAXED_SIMD) p5 = fmaF32x4(p5, s, d4);
    else { p5 = fmaPair(p5, s, d4, false); q5 = fmaPair(q5, s, d4, true); }
    s = quadDot(i32x4.shuffle(zh, zh, 2, 2, 2, 2), i8x16.shr_u(v2, 4), xq + 16, 2, evH, odH);
    if (ASC_FEATURE_RELAXED_SIMD) p6 = fmaF32x4(p6, s, d4);
    else { p6 = fmaPair(p6, s, d4, false); q6 = fmaPair(q6, s, d4, true); }
    s = quadDot(i32x4.shuffle(zh, zh, 3, 3, 3, 3), i8x16.shr_u(v3, 4), xq + 16, 3, evH, odH);
    if (ASC_FEATURE_RELAXED_SIMD) p7 = fmaF32x4(p7, s, d4);
    else { p7 = fmaPair(p7, s, d4, false); q7 = fmaPair(q7, s, d4, true); }
  }
  const base = r0 + (h << 2);
  for (let i = 0; i < 4; i++) {
    const r = base + i;
    if (r < rowStart || r >= rowEnd) continue;
    // hsum_float_8 of this output's lanes (all f32 values): (l_k + l_k+4) for k < 4, then (0+2)+(1+3)
    let e0: f32, e1: f32, e2: f32, e3: f32;
    if (ASC_FEATURE_RELAXED_SIMD) {
      e0 = lane4(p0, i) + lane4(p4, i); e1 = lane4(p1, i) + lane4(p5, i);
      e2 = lane4(p2, i) + lane4(p6, i); e3 = lane4(p3, i) + lane4(p7, i);
    } else {
      const hi = i >= 2, l = i & 1;
      e0 = <f32>lane2(hi ? q0 : p0, l) + <f32>lane2(hi ? q4 : p4, l);
      e1 = <f32>lane2(hi ? q1 : p1, l) + <f32>lane2(hi ? q5 : p5, l);
      e2 = <f32>lane2(hi ? q2 : p2, l) + <f32>lane2(hi ? q6 : p6, l);
      e3 = <f32>lane2(hi ? q3 : p3, l) + <f32>lane2(hi ? q7 : p7, l);
    }
    store<f32>(o + (<usize>r << 2), (e0 + e2) + (e1 + e3));
  }
}

// @ts-ignore: decorator
@inline function lane2(v: v128, l: i32): f64 {
  return l == 0 ? f64x2.extract_lane(v, 0) : f64x2.extract_lane(v, 1);
}

// @ts-ignore: decorator
@inline function lane4(v: v128, l: i32): f32 {
  return l == 0 ? f32x4.extract_lane(v, 0) : l == 1 ? f32x4.extract_lane(v, 1) : l == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3);
}

// ===================== Q8_0x8: 8 lanes per output =====================

/** Quad sums (lane i: weights 4i..4i+3) of 16 signed weights, stored evens first, against x's even/odd i16x8. */
// @ts-ignore: decorator
@inline function quads16(q: usize, xe: v128, xo: v128): v128 {
  const v = v128.load(q);
  return i32x4.add(i32x4.dot_i16x8_s(xe, i16x8.extend_low_i8x16_s(v)), i32x4.dot_i16x8_s(xo, i16x8.extend_high_i8x16_s(v)));
}

/**
 * Two rows (lanes `lane`, `lane`+1 of a group) against one token, eight lanes each (four f64x2: lanes
 * 0-1, 2-3, 4-5, 6-7); results stored for the rows inside [rowStart, rowEnd).
 */
// @ts-ignore: decorator
@inline function q8PairEightLanes(wg: usize, lane: i32, xt: usize, nb: i32, o: usize, r: i32, rowStart: i32, rowEnd: i32): void {
  const zero = f64x2.splat(0);
  let a0 = zero, b0 = zero, c0 = zero, e0 = zero, a1 = zero, b1 = zero, c1 = zero, e1 = zero;
  const qOff: usize = 16 + (<usize>lane << 5);
  const dOff: usize = <usize>lane << 1;
  const oz = i32x4.splat(nb >>> 31);
  const k29 = keep(i64x2.splat(0x1fffffff), oz), kHalf = keep(i64x2.splat(0x10000000), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q8_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const xl = v128.load(xb + 2), xh = v128.load(xb + 18);
    const xel = evenI16(xl), xol = oddI16(xl), xeh = evenI16(xh), xoh = oddI16(xh);
    const dx = loadF16(xb);
    const q = gb + qOff;
    if (ASC_FEATURE_RELAXED_SIMD) {
      // lanes 0-3 and 4-7 of each row as f32x4: a (row 0), c (row 1)
      const d0 = f32x4.splat(loadF16(gb + dOff) * dx), d1 = f32x4.splat(loadF16(gb + dOff + 2) * dx);
      a0 = fmaF32x4(a0, quads16(q, xel, xol), d0);
      c0 = fmaF32x4(c0, quads16(q + 16, xeh, xoh), d0);
      a1 = fmaF32x4(a1, quads16(q + 32, xel, xol), d1);
      c1 = fmaF32x4(c1, quads16(q + 48, xeh, xoh), d1);
      continue;
    }
    // one output's eight fused multiply-adds: f64 sums, checked together for halfway cases
    let d = f64x2.splat(<f64>(loadF16(gb + dOff) * dx));
    let lo = quads16(q, xel, xol), hi = quads16(q + 16, xeh, xoh);
    let pa = mulLanes(lo, false, d), pb = mulLanes(lo, true, d), pc = mulLanes(hi, false, d), pe = mulLanes(hi, true, d);
    let sa = f64x2.add(pa, a0), sb = f64x2.add(pb, b0), sc = f64x2.add(pc, c0), se = f64x2.add(pe, e0);
    if (v128.any_true(v128.or(v128.or(halfwayK(sa, k29, kHalf), halfwayK(sb, k29, kHalf)), v128.or(halfwayK(sc, k29, kHalf), halfwayK(se, k29, kHalf))))) {
      a0 = fmaSlowPair(pa, a0, sa); b0 = fmaSlowPair(pb, b0, sb); c0 = fmaSlowPair(pc, c0, sc); e0 = fmaSlowPair(pe, e0, se);
    } else {
      a0 = roundToF32(sa); b0 = roundToF32(sb); c0 = roundToF32(sc); e0 = roundToF32(se);
    }
    d = f64x2.splat(<f64>(loadF16(gb + dOff + 2) * dx));
    lo = quads16(q + 32, xel, xol); hi = quads16(q + 48, xeh, xoh);
    pa = mulLanes(lo, false, d); pb = mulLanes(lo, true, d); pc = mulLanes(hi, false, d); pe = mulLanes(hi, true, d);
    sa = f64x2.add(pa, a1); sb = f64x2.add(pb, b1); sc = f64x2.add(pc, c1); se = f64x2.add(pe, e1);
    if (v128.any_true(v128.or(v128.or(halfwayK(sa, k29, kHalf), halfwayK(sb, k29, kHalf)), v128.or(halfwayK(sc, k29, kHalf), halfwayK(se, k29, kHalf))))) {
      a1 = fmaSlowPair(pa, a1, sa); b1 = fmaSlowPair(pb, b1, sb); c1 = fmaSlowPair(pc, c1, sc); e1 = fmaSlowPair(pe, e1, se);
    } else {
      a1 = roundToF32(sa); b1 = roundToF32(sb); c1 = roundToF32(sc); e1 = roundToF32(se);
    }
  }
  if (ASC_FEATURE_RELAXED_SIMD) {
    if (r >= rowStart && r < rowEnd) store<f32>(o + (<usize>r << 2), hsumX86(f32x4.add(a0, c0)));
    if (r + 1 >= rowStart && r + 1 < rowEnd) store<f32>(o + (<usize>(r + 1) << 2), hsumX86(f32x4.add(a1, c1)));
    return;
  }
  if (r >= rowStart && r < rowEnd) store<f32>(o + (<usize>r << 2), hsum8(a0, b0, c0, e0));
  if (r + 1 >= rowStart && r + 1 < rowEnd) store<f32>(o + (<usize>(r + 1) << 2), hsum8(a1, b1, c1, e1));
}

/**
 * Relaxed build: four rows (lanes 4h..4h+3 of a group, h = `high`) against one token, eight lanes each
 * (f32x4 pairs a/c: lanes 0-3 and 4-7). One activation decode and one f16 conversion of the four
 * rows' scales serve all four; each row's lanes take relaxed_madd exactly as q8PairEightLanes does, so
 * the bits are the same.
 */
// @ts-ignore: decorator
@inline function q8QuadEightLanesRelaxed(wg: usize, high: bool, xt: usize, nb: i32, o: usize, r: i32, rowStart: i32, rowEnd: i32): void {
  const zero = f32x4.splat(0);
  let a0 = zero, c0 = zero, a1 = zero, c1 = zero, a2 = zero, c2 = zero, a3 = zero, c3 = zero;
  const qOff: usize = 16 + (high ? 128 : 0);
  const oz = i32x4.splat(nb >>> 31);
  const kSignMag = keep(i32x4.splat(0x8fffffff), oz), kExp = keep(i16x8.splat(0x7c00), oz);
  const k80 = keep(i8x16.splat(-128), oz), perm = keep(i8x16(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q8_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const xl = v128.load(xb, 2), xh = v128.load(xb, 18);
    // the four rows' dw * dx, rounded to f32 as the scalar product is
    const hv = v128.load(gb);
    const h4 = high ? i32x4.extend_high_i16x8_s(hv) : i32x4.extend_low_i16x8_s(hv);
    let d4: v128;
    if (v128.any_true(specialScales(hv, kExp))) d4 = f32x4.mul(scalesToF32(h4), f32x4.splat(loadF16(xb)));
    else d4 = scaleProducts(h4, f32x4.splat(loadF16(xb) * reinterpret<f32>(0x77800000)), kSignMag);
    const q = gb + qOff;
    let s0: v128, t0: v128, s1: v128, t1: v128, s2: v128, t2: v128, s3: v128, t3: v128;
    if (v128.any_true(v128.or(i8x16.eq(xl, k80), i8x16.eq(xh, k80)))) {
      // an activation of -128 has no 7-bit magnitude: the widening dots
      const xel = evenI16(xl), xol = oddI16(xl), xeh = evenI16(xh), xoh = oddI16(xh);
      s0 = quads16V(v128.load(q, 0), xel, xol); t0 = quads16V(v128.load(q, 16), xeh, xoh);
      s1 = quads16V(v128.load(q, 32), xel, xol); t1 = quads16V(v128.load(q, 48), xeh, xoh);
      s2 = quads16V(v128.load(q, 64), xel, xol); t2 = quads16V(v128.load(q, 80), xeh, xoh);
      s3 = quads16V(v128.load(q, 96), xel, xol); t3 = quads16V(v128.load(q, 112), xeh, xoh);
    } else {
      const pl = i8x16.max_s(xl, i8x16.splat(0)), ph = i8x16.max_s(xh, i8x16.splat(0));
      const nl = i8x16.sub(pl, xl), nh = i8x16.sub(ph, xh);
      s0 = quadsSplit(v128.load(q, 0), pl, nl, perm); t0 = quadsSplit(v128.load(q, 16), ph, nh, perm);
      s1 = quadsSplit(v128.load(q, 32), pl, nl, perm); t1 = quadsSplit(v128.load(q, 48), ph, nh, perm);
      s2 = quadsSplit(v128.load(q, 64), pl, nl, perm); t2 = quadsSplit(v128.load(q, 80), ph, nh, perm);
      s3 = quadsSplit(v128.load(q, 96), pl, nl, perm); t3 = quadsSplit(v128.load(q, 112), ph, nh, perm);
    }
    let d = i32x4.shuffle(d4, d4, 0, 0, 0, 0);
    a0 = fmaF32x4(a0, s0, d);
    c0 = fmaF32x4(c0, t0, d);
    d = i32x4.shuffle(d4, d4, 1, 1, 1, 1);
    a1 = fmaF32x4(a1, s1, d);
    c1 = fmaF32x4(c1, t1, d);
    d = i32x4.shuffle(d4, d4, 2, 2, 2, 2);
    a2 = fmaF32x4(a2, s2, d);
    c2 = fmaF32x4(c2, t2, d);
    d = i32x4.shuffle(d4, d4, 3, 3, 3, 3);
    a3 = fmaF32x4(a3, s3, d);
    c3 = fmaF32x4(c3, t3, d);
  }
  if (r >= rowStart && r < rowEnd) store<f32>(o + (<usize>r << 2), hsumX86(f32x4.add(a0, c0)));
  if (r + 1 >= rowStart && r + 1 < rowEnd) store<f32>(o + (<usize>(r + 1) << 2), hsumX86(f32x4.add(a1, c1)));
  if (r + 2 >= rowStart && r + 2 < rowEnd) store<f32>(o + (<usize>(r + 2) << 2), hsumX86(f32x4.add(a2, c2)));
  if (r + 3 >= rowStart && r + 3 < rowEnd) store<f32>(o + (<usize>(r + 3) << 2), hsumX86(f32x4.add(a3, c3)));
}

/**
 * Relaxed: the quad sums of quads16 for 16 weights v (stored evens first) against x = p - n, p and n
 * the activation's positive and negative parts (0..127, the relaxed dot's 7-bit operand). `perm` puts
 * the weights back in order, so each quad of four consecutive weights lands in its own lane.
 */
// @ts-ignore: decorator
@inline function quadsSplit(v: v128, p: v128, n: v128, perm: v128): v128 {
  const w = i8x16.relaxed_swizzle(v, perm);
  return i32x4.sub(i32x4.relaxed_dot_i8x16_i7x16_add_s(w, p, i32x4.splat(0)), i32x4.relaxed_dot_i8x16_i7x16_add_s(w, n, i32x4.splat(0)));
}

/**
 * Relaxed build: a whole group (eight rows r..r+7, all inside the range) against one token, eight
 * lanes per row as q8QuadEightLanesRelaxed (same steps, same bits), the activation's split and the
 * scales' conversion shared by the eight rows.
 */
// @ts-ignore: decorator
@inline function q8GroupEightLanesRelaxed(wg: usize, xt: usize, nb: i32, o: usize, r: i32): void {
  const zero = f32x4.splat(0);
  let a0 = zero, c0 = zero, a1 = zero, c1 = zero, a2 = zero, c2 = zero, a3 = zero, c3 = zero, a4 = zero, c4 = zero, a5 = zero, c5 = zero, a6 = zero, c6 = zero, a7 = zero, c7 = zero;
  const oz = i32x4.splat(nb >>> 31);
  const kSignMag = keep(i32x4.splat(0x8fffffff), oz), kExp = keep(i16x8.splat(0x7c00), oz);
  const k80 = keep(i8x16.splat(-128), oz), perm = keep(i8x16(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), oz);
  for (let b = 0; b < nb; b++) {
    const gb = wg + <usize>b * PACKED_Q8_0_GROUP, xb = xt + <usize>b * BYTES_Q8_0;
    const xl = v128.load(xb, 2), xh = v128.load(xb, 18);
    // the eight rows' dw * dx, rounded to f32 as the scalar product is
    const hv = v128.load(gb);
    let dlo: v128, dhi: v128;
    if (v128.any_true(specialScales(hv, kExp))) {
      const dx = f32x4.splat(loadF16(xb));
      dlo = f32x4.mul(scalesToF32(i32x4.extend_low_i16x8_s(hv)), dx);
      dhi = f32x4.mul(scalesToF32(i32x4.extend_high_i16x8_s(hv)), dx);
    } else {
      const dx112 = f32x4.splat(loadF16(xb) * reinterpret<f32>(0x77800000));
      dlo = scaleProducts(i32x4.extend_low_i16x8_s(hv), dx112, kSignMag);
      dhi = scaleProducts(i32x4.extend_high_i16x8_s(hv), dx112, kSignMag);
    }
    const d0 = i32x4.shuffle(dlo, dlo, 0, 0, 0, 0), d1 = i32x4.shuffle(dlo, dlo, 1, 1, 1, 1);
    const d2 = i32x4.shuffle(dlo, dlo, 2, 2, 2, 2), d3 = i32x4.shuffle(dlo, dlo, 3, 3, 3, 3);
    const d4 = i32x4.shuffle(dhi, dhi, 0, 0, 0, 0), d5 = i32x4.shuffle(dhi, dhi, 1, 1, 1, 1);
    const d6 = i32x4.shuffle(dhi, dhi, 2, 2, 2, 2), d7 = i32x4.shuffle(dhi, dhi, 3, 3, 3, 3);
    const q = gb + 16;
    if (v128.any_true(v128.or(i8x16.eq(xl, k80), i8x16.eq(xh, k80)))) {
      // an activation of -128 has no 7-bit magnitude: the widening dots
      const xel = evenI16(xl), xol = oddI16(xl), xeh = evenI16(xh), xoh = oddI16(xh);
      a0 = fmaF32x4(a0, quads16V(v128.load(q, 0), xel, xol), d0);
      c0 = fmaF32x4(c0, quads16V(v128.load(q, 16), xeh, xoh), d0);
      a1 = fmaF32x4(a1, quads16V(v128.load(q, 32), xel, xol), d1);
      c1 = fmaF32x4(c1, quads16V(v128.load(q, 48), xeh, xoh), d1);
      a2 = fmaF32x4(a2, quads16V(v128.load(q, 64), xel, xol), d2);
      c2 = fmaF32x4(c2, quads16V(v128.load(q, 80), xeh, xoh), d2);
      a3 = fmaF32x4(a3, quads16V(v128.load(q, 96), xel, xol), d3);
      c3 = fmaF32x4(c3, quads16V(v128.load(q, 112), xeh, xoh), d3);
      a4 = fmaF32x4(a4, quads16V(v128.load(q, 128), xel, xol), d4);
      c4 = fmaF32x4(c4, quads16V(v128.load(q, 144), xeh, xoh), d4);
      a5 = fmaF32x4(a5, quads16V(v128.load(q, 160), xel, xol), d5);
      c5 = fmaF32x4(c5, quads16V(v128.load(q, 176), xeh, xoh), d5);
      a6 = fmaF32x4(a6, quads16V(v128.load(q, 192), xel, xol), d6);
      c6 = fmaF32x4(c6, quads16V(v128.load(q, 208), xeh, xoh), d6);
      a7 = fmaF32x4(a7, quads16V(v128.load(q, 224), xel, xol), d7);
      c7 = fmaF32x4(c7, quads16V(v128.load(q, 240), xeh, xoh), d7);
      continue;
    }
    const pl = i8x16.max_s(xl, i8x16.splat(0)), ph = i8x16.max_s(xh, i8x16.splat(0));
    const nl = i8x16.sub(pl, xl), nh = i8x16.sub(ph, xh);
    a0 = fmaF32x4(a0, quadsSplit(v128.load(q, 0), pl, nl, perm), d0);
    c0 = fmaF32x4(c0, quadsSplit(v128.load(q, 16), ph, nh, perm), d0);
    a1 = fmaF32x4(a1, quadsSplit(v128.load(q, 32), pl, nl, perm), d1);
    c1 = fmaF32x4(c1, quadsSplit(v128.load(q, 48), ph, nh, perm), d1);
    a2 = fmaF32x4(a2, quadsSplit(v128.load(q, 64), pl, nl, perm), d2);
    c2 = fmaF32x4(c2, quadsSplit(v128.load(q, 80), ph, nh, perm), d2);
    a3 = fmaF32x4(a3, quadsSplit(v128.load(q, 96), pl, nl, perm), d3);
    c3 = fmaF32x4(c3, quadsSplit(v128.load(q, 112), ph, nh, perm), d3);
    a4 = fmaF32x4(a4, quadsSplit(v128.load(q, 128), pl, nl, perm), d4);
    c4 = fmaF32x4(c4, quadsSplit(v128.load(q, 144), ph, nh, perm), d4);
    a5 = fmaF32x4(a5, quadsSplit(v128.load(q, 160), pl, nl, perm), d5);
    c5 = fmaF32x4(c5, quadsSplit(v128.load(q, 176), ph, nh, perm), d5);
    a6 = fmaF32x4(a6, quadsSplit(v128.load(q, 192), pl, nl, perm), d6);
    c6 = fmaF32x4(c6, quadsSplit(v128.load(q, 208), ph, nh, perm), d6);
    a7 = fmaF32x4(a7, quadsSplit(v128.load(q, 224), pl, nl, perm), d7);
    c7 = fmaF32x4(c7, quadsSplit(v128.load(q, 240), ph, nh, perm), d7);
  }
  store<f32>(o + (<usize>(r + 0) << 2), hsumX86(f32x4.add(a0, c0)));
  store<f32>(o + (<usize>(r + 1) << 2), hsumX86(f32x4.add(a1, c1)));
  store<f32>(o + (<usize>(r + 2) << 2), hsumX86(f32x4.add(a2, c2)));
  store<f32>(o + (<usize>(r + 3) << 2), hsumX86(f32x4.add(a3, c3)));
  store<f32>(o + (<usize>(r + 4) << 2), hsumX86(f32x4.add(a4, c4)));
  store<f32>(o + (<usize>(r + 5) << 2), hsumX86(f32x4.add(a5, c5)));
  store<f32>(o + (<usize>(r + 6) << 2), hsumX86(f32x4.add(a6, c6)));
  store<f32>(o + (<usize>(r + 7) << 2), hsumX86(f32x4.add(a7, c7)));
}

/** quads16 of the loaded vector v. */
// @ts-ignore: decorator
@inline function quads16V(v: v128, xe: v128, xo: v128): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(xe, i16x8.extend_low_i8x16_s(v)), i32x4.dot_i16x8_s(xo, i16x8.extend_high_i8x16_s(v)));
}

// ===================== entry points =====================

export function simdMatmulQ4_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const xRow = <usize>nb * BYTES_Q8_0;
  const groupRow = <usize>nb * PACKED_Q4_0_GROUP;
  const oneLane = rows % 8 == 0;
  for (let r0 = rowStart & ~(PACK_ROWS - 1); r0 < rowEnd; r0 += PACK_ROWS) {
    const wg = w + <usize>(r0 / PACK_ROWS) * groupRow;
    if (!oneLane) {
      for (let t = 0; t < nTok; t++) {
        const o = out + <usize>t * rows * 4, xt = x + <usize>t * xRow;
        q4HalfEightLanes(wg, 0, xt, nb, o, r0, rowStart, rowEnd);
        q4HalfEightLanes(wg, 1, xt, nb, o, r0, rowStart, rowEnd);
      }
      continue;
    }
    if (nTok > 1 && r0 >= rowStart && r0 + PACK_ROWS <= rowEnd) {
      q4GroupOneLaneTiled(wg, x, xRow, nb, out, rows, r0, nTok);
      continue;
    }
    if (ASC_FEATURE_RELAXED_SIMD && r0 >= rowStart && r0 + 4 * PACK_ROWS <= rowEnd) {
      for (let t = 0; t < nTok; t++) {
        q4FourGroupsOneLaneRelaxed(wg, groupRow, x + <usize>t * xRow, nb, out + <usize>t * rows * 4 + (<usize>r0 << 2));
      }
      r0 += 3 * PACK_ROWS;
      continue;
    }
    if (ASC_FEATURE_RELAXED_SIMD && r0 >= rowStart && r0 + 2 * PACK_ROWS <= rowEnd) {
      for (let t = 0; t < nTok; t++) {
        q4TwoGroupsOneLaneRelaxed(wg, groupRow, x + <usize>t * xRow, nb, out + <usize>t * rows * 4 + (<usize>r0 << 2));
      }
      r0 += PACK_ROWS;
      continue;
    }
    for (let t = 0; t < nTok; t++) {
      q4GroupOneLane(wg, x + <usize>t * xRow, nb, out + <usize>t * rows * 4, r0, rowStart, rowEnd);
    }
  }
}

export function simdMatmulQ8_0(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const xRow = <usize>nb * BYTES_Q8_0;
  const groupRow = <usize>nb * PACKED_Q8_0_GROUP;
  if (ASC_FEATURE_RELAXED_SIMD) {
    for (let r = rowStart & ~3; r < rowEnd; r += 4) {
      const wg = w + <usize>(r / PACK_ROWS) * groupRow;
      if ((r & 7) == 0 && r >= rowStart && r + 8 <= rowEnd) {
        for (let t = 0; t < nTok; t++) q8GroupEightLanesRelaxed(wg, x + <usize>t * xRow, nb, out + <usize>t * rows * 4, r);
        r += 4;
        continue;
      }
      // the quad's weights stay in cache while every token passes over them
      for (let t = 0; t < nTok; t++) {
        q8QuadEightLanesRelaxed(wg, (r & 4) != 0, x + <usize>t * xRow, nb, out + <usize>t * rows * 4, r, rowStart, rowEnd);
      }
    }
    return;
  }
  for (let r = rowStart & ~1; r < rowEnd; r += 2) {
    const wg = w + <usize>(r / PACK_ROWS) * groupRow;
    // the pair's weights stay in cache while every token passes over them
    for (let t = 0; t < nTok; t++) {
      q8PairEightLanes(wg, r & (PACK_ROWS - 1), x + <usize>t * xRow, nb, out + <usize>t * rows * 4, r, rowStart, rowEnd);
    }
  }
}
