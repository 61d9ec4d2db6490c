// The packed layouts F32x8, F16x8, BF16x8 and Q6_Kx8 and their matmuls, in every build: the repacked bytes
// where the prose of src/quant/formats.ts puts them (a writer transcribed from that prose), rows read
// back equal to the TypeScript reference dequantizer on the file rows, and the packed matmuls giving
// the same bits as the file-layout kernels they replace (whose bits tests/kernels-matmul.test.ts and the
// llama.cpp goldens hold), for decode and prefill, odd row counts, row ranges off the groups, tails of
// every width, and halves off the fast conversion path (zeros, subnormals, the largest half, infinity).
import { describe, expect, it } from 'vitest';
import { GGMLType, PACKED_LAYOUTS, TYPE_TRAITS, rowBytes } from '../src/quant/formats.js';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { matmulKernelFor } from '../src/runtime/kernel-table.js';
import { REPACK_NOT_FINITE } from '../src/runtime/kernel-exports.js';
import type { KernelExports, MatmulKernel } from '../src/runtime/kernel-exports.js';
import { expectRepackedAsDocumented, kernelBench, prng, randomF32, randomWeights } from './kernels-harness.js';

const FLOAT_TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.BF16] as const;
type FloatType = (typeof FLOAT_TYPES)[number];

/** The packed bytes of a file-layout float matrix, as the formats.ts prose describes them. */
function packAsDocumented(type: FloatType, file: Uint8Array, rows: number, cols: number): Uint8Array {
  const e = TYPE_TRAITS.get(type)!.blockBytes;
  const groups = Math.ceil(rows / 8);
  const out = new Uint8Array(groups * 8 * cols * e);
  for (let r = 0; r < rows; r++) {
    const g = Math.floor(r / 8), lane = r % 8;
    for (let i = 0; i < cols; i++) {
      const k = Math.floor(i / 4), w = Math.min(4, cols - 4 * k); // quad k, w weights per row in it
      // F16x8: the quads of whole 64-column chunks by lane group first (slot q * nc + c)
      const nc = Math.floor(cols / 64);
      const slot = type === GGMLType.F16 && k < 16 * nc ? (k % 16) * nc + Math.floor(k / 16) : k;
      const elem = g * 8 * cols + 32 * slot + lane * w + (i % 4);
      for (let b = 0; b < e; b++) out[elem * e + b] = file[(r * cols + i) * e + b]!;
    }
  }
  return out;
}

/** The packed bytes of a file-layout Q6_K matrix, as the formats.ts prose describes them. */
function packQ6KAsDocumented(file: Uint8Array, rows: number, cols: number): Uint8Array {
  const nb = cols / 256, groups = Math.ceil(rows / 8), G = 2192;
  const out = new Uint8Array(groups * nb * G);
  for (let r = 0; r < rows; r++) {
    const g = Math.floor(r / 8), lane = r % 8;
    for (let b = 0; b < nb; b++) {
      const src = (r * nb + b) * 210, gb = (g * nb + b) * G;
      out[gb + 2 * lane] = file[src + 208]!; // d_r, f16
      out[gb + 2 * lane + 1] = file[src + 209]!;
      for (let sg = 0; sg < 16; sg++) out[gb + 16 + 8 * sg + lane] = file[src + 192 + sg]!;
      for (let i = 0; i < 256; i++) {
        // the file's 6-bit quant of weight i (ggml's Q6_K: ql low/high nibbles, qh 2-bit fields)
        const n = Math.floor(i / 128), part = Math.floor(i / 32) % 4, l = i % 32;
        const ql = file[src + 64 * n + 32 * (part % 2) + l]!;
        const low = part < 2 ? ql & 15 : ql >> 4;
        const high = (file[src + 128 + 32 * n + l]! >> (2 * part)) & 3;
        const sg = Math.floor(i / 16), k = Math.floor((i % 16) / 4), h = Math.floor(lane / 4);
        out[gb + 144 + 16 * (8 * sg + 2 * k + h) + 4 * (lane % 4) + (i % 4)] = low | (high << 4);
      }
    }
  }
  return out;
}

function fileMatmul(k: KernelExports, type: FloatType): MatmulKernel {
  return type === GGMLType.F32 ? k.matmulFileF32 : type === GGMLType.F16 ? k.matmulFileF16 : k.matmulFileBF16;
}

/** Sets a few file weights to halves off the fast path: zero, -0, subnormal, the largest half. */
function sprinkleSpecialHalves(file: Uint8Array, rand: () => number): void {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const specials = [0x0000, 0x8000, 0x0001, 0x83ff, 0x0200, 0x7bff, 0xfbff];
  for (let n = 0; n < file.length / 40; n++) {
    view.setUint16(2 * Math.floor(rand() * (file.length / 2)), specials[Math.floor(rand() * specials.length)]!, true);
  }
}

describe('packed float layouts', async () => {
  const bench = await kernelBench();

  for (const type of FLOAT_TYPES) {
    const name = GGMLType[type];
    it(`${name}: repacked bytes as documented; rows read back as the reference dequantizer reads the file`, () => {
      const entry = matmulKernelFor(type);
      expect(entry.layout?.name).toBe(`${name}x8`);
      expect(PACKED_LAYOUTS.get(type)?.groupBlockBytes).toBe(8 * TYPE_TRAITS.get(type)!.blockBytes);
      expect(entry.rowAlign).toBe(8);
      const rand = prng(700 + type);
      for (const [rows, cols] of [[9, 96], [16, 64], [3, 7], [13, 172], [8, 2], [5, 200]] as const) {
        const file = randomWeights(type, rows * cols, rand, 1, TYPE_TRAITS.get(type)!.blockBytes);
        const want = packAsDocumented(type, file, rows, cols);
        expectRepackedAsDocumented(bench, type, file, want, rows, cols, name);
      }
    });

    it(`${name}: packed matmul gives the file-layout kernel's bits in every build`, () => {
      const entry = matmulKernelFor(type);
      const rand = prng(900 + type);
      const cases: [rows: number, cols: number, nTok: number, rowStart: number, rowEnd: number][] = [
        [16, 256, 1, 0, 16], [16, 256, 5, 0, 16], [13, 172, 1, 0, 13], [13, 172, 3, 0, 13], [21, 200, 4, 3, 19],
        [24, 64, 2, 5, 6], [9, 130, 7, 0, 9], [5, 9, 2, 0, 5], [12, 4, 3, 4, 12], [11, 135, 6, 1, 10], [8, 320, 1, 0, 8],
      ];
      for (const [rows, cols, nTok, rowStart, rowEnd] of cases) {
        const file = randomWeights(type, rows * cols, rand, 1, TYPE_TRAITS.get(type)!.blockBytes);
        if (type === GGMLType.F16) sprinkleSpecialHalves(file, rand);
        const xs = randomF32(rand, nTok * cols, 2);
        if (type === GGMLType.F16) {
          // activations off the fast path too: zeros, a subnormal, the largest half, an infinity
          for (let i = 0; i < xs.length; i += 37) xs[i] = [0, 3e-6, 65504, -0][(i / 37) % 4]!;
          // an infinity sends the call through the exact conversion: decode (320) and prefill (130)
          if (cols === 320 || cols === 130) xs[(nTok - 1) * cols + 129] = Infinity;
        }
        const label = `${name} ${rows}x${cols} nTok ${nTok} rows [${rowStart}, ${rowEnd})`;
        bench.reset();
        const xBytes = nTok * (type === GGMLType.F32 ? 4 * cols : 2 * cols);
        const src = bench.alloc(file.length), packed = bench.alloc(entry.matrixBytes(rows, cols));
        const xf = bench.alloc(4 * nTok * cols), x = bench.alloc(xBytes);
        const outRef = bench.alloc(4 * nTok * rows), out = bench.alloc(4 * nTok * rows);
        bench.u8(src, file.length).set(file);
        bench.f32(xf, nTok * cols).set(xs);
        const s = bench.scalar;
        if (type === GGMLType.F32) bench.u8(x, xBytes).set(bench.u8(xf, xBytes));
        else entry.convert(s)(xf, x, cols, nTok);
        entry.repack(s, src, packed, rows, cols);
        // the scalar build's file-layout twin: the bits every build's file-layout kernel gives
        bench.f32(outRef, nTok * rows).fill(-7);
        fileMatmul(s, type)(src, x, outRef, cols, rows, nTok, rowStart, rowEnd);
        const want = [...new Uint32Array(bench.memory.buffer, outRef, nTok * rows)];
        for (const { variant, k } of bench.builds) {
          bench.f32(out, nTok * rows).fill(-7); // rows outside the range stay untouched
          entry.matmul(k)(packed, x, out, cols, rows, nTok, rowStart, rowEnd);
          expect([...new Uint32Array(bench.memory.buffer, out, nTok * rows)], `${label} packed ${variant}`).toEqual(want);
          bench.f32(out, nTok * rows).fill(-7);
          fileMatmul(k, type)(src, x, out, cols, rows, nTok, rowStart, rowEnd);
          expect([...new Uint32Array(bench.memory.buffer, out, nTok * rows)], `${label} file ${variant}`).toEqual(want);
        }
      }
    });
  }

  it('Q6_K: repacked bytes as documented; rows read back as the reference dequantizer reads the file', () => {
    const type = GGMLType.Q6_K;
    const entry = matmulKernelFor(type);
    expect(entry.layout?.name).toBe('Q6_Kx8');
    expect(entry.rowAlign).toBe(8);
    const rand = prng(1400);
    for (const [rows, cols] of [[9, 256], [16, 512], [3, 256]] as const) {
      const file = randomWeights(type, rows * cols, rand, 256, 210);
      const want = packQ6KAsDocumented(file, rows, cols);
      expect(entry.matrixBytes(rows, cols)).toBe(want.length);
      for (const { variant, k } of bench.builds) {
        bench.reset();
        const src = bench.alloc(file.length), dst = bench.alloc(want.length), row = bench.alloc(4 * cols);
        bench.u8(src, file.length).set(file);
        bench.u8(dst, want.length).fill(0xa5);
        entry.repack(k, src, dst, rows, cols);
        expect(Buffer.from(bench.u8(dst, want.length)).equals(Buffer.from(want)), `Q6_K ${rows}x${cols} ${variant}`).toBe(true);
        for (let r = 0; r < rows; r++) {
          expect(k.dequantizePackedRow(type, dst, cols, r, row)).toBe(0);
          const ref = tsDequantizeRow(type, file.subarray(r * rowBytes(type, cols), (r + 1) * rowBytes(type, cols)), cols);
          expect([...bench.f32(row, cols)], `Q6_K row ${r} ${variant}`).toEqual([...ref]);
        }
      }
    }
    expect(bench.scalar.repackRows(type, 0, 0, 8, 128)).toBe(-1); // rows are whole super-blocks
  });

  it("Q6_K: packed matmul gives the file-layout kernel's bits in every build", () => {
    const type = GGMLType.Q6_K;
    const entry = matmulKernelFor(type);
    const rand = prng(1500);
    const cases: [rows: number, cols: number, nTok: number, rowStart: number, rowEnd: number][] = [
      [16, 512, 1, 0, 16], [16, 256, 5, 0, 16], [13, 256, 3, 0, 13], [21, 512, 4, 3, 19], [24, 256, 2, 5, 6], [9, 768, 7, 0, 9],
    ];
    for (const [rows, cols, nTok, rowStart, rowEnd] of cases) {
      const file = randomWeights(type, rows * cols, rand, 256, 210);
      const xs = randomF32(rand, nTok * cols, 2);
      const label = `Q6_K ${rows}x${cols} nTok ${nTok} rows [${rowStart}, ${rowEnd})`;
      bench.reset();
      const xBytes = nTok * rowBytes(GGMLType.Q8_K, cols);
      const src = bench.alloc(file.length), packed = bench.alloc(entry.matrixBytes(rows, cols));
      const xf = bench.alloc(4 * nTok * cols), x = bench.alloc(xBytes);
      const outRef = bench.alloc(4 * nTok * rows), out = bench.alloc(4 * nTok * rows);
      bench.u8(src, file.length).set(file);
      bench.f32(xf, nTok * cols).set(xs);
      const s = bench.scalar;
      entry.convert(s)(xf, x, cols, nTok);
      entry.repack(s, src, packed, rows, cols);
      bench.f32(outRef, nTok * rows).fill(-7);
      s.matmulFileQ6_K(src, x, outRef, cols, rows, nTok, rowStart, rowEnd);
      const want = [...new Uint32Array(bench.memory.buffer, outRef, nTok * rows)];
      for (const { variant, k } of bench.builds) {
        bench.f32(out, nTok * rows).fill(-7);
        entry.matmul(k)(packed, x, out, cols, rows, nTok, rowStart, rowEnd);
        expect([...new Uint32Array(bench.memory.buffer, out, nTok * rows)], `${label} packed ${variant}`).toEqual(want);
        bench.f32(out, nTok * rows).fill(-7);
        k.matmulFileQ6_K(src, x, out, cols, rows, nTok, rowStart, rowEnd);
        expect([...new Uint32Array(bench.memory.buffer, out, nTok * rows)], `${label} file ${variant}`).toEqual(want);
      }
    }
  });

  it('F16 packed matmuls widen every half exactly: each finite weight (decode and prefill paths), every activation', () => {
    // The engine's own Float16Array is the reference. Weights: row h holds half h then zeros, against
    // x = [1, 0, ...]; activations: token t = [half t, 0, ...] against the row [1, 0, ...]. So each
    // output is the half's value itself (+0 for -0: sums start at +0).
    const entry = matmulKernelFor(GGMLType.F16);
    const cols = 64;
    const all = new Uint16Array(65536).map((_, h) => h);
    const finite = all.filter((h) => (h & 0x7c00) !== 0x7c00);
    const value = (h: number) => new Float32Array(new Float16Array(new Uint16Array([h]).buffer))[0]!;
    const check = (label: string, halves: Uint16Array, got: Float32Array, stride: number) => {
      for (let j = 0; j < halves.length; j++) {
        const want = value(halves[j]!), v = got[j * stride]!;
        const ok = Number.isNaN(want) ? Number.isNaN(v) : v === want;
        if (!ok) expect(`${label} half 0x${halves[j]!.toString(16)}: ${v}`).toBe(`${want}`);
      }
    };
    for (const { variant, k } of bench.builds) {
      bench.reset();
      const rows = finite.length;
      const src = bench.alloc(2 * rows * cols), w = bench.alloc(entry.matrixBytes(rows, cols));
      const wv = bench.u16(src, rows * cols);
      wv.fill(0);
      finite.forEach((h, r) => (wv[r * cols] = h));
      entry.repack(k, src, w, rows, cols);
      const x = bench.alloc(2 * cols * 2), out = bench.alloc(4 * rows * 2);
      const xv = bench.u16(x, 2 * cols);
      xv.fill(0);
      xv[0] = 0x3c00;
      xv[cols] = 0x3c00;
      for (const nTok of [1, 2]) {
        entry.matmul(k)(w, x, out, cols, rows, nTok, 0, rows);
        check(`${variant} weight nTok ${nTok}`, finite, bench.f32(out, rows), 1);
      }
      bench.reset();
      const one = bench.alloc(entry.matrixBytes(1, cols)), oneFile = bench.alloc(2 * cols);
      bench.u16(oneFile, cols).fill(0);
      bench.u16(oneFile, cols)[0] = 0x3c00;
      entry.repack(k, oneFile, one, 1, cols);
      for (const halves of [finite, all]) {
        // all 65536 include infinities and NaN: that call takes the exact conversion
        const xs = bench.alloc(2 * cols * halves.length), o = bench.alloc(4 * halves.length);
        const v = bench.u16(xs, cols * halves.length);
        v.fill(0);
        halves.forEach((h, t) => (v[t * cols] = h));
        entry.matmul(k)(one, xs, o, cols, 1, halves.length, 0, 1);
        check(`${variant} activation (${halves.length} halves)`, halves, bench.f32(o, halves.length), 1);
      }
    }
  });

  it('F16 matrices holding an infinity or NaN are refused at repack (the fast half conversion needs finite weights)', () => {
    const entry = matmulKernelFor(GGMLType.F16);
    for (const bad of [0x7c00, 0xfc00, 0x7e00]) {
      bench.reset();
      const src = bench.alloc(2 * 8 * 16), dst = bench.alloc(entry.matrixBytes(8, 16));
      const h = bench.u16(src, 8 * 16);
      h.fill(0x3c00);
      h[77] = bad;
      for (const { k } of bench.builds) expect(k.repackRows(GGMLType.F16, src, dst, 8, 16)).toBe(REPACK_NOT_FINITE);
      expect(() => entry.repack(bench.scalar, src, dst, 8, 16)).toThrow(/cannot repack a 8x16 F16 matrix into F16x8: it holds an infinity or NaN/);
    }
  });

  it('F16 packed matmul stays within float rounding of a float64 reference', () => {
    // Not a bit check: the f32 sums against exact products in f64, so a wrong lane order or a wrong
    // half conversion that happened to agree with the file kernel would still show here.
    const type = GGMLType.F16, rows = 16, cols = 300, nTok = 3;
    const entry = matmulKernelFor(type);
    const rand = prng(42);
    const file = randomWeights(type, rows * cols, rand, 1, 2);
    const xs = randomF32(rand, nTok * cols, 1);
    bench.reset();
    const src = bench.alloc(file.length), packed = bench.alloc(entry.matrixBytes(rows, cols));
    const xf = bench.alloc(4 * nTok * cols), x = bench.alloc(2 * nTok * cols), out = bench.alloc(4 * nTok * rows);
    bench.u8(src, file.length).set(file);
    bench.f32(xf, nTok * cols).set(xs);
    for (const { variant, k } of bench.builds) {
      entry.convert(k)(xf, x, cols, nTok);
      entry.repack(k, src, packed, rows, cols);
      entry.matmul(k)(packed, x, out, cols, rows, nTok, 0, rows);
      const xh = bench.u16(x, nTok * cols);
      for (let t = 0; t < nTok; t++) {
        for (let r = 0; r < rows; r++) {
          const wr = tsDequantizeRow(type, file.subarray(r * 2 * cols, (r + 1) * 2 * cols), cols);
          let exact = 0, mag = 0;
          for (let i = 0; i < cols; i++) {
            const p = wr[i]! * halfValue(xh[t * cols + i]!);
            exact += p;
            mag += Math.abs(p);
          }
          // 300 f32 additions: each rounding at most 2^-24 of a partial sum bounded by sum |p|
          expect(Math.abs(bench.f32(out, nTok * rows)[t * rows + r]! - exact), `${variant} t${t} r${r}`).toBeLessThanOrEqual(cols * 2 ** -24 * mag);
        }
      }
    }
  });
});

function halfValue(h: number): number {
  return new Float16Array(new Uint16Array([h]).buffer)[0]!;
}
