// Scalar twin of the packed Q6_K matmul (Q6_Kx8; simd/matmul-packed-q6k.ts): out[t*rows + r] =
// dot(W row r, x row t) with Q8_K activations, rows [rowStart, rowEnd), all nTok tokens. Each output
// takes the float steps of ref/matmul.ts's dotQ6_K (per super-block acc += (d * dy) * f32(isum), isum
// the exact integer sum_g sc_g * sum (q - 32) x), reading the quants and scales where Q6_Kx8 puts
// them, so its bits are the file-layout kernel's.
import { BYTES_Q8_K, PACK_ROWS, PACKED_Q6_K_GROUP } from '../formats';
import { loadF16 } from '../half';
import { q6QuantPos, q6ScalePos } from './repack-q6k';

export function refMatmulPackedQ6K(w: usize, x: usize, out: usize, cols: i32, rows: i32, nTok: i32, rowStart: i32, rowEnd: i32): void {
  const nb = cols >> 8;
  const xRow = <usize>nb * BYTES_Q8_K;
  for (let r = rowStart; r < rowEnd; r++) {
    const g = w + <usize>(r / PACK_ROWS) * nb * PACKED_Q6_K_GROUP;
    const lane = r & (PACK_ROWS - 1);
    for (let t = 0; t < nTok; t++) {
      const xt = x + <usize>t * xRow;
      let sum: f32 = 0;
      for (let b = 0; b < nb; b++) {
        const gb = g + <usize>b * PACKED_Q6_K_GROUP, xb = xt + <usize>b * BYTES_Q8_K;
        let isum = 0;
        for (let s = 0; s < 16; s++) {
          let gsum = 0;
          for (let i = s << 4; i < (s << 4) + 16; i++) {
            gsum += (<i32>load<u8>(gb + q6QuantPos(lane, i)) - 32) * <i32>load<i8>(xb + 4 + i);
          }
          isum += <i32>load<i8>(gb + q6ScalePos(lane, s)) * gsum;
        }
        sum += loadF16(gb + (lane << 1)) * load<f32>(xb) * f32(isum);
      }
      store<f32>(out + ((<usize>t * rows + r) << 2), sum);
    }
  }
}
