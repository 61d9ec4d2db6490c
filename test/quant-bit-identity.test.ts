// Our reference quantizers against llama.cpp's: /work/shared/models/stories260K-{Q4_0,Q8_0,F16}.gguf
// were written by llama.cpp's llama-quantize (build de3ff81, no imatrix) from stories260K.gguf (all
// F32). Every tensor stored there as Q4_0, Q8_0 or F16 must equal, byte for byte, what quantizeRow
// makes from the F32 source tensor of the same name; and dequantizing it must give llama.cpp's values.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGGUF } from '../src/gguf/reader.js';
import type { GGUFFile, GGUFTensorInfo } from '../src/gguf/types.js';
import { dequantizeRow } from '../src/quant/dequantize.js';
import { GGMLType } from '../src/quant/formats.js';
import { quantizeRow } from '../src/quant/quantize.js';
import { openFileStorage } from '../src/storage/node.js';
import type { Storage } from '../src/storage/storage.js';

const MODELS = '/work/shared/models';

interface OpenModel {
  storage: Storage;
  file: GGUFFile;
}

async function openModel(name: string): Promise<OpenModel> {
  const storage = await openFileStorage(`${MODELS}/${name}`);
  return { storage, file: await readGGUF(storage) };
}

async function tensorBytes(m: OpenModel, t: GGUFTensorInfo): Promise<Uint8Array> {
  const buf = new Uint8Array(t.byteSize);
  expect(await m.storage.read(t.offset, buf)).toBe(t.byteSize);
  return buf;
}

async function tensorF32(m: OpenModel, name: string): Promise<Float32Array> {
  const t = m.file.tensorsByName.get(name)!;
  expect(t.type).toBe(GGMLType.F32);
  const bytes = await tensorBytes(m, t);
  return new Float32Array(bytes.buffer, bytes.byteOffset, t.elementCount);
}

describe('quantizeRow is bit-identical to llama.cpp', () => {
  let source: OpenModel;
  const refs = new Map<string, OpenModel>();

  beforeAll(async () => {
    source = await openModel('stories260K.gguf');
    for (const q of ['Q4_0', 'Q8_0', 'F16']) refs.set(q, await openModel(`stories260K-${q}.gguf`));
  });
  afterAll(async () => {
    await source.storage.close();
    for (const m of refs.values()) await m.storage.close();
  });

  for (const refName of ['Q4_0', 'Q8_0', 'F16']) {
    it(`every Q4_0/Q8_0/F16 tensor of stories260K-${refName}.gguf`, async () => {
      const ref = refs.get(refName)!;
      const counts = new Map<string, number>();
      for (const t of ref.file.tensors) {
        if (t.type !== GGMLType.Q4_0 && t.type !== GGMLType.Q8_0 && t.type !== GGMLType.F16) continue;
        const want = await tensorBytes(ref, t);
        const x = await tensorF32(source, t.name);
        const got = quantizeRow(t.type, x);
        if (!Buffer.from(got).equals(Buffer.from(want))) {
          let first = 0;
          while (got[first] === want[first]) first++;
          throw new Error(`${t.name} (${GGMLType[t.type]}): first differing byte ${first}: ours ${got[first]}, llama.cpp ${want[first]}`);
        }
        counts.set(GGMLType[t.type], (counts.get(GGMLType[t.type]) ?? 0) + 1);
      }
      // The files' own tensor type counts (see /work/shared/models/MODELS.md).
      const expected: Record<string, Record<string, number>> = {
        Q4_0: { Q4_0: 31, Q8_0: 1, F16: 5 },
        Q8_0: { Q8_0: 32, F16: 5 },
        F16: { F16: 37 },
      };
      expect(Object.fromEntries(counts)).toEqual(expected[refName]);
    });
  }

  it("dequantizing llama.cpp's Q8_0 tensors stays within half a step of the F32 source", async () => {
    // q = roundf(x / d) with d = amax/127 in f32, stored as f16 d16: |x - q*d16| <= d/2 + 127*|d - d16|,
    // and |d - d16| <= 2^-11 |d16| (f16 keeps 11 significant bits).
    const ref = refs.get('Q8_0')!;
    let checked = 0;
    for (const t of ref.file.tensors) {
      if (t.type !== GGMLType.Q8_0) continue;
      const bytes = await tensorBytes(ref, t);
      const x = await tensorF32(source, t.name);
      const y = dequantizeRow(t.type, bytes, t.elementCount);
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      for (let b = 0; b < t.elementCount / 32; b++) {
        const d = Math.abs(halfToNumber(view.getUint16(34 * b, true)));
        const bound = d / 2 + 127 * d * 2 ** -11 + 1e-9;
        for (let j = 0; j < 32; j++) {
          const err = Math.abs(y[32 * b + j]! - x[32 * b + j]!);
          if (err > bound) throw new Error(`${t.name} weight ${32 * b + j}: error ${err} > ${bound}`);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });
});

/** Independent f16 decode for the bound above (Math.f16round's inverse, by formula). */
function halfToNumber(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const s = h & 0x8000 ? -1 : 1;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}
