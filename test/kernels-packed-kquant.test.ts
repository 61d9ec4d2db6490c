// The packed Q4_1x8, Q4_Kx8 and Q5_Kx8 layouts and their matmuls, in every build:
//   repacking puts every byte where the prose in src/quant/formats.ts puts it (a layout writer
//   transcribed from that prose, below), padding rows zero; rows read back (dequantizePackedRow) equal
//   the TypeScript reference dequantizer on the file rows;
//   the packed matmul of every build is bit-identical to the scalar twin (ref/matmul-packed-kquant.ts)
//   and to a transcription (below) of the float steps of the file-layout dots they replace
//   (ggml_vec_dot_q4_1_q8_1 / _q4_K_q8_K / _q5_K_q8_K as ref/matmul.ts computed them: an exact integer
//   sum per block, then f32 steps in a fixed order): error ceiling 0, for odd row counts, one and
//   several tokens (decode and the tiled prefill path) and row ranges that cut groups;
//   against the file-layout kernels they replace (still exported as matmulFile*): the same bits in every
//   build, but Q4_1 in the SIMD builds (whose file-layout kernels summed in f32 lanes of their own:
//   within 1e-5 * sum |w x|, the ceiling test/kernels-matmul.test.ts gave them);
//   the model path: every Q4_1/Q4_K/Q5_K matrix of synthetic models, repacked as the loader does,
//   multiplies to the file-layout transcription's bits in every build (so a forward pass gives the
//   logits it gave before packing), and the loaded models' logits in every build and batch size
//   match the float64 reference forward pass (test/support/reference-forward.ts).
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/engine/load.js';
import { readGGUF } from '../src/gguf/reader.js';
import { readHParams } from '../src/model/hparams.js';
import { dequantizeRow as tsDequantizeRow } from '../src/quant/dequantize.js';
import { GGMLType, PACKED_LAYOUTS, TYPE_TRAITS, rowBytes } from '../src/quant/formats.js';
import { matmulKernelFor } from '../src/runtime/kernel-table.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import { memoryStorage } from '../src/storage/memory.js';
import { fromF16Bits, expectRepackedAsDocumented, kernelBench, prng, randomF32, randomWeights } from './kernels-harness.js';
import { ReferenceModel } from './support/reference-forward.js';
import { synthModelBytes } from './support/synth-model.js';

const TYPES = [GGMLType.Q4_1, GGMLType.Q4_K, GGMLType.Q5_K] as const;
const fr = Math.fround;
const f16At = (b: Uint8Array, o: number): number => fromF16Bits(b[o]! | (b[o + 1]! << 8));
const i8 = (v: number): number => (v << 24) >> 24;

/** Scale (low) and min (high) of sub-block j of a Q4_K/Q5_K 12-byte scale field (llama.cpp's get_scale_min_k4). */
function scaleMinK4(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 15) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

/** The packed bytes of a file-layout matrix, as the formats.ts prose describes them. */
function packAsDocumented(type: GGMLType, file: Uint8Array, rows: number, cols: number): Uint8Array {
  const t = TYPE_TRAITS.get(type)!;
  const nb = cols / t.blockSize, groups = Math.ceil(rows / 8);
  const G = PACKED_LAYOUTS.get(type)!.groupBlockBytes;
  const out = new Uint8Array(groups * nb * G);
  for (let r = 0; r < rows; r++) {
    const lane = r % 8, h = Math.floor(lane / 4);
    for (let b = 0; b < nb; b++) {
      const src = (r * nb + b) * t.blockBytes, gb = (Math.floor(r / 8) * nb + b) * G;
      // d_r at 2r, then m_r (Q4_1) or dmin_r at 16 + 2r, f16 as in the file
      out.set(file.subarray(src, src + 2), gb + 2 * lane);
      out.set(file.subarray(src + 2, src + 4), gb + 16 + 2 * lane);
      if (type === GGMLType.Q4_1) {
        // quants as Q4_0x8's, 16 bytes later: vector (quad k, half h) at 32 + 16 * (2k + h)
        for (let j = 0; j < 16; j++) out[gb + 32 + 16 * (2 * Math.floor(j / 4) + h) + 4 * (lane % 4) + (j % 4)] = file[src + 4 + j]!;
        continue;
      }
      for (let j = 0; j < 8; j++) {
        const [sc, mn] = scaleMinK4(file, src + 4, j);
        out[gb + 32 + 8 * j + lane] = sc;
        out[gb + 96 + 16 * Math.floor(j / 2) + 2 * lane + (j % 2)] = mn;
      }
      const five = type === GGMLType.Q5_K;
      const qs = gb + (five ? 416 : 160), fileQs = src + (five ? 48 : 16);
      for (let k = 0; k < 4; k++) {
        for (let l = 0; l < 8; l++) {
          for (let i = 0; i < 4; i++) out[qs + 16 * (16 * k + 2 * l + h) + 4 * (lane % 4) + i] = file[fileQs + 32 * k + 4 * l + i]!;
        }
      }
      if (five) {
        for (let l = 0; l < 8; l++) {
          for (let i = 0; i < 4; i++) out[gb + 160 + 16 * (2 * l + h) + 4 * (lane % 4) + i] = file[src + 16 + 4 * l + i]!;
        }
      }
    }
  }
  return out;
}

/**
 * One output of the file-layout dot the packed kernels replace (ref/matmul.ts dotQ4_1 / dotQ45_K):
 * exact integer sums per block, then the f32 steps in their order, each rounded with Math.fround.
 */
function fileLayoutDot(type: GGMLType, w: Uint8Array, xq: Uint8Array, cols: number): number {
  let sum = 0;
  if (type === GGMLType.Q4_1) {
    for (let b = 0; b < cols / 32; b++) {
      const wb = b * 20, xb = b * 36;
      let isum = 0;
      for (let j = 0; j < 16; j++) isum += (w[wb + 4 + j]! & 15) * i8(xq[xb + 4 + j]!) + (w[wb + 4 + j]! >> 4) * i8(xq[xb + 20 + j]!);
      const t = fr(fr(fr(f16At(w, wb) * f16At(xq, xb)) * fr(isum)) + fr(f16At(w, wb + 2) * f16At(xq, xb + 2)));
      sum = fr(sum + t);
    }
    return sum;
  }
  const five = type === GGMLType.Q5_K;
  const wBytes = five ? 176 : 144, qsOff = five ? 48 : 16;
  const xv = new DataView(xq.buffer, xq.byteOffset, xq.byteLength);
  for (let b = 0; b < cols / 256; b++) {
    const wb = b * wBytes, xb = b * 292;
    let isum = 0, msum = 0;
    for (let sub = 0; sub < 8; sub++) {
      const [sc, mn] = scaleMinK4(w, wb + 4, sub);
      msum += mn * (xv.getInt16(xb + 260 + 4 * sub, true) + xv.getInt16(xb + 262 + 4 * sub, true));
      let ssum = 0;
      for (let l = 0; l < 32; l++) {
        const byte = w[wb + qsOff + 32 * (sub >> 1) + l]!;
        let q = sub & 1 ? byte >> 4 : byte & 15;
        if (five) q += ((w[wb + 16 + l]! >> sub) & 1) << 4;
        ssum += q * i8(xq[xb + 4 + 32 * sub + l]!);
      }
      isum += sc * ssum;
    }
    const dy = xv.getFloat32(xb, true);
    sum = fr(sum + fr(fr(fr(dy * f16At(w, wb)) * fr(isum)) - fr(fr(dy * f16At(w, wb + 2)) * fr(msum))));
  }
  return sum;
}

describe('packed Q4_1x8, Q4_Kx8, Q5_Kx8', async () => {
  const bench = await kernelBench();

  for (const type of TYPES) {
    const name = GGMLType[type];
    const entry = matmulKernelFor(type);
    const t = TYPE_TRAITS.get(type)!;

    it(`${name}: repacked bytes as documented; rows read back as the reference dequantizer reads the file`, () => {
      expect(entry.layout?.name).toBe(`${name}x8`);
      expect(entry.rowAlign).toBe(8);
      const rand = prng(700 + type);
      for (const [rows, cols] of [[9, 512], [16, 256], [3, 256], [13, t.blockSize === 32 ? 96 : 768]] as const) {
        const file = randomWeights(type, rows * cols, rand, t.blockSize, t.blockBytes);
        const want = packAsDocumented(type, file, rows, cols);
        expectRepackedAsDocumented(bench, type, file, want, rows, cols, name);
      }
    });

    it(`${name}: refuses rows that are not whole blocks`, () => {
      bench.reset();
      const p = bench.alloc(1 << 16);
      const bad = t.blockSize === 32 ? 48 : 384;
      expect(bench.scalar.repackRows(type, p, p + 32768, 1, bad)).toBe(-1);
      expect(bench.scalar.dequantizePackedRow(type, p, bad, 0, p + 32768)).toBe(-1);
      expect(() => entry.repack(bench.scalar, p, p + 32768, 1, bad)).toThrow(new RegExp(`cannot repack a 1x${bad} ${name}`));
    });

    it(`${name}: every build bit-identical to the scalar twin and to the file-layout dot (decode, prefill, cut ranges)`, () => {
      const rand = prng(800 + type);
      const cols = t.blockSize === 32 ? 160 : 768; // an odd number of blocks
      const wRow = rowBytes(type, cols), xRow = rowBytes(entry.activationType, cols);
      // odd row counts, whole and cut groups, one token and several (the tiled prefill path)
      const cases = [[13, 1, 0, 13], [13, 5, 0, 13], [13, 3, 2, 11], [16, 1, 8, 16], [16, 6, 0, 16], [24, 4, 5, 19], [24, 9, 8, 24], [8, 2, 0, 8]] as const;
      for (const [rows, nTok, rowStart, rowEnd] of cases) {
        const w = randomWeights(type, rows * cols, rand, t.blockSize, t.blockBytes);
        const x = randomF32(rand, nTok * cols, 1);
        bench.reset();
        const xf = bench.alloc(4 * x.length), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, x.length).set(x);
        entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = bench.u8(xq, xRow * nTok).slice();
        const wFile = bench.alloc(w.length), wp = bench.alloc(entry.matrixBytes(rows, cols));
        bench.u8(wFile, w.length).set(w);
        entry.repack(bench.scalar, wFile, wp, rows, cols);
        const where = `${name} rows=${rows} nTok=${nTok} rows ${rowStart}..${rowEnd}`;
        const want = new Float32Array(rows * nTok).fill(NaN);
        for (let tok = 0; tok < nTok; tok++) {
          for (let r = rowStart; r < rowEnd; r++) {
            want[tok * rows + r] = fileLayoutDot(type, w.subarray(r * wRow, (r + 1) * wRow), xBytes.subarray(tok * xRow, (tok + 1) * xRow), cols);
          }
        }
        for (const { variant, k } of bench.builds) {
          const out = bench.alloc(4 * rows * nTok);
          bench.f32(out, rows * nTok).fill(NaN);
          entry.matmul(k)(wp, xq, out, cols, rows, nTok, rowStart, rowEnd);
          const got = bench.f32(out, rows * nTok);
          for (let i = 0; i < got.length; i++) {
            // NaN outside the range: nothing written there
            expect(Object.is(got[i], want[i]), `${where} ${variant} output ${i}: ${got[i]} vs ${want[i]}`).toBe(true);
          }
        }
      }
    });
  }

  it('every build: the packed kernels against the file-layout kernels they replace (matmulFile*)', () => {
    const rand = prng(950);
    for (const type of TYPES) {
      const name = GGMLType[type];
      const entry = matmulKernelFor(type);
      const t = TYPE_TRAITS.get(type)!;
      const cols = t.blockSize === 32 ? 256 : 512, rows = 21, wRow = rowBytes(type, cols);
      for (const nTok of [1, 6]) {
        const w = randomWeights(type, rows * cols, rand, t.blockSize, t.blockBytes);
        const x = randomF32(rand, nTok * cols, 1);
        bench.reset();
        const xRow = rowBytes(entry.activationType, cols);
        const xf = bench.alloc(4 * x.length), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, x.length).set(x);
        entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = bench.u8(xq, xRow * nTok);
        const wFile = bench.alloc(w.length), wp = bench.alloc(entry.matrixBytes(rows, cols));
        bench.u8(wFile, w.length).set(w);
        entry.repack(bench.scalar, wFile, wp, rows, cols);
        for (const { variant, k } of bench.builds) {
          const file = k[`matmulFile${name}` as 'matmulFileQ4_1' | 'matmulFileQ4_K' | 'matmulFileQ5_K'];
          const a = bench.alloc(4 * rows * nTok), b = bench.alloc(4 * rows * nTok);
          file(wFile, xq, a, cols, rows, nTok, 0, rows);
          entry.matmul(k)(wp, xq, b, cols, rows, nTok, 0, rows);
          const old = bench.f32(a, rows * nTok), packed = bench.f32(b, rows * nTok);
          for (let i = 0; i < old.length; i++) {
            const at = `${name} ${variant} nTok=${nTok} output ${i}`;
            // Q4_1's SIMD file-layout kernels summed in f32 lanes of their own: within 1e-5 * S as
            // test/kernels-matmul.test.ts bounds them; everything else the same bits
            if (type === GGMLType.Q4_1 && variant !== 'scalar') {
              const r = i % rows, tok = Math.floor(i / rows);
              const wd = tsDequantizeRow(type, w.subarray(r * wRow, (r + 1) * wRow), cols);
              const xd = tsDequantizeRow(entry.activationType, xBytes.subarray(tok * xRow, (tok + 1) * xRow), cols);
              let sAbs = 0;
              for (let j = 0; j < cols; j++) sAbs += Math.abs(wd[j]! * xd[j]!);
              expect(Math.abs(packed[i]! - old[i]!), at).toBeLessThanOrEqual(1e-5 * sAbs);
            } else {
              expect(Object.is(packed[i], old[i]), `${at}: ${packed[i]} vs ${old[i]}`).toBe(true);
            }
          }
        }
      }
    }
  });

  // Q4_K_S puts Q5_K in some attention and feed-forward matrices, so the two models hold all three types
  const MODELS = [['tiny-llama', 'q4_1'], ['tiny-qwen2', 'q4_k_s']] as const;
  const modelBytes = new Map<string, Promise<Uint8Array>>();
  const synth = (shape: string, ftype: string): Promise<Uint8Array> => {
    const key = `${shape}-${ftype}`;
    if (!modelBytes.has(key)) modelBytes.set(key, synthModelBytes(shape, ftype, 7));
    return modelBytes.get(key)!;
  };

  it('model path: every Q4_1/Q4_K/Q5_K matrix of synthetic models, repacked, multiplies to the file-layout bits', async () => {
    const rand = prng(900);
    const seen = new Set<GGMLType>();
    for (const [shape, ftype] of MODELS) {
      const bytes = await synth(shape, ftype);
      const file = await readGGUF(memoryStorage(bytes));
      for (const tensor of file.tensors) {
        if (!(TYPES as readonly GGMLType[]).includes(tensor.type)) continue;
        seen.add(tensor.type);
        const entry = matmulKernelFor(tensor.type);
        const cols = tensor.shape[0]!, rows = tensor.shape[1]!;
        const w = bytes.subarray(tensor.offset, tensor.offset + tensor.byteSize);
        const nTok = 2, xRow = rowBytes(entry.activationType, cols), wRow = rowBytes(tensor.type, cols);
        bench.reset();
        const xf = bench.alloc(4 * nTok * cols), xq = bench.alloc(xRow * nTok);
        bench.f32(xf, nTok * cols).set(randomF32(rand, nTok * cols, 1));
        entry.convert(bench.scalar)(xf, xq, cols, nTok);
        const xBytes = bench.u8(xq, xRow * nTok).slice();
        const wFile = bench.alloc(w.length), wp = bench.alloc(entry.matrixBytes(rows, cols));
        bench.u8(wFile, w.length).set(w);
        entry.repack(bench.scalar, wFile, wp, rows, cols);
        const want = new Float32Array(rows * nTok);
        for (let tok = 0; tok < nTok; tok++) {
          for (let r = 0; r < rows; r++) want[tok * rows + r] = fileLayoutDot(tensor.type, w.subarray(r * wRow, (r + 1) * wRow), xBytes.subarray(tok * xRow, (tok + 1) * xRow), cols);
        }
        // two workers' ranges, split on a group boundary as the executor splits them
        const split = Math.min(rows, 8 * Math.ceil(rows / 16));
        for (const { variant, k } of bench.builds) {
          const out = bench.alloc(4 * rows * nTok);
          entry.matmul(k)(wp, xq, out, cols, rows, nTok, 0, split);
          entry.matmul(k)(wp, xq, out, cols, rows, nTok, split, rows);
          const got = bench.f32(out, rows * nTok);
          let same = 0;
          for (let i = 0; i < got.length; i++) if (Object.is(got[i], want[i])) same++;
          expect(same, `${shape} ${ftype} ${tensor.name} ${variant}`).toBe(got.length);
        }
      }
    }
    expect([...seen].sort()).toEqual([...TYPES].sort());
  });

  for (const [shape, ftype] of MODELS) {
    it(`model path: ${shape} ${ftype} logits in every build and batch size match the float64 reference`, async () => {
      const bytes = await synth(shape, ftype);
      const file = await readGGUF(memoryStorage(bytes));
      const hp = readHParams(file);
      const ref = await ReferenceModel.load(file, memoryStorage(bytes), hp);
      const tokens = [1, 300, 17, 42, 260, 5, 99];
      const want = tokens.map((t) => ref.step(t));
      for (const variant of ['scalar', 'simd', 'relaxed'] as KernelVariant[]) {
        for (const batchSize of [1, 5]) {
          const model = await loadModel(memoryStorage(bytes, `${shape}-${ftype}`), { batchSize, kernels: variant, threads: 1 });
          try {
            const logits = model.evaluate(tokens, { all: true });
            let worst = 0;
            for (let p = 0; p < tokens.length; p++) {
              for (let i = 0; i < hp.vocabSize; i++) worst = Math.max(worst, Math.abs(logits[p * hp.vocabSize + i]! - want[p]![i]!));
            }
            // as test/graph-reference.test.ts: the error 8-bit activation quantization adds (measured
            // 0.013-0.017); a misplaced quant, scale or row would be far above it
            expect(worst, `${variant} batch ${batchSize}`).toBeLessThan(0.04);
          } finally {
            await model.close();
          }
        }
      }
    });
  }
});
