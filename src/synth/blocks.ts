// Valid random quant blocks drawn directly: random quants under f16 scales sized so that the
// dequantized weights have a chosen standard deviation and zero mean. This skips the reference
// quantizer, whose k-quant search would take far too long on a large model.
import { f16ToF32, f32ToF16 } from '../quant/f16.js';
import { GGMLType, TYPE_TRAITS } from '../quant/formats.js';
import type { Rng } from './random.js';

/** Types whose blocks can be drawn directly. */
export const DIRECT_BLOCK_TYPES: ReadonlySet<GGMLType> = new Set([
  GGMLType.Q4_0,
  GGMLType.Q4_1,
  GGMLType.Q5_0,
  GGMLType.Q5_1,
  GGMLType.Q8_0,
  GGMLType.Q2_K,
  GGMLType.Q3_K,
  GGMLType.Q4_K,
  GGMLType.Q5_K,
  GGMLType.Q6_K,
]);

/**
 * Spread of the block scales: each block's scale is drawn between these multiples of the nominal
 * one (uniformly over the f16 bit patterns in between), so blocks differ in magnitude as real ones do.
 */
const SCALE_SPREAD_LOW = 0.75;
const SCALE_SPREAD_HIGH = 1.25;

/** Draws f16 scales between low*nominal and high*nominal; monotonic bit patterns make this a range. */
class ScaleDraw {
  private readonly lowBits: number;
  private readonly span: number;
  constructor(nominal: number) {
    this.lowBits = f32ToF16(nominal * SCALE_SPREAD_LOW);
    this.span = Math.max(1, f32ToF16(nominal * SCALE_SPREAD_HIGH) - this.lowBits);
  }
  positive(rng: Rng): number {
    return this.lowBits + rng.nextInt(this.span);
  }
  /** Random sign as well, which cancels the mean of formats whose quants are not centred. */
  signed(rng: Rng): number {
    return this.positive(rng) | (rng.nextU32() & 0x8000);
  }
}

/** Standard deviation of a uniform integer on [0, n). */
function uniformStd(n: number): number {
  return Math.sqrt((n * n - 1) / 12);
}

/** Uniform int in [lo, hi]. */
function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.nextInt(hi - lo + 1);
}

/** Packs eight 6-bit scales and eight 6-bit mins into Q4_K/Q5_K's 12 bytes. */
function packScaleMinK4(sc: readonly number[], m: readonly number[], out: Uint8Array, at: number): void {
  for (let i = 0; i < 12; i++) out[at + i] = 0;
  for (let j = 0; j < 4; j++) {
    out[at + j] = sc[j]! & 63;
    out[at + j + 4] = m[j]! & 63;
  }
  for (let j = 4; j < 8; j++) {
    out[at + j + 4] = (sc[j]! & 15) | ((m[j]! & 15) << 4);
    out[at + j - 4] |= (sc[j]! >> 4) << 6;
    out[at + j] |= (m[j]! >> 4) << 6;
  }
}

/** Packs sixteen 6-bit values into Q3_K's 12 scale bytes. */
function packScalesQ3K(v: readonly number[], out: Uint8Array, at: number): void {
  for (let i = 0; i < 12; i++) out[at + i] = 0;
  for (let j = 0; j < 16; j++) {
    if (j < 8) out[at + j] |= v[j]! & 15;
    else out[at + j - 8] |= (v[j]! & 15) << 4;
    out[at + 8 + (j % 4)] |= ((v[j]! >> 4) & 3) << (2 * Math.floor(j / 4));
  }
}

/**
 * Fills `out` (a whole number of blocks of `type`) with random valid blocks whose weights have
 * standard deviation about `std` and mean about zero.
 */
export function fillRandomBlocks(type: GGMLType, rng: Rng, out: Uint8Array, std: number): void {
  const traits = TYPE_TRAITS.get(type)!;
  const bytes = traits.blockBytes;
  const nBlocks = out.length / bytes;
  if (!Number.isInteger(nBlocks)) throw new Error(`${out.length} bytes is not a whole number of ${traits.name} blocks`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  rng.fillBytes(out);
  switch (type) {
    case GGMLType.Q4_0: {
      // value = d * (q - 8)
      const draw = new ScaleDraw(std / uniformStd(16));
      for (let b = 0; b < nBlocks; b++) view.setUint16(b * bytes, draw.signed(rng), true);
      return;
    }
    case GGMLType.Q5_0: {
      // value = d * (q - 16), q of 5 bits (qh holds the fifth)
      const draw = new ScaleDraw(std / uniformStd(32));
      for (let b = 0; b < nBlocks; b++) view.setUint16(b * bytes, draw.signed(rng), true);
      return;
    }
    case GGMLType.Q4_1:
    case GGMLType.Q5_1: {
      // value = d * q + m; m = -d * mean(q) centres the block.
      const levels = type === GGMLType.Q4_1 ? 16 : 32;
      const draw = new ScaleDraw(std / uniformStd(levels));
      for (let b = 0; b < nBlocks; b++) {
        const dBits = draw.positive(rng);
        view.setUint16(b * bytes, dBits, true);
        view.setUint16(b * bytes + 2, f32ToF16(-f16ToF32(dBits) * ((levels - 1) / 2)), true);
      }
      return;
    }
    case GGMLType.Q8_0: {
      // value = d * q, q an int8; -128 is kept out, as ggml's quantizer never writes it.
      const draw = new ScaleDraw(std / uniformStd(255));
      for (let b = 0; b < nBlocks; b++) {
        const at = b * bytes;
        view.setUint16(at, draw.signed(rng), true);
        for (let i = at + 2; i < at + bytes; i++) if (out[i] === 0x80) out[i] = 0x81;
      }
      return;
    }
    case GGMLType.Q2_K: {
      // scales[16] (sc | m << 4), qs[64], d, dmin; value = d*sc*q - dmin*m. With m = sc, dmin = 1.5 d.
      const meanScale = 8;
      const draw = new ScaleDraw(std / (meanScale * uniformStd(4)));
      for (let b = 0; b < nBlocks; b++) {
        const at = b * bytes;
        for (let j = 0; j < 16; j++) {
          const sc = between(rng, 1, 15);
          out[at + j] = sc | (sc << 4);
        }
        const dBits = draw.positive(rng);
        view.setUint16(at + 80, dBits, true);
        view.setUint16(at + 82, f32ToF16(f16ToF32(dBits) * 1.5), true);
      }
      return;
    }
    case GGMLType.Q3_K: {
      // hmask[32], qs[64], scales[12], d; value = d*(sc-32)*q3 with q3 in -4..3. Scales of random
      // sign cancel the -0.5 mean of q3.
      const meanScale = 20;
      const draw = new ScaleDraw(std / (meanScale * uniformStd(8)));
      const scales = new Array<number>(16);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * bytes;
        for (let j = 0; j < 16; j++) {
          const s = between(rng, 8, 31);
          scales[j] = 32 + ((rng.nextU32() & 1) === 0 ? s : -s);
        }
        packScalesQ3K(scales, out, at + 96);
        view.setUint16(at + 108, draw.positive(rng), true);
      }
      return;
    }
    case GGMLType.Q4_K:
    case GGMLType.Q5_K: {
      // d, dmin, scales[12], (qh[32],) qs[128]; value = d*sc*q - dmin*m. With sc = 2r, m = r and
      // dmin = d * (levels - 1) the mins cancel the mean of q exactly.
      const levels = type === GGMLType.Q4_K ? 16 : 32;
      const meanScale = 40;
      const draw = new ScaleDraw(std / (meanScale * uniformStd(levels)));
      const sc = new Array<number>(8);
      const m = new Array<number>(8);
      for (let b = 0; b < nBlocks; b++) {
        const at = b * bytes;
        for (let j = 0; j < 8; j++) {
          const r = between(rng, 10, 31);
          sc[j] = 2 * r;
          m[j] = r;
        }
        const dBits = draw.positive(rng);
        view.setUint16(at, dBits, true);
        view.setUint16(at + 2, f32ToF16(f16ToF32(dBits) * (levels - 1)), true);
        packScaleMinK4(sc, m, out, at + 4);
      }
      return;
    }
    case GGMLType.Q6_K: {
      // ql[128], qh[64], scales[16]:i8, d; value = d*sc*(q-32). Scales of random sign centre it.
      const meanScale = 36;
      const draw = new ScaleDraw(std / (meanScale * uniformStd(64)));
      for (let b = 0; b < nBlocks; b++) {
        const at = b * bytes;
        for (let j = 0; j < 16; j++) {
          const s = between(rng, 8, 63);
          view.setInt8(at + 192 + j, (rng.nextU32() & 1) === 0 ? s : -s);
        }
        view.setUint16(at + 208, draw.positive(rng), true);
      }
      return;
    }
    default:
      throw new Error(`cannot draw random blocks of type ${traits.name}`);
  }
}
