// `pocketllm quantize` against llama.cpp's llama-quantize: stories260K.gguf (all F32) quantized to
// Q8_0, Q4_0 and F16 must reproduce /work/shared/models/stories260K-{Q8_0,Q4_0,F16}.gguf (written by
// llama-quantize build de3ff81, no imatrix) byte for byte: metadata order, general.file_type, tensor
// order, per-tensor type choices (output.weight Q6_K -> Q8_0, ffn_down's 172 columns -> F16) and data.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createProgress, formatProgress } from '../src/cli/progress.js';
import { quantizeCommand } from '../src/cli/quantize.js';
import { readGGUF } from '../src/gguf/reader.js';
import { GGUFValueType } from '../src/gguf/types.js';
import type { GGUFFile, GGUFKV, GGUFTensorInfo } from '../src/gguf/types.js';
import { memorySink } from '../src/gguf/writer.js';
import { dequantizeRow } from '../src/quant/dequantize.js';
import { GGMLType } from '../src/quant/formats.js';
import { parseFileType, planQuantization, writeQuantizedModel } from '../src/quant/quantize-model.js';
import { quantizeRow } from '../src/quant/quantize.js';
import { memoryStorage } from '../src/storage/memory.js';

const MODELS = '/work/shared/models';
let dir: string;

/** Runs the command with stdout/stderr captured. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await quantizeCommand(argv);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pocketllm-quant-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('pocketllm quantize reproduces llama-quantize', () => {
  for (const type of ['Q8_0', 'Q4_0', 'F16']) {
    it(`stories260K -> ${type} is byte-identical to llama.cpp's file`, async () => {
      const out = join(dir, `out-${type}.gguf`);
      const r = await run([`${MODELS}/stories260K.gguf`, out, type.toLowerCase()]);
      expect(r.code).toBe(0);
      const ours = await readFile(out);
      const theirs = await readFile(`${MODELS}/stories260K-${type}.gguf`);
      expect(ours.length).toBe(theirs.length);
      expect(ours.equals(theirs)).toBe(true);
      // The fallbacks are announced, one line per tensor: the five ffn_down of 172 columns, and for
      // Q4_0 also output.weight, which the mixture wants as Q6_K (64 columns, not a multiple of 256).
      const fallbackLines = r.err.split('\n').filter((l) => l.includes('using'));
      expect(fallbackLines.length).toBe({ Q8_0: 5, Q4_0: 6, F16: 0 }[type]);
      if (type === 'Q4_0') expect(fallbackLines[0]).toBe("output.weight: 64 columns are not a multiple of Q6_K's block of 256; using Q8_0 instead of Q6_K");
      if (type !== 'F16') expect(fallbackLines.at(-1)).toBe(`blk.4.ffn_down.weight: 172 columns are not a multiple of ${type}'s block of 32; using F16 instead of ${type}`);
    });
  }

  it('prints a summary, and nothing on stderr but fallbacks (stderr is no TTY here)', async () => {
    const r = await run([`${MODELS}/stories260K.gguf`, join(dir, 'summary.gguf'), 'F16']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/48 tensors, F16 \(file type 1\)/);
    expect(r.err).toBe('');
  });
});

describe('quantize plan', () => {
  async function stories(): Promise<GGUFFile> {
    return readGGUF(memoryStorage(new Uint8Array(await readFile(`${MODELS}/stories260K.gguf`)), 'stories260K.gguf'));
  }

  it('follows llama.cpp for the k-quant mixtures on stories260K (rows of 64 and 172)', async () => {
    const file = await stories();
    const types = (name: string): Record<string, string> => {
      const plan = planQuantization(file, parseFileType(name)!);
      return Object.fromEntries(plan.tensors.filter((t) => t.info.name.startsWith('blk.0.') || !t.info.name.startsWith('blk')).map((t) => [t.info.name, GGMLType[t.to]]));
    };
    // Q4_K_M: 256 does not divide 64 or 172, so Q4_K -> Q5_0 and Q6_K -> Q8_0 (64 columns), -> F16 (172).
    // With 5 layers, llama.cpp's use_more_bits(i, n) holds for i = 2 and 4 (i >= 7n/8 or (i - n/8) % 3
    // == 2), so attn_v wants Q6_K (-> Q8_0) only there.
    const q4km = planQuantization(file, parseFileType('Q4_K_M')!);
    expect(q4km.tensors.filter((t) => t.info.name.endsWith('attn_v.weight')).map((t) => GGMLType[t.to])).toEqual(['Q5_0', 'Q5_0', 'Q8_0', 'Q5_0', 'Q8_0']);
    expect(types('q4_k')).toEqual({
      'output.weight': 'Q8_0',
      'output_norm.weight': 'F32',
      'token_embd.weight': 'Q5_0',
      'blk.0.attn_k.weight': 'Q5_0',
      'blk.0.attn_norm.weight': 'F32',
      'blk.0.attn_output.weight': 'Q5_0',
      'blk.0.attn_q.weight': 'Q5_0',
      'blk.0.attn_v.weight': 'Q5_0',
      'blk.0.ffn_down.weight': 'F16',
      'blk.0.ffn_gate.weight': 'Q5_0',
      'blk.0.ffn_norm.weight': 'F32',
      'blk.0.ffn_up.weight': 'Q5_0',
    });
    const q6 = types('Q6_K');
    expect(q6['blk.0.attn_q.weight']).toBe('Q8_0');
    expect(q6['token_embd.weight']).toBe('Q8_0');
    const q3 = types('Q3_K_M');
    expect(q3['blk.0.attn_q.weight']).toBe('Q4_0');
    expect(q3['blk.0.attn_output.weight']).toBe('Q5_0'); // Q3_K_M wants Q4_K for attn_output
    const bf16 = types('bf16');
    expect(bf16['blk.0.ffn_down.weight']).toBe('BF16');
    expect(bf16['output_norm.weight']).toBe('F32');
  });

  it('sets file_type and quantization_version last, replacing earlier values', async () => {
    const file = await stories();
    const plan = planQuantization(file, parseFileType('Q4_1')!);
    const tail = plan.kv.slice(-2).map((e: GGUFKV) => [e.key, e.type, e.value]);
    expect(tail).toEqual([
      ['general.quantization_version', GGUFValueType.UINT32, 2],
      ['general.file_type', GGUFValueType.UINT32, 3],
    ]);
    // Re-planning the written file must not duplicate the keys.
    const sink = memorySink();
    await writeQuantizedModel(plan, memoryStorage(new Uint8Array(await readFile(`${MODELS}/stories260K.gguf`))), sink);
    const again = planQuantization(await readGGUF(memoryStorage(sink.bytes())), parseFileType('Q8_0')!);
    expect(again.kv.filter((e) => e.key === 'general.file_type').length).toBe(1);
    expect(again.kv.length).toBe(file.kv.length + 2);
  });

  it('requantizes a quantized model through f32 (Q8_0 file -> Q4_0 equals quantizing its dequantized values)', async () => {
    const bytes = new Uint8Array(await readFile(`${MODELS}/stories260K-Q8_0.gguf`));
    const storage = memoryStorage(bytes);
    const file = await readGGUF(storage);
    const plan = planQuantization(file, parseFileType('Q4_0')!);
    const sink = memorySink();
    await writeQuantizedModel(plan, storage, sink);
    const out = sink.bytes();
    const outFile = await readGGUF(memoryStorage(out));
    const check = (name: string): void => {
      const src: GGUFTensorInfo = file.tensorsByName.get(name)!;
      const dst: GGUFTensorInfo = outFile.tensorsByName.get(name)!;
      const x = dequantizeRow(src.type, bytes.subarray(src.offset, src.offset + src.byteSize), src.elementCount);
      const want = quantizeRow(dst.type, x);
      expect(Buffer.from(out.subarray(dst.offset, dst.offset + dst.byteSize)).equals(Buffer.from(want))).toBe(true);
    };
    expect(GGMLType[outFile.tensorsByName.get('blk.2.attn_q.weight')!.type]).toBe('Q4_0');
    check('blk.2.attn_q.weight');
    check('token_embd.weight');
    expect(GGMLType[outFile.tensorsByName.get('blk.2.ffn_down.weight')!.type]).toBe('F16');
  });
});

describe('pocketllm quantize on bad input', () => {
  // Exit 2 for a usage error (what the user typed is wrong), 1 for a failure of the work itself.
  it.each([
    ['a missing input file', () => [join(dir, 'nope.gguf'), join(dir, 'x.gguf'), 'Q8_0'], /no such file/, 1],
    ['an unknown type', () => [`${MODELS}/stories260K.gguf`, join(dir, 'x.gguf'), 'Q9_9'], /unknown type "Q9_9"/, 2],
    ['missing arguments', () => [`${MODELS}/stories260K.gguf`], /expected in\.gguf out\.gguf TYPE/, 2],
    ['an unknown option', () => ['--frobnicate'], /frobnicate/, 2],
  ])('%s: one line on stderr, exit %s', async (_what, args, message, code) => {
    const r = await run(args());
    expect(r.code).toBe(code);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n').length).toBe(1);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('a corrupt GGUF: one line, exit 1, and no output file left behind', async () => {
    const bad = join(dir, 'bad.gguf');
    const good = await readFile(`${MODELS}/stories260K.gguf`);
    await writeFile(bad, good.subarray(0, 5000)); // header cut in the middle of the vocabulary
    const out = join(dir, 'from-bad.gguf');
    const r = await run([bad, out, 'Q4_0']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n').length).toBe(1);
    expect(r.err).toMatch(/bad\.gguf/);
    await expect(readFile(out)).rejects.toThrow();
  });

  it('tensor data cut short: clear error naming the tensor, temporary file removed', async () => {
    const cut = join(dir, 'cut.gguf');
    const good = await readFile(`${MODELS}/stories260K.gguf`);
    await writeFile(cut, good.subarray(0, good.length - 100));
    const out = join(dir, 'from-cut.gguf');
    const r = await run([cut, out, 'Q8_0']);
    expect(r.code).toBe(1);
    expect(r.err.trim().split('\n').length).toBe(1);
    await expect(readFile(out)).rejects.toThrow();
    const left = (await import('node:fs/promises')).readdir(dir);
    expect((await left).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });
});

describe('progress bar (src/cli/progress.ts)', () => {
  function fakeStream(isTTY: boolean): { isTTY: boolean; columns: number; text: string; write(t: string): boolean } {
    return { isTTY, columns: 80, text: '', write(t: string) { this.text += t; return true; } };
  }

  it('prints nothing when the stream is not a terminal', () => {
    const s = fakeStream(false);
    const p = createProgress('work', 10, s);
    for (let i = 0; i <= 10; i++) p.update(i);
    p.done();
    expect(s.text).toBe('');
  });

  it('redraws one line at most every 100 ms, always the final state, and erases itself when done', () => {
    const s = fakeStream(true);
    let t = 0;
    const p = createProgress('work', 4, s, () => t);
    p.update(1); // drawn
    t = 50;
    p.update(2); // too soon: skipped
    t = 200;
    p.update(3); // drawn
    t = 210;
    p.update(4); // complete: drawn even though soon
    p.done();
    expect(s.text.split('\r').filter((x) => x !== '')).toEqual([
      `${formatProgress('work', 1, 4)}\x1b[K`,
      `${formatProgress('work', 3, 4)}\x1b[K`,
      `${formatProgress('work', 4, 4)}\x1b[K`,
      '\x1b[K',
    ]);
    expect(formatProgress('work', 3, 4, 8)).toBe('work [######--] 3/4 75%');
    expect(formatProgress('loading', 0.5, 1, 4)).toBe('loading [##--] 50%');
  });
});
