// Synthetic models (src/synth): the planned tensors and metadata of every shape against real files
// and published facts, determinism of the written bytes, the statistics of the random weights through
// the reference dequantizer, and vocabulary padding.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { synthCommand } from '../src/cli/synth.js';
import { readGGUF, readGGUFBytes } from '../src/gguf/reader.js';
import { metaNumberArray, metaStringArray } from '../src/gguf/metadata.js';
import { buildGGUFHeader, memorySink } from '../src/gguf/writer.js';
import type { GGUFArray, GGUFFile } from '../src/gguf/types.js';
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
import { loadLenmlVocab } from '../src/synth/vocab-hf.js';
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

describe('synth writes deterministic, readable files', () => {
  const cases: [string, string, 'auto' | 'direct'][] = [
    ['tiny-llama', 'f32', 'auto'],
    ['tiny-llama', 'q8_0', 'auto'],
    ['tiny-llama', 'q4_0', 'auto'],
    ['tiny-llama', 'q4_k_m', 'direct'],
    ['tiny-qwen2', 'f32', 'auto'],
    ['tiny-qwen2', 'q8_0', 'auto'],
    ['tiny-qwen2', 'q4_0', 'auto'],
    ['tiny-qwen2', 'q6_k', 'direct'],
  ];
  for (const [name, type, weights] of cases) {
    it(`${name} ${type} (${weights}): same seed same bytes, other seed other bytes`, async () => {
      const a = await writeToMemory(plan(name, type, 7, weights));
      const b = await writeToMemory(plan(name, type, 7, weights));
      const c = await writeToMemory(plan(name, type, 8, weights));
      expect(Buffer.compare(a, b)).toBe(0);
      expect(a.length).toBe(c.length);
      expect(Buffer.compare(a, c)).not.toBe(0);
      const p = plan(name, type, 7, weights);
      expect(a.length).toBe(p.fileBytes);
      const file = readGGUFBytes(a);
      expect(file.tensors.map((t) => [t.name, [...t.shape], t.type])).toEqual(p.tensors.map((t) => [t.name, [...t.shape], t.type]));
      // Every matrix of the tiny shapes fits every type, so nothing falls back except llama.cpp's
      // output rule (Q6_K for the output matrix, kept at Q8_0 for a Q8_0 file).
      const matrices = p.tensors.filter((t) => t.shape.length === 2);
      const defaultType = parseFileType(type)!.defaultType;
      for (const t of matrices) {
        const isOutput = t.name === 'output.weight' || (t.name === 'token_embd.weight' && shape(name).tiedEmbeddings);
        const expected = isOutput && defaultType !== GGMLType.F32 && defaultType !== GGMLType.Q8_0 ? GGMLType.Q6_K : defaultType;
        if (type !== 'q4_k_m') expect([t.name, typeName(t.type)]).toEqual([t.name, typeName(expected)]);
      }
      weightStatistics(file, a);
    });
  }

  it('reference-quantized k-quant weights decode to the intended spread', async () => {
    const p = plan('tiny-qwen2', 'q4_k_m', 3, 'reference');
    expect(p.weights).toBe('reference');
    const bytes = await writeToMemory(p);
    weightStatistics(readGGUFBytes(bytes), bytes);
  });

  it('writes llama-3.2-1b rope_freqs.weight as llama.cpp converter factors', async () => {
    const p = plan('llama-3.2-1b', 'q4_0');
    const t = synthTensors(p).find((x) => x.name === 'rope_freqs.weight')!;
    const chunks = [...(t.data() as Iterable<Uint8Array>)];
    const f = new Float32Array(Uint8Array.from(chunks.flatMap((c) => [...c])).buffer);
    expect(f.length).toBe(32);
    // Llama 3 scaling with factor 32, low 1, high 4, original 8192, base 500000, 64 rope dims:
    // the fastest rotations are kept (1), the slowest slowed by the factor (32).
    expect(f[0]).toBe(1);
    expect(f[31]).toBe(32);
    expect([...f].every((x, i) => i === 0 || x >= f[i - 1]!)).toBe(true);
  });
});

/** Dequantizes every tensor with the reference dequantizer and checks its mean and spread. */
function weightStatistics(file: GGUFFile, bytes: Uint8Array): void {
  for (const t of file.tensors) {
    const w = dequantizeRow(t.type, bytes.subarray(t.offset, t.offset + t.byteSize), t.elementCount);
    let sum = 0;
    let sq = 0;
    let nonFinite = 0;
    for (const x of w) {
      if (!Number.isFinite(x)) nonFinite++;
      sum += x;
      sq += x * x;
    }
    expect(nonFinite, t.name).toBe(0);
    const mean = sum / w.length;
    const std = Math.sqrt(sq / w.length - mean * mean);
    if (t.name.endsWith('_norm.weight')) {
      expect(Math.abs(mean - 1), t.name).toBeLessThan(0.02);
    } else if (t.name.endsWith('.bias')) {
      expect(std, t.name).toBeGreaterThan(0.01);
      expect(std, t.name).toBeLessThan(0.03);
    } else {
      expect(Math.abs(mean), t.name).toBeLessThan(0.002);
      expect(std, `${t.name} ${typeName(t.type)}`).toBeGreaterThan(0.016);
      expect(std, `${t.name} ${typeName(t.type)}`).toBeLessThan(0.024);
    }
  }
}

describe('directly drawn blocks', () => {
  for (const type of DIRECT_BLOCK_TYPES) {
    it(`${typeName(type)} blocks decode to zero mean and the asked spread`, () => {
      const traits = TYPE_TRAITS.get(type)!;
      const nBlocks = 4096 / traits.blockSize * 8;
      const bytes = new Uint8Array(nBlocks * traits.blockBytes);
      fillRandomBlocks(type, new Rng(5, 1), bytes, 0.02);
      const w = dequantizeRow(type, bytes, nBlocks * traits.blockSize);
      const mean = w.reduce((a, x) => a + x, 0) / w.length;
      const std = Math.sqrt(w.reduce((a, x) => a + (x - mean) ** 2, 0) / w.length);
      expect(Math.abs(mean)).toBeLessThan(0.001);
      expect(std).toBeGreaterThan(0.017);
      expect(std).toBeLessThan(0.023);
      // Not degenerate: many distinct values.
      expect(new Set(w).size).toBeGreaterThan(256);
    });
  }
});

describe('vocabulary padding', () => {
  it('keeps the Llama 2 tokens, scores, types and special ids, and pads to the shape', async () => {
    const source = await readShared('llama-2-tiny-random.gguf');
    const vocab = await vocabFromGGUF(join(MODELS, 'llama-2-tiny-random.gguf'), 49152);
    const p = planSynth({ shape: shape('smollm2-135m'), fileType: parseFileType('q8_0')!, seed: 0, vocab });
    const file = await readPlannedHeader(p);
    const tokens = metaStringArray(file, 'tokenizer.ggml.tokens')!;
    const srcTokens = metaStringArray(source, 'tokenizer.ggml.tokens')!;
    expect(srcTokens.length).toBe(32000);
    expect(tokens.length).toBe(49152);
    expect(tokens.slice(0, 32000)).toEqual(srcTokens);
    expect(tokens[32000]).toBe('[PAD32000]');
    expect(new Set(tokens).size).toBe(49152);
    const scores = metaNumberArray(file, 'tokenizer.ggml.scores')!;
    expect(Array.from(scores).slice(0, 32000)).toEqual(Array.from(metaNumberArray(source, 'tokenizer.ggml.scores')!));
    const types = metaNumberArray(file, 'tokenizer.ggml.token_type')!;
    expect(Array.from(types).slice(0, 32000)).toEqual(Array.from(metaNumberArray(source, 'tokenizer.ggml.token_type')!));
    expect(types[49151]).toBe(5); // UNUSED, as llama.cpp's converter pads
    for (const key of ['tokenizer.ggml.model', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id']) {
      expect(file.metadata.get(key)?.value, key).toEqual(source.metadata.get(key)?.value);
    }
  });

  it('refuses a vocabulary larger than the shape', async () => {
    await expect(vocabFromGGUF(join(MODELS, 'llama-2-tiny-random.gguf'), 512)).rejects.toThrow(/32000 tokens, more than the shape's vocabulary of 512/);
  });

  it('the minimal vocabulary has unk/bos/eos, the 256 byte pieces and visible filler', () => {
    const v = minimalSpmVocab(512);
    const tokens = v.entries.find((e) => e.key === 'tokenizer.ggml.tokens')!.value as GGUFArray;
    expect(tokens.items.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(tokens.items[3]).toBe('<0x00>');
    expect(tokens.items[258]).toBe('<0xFF>');
    expect(tokens.items.length).toBe(512);
    expect(tokens.items[511]).toBe('\u2581tok511');
    expect(new Set(tokens.items as readonly string[]).size).toBe(512);
    expect(() => padVocab(v.entries, 100, 'x')).toThrow(/more than the shape's vocabulary of 100/);
  });
});

describe('pocketllm synth command', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'pocketllm-synth-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const stdoutWrite = process.stdout.write;
    const stderrWrite = process.stderr.write;
    process.stdout.write = ((chunk: string | Uint8Array) => ((out += chunk.toString()), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array) => ((err += chunk.toString()), true)) as typeof process.stderr.write;
    try {
      return { code: await synthCommand(argv), out, err };
    } finally {
      process.stdout.write = stdoutWrite;
      process.stderr.write = stderrWrite;
    }
  }

  it('writes the planned file and says which tensors fell back', async () => {
    const out = join(tmp, 'stories-q4_0.gguf');
    const r = await run(['--shape', 'stories260k', '--type', 'q4_0', '--seed', '3', '-o', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^wrote .*stories-q4_0\.gguf: stories260k \(llama\), Q4_0, seed 3, 48 tensors/);
    expect(r.out).toContain('note: blk.*.ffn_down.weight: 172 columns are not a multiple of Q4_0\'s block of 32: F16');
    const bytes = readFileSync(out);
    const p = plan('stories260k', 'q4_0', 3);
    expect(bytes.length).toBe(p.fileBytes);
    expect(Buffer.compare(bytes, await writeToMemory(p))).toBe(0);
    expect(readdirSync(tmp).filter((f) => f.includes('partial'))).toEqual([]);
  });

  it('lists the shapes', async () => {
    const r = await run(['--list']);
    expect(r.code).toBe(0);
    for (const name of SHAPES.keys()) expect(r.out).toContain(name);
  });

  it('bad arguments exit 2 with one line, I/O errors exit 1', async () => {
    const o = join(tmp, 'x.gguf');
    const bad: string[][] = [
      ['--shape', 'gpt-5', '--type', 'q4_0', '-o', o],
      ['--shape', 'tiny-llama', '--type', 'q9_9', '-o', o],
      ['--shape', 'tiny-llama', '--type', 'q4_0'],
      ['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--seed', '-1'],
      ['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--seed=-1'],
      ['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--seed', '1.5'],
      ['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--vocab', 'llama2'],
      ['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--weights', 'fast'],
      ['--shape', 'tiny-llama', '--bogus'],
    ];
    for (const argv of bad) {
      const r = await run(argv);
      expect([argv.join(' '), r.code]).toEqual([argv.join(' '), 2]);
      expect(r.err.split('\n').length, r.err).toBe(2);
    }
    // A vocabulary larger than the shape's is not an error: the model is widened to hold it.
    const wide = await run(['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--vocab-from', join(MODELS, 'llama-2-tiny-random.gguf')]);
    expect(wide.code).toBe(0);
    expect(wide.err).toMatch(/vocabulary size widened from 512 to 32000/);
    const io = await run(['--shape', 'tiny-llama', '--type', 'q4_0', '-o', join(tmp, 'no-such-dir', 'x.gguf')]);
    expect(io.code).toBe(1);
    expect(io.err).toMatch(/^pocketllm: .*no-such-dir.*\n$/);
    const missingVocab = await run(['--shape', 'tiny-llama', '--type', 'q4_0', '-o', o, '--vocab-from', join(tmp, 'none.gguf')]);
    expect(missingVocab.code).toBe(1);
    expect(missingVocab.err).toMatch(/no such file/);
  });

  it('the Llama 3 vocabulary fills llama-3.2-1b exactly', async () => {
    const s = shape('llama-3.2-1b');
    const vocab = padVocab(await loadLenmlVocab('llama3'), s.vocabSize, 'llama3');
    expect(vocab.model).toBe('gpt2');
    expect(vocab.sourceTokenCount).toBe(128256);
    const p = planSynth({ shape: s, fileType: parseFileType('q4_k_m')!, seed: 0, vocab });
    const file = await readPlannedHeader(p);
    expect(metaStringArray(file, 'tokenizer.ggml.tokens')![128000]).toBe('<|begin_of_text|>');
    expect(readHParams(file).vocabSize).toBe(128256);
  });
});
