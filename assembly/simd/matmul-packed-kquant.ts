// SIMD128 / relaxed-SIMD matrix multiplies over the packed Q4_1x8, Q4_Kx8 and Q5_Kx8 layouts
// (formats.ts): out[t*rows + r] = dot(W row r, x row t), x in Q8_1 (Q4_1) or Q8_K rows, rows
// [rowStart, rowEnd) (any range; ranges on multiples of PACK_ROWS avoid computing a group twice).
// Same signature and same bits as the scalar twin (ref/matmul-packed-kquant.ts).
//
// Four rows per vector: a 16-byte quant vector holds four bytes of each of four rows, so one i16 dot
// with four activation bytes repeated (load32_splat) gives each row's two pair sums in its own two i16
// lanes. Those add up in i16 over a sub-block (or a Q4_1 block) while they provably fit, then one
// i32x4.dot_i16x8_s with the rows' scales (or a pairwise add for Q4_1) gives four rows' integer sums
// in four lanes: no horizontal reduction. Quants stay unsigned (0..15, Q5_K 0..31), the relaxed i16
// dot's 7-bit operand, exact on every engine; SIMD128 multiplies the even and odd bytes as i16 with
// the activations' even and odd bytes, the same lanes. Integer sums are exact in any grouping; the float
// steps are then the scalar twin's, four rows per f32x4, lane by lane in the same order:
//   Q4_1:       acc + ((d * dx) * f32(isum) + m * s)                      (s = Q8_1 block's d * sum q)
//   Q4_K, Q5_K: acc + ((dy * d) * f32(isum) - (dy * dmin) * f32(msum))   (msum from the bsums)
// so every build gives the same bits, and the same bits as the file-layout dots of ref/matmul.ts.
//
// A whole group (rows inside the range) keeps its accumulators in `out` itself (an f32 is all an
// accumulator holds between blocks): blocks outer, tokens inner, so a group block is read from memory
// once for all tokens, and a block's scales are converted once for all tokens. Q4_K and Q5_K take the
// tokens four at a time over one row half (each unpacked quant vector, 5-bit ones especially, serves
// four tokens), then two at a time over all eight rows (each unpacked vector serves two tokens and
// each activation splat both row halves), as Q4_1 does throughout; decode takes one token over all
// eight rows. (Measured: the four-token tile did not pay for Q4_1, whose unpacking is cheap.) Groups
// cut by the row range take one token and four rows at a time with the accumulators in registers.
import { BYTES_Q8_1, BYTES_Q8_K, PACK_ROWS, PACKED_Q4_1_GROUP, PACKED_Q4_K_GROUP, PACKED_Q5_K_GROUP } from '../formats';
import { loadF16 } from '../half';
import { evenI16, halfLanesToF32, oddI16 } from './lanes';
import { splatLane, storeGroup } from './packed-common';

// ---- shared pieces ----

/**
 * i16x8 pair sums of four rows' four unsigned quants each (bytes of q, row i in bytes 4i..4i+3) with
 * the four activation bytes x0..x3 at xp: lane 2i = q[4i] x0 + q[4i+1] x1, lane 2i+1 = q[4i+2] x2 +
 * q[4i+3] x3. Exact: |lane| <= 2 * 31 * 128 (relaxed: one i16 relaxed dot with q as the 7-bit operand).
 */
// @ts-ignore: decorator
@inline function pairQuad(q: v128, xp: usize): v128 {
  const xv = v128.load32_splat(xp);
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(xv, q);
  return pairQuadX(q, xv, evenI16(xv), oddI16(xv));
}

/** pairQuad with the activation quad given: xv (relaxed), or its even and odd bytes as i16 (SIMD128). */
// @ts-ignore: decorator
@inline function pairQuadX(q: v128, xv: v128, xe: v128, xo: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(xv, q);
  return i16x8.add(i16x8.mul(v128.and(q, i16x8.splat(0x00ff)), xe), i16x8.mul(i16x8.shr_u(q, 8), xo));
}

/** Four bytes s0..s3 at p as i16x8 (s0, s0, s1, s1, .., s3, s3): a row's scale against its two pair lanes. */
// @ts-ignore: decorator
@inline function scalePairs(p: usize): v128 {
  return i8x16.shuffle(v128.load32_zero(p), i8x16.splat(0), 0, 16, 0, 16, 1, 16, 1, 16, 2, 16, 2, 16, 3, 16, 3, 16);
}

/** Four f16 at p (`high` false) or p + 8, to f32x4 (exact). */
// @ts-ignore: decorator
@inline function halves4(p: usize, high: bool): v128 {
  const h = v128.load(p);
  return halfLanesToF32(high ? i32x4.extend_high_i16x8_u(h) : i32x4.extend_low_i16x8_u(h));
}

// ===================== Q4_1x8 =====================

/** Integer block sums of rows 4h..4h+3 of the group block at gb against the Q8_1 block at xb. */
// @ts-ignore: decorator
@inline function q4_1HalfSums(gb: usize, xb: usize, h: i32): v128 {
  const q = gb + 32 + (<usize>h << 4), xq = xb + 4;
  const m = i8x16.splat(15);
  const v0 = v128.load(q), v1 = v128.load(q + 32), v2 = v128.load(q + 64), v3 = v128.load(q + 96);
  // i16 pair sums, two chains (low and high nibbles: weights 4k.. and 16 + 4k..), each lane <= 4 * 3840
  let a = pairQuad(v128.and(v0, m), xq);
  let c = pairQuad(v128.and(i16x8.shr_u(v0, 4), m), xq + 16);
  a = i16x8.add(a, pairQuad(v128.and(v1, m), xq + 4));
  c = i16x8.add(c, pairQuad(v128.and(i16x8.shr_u(v1, 4), m), xq + 20));
  a = i16x8.add(a, pairQuad(v128.and(v2, m), xq + 8));
  c = i16x8.add(c, pairQuad(v128.and(i16x8.shr_u(v2, 4), m), xq + 24));
  a = i16x8.add(a, pairQuad(v128.and(v3, m), xq + 12));
  c = i16x8.add(c, pairQuad(v128.and(i16x8.shr_u(v3, 4), m), xq + 28));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(a, c));
}

/** acc + ((d * dx) * f32(isum) + m * s): four rows' block step (d4, m4: their d and m as f32). */
// @ts-ignore: decorator
@inline function q4_1Step(acc: v128, isum: v128, xb: usize, d4: v128, m4: v128): v128 {
  const dd = f32x4.mul(d4, f32x4.splat(loadF16(xb)));
  const ms = f32x4.mul(m4, f32x4.splat(loadF16(xb + 2)));
  return f32x4.add(acc, f32x4.add(f32x4.mul(dd, f32x4.convert_i32x4_s(isum)), ms));
}

/** acc + the block step of rows 4h..4h+3 of the group block at gb against the Q8_1 block at xb. */
// @ts-ignore: decorator
@inline function q4_1BlockHalf(acc: v128, gb: usize, xb: usize, h: i32): v128 {
  const high = h == 1;
  return q4_1Step(acc, q4_1HalfSums(gb, xb, h), xb, halves4(gb, high), halves4(gb + 16, high));
}

/**
 * Token a (Q8_1 block at xa) and, when `two`, token c (xc), all eight rows of the group block at gb:
 * the block steps added to the eight f32 accumulators at oa (and oc), zero first when `first`. Each
 * quant vector is unpacked once for both tokens and each activation splat serves both row halves;
 * i16 chains per token and row half, each lane <= 8 * 3840.
 */
// @ts-ignore: decorator
@inline function q4_1GroupBlock(gb: usize, xa: usize, xc: usize, oa: usize, oc: usize, first: bool, two: bool, d0: v128, d1: v128, m0: v128, m1: v128): void {
  const m = i8x16.splat(15);
  const zero = i16x8.splat(0);
  let a0 = zero, a1 = zero, c0 = zero, c1 = zero;
  for (let k = 0; k < 4; k++) {
    const q = gb + 32 + (<usize>k << 5);
    const v0 = v128.load(q), v1 = v128.load(q + 16);
    const l0 = v128.and(v0, m), h0 = v128.and(i16x8.shr_u(v0, 4), m);
    const l1 = v128.and(v1, m), h1 = v128.and(i16x8.shr_u(v1, 4), m);
    const o = <usize>k << 2;
    let xl = v128.load32_splat(xa + 4 + o), xh = v128.load32_splat(xa + 20 + o);
    let el = xl, ol = xl, eh = xh, oh = xh;
    if (!ASC_FEATURE_RELAXED_SIMD) { el = evenI16(xl); ol = oddI16(xl); eh = evenI16(xh); oh = oddI16(xh); }
    a0 = i16x8.add(a0, i16x8.add(pairQuadX(l0, xl, el, ol), pairQuadX(h0, xh, eh, oh)));
    a1 = i16x8.add(a1, i16x8.add(pairQuadX(l1, xl, el, ol), pairQuadX(h1, xh, eh, oh)));
    if (!two) continue;
    xl = v128.load32_splat(xc + 4 + o); xh = v128.load32_splat(xc + 20 + o);
    if (!ASC_FEATURE_RELAXED_SIMD) { el = evenI16(xl); ol = oddI16(xl); eh = evenI16(xh); oh = oddI16(xh); }
    c0 = i16x8.add(c0, i16x8.add(pairQuadX(l0, xl, el, ol), pairQuadX(h0, xh, eh, oh)));
    c1 = i16x8.add(c1, i16x8.add(pairQuadX(l1, xl, el, ol), pairQuadX(h1, xh, eh, oh)));
  }
  const z = f32x4.splat(0);
  v128.store(oa, q4_1Step(first ? z : v128.load(oa), i32x4.extadd_pairwise_i16x8_s(a0), xa, d0, m0));
  v128.store(oa + 16, q4_1Step(first ? z : v128.load(oa + 16), i32x4.extadd_pairwise_i16x8_s(a1), xa, d1, m1));
  if (!two) return;
  v128.store(oc, q4_1Step(first ? z : v128.load(oc), i32x4.extadd_pairwise_i16x8_s(c0), xc, d0, m0));
  v128.store(oc + 16, q4_1Step(first ? z : v128.load(oc + 16), i32x4.extadd_pairwise_i16x8_s(c1), xc, d1, m1));
}

export function simdMatmulPackedQ4_1(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 5;
  const xRow = <usize>nb * BYTES_Q8_1, groupRow = <usize>nb * PACKED_Q4_1_GROUP;
  const rowBytes = <usize>rows << 2;
  for (let r0 = rowStart & ~(PACK_ROWS - 1); r0 < rowEnd; r0 += PACK_ROWS) {
    const wg = w + <usize>(r0 / PACK_ROWS) * groupRow;
    if (r0 >= rowStart && r0 + PACK_ROWS <= rowEnd) {
      for (let b = 0; b < nb; b++) {
        const gb = wg + <usize>b * PACKED_Q4_1_GROUP;
        const d0 = halves4(gb, false), d1 = halves4(gb, true), m0 = halves4(gb + 16, false), m1 = halves4(gb + 16, true);
        let xb = x + <usize>b * BYTES_Q8_1, o = out + (<usize>r0 << 2);
        let t = 0;
        for (; t + 1 < nTok; t += 2) {
          q4_1GroupBlock(gb, xb, xb + xRow, o, o + rowBytes, b == 0, true, d0, d1, m0, m1);
          xb += xRow << 1;
          o += rowBytes << 1;
        }
        if (t < nTok) q4_1GroupBlock(gb, xb, xb, o, o, b == 0, false, d0, d1, m0, m1);
      }
      continue;
    }
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * xRow;
      let a0 = f32x4.splat(0), a1 = a0;
      for (let b = 0; b < nb; b++) {
        const gb = wg + <usize>b * PACKED_Q4_1_GROUP, xb = xt + <usize>b * BYTES_Q8_1;
        a0 = q4_1BlockHalf(a0, gb, xb, 0);
        a1 = q4_1BlockHalf(a1, gb, xb, 1);
      }
      storeGroup(out + <usize>t * rowBytes, r0, rowStart, rowEnd, a0, a1);
    }
  }
}

// ===================== Q4_Kx8, Q5_Kx8 =====================

/**
 * Q5_K: bit j (a constant after inlining) of each byte of H moved to 0x10, other bits cleared. The
 * i16 shifts keep the bit inside its byte (|4 - j| <= 4 and the mask drops what crossed over).
 */
// @ts-ignore: decorator
@inline function fifthBit(H: v128, j: i32): v128 {
  const s = j <= 4 ? i16x8.shl(H, 4 - j) : i16x8.shr_u(H, j - 4);
  return v128.and(s, i8x16.splat(0x10));
}

/** Bit `bit` (0 or 1) of each byte of Hs moved to 0x10, other bits cleared (i16 shifts stay in-byte once masked). */
// @ts-ignore: decorator
@inline function bitTo16(Hs: v128, bit: i32): v128 {
  return v128.and(i16x8.shl(Hs, 4 - bit), i8x16.splat(0x10));
}

/**
 * isum + four rows' sc_2k * sum(q x) over sub-block 2k + sc_2k+1 * sum(q x) over sub-block 2k+1
 * (k a constant after inlining), rows 4h..4h+3: qs at the half's first quant vector, xq at the
 * activation quants.
 */
// @ts-ignore: decorator
@inline function k45Pair(isum: v128, gb: usize, qs: usize, xq: usize, h: i32, k: i32, five: bool): v128 {
  const m = i8x16.splat(15);
  const zero = i16x8.splat(0);
  // i16 pair sums of quads l even (a: low nibbles, c: high) and odd (b, d): each lane <= 4 * 2 * 31 * 128
  let a = zero, b = zero, c = zero, d = zero;
  const qk = qs + (<usize>k << 8), xl = xq + (<usize>k << 6);
  for (let l = 0; l < 8; l += 2) {
    const v = v128.load(qk + (<usize>l << 5)), w = v128.load(qk + (<usize>l << 5) + 32);
    let lv = v128.and(v, m), hv = v128.and(i16x8.shr_u(v, 4), m);
    let lw = v128.and(w, m), hw = v128.and(i16x8.shr_u(w, 4), m);
    if (five) {
      const H = v128.load(gb + 160 + (<usize>((l << 1) + h) << 4)), G = v128.load(gb + 192 + (<usize>((l << 1) + h) << 4));
      lv = v128.or(lv, fifthBit(H, k << 1)); hv = v128.or(hv, fifthBit(H, (k << 1) + 1));
      lw = v128.or(lw, fifthBit(G, k << 1)); hw = v128.or(hw, fifthBit(G, (k << 1) + 1));
    }
    const xp = xl + (<usize>l << 2);
    a = i16x8.add(a, pairQuad(lv, xp));
    c = i16x8.add(c, pairQuad(hv, xp + 32));
    b = i16x8.add(b, pairQuad(lw, xp + 4));
    d = i16x8.add(d, pairQuad(hw, xp + 36));
  }
  const sc = gb + 32 + (<usize>k << 4) + (<usize>h << 2);
  const sl = scalePairs(sc), sh = scalePairs(sc + 8);
  if (five) {
    // 5-bit quants: a + b could pass the i16 range, so each chain meets the scale on its own
    const lo = i32x4.add(i32x4.dot_i16x8_s(a, sl), i32x4.dot_i16x8_s(b, sl));
    const hi = i32x4.add(i32x4.dot_i16x8_s(c, sh), i32x4.dot_i16x8_s(d, sh));
    return i32x4.add(isum, i32x4.add(lo, hi));
  }
  return i32x4.add(isum, i32x4.add(i32x4.dot_i16x8_s(i16x8.add(a, b), sl), i32x4.dot_i16x8_s(i16x8.add(c, d), sh)));
}

/** msum = sum_j m_j (bsums_2j + bsums_2j+1) of rows 4h..4h+3: two sub-blocks per i16 dot (all fit i16). */
// @ts-ignore: decorator
@inline function k45Mins(gb: usize, xb: usize, high: bool): v128 {
  const bp = i16x8.narrow_i32x4_s(i32x4.extadd_pairwise_i16x8_s(v128.load(xb + 260)), i32x4.extadd_pairwise_i16x8_s(v128.load(xb + 276)));
  let msum = i32x4.splat(0);
  for (let p = 0; p < 4; p++) {
    const mv = v128.load(gb + 96 + (<usize>p << 4));
    const m16 = high ? i16x8.extend_high_i8x16_u(mv) : i16x8.extend_low_i8x16_u(mv);
    msum = i32x4.add(msum, i32x4.dot_i16x8_s(m16, splatLane(bp, p)));
  }
  return msum;
}

/** acc + ((dy * d) * f32(isum) - (dy * dmin) * f32(msum)) for four rows (d4, dm4: their d and dmin). */
// @ts-ignore: decorator
@inline function k45Step(acc: v128, isum: v128, msum: v128, xb: usize, d4: v128, dm4: v128): v128 {
  const dy = f32x4.splat(load<f32>(xb));
  const dd = f32x4.mul(dy, d4), dm = f32x4.mul(dy, dm4);
  return f32x4.add(acc, f32x4.sub(f32x4.mul(dd, f32x4.convert_i32x4_s(isum)), f32x4.mul(dm, f32x4.convert_i32x4_s(msum))));
}

/** Integer sums of rows 4h..4h+3 of the group block at gb against the Q8_K block at xb. */
// @ts-ignore: decorator
@inline function k45HalfSums(gb: usize, xb: usize, h: i32, five: bool): v128 {
  const qs = gb + (five ? 416 : 160) + (<usize>h << 4), xq = xb + 4;
  let isum = k45Pair(i32x4.splat(0), gb, qs, xq, h, 0, five);
  isum = k45Pair(isum, gb, qs, xq, h, 1, five);
  isum = k45Pair(isum, gb, qs, xq, h, 2, five);
  return k45Pair(isum, gb, qs, xq, h, 3, five);
}

/** acc + the block step of rows 4h..4h+3 of the group block at gb against the Q8_K block at xb. */
// @ts-ignore: decorator
@inline function k45BlockHalf(acc: v128, gb: usize, xb: usize, h: i32, five: bool): v128 {
  const high = h == 1;
  return k45Step(acc, k45HalfSums(gb, xb, h, five), k45Mins(gb, xb, high), xb, halves4(gb, high), halves4(gb + 16, high));
}

/** i16x8 scale pairs of sub-block j (0..7), rows 4h..4h+3 (scalePairs of the layout's sc bytes). */
// @ts-ignore: decorator
@inline function kScales(gb: usize, j: i32, h: i32): v128 {
  return scalePairs(gb + 32 + (<usize>j << 3) + (<usize>h << 2));
}

/**
 * Token a (Q8_K block at xa) and, when `two`, token c (xc), all eight rows of the group block at gb:
 * the block steps added to the eight f32 accumulators at oa (and oc), zero first when `first`. Each
 * quant vector is unpacked once for both tokens and each activation splat serves both row halves.
 * i16 chains per token, row half and nibble over a sub-block pair's quads (lane <= 8 * 3840; Q5_K
 * meets the scales every four quads, lane <= 4 * 7936).
 */
// @ts-ignore: decorator
@inline function k45GroupBlock(gb: usize, xa: usize, xc: usize, oa: usize, oc: usize, first: bool, five: bool, two: bool, d0: v128, d1: v128, dm0: v128, dm1: v128): void {
  const m = i8x16.splat(15);
  const z16 = i16x8.splat(0), z32 = i32x4.splat(0);
  const qs = gb + (five ? 416 : 160);
  let ia0 = z32, ia1 = z32, ic0 = z32, ic1 = z32;
  for (let k = 0; k < 4; k++) {
    for (let part = 0; part < 2; part++) {
      // chains: token a / c, row half 0 / 1, low (L: sub-block 2k) / high (H: 2k+1) nibbles
      let aL0 = z16, aH0 = z16, aL1 = z16, aH1 = z16, cL0 = z16, cH0 = z16, cL1 = z16, cH1 = z16;
      const lEnd = five ? (part << 2) + 4 : 8;
      for (let l = five ? part << 2 : 0; l < lEnd; l++) {
        const q = qs + (<usize>k << 8) + (<usize>l << 5);
        const v0 = v128.load(q), v1 = v128.load(q + 16);
        let l0 = v128.and(v0, m), h0 = v128.and(i16x8.shr_u(v0, 4), m);
        let l1 = v128.and(v1, m), h1 = v128.and(i16x8.shr_u(v1, 4), m);
        if (five) {
          // bits 2k and 2k+1 of qh: the fifth bits of sub-blocks 2k and 2k+1, brought down to bits 0 and 1
          const H0 = i16x8.shr_u(v128.load(gb + 160 + (<usize>l << 5)), k << 1), H1 = i16x8.shr_u(v128.load(gb + 176 + (<usize>l << 5)), k << 1);
          l0 = v128.or(l0, bitTo16(H0, 0)); h0 = v128.or(h0, bitTo16(H0, 1));
          l1 = v128.or(l1, bitTo16(H1, 0)); h1 = v128.or(h1, bitTo16(H1, 1));
        }
        const o = <usize>((k << 6) + (l << 2)) + 4;
        let xl = v128.load32_splat(xa + o), xh = v128.load32_splat(xa + o + 32);
        let el = xl, ol = xl, eh = xh, oh = xh;
        if (!ASC_FEATURE_RELAXED_SIMD) { el = evenI16(xl); ol = oddI16(xl); eh = evenI16(xh); oh = oddI16(xh); }
        aL0 = i16x8.add(aL0, pairQuadX(l0, xl, el, ol)); aL1 = i16x8.add(aL1, pairQuadX(l1, xl, el, ol));
        aH0 = i16x8.add(aH0, pairQuadX(h0, xh, eh, oh)); aH1 = i16x8.add(aH1, pairQuadX(h1, xh, eh, oh));
        if (!two) continue;
        xl = v128.load32_splat(xc + o); xh = v128.load32_splat(xc + o + 32);
        if (!ASC_FEATURE_RELAXED_SIMD) { el = evenI16(xl); ol = oddI16(xl); eh = evenI16(xh); oh = oddI16(xh); }
        cL0 = i16x8.add(cL0, pairQuadX(l0, xl, el, ol)); cL1 = i16x8.add(cL1, pairQuadX(l1, xl, el, ol));
        cH0 = i16x8.add(cH0, pairQuadX(h0, xh, eh, oh)); cH1 = i16x8.add(cH1, pairQuadX(h1, xh, eh, oh));
      }
      const j = k << 1;
      const sL0 = kScales(gb, j, 0), sL1 = kScales(gb, j, 1), sH0 = kScales(gb, j + 1, 0), sH1 = kScales(gb, j + 1, 1);
      ia0 = i32x4.add(ia0, i32x4.add(i32x4.dot_i16x8_s(aL0, sL0), i32x4.dot_i16x8_s(aH0, sH0)));
      ia1 = i32x4.add(ia1, i32x4.add(i32x4.dot_i16x8_s(aL1, sL1), i32x4.dot_i16x8_s(aH1, sH1)));
      if (two) {
        ic0 = i32x4.add(ic0, i32x4.add(i32x4.dot_i16x8_s(cL0, sL0), i32x4.dot_i16x8_s(cH0, sH0)));
        ic1 = i32x4.add(ic1, i32x4.add(i32x4.dot_i16x8_s(cL1, sL1), i32x4.dot_i16x8_s(cH1, sH1)));
      }
      if (!five) break;
    }
  }
  const z = f32x4.splat(0);
  v128.store(oa, k45Step(first ? z : v128.load(oa), ia0, k45Mins(gb, xa, false), xa, d0, dm0));
  v128.store(oa + 16, k45Step(first ? z : v128.load(oa + 16), ia1, k45Mins(gb, xa, true), xa, d1, dm1));
  if (!two) return;
  v128.store(oc, k45Step(first ? z : v128.load(oc), ic0, k45Mins(gb, xc, false), xc, d0, dm0));
  v128.store(oc + 16, k45Step(first ? z : v128.load(oc + 16), ic1, k45Mins(gb, xc, true), xc, d1, dm1));
}

/**
 * Prefill: four tokens (Q8_K blocks at x0 + i * xRow), rows 4h..4h+3 of the group block at gb, the
 * block steps added to the four f32 accumulators at o0 + i * rowBytes. Each quant vector (with its
 * fifth bits merged, Q5_K) is unpacked once for the four tokens.
 */
// @ts-ignore: decorator
@inline function k45Half4(gb: usize, x0: usize, xRow: usize, o0: usize, rowBytes: usize, first: bool, five: bool, h: i32, d4: v128, dm4: v128): void {
  const m = i8x16.splat(15);
  const z16 = i16x8.splat(0), z32 = i32x4.splat(0);
  const qs = gb + (five ? 416 : 160) + (<usize>h << 4), qh = gb + 160 + (<usize>h << 4);
  const x1 = x0 + xRow, x2 = x1 + xRow, x3 = x2 + xRow;
  let i0 = z32, i1 = z32, i2 = z32, i3 = z32;
  for (let k = 0; k < 4; k++) {
    for (let part = 0; part < 2; part++) {
      // chains per token: a (sub-block 2k), b (2k+1); each lane <= 8 * 3840 (Q5_K: 4 * 7936)
      let a0 = z16, b0 = z16, a1 = z16, b1 = z16, a2 = z16, b2 = z16, a3 = z16, b3 = z16;
      const lEnd = five ? (part << 2) + 4 : 8;
      for (let l = five ? part << 2 : 0; l < lEnd; l++) {
        const v = v128.load(qs + (<usize>k << 8) + (<usize>l << 5));
        let lo = v128.and(v, m), hi = v128.and(i16x8.shr_u(v, 4), m);
        if (five) {
          const H = i16x8.shr_u(v128.load(qh + (<usize>l << 5)), k << 1);
          lo = v128.or(lo, bitTo16(H, 0));
          hi = v128.or(hi, bitTo16(H, 1));
        }
        const o = <usize>((k << 6) + (l << 2)) + 4;
        a0 = i16x8.add(a0, pairQuad(lo, x0 + o)); b0 = i16x8.add(b0, pairQuad(hi, x0 + o + 32));
        a1 = i16x8.add(a1, pairQuad(lo, x1 + o)); b1 = i16x8.add(b1, pairQuad(hi, x1 + o + 32));
        a2 = i16x8.add(a2, pairQuad(lo, x2 + o)); b2 = i16x8.add(b2, pairQuad(hi, x2 + o + 32));
        a3 = i16x8.add(a3, pairQuad(lo, x3 + o)); b3 = i16x8.add(b3, pairQuad(hi, x3 + o + 32));
      }
      const sL = kScales(gb, k << 1, h), sH = kScales(gb, (k << 1) + 1, h);
      i0 = i32x4.add(i0, i32x4.add(i32x4.dot_i16x8_s(a0, sL), i32x4.dot_i16x8_s(b0, sH)));
      i1 = i32x4.add(i1, i32x4.add(i32x4.dot_i16x8_s(a1, sL), i32x4.dot_i16x8_s(b1, sH)));
      i2 = i32x4.add(i2, i32x4.add(i32x4.dot_i16x8_s(a2, sL), i32x4.dot_i16x8_s(b2, sH)));
      i3 = i32x4.add(i3, i32x4.add(i32x4.dot_i16x8_s(a3, sL), i32x4.dot_i16x8_s(b3, sH)));
      if (!five) break;
    }
  }
  const z = f32x4.splat(0), high = h == 1;
  const o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
  v128.store(o0, k45Step(first ? z : v128.load(o0), i0, k45Mins(gb, x0, high), x0, d4, dm4));
  v128.store(o1, k45Step(first ? z : v128.load(o1), i1, k45Mins(gb, x1, high), x1, d4, dm4));
  v128.store(o2, k45Step(first ? z : v128.load(o2), i2, k45Mins(gb, x2, high), x2, d4, dm4));
  v128.store(o3, k45Step(first ? z : v128.load(o3), i3, k45Mins(gb, x3, high), x3, d4, dm4));
}

// @ts-ignore: decorator
@inline function matmulK45(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32, five: bool): void {
  const nb = cols >> 8;
  const groupBytes: usize = five ? PACKED_Q5_K_GROUP : PACKED_Q4_K_GROUP;
  const xRow = <usize>nb * BYTES_Q8_K, groupRow = <usize>nb * groupBytes;
  const rowBytes = <usize>rows << 2;
  for (let r0 = rowStart & ~(PACK_ROWS - 1); r0 < rowEnd; r0 += PACK_ROWS) {
    const wg = w + <usize>(r0 / PACK_ROWS) * groupRow;
    if (r0 >= rowStart && r0 + PACK_ROWS <= rowEnd) {
      for (let b = 0; b < nb; b++) {
        const gb = wg + <usize>b * groupBytes;
        const d0 = halves4(gb, false), d1 = halves4(gb, true), dm0 = halves4(gb + 16, false), dm1 = halves4(gb + 16, true);
        let xb = x + <usize>b * BYTES_Q8_K, o = out + (<usize>r0 << 2);
        let t = 0;
        for (; t + 3 < nTok; t += 4) {
          k45Half4(gb, xb, xRow, o, rowBytes, b == 0, five, 0, d0, dm0);
          k45Half4(gb, xb, xRow, o + 16, rowBytes, b == 0, five, 1, d1, dm1);
          xb += xRow << 2;
          o += rowBytes << 2;
        }
        for (; t + 1 < nTok; t += 2) {
          k45GroupBlock(gb, xb, xb + xRow, o, o + rowBytes, b == 0, five, true, d0, d1, dm0, dm1);
          xb += xRow << 1;
          o += rowBytes << 1;
        }
        if (t < nTok) k45GroupBlock(gb, xb, xb, o, o, b == 0, five, false, d0, d1, dm0, dm1);
      }
      continue;
    }
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * xRow;
      let a0 = f32x4.splat(0), a1 = a0;
      for (let b = 0; b < nb; b++) {
        const gb = wg + <usize>b * groupBytes, xb = xt + <usize>b * BYTES_Q8_K;
        a0 = k45BlockHalf(a0, gb, xb, 0, five);
        a1 = k45BlockHalf(a1, gb, xb, 1, five);
      }
      storeGroup(out + <usize>t * rowBytes, r0, rowStart, rowEnd, a0, a1);
    }
  }
}

export function simdMatmulPackedQ4_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  matmulK45(w, x, out, cols, rows, nTok, rowStart, rowEnd, false);
}

export function simdMatmulPackedQ5_K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  matmulK45(w, x, out, cols, rows, nTok, rowStart, rowEnd, true);
}
