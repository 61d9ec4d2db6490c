// SIMD128 / relaxed-SIMD matrix multiply over the packed Q6_Kx8 layout (formats.ts), same signature
// and same bits as its scalar twin (ref/matmul-packed-q6k.ts) and as the file-layout kernel of
// simd/matmul.ts: out[t*rows + r] = dot(W row r, x row t) with Q8_K activations, rows [rowStart,
// rowEnd) (any range; multiples of PACK_ROWS avoid computing a group twice).
//
// The quants were merged into bytes 0..63 at load, so the inner loop only loads: per 16-weight group
// and quad k of four weights, one vector holds four rows' four quants (lane = row) and one dot with
// x[4k..4k+3] repeated in every lane gives the four rows' partial sums in their lanes (relaxed:
// i32x4.relaxed_dot_i8x16_i7x16_add_s, the unsigned quants its 7-bit operand, exact on every engine;
// SIMD128: two i16 dots of the even and odd bytes). Per group and row, (sum q x - 32 * bsum_g) * sc_g
// in i32 (the -32 through Q8_K's bsums); all exact integers, so the block's isum per row equals the
// twin's, and the float steps (d * dy) * f32(isum) + acc are the twin's, four rows per f32x4. Two
// tokens share each quant load; prefill runs every token pair over one group while its weights sit in
// cache.
import { BYTES_Q8_K, PACK_ROWS, PACKED_Q6_K_GROUP } from '../formats';
import { evenI16, halfLanesToF32, oddI16 } from './lanes';
import { quadDot, splatLane, storeGroup } from './packed-common';

/** Four rows' group sums sum_{j<16} q_j x_j (rows 4h..4h+3: `half` 0 or 16 bytes into each quad pair). */
// @ts-ignore: decorator
@inline function groupSums(qg: usize, xg: usize, ev: v128, od: v128): v128 {
  let a = quadDot(i32x4.splat(0), v128.load(qg), xg, 0, ev, od);
  a = quadDot(a, v128.load(qg + 32), xg, 1, ev, od);
  a = quadDot(a, v128.load(qg + 64), xg, 2, ev, od);
  return quadDot(a, v128.load(qg + 96), xg, 3, ev, od);
}

/** isum + (sums - 32 * bsum) * sc: one group's exact contribution for four rows. */
// @ts-ignore: decorator
@inline function addGroup(isum: v128, sums: v128, bsum: i32, sc: v128): v128 {
  return i32x4.add(isum, i32x4.mul(i32x4.sub(sums, i32x4.splat(bsum << 5)), sc));
}

/** acc + (d * dy) * f32(isum), four rows per lane: the twin's float steps. */
// @ts-ignore: decorator
@inline function finish(acc: v128, d: v128, dy: f32, isum: v128): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.mul(d, f32x4.splat(dy)), f32x4.convert_i32x4_s(isum)));
}

export function simdMatmulPackedQ6K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  if (rowEnd <= rowStart) return;
  const nb = cols >> 8;
  const xRow = <usize>nb * BYTES_Q8_K;
  const groupBytes = <usize>nb * PACKED_Q6_K_GROUP;
  const zero = i32x4.splat(0);
  for (let r0 = (rowStart >> 3) << 3; r0 < rowEnd; r0 += PACK_ROWS) {
    const g = w + <usize>(r0 >> 3) * groupBytes;
    for (let t0 = 0; t0 < nTok; t0 += 2) {
      const nt = min(2, nTok - t0);
      const x0 = x + <usize>t0 * xRow, x1 = x0 + xRow;
      let a0 = f32x4.splat(0), a1 = a0, b0 = a0, b1 = a0; // token 0 rows 0-3, 4-7; token 1
      for (let b = 0; b < nb; b++) {
        const gb = g + <usize>b * PACKED_Q6_K_GROUP, xo = <usize>b * BYTES_Q8_K;
        const xb0 = x0 + xo, xb1 = x1 + xo;
        let i0 = zero, i1 = zero, j0 = zero, j1 = zero;
        for (let s = 0; s < 16; s++) {
          const sc16 = i16x8.extend_low_i8x16_s(v128.load64_zero(gb + 16 + (<usize>s << 3)));
          const sc0 = i32x4.extend_low_i16x8_s(sc16), sc1 = i32x4.extend_high_i16x8_s(sc16);
          const qg = gb + 144 + (<usize>s << 7);
          const xg0 = xb0 + 4 + (<usize>s << 4);
          let ev = zero, od = zero;
          if (!ASC_FEATURE_RELAXED_SIMD) {
            const xv = v128.load(xg0);
            ev = evenI16(xv); od = oddI16(xv);
          }
          const bs0 = <i32>load<i16>(xb0 + 260 + (<usize>s << 1));
          if (!ASC_FEATURE_RELAXED_SIMD && nt > 1) {
            // SIMD128, two tokens: split each quant vector into its even and odd bytes once for both
            const xv = v128.load(xb1 + 4 + (<usize>s << 4));
            const ev1 = evenI16(xv), od1 = oddI16(xv);
            let c00 = zero, c01 = zero, c10 = zero, c11 = zero;
            for (let k = 0; k < 4; k++) {
              const qa = v128.load(qg + (<usize>k << 5)), qb = v128.load(qg + (<usize>k << 5) + 16);
              const ea = v128.and(qa, i16x8.splat(0x00ff)), oa = i16x8.shr_u(qa, 8);
              const eb = v128.and(qb, i16x8.splat(0x00ff)), ob = i16x8.shr_u(qb, 8);
              const x0e = splatLane(ev, k), x0o = splatLane(od, k), x1e = splatLane(ev1, k), x1o = splatLane(od1, k);
              c00 = i32x4.add(c00, i32x4.add(i32x4.dot_i16x8_s(ea, x0e), i32x4.dot_i16x8_s(oa, x0o)));
              c01 = i32x4.add(c01, i32x4.add(i32x4.dot_i16x8_s(eb, x0e), i32x4.dot_i16x8_s(ob, x0o)));
              c10 = i32x4.add(c10, i32x4.add(i32x4.dot_i16x8_s(ea, x1e), i32x4.dot_i16x8_s(oa, x1o)));
              c11 = i32x4.add(c11, i32x4.add(i32x4.dot_i16x8_s(eb, x1e), i32x4.dot_i16x8_s(ob, x1o)));
            }
            const bs1 = <i32>load<i16>(xb1 + 260 + (<usize>s << 1));
            i0 = addGroup(i0, c00, bs0, sc0);
            i1 = addGroup(i1, c01, bs0, sc1);
            j0 = addGroup(j0, c10, bs1, sc0);
            j1 = addGroup(j1, c11, bs1, sc1);
            continue;
          }
          i0 = addGroup(i0, groupSums(qg, xg0, ev, od), bs0, sc0);
          i1 = addGroup(i1, groupSums(qg + 16, xg0, ev, od), bs0, sc1);
          if (nt > 1) {
            const xg1 = xb1 + 4 + (<usize>s << 4);
            if (!ASC_FEATURE_RELAXED_SIMD) {
              const xv = v128.load(xg1);
              ev = evenI16(xv); od = oddI16(xv);
            }
            const bs1 = <i32>load<i16>(xb1 + 260 + (<usize>s << 1));
            j0 = addGroup(j0, groupSums(qg, xg1, ev, od), bs1, sc0);
            j1 = addGroup(j1, groupSums(qg + 16, xg1, ev, od), bs1, sc1);
          }
        }
        const d = v128.load(gb);
        const d0 = halfLanesToF32(i32x4.extend_low_i16x8_u(d)), d1 = halfLanesToF32(i32x4.extend_high_i16x8_u(d));
        const dy0 = load<f32>(xb0);
        a0 = finish(a0, d0, dy0, i0);
        a1 = finish(a1, d1, dy0, i1);
        if (nt > 1) {
          const dy1 = load<f32>(xb1);
          b0 = finish(b0, d0, dy1, j0);
          b1 = finish(b1, d1, dy1, j1);
        }
      }
      const o0 = out + ((<usize>t0 * rows) << 2);
      storeGroup(o0, r0, rowStart, rowEnd, a0, a1);
      if (nt > 1) storeGroup(o0 + (<usize>rows << 2), r0, rowStart, rowEnd, b0, b1);
    }
  }
}
