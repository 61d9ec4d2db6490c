// Scalar twins of the packed Q4_1x8, Q4_Kx8 and Q5_Kx8 matrix multiplies (formats.ts): out[t*rows + r]
// = dot(W row r, x row t) for rows [rowStart, rowEnd), x in Q8_1 (Q4_1) or Q8_K rows. Each output is
// the file-layout dot of llama.cpp's ggml_vec_dot_q4_1_q8_1 / _q4_K_q8_K / _q5_K_q8_K as ref/matmul.ts
// has it (dotQ4_1, dotQ45_K): an exact integer sum per block, then the same float steps in the same
// order, so packing changes no bit. The SIMD kernels (simd/matmul-packed-kquant.ts) compute the same
// integers eight rows at a time and take these float steps lane by lane.
import { BYTES_Q8_1, BYTES_Q8_K, PACK_ROWS, PACKED_Q4_1_GROUP, PACKED_Q4_K_GROUP, PACKED_Q5_K_GROUP, TYPE_Q4_1, TYPE_Q5_K } from '../formats';
import { loadF16 } from '../half';
import { kHighPos, kMinPos, kQuantBase, kQuantPos, kScalePos, q4_1PackedPos } from './repack-kquant';

/** Q4_1x8: lane `lane` of the group at g against one Q8_1 token row x (nb blocks). */
function dotPackedQ4_1(g: usize, lane: i32, x: usize, nb: i32): f32 {
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const gb = g + <usize>b * PACKED_Q4_1_GROUP, xb = x + <usize>b * BYTES_Q8_1;
    let isum = 0;
    // the row's quant bytes come four at a time (bytes 4k..4k+3 at q4_1PackedPos(lane, 4k))
    for (let k = 0; k < 4; k++) {
      const w4 = load<u32>(gb + q4_1PackedPos(lane, k << 2));
      for (let i = 0; i < 4; i++) {
        const q = <i32>(w4 >> (i << 3)) & 255, j = (k << 2) + i;
        isum += (q & 15) * <i32>load<i8>(xb + 4 + j) + (q >> 4) * <i32>load<i8>(xb + 20 + j);
      }
    }
    sum += loadF16(gb + (lane << 1)) * loadF16(xb) * f32(isum) + loadF16(gb + 16 + (lane << 1)) * loadF16(xb + 2);
  }
  return sum;
}

/** Q4_Kx8 (five false) / Q5_Kx8: lane `lane` of the group at g against one Q8_K token row x. */
function dotPackedK45(g: usize, lane: i32, x: usize, nb: i32, five: bool): f32 {
  const groupBytes: usize = five ? PACKED_Q5_K_GROUP : PACKED_Q4_K_GROUP;
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const gb = g + <usize>b * groupBytes, xb = x + <usize>b * BYTES_Q8_K;
    const qs = gb + kQuantBase(five), xq = xb + 4;
    let isum = 0, msum = 0;
    for (let sub = 0; sub < 8; sub++) {
      const bs = <i32>load<i16>(xb + 260 + (sub << 2)) + <i32>load<i16>(xb + 262 + (sub << 2));
      msum += <i32>load<u8>(gb + kMinPos(lane, sub)) * bs;
    }
    // sub-blocks 2k (low nibbles) and 2k+1 (high nibbles) share their quant bytes, four at a time
    for (let k = 0; k < 4; k++) {
      let s0 = 0, s1 = 0;
      for (let l = 0; l < 32; l += 4) {
        const w4 = load<u32>(qs + kQuantPos(lane, (k << 5) + l));
        // qh bits 2k, 2k+1 of each byte brought down to bits 0, 1
        const h4: u32 = five ? load<u32>(gb + kHighPos(lane, l)) >> (k << 1) : 0;
        for (let i = 0; i < 4; i++) {
          const byte = <i32>(w4 >> (i << 3)) & 255, hb = <i32>(h4 >> (i << 3));
          const q0 = (byte & 15) | ((hb & 1) << 4), q1 = (byte >> 4) | ((hb & 2) << 3);
          s0 += q0 * <i32>load<i8>(xq + (k << 6) + l + i);
          s1 += q1 * <i32>load<i8>(xq + (k << 6) + 32 + l + i);
        }
      }
      isum += <i32>load<u8>(gb + kScalePos(lane, k << 1)) * s0 + <i32>load<u8>(gb + kScalePos(lane, (k << 1) + 1)) * s1;
    }
    const dy = load<f32>(xb);
    sum += dy * loadF16(gb + (lane << 1)) * f32(isum) - dy * loadF16(gb + 16 + (lane << 1)) * f32(msum);
  }
  return sum;
}

/** The packed Q4_1 / Q4_K / Q5_K matmul, one output at a time. */
export function refMatmulPackedKQuant(type: i32, w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const q41 = type == TYPE_Q4_1, five = type == TYPE_Q5_K;
  const nb = q41 ? cols >> 5 : cols >> 8;
  const xRow = <usize>nb * (q41 ? BYTES_Q8_1 : BYTES_Q8_K);
  const groupRow = <usize>nb * (q41 ? PACKED_Q4_1_GROUP : five ? PACKED_Q5_K_GROUP : PACKED_Q4_K_GROUP);
  for (let r = rowStart; r < rowEnd; r++) {
    const g = w + <usize>(r / PACK_ROWS) * groupRow, lane = r & (PACK_ROWS - 1);
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * xRow;
      const v = q41 ? dotPackedQ4_1(g, lane, xt, nb) : dotPackedK45(g, lane, xt, nb, five);
      store<f32>(out + ((<usize>t * rows + r) << 2), v);
    }
  }
}
