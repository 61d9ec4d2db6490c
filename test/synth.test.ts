// Synthetic models (src/synth): the planned tensors and metadata of every shape against real files
// and published facts, determinism of the written bytes, the statistics of the random weights through
// the reference dequantizer, and vocabulary padding.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGGUF, readGGUFBytes } from '../src/gguf/reader.js';
import { metaNumberArray, metaStringArray } from '../src/gguf/metadata.js';
import { buildGGUFHeader, memorySink } from '../src/gguf/writer.js';
import type { GGUFFile } from '../src/gguf/types.js';
import { readHParams } from '../src/model/hparams.js';
import { dequantizeRow } from '../src/quant/dequantize.js';
import { GGMLType, TYPE_TRAITS } from '../src/quant/formats.js';
import { parseFileType } from '../src/quant/quantize-model.js';
import { openFileStorage } from '../src/storage/node.js';
import type { Storage } from '../src/storage/storage.js';
import { fillRandomBlocks, DIRECT_BLOCK_TYPES } from '../src/synth/blocks.js';
import { Rng } from '../src/synth/random.js';
import { SHAPES, findShape, shapeHParams, shapeParameterCount } from '../src/synth/shapes.js';
import type { ModelShape } from '../src/synth/shapes.js';
import { planSynth, synthTensors, writeSynth } from '../src/synth/synth.js';
import type { SynthPlan } from '../src/synth/synth.js';
import { minimalSpmVocab, padVocab, vocabFromGGUF } from '../src/synth/vocab.js';
import { MODELS } from './support/golden.js';

function shape(name: string): ModelShape {
  const s = findShape(name);
  if (!s) throw new Error(`no shape ${name}`);
  return s;
}

function plan(shapeName: string, type: string, seed = 1, weights: 'auto' | 'reference' | 'direct' = 'auto'): SynthPlan {
  const s = shape(shapeName);
  return planSynth({ shape: s, fileType: parseFileType(type)!, seed, vocab: minimalSpmVocab(s.vocabSize), weights });
}

async function writeToMemory(p: SynthPlan): Promise<Uint8Array> {
  const sink = memorySink();
  await writeSynth(p, sink);
  return sink.bytes();
}

async function readShared(name: string): Promise<GGUFFile> {
  const storage = await openFileStorage(join(MODELS, name));
  try {
    return await readGGUF(storage);
  } finally {
    await storage.close();
  }
}

function typeName(t: GGMLType): string {
  return TYPE_TRAITS.get(t)!.name;
}

describe('synth plans match real models', () => {
  // Tensor counts of the real GGUF conversions (llama.cpp's converter): 9 tensors per block, plus
  // token_embd, output_norm, output unless tied, rope_freqs for Llama 3, q/k/v biases for Qwen2.
  const realCounts: Record<string, number> = {
    'tinyllama-1.1b': 201,
    'smollm2-135m': 272,
    'llama-2-7b': 291,
    'qwen2.5-0.5b': 290,
    'llama-3.2-1b': 147,
    stories260k: 48,
  };
  for (const [name, count] of Object.entries(realCounts)) {
    it(`${name} has ${count} tensors with llama.cpp names`, () => {
      const p = plan(name, 'f16');
      expect(p.tensors.length).toBe(count);
      const names = new Set(p.tensors.map((t) => t.name));
      expect(names.size).toBe(count);
      for (const n of names) expect(n).toMatch(/^(token_embd|output_norm|output|rope_freqs)\.weight$|^blk\.\d+\.(attn_(norm|q|k|v|output)|ffn_(norm|gate|up|down))\.(weight|bias)$/);
      expect(p.tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0) - (name === 'llama-3.2-1b' ? 32 : 0)).toBe(shapeParameterCount(shape(name)));
    });
  }

  it('gives the GGML shapes of the real tensors', () => {
    const dims = (p: SynthPlan, n: string): readonly number[] => p.tensors.find((t) => t.name === n)!.shape;
    const smol = plan('smollm2-135m', 'f16');
    expect(dims(smol, 'token_embd.weight')).toEqual([576, 49152]);
    expect(dims(smol, 'blk.0.attn_q.weight')).toEqual([576, 576]);
    expect(dims(smol, 'blk.0.attn_k.weight')).toEqual([576, 192]);
    expect(dims(smol, 'blk.29.ffn_down.weight')).toEqual([1536, 576]);
    expect(dims(smol, 'blk.29.ffn_gate.weight')).toEqual([576, 1536]);
    const qwen = plan('qwen2.5-0.5b', 'f16');
    expect(dims(qwen, 'blk.0.attn_q.bias')).toEqual([896]);
    expect(dims(qwen, 'blk.0.attn_k.bias')).toEqual([128]);
    expect(dims(qwen, 'blk.23.attn_v.weight')).toEqual([896, 128]);
    const l3 = plan('llama-3.2-1b', 'f16');
    expect(dims(l3, 'rope_freqs.weight')).toEqual([32]);
    expect(l3.tensors.some((t) => t.name === 'output.weight')).toBe(false);
  });

  it('stories260k has the tensors, shapes and metadata of the real stories260K.gguf', async () => {
    const real = await readShared('stories260K.gguf');
    const s = shape('stories260k');
    const vocab = await vocabFromGGUF(join(MODELS, 'stories260K.gguf'), s.vocabSize);
    const p = planSynth({ shape: s, fileType: parseFileType('f32')!, seed: 0, vocab });
    const ours = new Map(p.tensors.map((t) => [t.name, [...t.shape]]));
    const theirs = new Map(real.tensors.map((t) => [t.name, [...t.shape]]));
    expect(ours).toEqual(theirs);
    const file = readGGUFBytes(await writeToMemory(p));
    const hp = readHParams(file);
    expect(hp).toEqual({ ...readHParams(real), name: 'stories260K' });
    expect(metaStringArray(file, 'tokenizer.ggml.tokens')).toEqual(metaStringArray(real, 'tokenizer.ggml.tokens'));
    expect(metaNumberArray(file, 'tokenizer.ggml.scores')).toEqual(metaNumberArray(real, 'tokenizer.ggml.scores'));
  });

  // llama-quantize's own choices, recorded in the shared reference files (MODELS.md): Q4_0 keeps
  // output at Q8_0 and ffn_down (rows of 172) at F16; Q8_0 keeps ffn_down at F16.
  for (const [type, fileName] of [
    ['q4_0', 'stories260K-Q4_0.gguf'],
    ['q8_0', 'stories260K-Q8_0.gguf'],
    ['f16', 'stories260K-F16.gguf'],
  ] as const) {
    it(`stories260k ${type} tensor types equal llama-quantize's ${fileName}`, async () => {
      const real = await readShared(fileName);
      const p = plan('stories260k', type);
      const ours = Object.fromEntries(p.tensors.map((t) => [t.name, typeName(t.type)]));
      const theirs = Object.fromEntries(real.tensors.map((t) => [t.name, typeName(t.type)]));
      expect(ours).toEqual(theirs);
      if (type !== 'f16') expect(p.notes.some((n) => n.startsWith('blk.*.ffn_down.weight: 172 columns'))).toBe(true);
    });
  }

  // Byte sizes of the published Llama-2-7B GGUF files (Hugging Face TheBloke/Llama-2-7B-GGUF; the Q4_0
  // one is also ollama's llama2:7b blob). With the real Llama 2 vocabulary in the header, the planned
  // size must agree to a few hundred bytes of metadata, which checks every tensor's type and shape.
  it('llama-2-7b planned sizes equal the published GGUF file sizes', async () => {
    const s = shape('llama-2-7b');
    const vocab = await vocabFromGGUF(join(MODELS, 'llama-2-tiny-random.gguf'), s.vocabSize);
    const published: Record<string, number> = { q4_0: 3825807040, q8_0: 7161089728, q4_k_m: 4081004224, q5_k_m: 4783156928, q6_k: 5529194176 };
    for (const [type, bytes] of Object.entries(published)) {
      const p = planSynth({ shape: s, fileType: parseFileType(type)!, seed: 0, vocab });
      expect(Math.abs(p.fileBytes - bytes), type).toBeLessThan(1024);
    }
  });

  it('smollm2-135m q8_0 matches the real Q8_0 file and q4_0 is about 91 MB', () => {
    // smollm2-135m-instruct-q8_0.gguf is 144,811,968 bytes (MODELS.md); its header holds a BPE vocab
    // with merges and a chat template, our minimal vocab is smaller, so compare the tensor data.
    const q8 = plan('smollm2-135m', 'q8_0');
    const headerOfReal = 144_811_968 - (q8.fileBytes - q8.headerBytes);
    expect(headerOfReal).toBeGreaterThan(1_000_000);
    expect(headerOfReal).toBeLessThan(2_500_000);
    const q4 = plan('smollm2-135m', 'q4_0');
    expect(q4.fileBytes).toBeGreaterThan(90_000_000);
    expect(q4.fileBytes).toBeLessThan(92_500_000);
    // The tied 576-wide embedding cannot be Q6_K, so llama.cpp stores it at Q8_0.
    expect(typeName(q4.tensors.find((t) => t.name === 'token_embd.weight')!.type)).toBe('Q8_0');
  });

  it('writes the metadata llama.cpp reads, and readHParams gets the shape back', async () => {
    for (const name of SHAPES.keys()) {
      const p = plan(name, 'q4_0');
      const file = await readPlannedHeader(p);
      expect(file.tensors.map((t) => [t.name, t.shape, t.type])).toEqual(p.tensors.map((t) => [t.name, t.shape, t.type]));
      const hp = readHParams(file);
      const want = shapeHParams(shape(name));
      expect({ ...hp, rmsNormEps: 0, ropeFreqBase: 0, ropeLlama3: undefined }).toEqual({ ...want, rmsNormEps: 0, ropeFreqBase: 0, ropeLlama3: undefined });
      expect(hp.rmsNormEps).toBeCloseTo(want.rmsNormEps, 12);
      expect(hp.ropeFreqBase).toBe(want.ropeFreqBase);
      expect(file.metadata.get('general.file_type')?.value).toBe(2);
      expect(file.metadata.get('general.quantization_version')?.value).toBe(2);
      // llama.cpp would read rope.scaling.factor as linear scaling: Llama 3 gets rope_freqs.weight only.
      expect([...file.metadata.keys()].some((k) => k.includes('rope.scaling'))).toBe(false);
    }
  });
});

/**
 * Parses the header of a planned file without writing its data: a Storage that claims the planned
 * size and serves the header bytes (then zeros), so even the 7B plan parses with readGGUF.
 */
async function readPlannedHeader(p: SynthPlan): Promise<GGUFFile> {
  const header = buildGGUFHeader(p.kv, p.tensors);
  expect(header.length).toBe(p.headerBytes);
  const storage: Storage = {
    name: `planned ${p.request.shape.name}`,
    size: p.fileBytes,
    async read(offset: number, into: Uint8Array): Promise<number> {
      const n = Math.max(0, Math.min(into.length, p.fileBytes - offset));
      into.fill(0, 0, n);
      if (offset < header.length) into.set(header.subarray(offset, Math.min(header.length, offset + n)));
      return n;
    },
    async close(): Promise<void> {},
  };
  return readGGUF(storage);
}
