// Load-time repacking into the packed layouts (Q4_0x8, Q8_0x8) in every build: every byte where the
// prose in src/quant/formats.ts puts it (a layout writer transcribed from that prose, below), padding
// rows zero, rows read back (dequantizePackedRow: the embedding lookup of a tied embedding) equal to the
// TypeScript reference dequantizer on the file rows, and bad arguments refused.
import { describe, expect, it } from 'vitest';
import { GGMLType, PACKED_LAYOUTS, TYPE_TRAITS } from '../src/quant/formats.js';
import { MATMUL_TABLE, matmulKernelFor } from '../src/runtime/kernel-table.js';
import { expectRepackedAsDocumented, kernelBench, prng, randomWeights } from './kernels-harness.js';

/** The packed bytes of a file-layout matrix, as the formats.ts prose describes them. */
function packAsDocumented(type: GGMLType, file: Uint8Array, rows: number, cols: number): Uint8Array {
  const t = TYPE_TRAITS.get(type)!;
  const nb = cols / 32, groups = Math.ceil(rows / 8);
  const G = PACKED_LAYOUTS.get(type)!.groupBlockBytes;
  const out = new Uint8Array(groups * nb * G);
  for (let r = 0; r < rows; r++) {
    const g = Math.floor(r / 8), lane = r % 8;
    for (let b = 0; b < nb; b++) {
      const src = (r * nb + b) * t.blockBytes, gb = (g * nb + b) * G;
      out[gb + 2 * lane] = file[src]!; // d_r, f16
      out[gb + 2 * lane + 1] = file[src + 1]!;
      if (type === GGMLType.Q4_0) {
        // vector (quad k, half h) at 16 + 16 * (2k + h): rows 4h..4h+3, qs[4k..4k+3] each
        const h = Math.floor(lane / 4);
        for (let j = 0; j < 16; j++) out[gb + 16 + 16 * (2 * Math.floor(j / 4) + h) + 4 * (lane % 4) + (j % 4)] = file[src + 2 + j]!;
      } else {
        // 32 quants of the row after the 16 scale bytes, each half of 16 evens first
        const evensFirst = [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15];
        for (let half = 0; half < 2; half++) {
          for (let p = 0; p < 16; p++) out[gb + 16 + 32 * lane + 16 * half + p] = file[src + 2 + 16 * half + evensFirst[p]!]!;
        }
      }
    }
  }
  return out;
}

describe('packed layouts', async () => {
  const bench = await kernelBench();

  // The layouts of the other packed types are checked the same way in kernels-packed-kquant.test.ts
  // and kernels-packed-float.test.ts.
  for (const type of [GGMLType.Q4_0, GGMLType.Q8_0]) {
    const name = GGMLType[type];
    it(`${name}: repacked bytes as documented; rows read back as the reference dequantizer reads the file`, () => {
      const entry = matmulKernelFor(type);
      expect(entry.layout?.name).toBe(`${name}x8`);
      expect(entry.rowAlign).toBe(8);
      const rand = prng(500 + type);
      const t = TYPE_TRAITS.get(type)!;
      for (const [rows, cols] of [[9, 96], [16, 64], [3, 32]] as const) {
        const file = randomWeights(type, rows * cols, rand, t.blockSize, t.blockBytes);
        const want = packAsDocumented(type, file, rows, cols);
        expectRepackedAsDocumented(bench, type, file, want, rows, cols, name);
      }
    });
  }

  it('refuses types without a packed layout and rows that are not whole blocks', () => {
    bench.reset();
    const p = bench.alloc(4096);
    for (const e of MATMUL_TABLE.values()) {
      if (e.layout) continue;
      expect(e.rowAlign).toBe(1);
      expect(bench.scalar.repackRows(e.type, p, p + 2048, 1, 32)).toBe(-1);
      expect(bench.scalar.dequantizePackedRow(e.type, p, 32, 0, p + 2048)).toBe(-1);
      expect(() => e.repack(bench.scalar, p, p + 2048, 1, 32)).toThrow(/file layout/);
    }
    expect(bench.scalar.repackRows(GGMLType.Q4_0, p, p + 2048, 1, 48)).toBe(-1);
    expect(() => matmulKernelFor(GGMLType.Q8_0).repack(bench.scalar, p, p + 2048, 1, 40)).toThrow(/cannot repack a 1x40 Q8_0/);
  });
});
