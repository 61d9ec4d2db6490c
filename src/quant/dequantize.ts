// Scalar reference dequantizers: one row of any supported tensor format back to f32, following
// llama.cpp's dequantize_row_* (ggml-quants.c) operation for operation, with every intermediate rounded
// to f32 as C computes it. Formats are described in formats.ts; dispatch goes through one table.
import { bf16ToF32, f16ToF32 } from './f16.js';
import { GGMLType, QK_K, typeTraits } from './formats.js';

const f = Math.fround;

/** Dequantizes `nBlocks` consecutive blocks from `src` (viewed also as `view`) into `dst`. */
type BlockDequantizer = (src: Uint8Array, view: DataView, nBlocks: number, dst: Float32Array) => void;

function halfAt(view: DataView, offset: number): number {
  return f16ToF32(view.getUint16(offset, true));
}

function dequantF32(_src: Uint8Array, view: DataView, n: number, dst: Float32Array): void {
  for (let i = 0; i < n; i++) dst[i] = view.getFloat32(4 * i, true);
}

function dequantF16(_src: Uint8Array, view: DataView, n: number, dst: Float32Array): void {
  for (let i = 0; i < n; i++) dst[i] = f16ToF32(view.getUint16(2 * i, true));
}

function dequantBF16(_src: Uint8Array, view: DataView, n: number, dst: Float32Array): void {
  for (let i = 0; i < n; i++) dst[i] = bf16ToF32(view.getUint16(2 * i, true));
}

// Q4_0: 18 bytes = d:f16, qs[16]; weight j is low nibble of qs[j], weight j+16 the high nibble.
function dequantQ4_0(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 18 * i;
    const d = halfAt(view, o);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 2 + j]!;
      dst[32 * i + j] = f(((q & 0x0f) - 8) * d);
      dst[32 * i + j + 16] = f(((q >> 4) - 8) * d);
    }
  }
}

// Q4_1: 20 bytes = d:f16, m:f16, qs[16].
function dequantQ4_1(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 20 * i;
    const d = halfAt(view, o);
    const m = halfAt(view, o + 2);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 4 + j]!;
      dst[32 * i + j] = f(f((q & 0x0f) * d) + m);
      dst[32 * i + j + 16] = f(f((q >> 4) * d) + m);
    }
  }
}

// Q5_0: 22 bytes = d:f16, qh:u32 (bit j = 5th bit of weight j), qs[16].
function dequantQ5_0(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 22 * i;
    const d = halfAt(view, o);
    const qh = view.getUint32(o + 2, true);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 6 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[32 * i + j] = f((((q & 0x0f) | h0) - 16) * d);
      dst[32 * i + j + 16] = f((((q >> 4) | h1) - 16) * d);
    }
  }
}

// Q5_1: 24 bytes = d:f16, m:f16, qh:u32, qs[16].
function dequantQ5_1(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 24 * i;
    const d = halfAt(view, o);
    const m = halfAt(view, o + 2);
    const qh = view.getUint32(o + 4, true);
    for (let j = 0; j < 16; j++) {
      const q = src[o + 8 + j]!;
      const h0 = ((qh >>> j) << 4) & 0x10;
      const h1 = (qh >>> (j + 12)) & 0x10;
      dst[32 * i + j] = f(f(((q & 0x0f) | h0) * d) + m);
      dst[32 * i + j + 16] = f(f(((q >> 4) | h1) * d) + m);
    }
  }
}

// Q8_0: 34 bytes = d:f16, qs[32]:i8.
function dequantQ8_0(_src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 34 * i;
    const d = halfAt(view, o);
    for (let j = 0; j < 32; j++) dst[32 * i + j] = f(view.getInt8(o + 2 + j) * d);
  }
}

// Q8_1: 36 bytes = d:f16, s:f16, qs[32]:i8 (s is only used by dot products).
function dequantQ8_1(_src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 36 * i;
    const d = halfAt(view, o);
    for (let j = 0; j < 32; j++) dst[32 * i + j] = f(view.getInt8(o + 4 + j) * d);
  }
}

// Q2_K: 84 bytes = scales[16], qs[64], d:f16, dmin:f16. Per 128 weights, qs[32] hold 4 groups of 32
// at shifts 0,2,4,6; each group of 32 is two 16-weight sub-blocks with their own scale byte.
function dequantQ2_K(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = 84 * i;
    const d = halfAt(view, o + 80);
    const min = halfAt(view, o + 82);
    let q = o + 16;
    let is = 0;
    for (let n = 0; n < QK_K; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = src[o + is++]!;
          const dl = f(d * (sc & 0xf));
          const ml = f(min * (sc >> 4));
          for (let l = 0; l < 16; l++) dst[y++] = f(f(dl * ((src[q + 16 * half + l]! >> shift) & 3)) - ml);
        }
      }
      q += 32;
    }
  }
}

// Q3_K: 110 bytes = hmask[32], qs[64], scales[12], d:f16. Sixteen 6-bit scales (offset 32): low 4 bits
// of scale j in byte j (j<8, low nibble) or byte j-8 (high nibble), top 2 bits in byte 8 + j%4 at
// bit 2*(j/4). A weight's 3rd bit is clear (subtract 4) when its hmask bit is 0.
function q3kScale(src: Uint8Array, s: number, j: number): number {
  const low = j < 8 ? src[s + j]! & 0xf : src[s + j - 8]! >> 4;
  const high = (src[s + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

function dequantQ3_K(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = 110 * i;
    const hm = o;
    const s = o + 96;
    const dAll = halfAt(view, o + 108);
    let q = o + 32;
    let is = 0;
    let m = 1;
    for (let n = 0; n < QK_K; n += 128) {
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = f(dAll * q3kScale(src, s, is++));
          for (let l = 0; l < 16; l++) {
            const k = 16 * half + l;
            const v = ((src[q + k]! >> shift) & 3) - (src[hm + k]! & m ? 0 : 4);
            dst[y++] = f(dl * v);
          }
        }
        m <<= 1;
      }
      q += 32;
    }
  }
}

/** Scale and min (6 bits each) of sub-block j from the 12 packed bytes at `s` (Q4_K and Q5_K). */
export function scaleMinK4(src: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [src[s + j]! & 63, src[s + j + 4]! & 63];
  return [(src[s + j + 4]! & 0xf) | ((src[s + j - 4]! >> 6) << 4), (src[s + j + 4]! >> 4) | ((src[s + j]! >> 6) << 4)];
}

// Q4_K: 144 bytes = d:f16, dmin:f16, scales[12], qs[128]. Per 64 weights, 32 bytes: low nibbles are
// sub-block 2k, high nibbles sub-block 2k+1.
function dequantQ4_K(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = 144 * i;
    const d = halfAt(view, o);
    const min = halfAt(view, o + 2);
    let q = o + 16;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(src, o + 4, is);
      const [sc2, m2] = scaleMinK4(src, o + 4, is + 1);
      const d1 = f(d * sc1);
      const min1 = f(min * m1);
      const d2 = f(d * sc2);
      const min2 = f(min * m2);
      for (let l = 0; l < 32; l++) dst[y++] = f(f(d1 * (src[q + l]! & 0xf)) - min1);
      for (let l = 0; l < 32; l++) dst[y++] = f(f(d2 * (src[q + l]! >> 4)) - min2);
      q += 32;
    }
  }
}

// Q5_K: 176 bytes = d:f16, dmin:f16, scales[12], qh[32], qs[128]. As Q4_K plus a 5th bit: for the
// k-th 64 weights, bit 2k of qh[l] belongs to the low nibble, bit 2k+1 to the high nibble.
function dequantQ5_K(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  let y = 0;
  for (let i = 0; i < nb; i++) {
    const o = 176 * i;
    const d = halfAt(view, o);
    const min = halfAt(view, o + 2);
    const qh = o + 16;
    let ql = o + 48;
    let u1 = 1;
    let u2 = 2;
    for (let is = 0; is < 8; is += 2) {
      const [sc1, m1] = scaleMinK4(src, o + 4, is);
      const [sc2, m2] = scaleMinK4(src, o + 4, is + 1);
      const d1 = f(d * sc1);
      const min1 = f(min * m1);
      const d2 = f(d * sc2);
      const min2 = f(min * m2);
      for (let l = 0; l < 32; l++) dst[y++] = f(f(d1 * ((src[ql + l]! & 0xf) + (src[qh + l]! & u1 ? 16 : 0))) - min1);
      for (let l = 0; l < 32; l++) dst[y++] = f(f(d2 * ((src[ql + l]! >> 4) + (src[qh + l]! & u2 ? 16 : 0))) - min2);
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

// Q6_K: 210 bytes = ql[128], qh[64], scales[16]:i8, d:f16. Per 128 weights: ql[64] and qh[32]; weight
// l + 32k takes the nibble (k odd: high) of ql[l + 32*(k&1)] and bits 2k..2k+1 of qh[l].
function dequantQ6_K(src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 210 * i;
    const d = halfAt(view, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    for (let n = 0; n < QK_K; n += 128) {
      const y = QK_K * i + n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const q1 = ((src[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
        dst[y + l] = f(f(d * view.getInt8(sc + is)) * q1);
        dst[y + l + 32] = f(f(d * view.getInt8(sc + is + 2)) * q2);
        dst[y + l + 64] = f(f(d * view.getInt8(sc + is + 4)) * q3);
        dst[y + l + 96] = f(f(d * view.getInt8(sc + is + 6)) * q4);
      }
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

// Q8_K: 292 bytes = d:f32, qs[256]:i8, bsums[16]:i16.
function dequantQ8_K(_src: Uint8Array, view: DataView, nb: number, dst: Float32Array): void {
  for (let i = 0; i < nb; i++) {
    const o = 292 * i;
    const d = view.getFloat32(o, true);
    for (let j = 0; j < QK_K; j++) dst[QK_K * i + j] = f(d * view.getInt8(o + 4 + j));
  }
}

/** The dequantizer of every type pocketllm can turn back into f32. */
const DEQUANTIZERS: ReadonlyMap<GGMLType, BlockDequantizer> = new Map<GGMLType, BlockDequantizer>([
  [GGMLType.F32, dequantF32],
  [GGMLType.F16, dequantF16],
  [GGMLType.BF16, dequantBF16],
  [GGMLType.Q4_0, dequantQ4_0],
  [GGMLType.Q4_1, dequantQ4_1],
  [GGMLType.Q5_0, dequantQ5_0],
  [GGMLType.Q5_1, dequantQ5_1],
  [GGMLType.Q8_0, dequantQ8_0],
  [GGMLType.Q8_1, dequantQ8_1],
  [GGMLType.Q2_K, dequantQ2_K],
  [GGMLType.Q3_K, dequantQ3_K],
  [GGMLType.Q4_K, dequantQ4_K],
  [GGMLType.Q5_K, dequantQ5_K],
  [GGMLType.Q6_K, dequantQ6_K],
  [GGMLType.Q8_K, dequantQ8_K],
]);

/** True when dequantizeRow can handle `type`. */
export function canDequantize(type: GGMLType): boolean {
  return DEQUANTIZERS.has(type);
}

/**
 * Dequantizes `n` weights (a whole number of blocks) stored as `type` at the start of `src` into
 * `dst` (allocated when omitted) and returns it.
 */
export function dequantizeRow(type: GGMLType, src: Uint8Array, n: number, dst?: Float32Array): Float32Array {
  const traits = typeTraits(type);
  if (!traits) throw new Error(`cannot dequantize: unknown GGML type id ${type}`);
  const dequant = DEQUANTIZERS.get(type);
  if (!dequant) throw new Error(`cannot dequantize type ${traits.name}: pocketllm has no dequantizer for it`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`cannot dequantize ${n} weights: not a count`);
  if (n % traits.blockSize !== 0) throw new Error(`cannot dequantize ${n} weights of ${traits.name}: not a multiple of its block of ${traits.blockSize}`);
  const nBlocks = n / traits.blockSize;
  const bytes = nBlocks * traits.blockBytes;
  if (src.length < bytes) throw new Error(`cannot dequantize ${n} weights of ${traits.name}: needs ${bytes} bytes, got ${src.length}`);
  const out = dst ?? new Float32Array(n);
  if (out.length < n) throw new Error(`dequantize destination holds ${out.length} values, needs ${n}`);
  // F32/F16/BF16 have a block of one weight, so nBlocks is the weight count for them too.
  dequant(src, new DataView(src.buffer, src.byteOffset, bytes), nBlocks, out);
  return out;
}
