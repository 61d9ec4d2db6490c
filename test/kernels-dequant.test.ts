// dequantizeRow in every build against the TypeScript reference dequantizer (src/quant/dequantize.ts)
// on random valid blocks of every type, and on the real quantized stories260K files against the F32
// original within each format's quantization error.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readGGUFBytes } from '../src/gguf/reader.js';
import type { GGUFFile } from '../src/gguf/types.js';
import { GGMLType, TYPE_TRAITS } from '../src/quant/formats.js';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { fromF16Bits, kernelBench, prng, randomWeights } from './kernels-harness.js';

const TYPES = [...TYPE_TRAITS.values()].filter((t) => t.supported);

describe('dequantizeRow', async () => {
  const bench = await kernelBench();

  it('matches the TypeScript reference bit for bit on random blocks of every type, in every build', () => {
    const rand = prng(1234);
    expect(TYPES.length).toBe(15);
    for (const t of TYPES) {
      const n = t.blockSize === 1 ? 300 : t.blockSize * 3;
      const bytes = t.type === GGMLType.Q8_1 ? q8_1Blocks(rand, n) : randomWeights(t.type, n, rand, t.blockSize, t.blockBytes);
      const want = tsDequantizeRow(t.type, bytes, n);
      for (const { variant, k } of bench.builds) {
        bench.reset();
        const src = bench.alloc(bytes.length);
        const dst = bench.alloc(4 * n);
        bench.u8(src, bytes.length).set(bytes);
        expect(k.dequantizeRow(t.type, src, dst, n), `${t.name} ${variant}`).toBe(0);
        const got = bench.f32(dst, n);
        const bad = got.findIndex((v, i) => !Object.is(v, want[i]));
        expect(bad, `${t.name} ${variant}: first mismatch at ${bad} (${got[bad]} vs ${want[bad]})`).toBe(-1);
      }
    }
  });

  it('widens every one of the 65536 halves exactly, scalar (f16ToF32) and in SIMD lanes (halfLanesToF32), in every build', () => {
    // The engine's own Float16Array is the reference. The lane form is reached through matmulF16: row h
    // holds half h then zeros, against x = [1, 0, ...], so each output is the half's value itself.
    const all = new Uint16Array(65536).map((_, h) => h);
    const want = new Float32Array(new Float16Array(all.buffer));
    const cols = 64, rows = 65536;
    const one = new Uint16Array(cols);
    one[0] = 0x3c00;
    for (const { variant, k } of bench.builds) {
      bench.reset();
      const src = bench.alloc(2 * rows), dst = bench.alloc(4 * rows);
      bench.u16(src, rows).set(all);
      expect(k.dequantizeRow(GGMLType.F16, src, dst, rows)).toBe(0);
      const scalar = bench.f32(dst, rows).slice();
      const w = bench.alloc(2 * rows * cols), x = bench.alloc(2 * cols), out = bench.alloc(4 * rows);
      const wv = bench.u16(w, rows * cols);
      wv.fill(0);
      for (let h = 0; h < rows; h++) wv[h * cols] = h;
      bench.u16(x, cols).set(one);
      k.matmulFileF16(w, x, out, cols, rows, 1, 0, rows);
      const lanes = bench.f32(out, rows);
      for (let h = 0; h < rows; h++) {
        const ok = Number.isNaN(want[h]) ? Number.isNaN(scalar[h]) && Number.isNaN(lanes[h]) : Object.is(scalar[h], want[h]) && lanes[h] === want[h];
        if (!ok) expect(`${variant} half 0x${h.toString(16)}: ${scalar[h]} / ${lanes[h]}`).toBe(`${want[h]}`);
      }
    }
  });

  it('returns -1 for types it cannot dequantize', () => {
    for (const t of [GGMLType.IQ2_XXS, GGMLType.IQ4_NL, GGMLType.TQ1_0, 99]) {
      expect(bench.scalar.dequantizeRow(t, 0, 0, 0)).toBe(-1);
    }
  });

  it('recovers the F32 stories260K weights from the Q8_0, Q4_0 and F16 files within quantization error', () => {
    const original = load('stories260K');
    let checked = 0;
    for (const name of ['stories260K-Q8_0', 'stories260K-Q4_0', 'stories260K-F16']) {
      const file = load(name);
      for (const info of file.gguf.tensors) {
        if (![GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.F16].includes(info.type)) continue;
        const ref = original.gguf.tensorsByName.get(info.name)!;
        expect(ref.type).toBe(GGMLType.F32);
        const n = info.elementCount;
        const raw = file.bytes.subarray(info.offset, info.offset + info.byteSize);
        const exact = new Float32Array(original.bytes.slice(ref.offset, ref.offset + 4 * n).buffer);
        bench.reset();
        const src = bench.alloc(raw.length), dst = bench.alloc(4 * n);
        bench.u8(src, raw.length).set(raw);
        expect(bench.scalar.dequantizeRow(info.type, src, dst, n)).toBe(0);
        const got = bench.f32(dst, n);
        let worst = -1;
        for (let i = 0; i < n && worst < 0; i++) {
          if (!(Math.abs(got[i]! - exact[i]!) <= errorBound(info.type, raw, i, exact[i]!))) worst = i;
        }
        expect(worst, `${name} ${info.name}: first weight past the bound ${worst}: ${got[worst]} vs ${exact[worst]}`).toBe(-1);
        checked++;
      }
    }
    expect(checked).toBe(3 * 37); // every tensor of each file but its 11 F32 norm vectors
  });
});

/**
 * Largest error quantization allows at weight i. A 32-weight block with scale d rounds each weight to
 * a multiple of d (error <= d/2), except that Q4_0's quants run -8..7 while its scale maps the
 * largest magnitude to -8, so a weight near +8d is clamped to 7d (q = 15, error <= d). d itself was
 * rounded to f16 (error <= qmax * |d| * 2^-11, qmax 8 for Q4_0, 127 for Q8_0). F16 rounds each value
 * to 11 significant bits.
 */
function errorBound(type: GGMLType, raw: Uint8Array, i: number, x: number): number {
  if (type === GGMLType.F16) return Math.abs(x) * 2 ** -11 + 2 ** -25;
  const q8 = type === GGMLType.Q8_0;
  const o = Math.floor(i / 32) * (q8 ? 34 : 18);
  const d = Math.abs(fromF16Bits(raw[o]! | (raw[o + 1]! << 8)));
  const j = i % 32;
  const clamped = !q8 && (j < 16 ? raw[o + 2 + j]! & 15 : raw[o + 2 + j - 16]! >> 4) === 15;
  return d * ((clamped ? 1 : 0.5) + (q8 ? 127 : 8) * 2 ** -11) + 1e-7;
}

function load(name: string): { gguf: GGUFFile; bytes: Uint8Array } {
  const bytes = new Uint8Array(readFileSync(`/work/shared/models/${name}.gguf`));
  return { gguf: readGGUFBytes(bytes), bytes };
}

/** Random Q8_1 blocks (d, s as f16, 32 int8 quants). */
function q8_1Blocks(rand: () => number, n: number): Uint8Array {
  const bytes = new Uint8Array((n / 32) * 36);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rand() * 256);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < n / 32; b++) {
    view.setUint16(36 * b, 0x1c00 + Math.floor(rand() * 0x400), true); // d in [2^-8, 2^-7)
    view.setUint16(36 * b + 2, 0x2c00, true);
  }
  return bytes;
}
