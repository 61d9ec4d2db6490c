// `pocketllm info` on the shared stories260K.gguf (facts from ../shared/models/MODELS.md), as text and
// JSON, and on broken input: a truncated copy, a missing file, an architecture pocketllm lacks.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { infoCommand } from '../src/cli/info.js';
import { GGUFValueType } from '../src/gguf/types.js';
import { fileSink, writeGGUF } from '../src/gguf/writer.js';
import { GGMLType } from '../src/quant/formats.js';
import { MODELS } from './support/golden.js';

const STORIES = join(MODELS, 'stories260K.gguf');
const tmp = mkdtempSync(join(tmpdir(), 'pocketllm-info-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the command with stdout and stderr captured. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const stdoutWrite = process.stdout.write;
  const stderrWrite = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => ((out += chunk.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((err += chunk.toString()), true)) as typeof process.stderr.write;
  try {
    const code = await infoCommand(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = stdoutWrite;
    process.stderr.write = stderrWrite;
  }
}

function line(text: string, label: string): string {
  const l = text.split('\n').find((x) => x.startsWith(label));
  if (l === undefined) throw new Error(`no line "${label}" in:\n${text}`);
  return l.slice(label.length).trim();
}

describe('pocketllm info', () => {
  it('prints the facts of stories260K.gguf', async () => {
    const { code, out, err } = await run([STORIES]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(line(out, 'file')).toBe(`${STORIES} (1,185,376 bytes)`);
    expect(line(out, 'gguf')).toMatch(/^version 3, alignment 32, data offset [\d,]+, 19 metadata keys$/);
    expect(line(out, 'architecture')).toBe('llama');
    expect(line(out, 'vocab size')).toBe('512');
    expect(line(out, 'context length')).toBe('2048');
    expect(line(out, 'embedding length')).toBe('64');
    expect(line(out, 'blocks')).toBe('5');
    expect(line(out, 'feed-forward')).toBe('172');
    expect(line(out, 'heads')).toBe('8 (kv 4, head dim 8)');
    expect(line(out, 'rope')).toBe('norm, 8 dims, base 10000');
    expect(line(out, 'rms norm eps')).toBe('0.00001');
    expect(line(out, 'tokenizer')).toBe('llama, 512 tokens');
    expect(line(out, 'special tokens')).toContain('bos 1 "<s>", eos 2 "</s>"');
    expect(line(out, 'special tokens')).toContain('unknown 0 "<unk>"');
    expect(line(out, 'chat template')).toBe('absent');
    expect(line(out, 'tensors')).toMatch(/^48, /);
    expect(out).toMatch(/\n\s+F32\s+48 tensors/);
  });

  it('--json gives the same facts', async () => {
    const { code, out } = await run([STORIES, '--json']);
    expect(code).toBe(0);
    const info = JSON.parse(out);
    expect(info.fileSize).toBe(1185376);
    expect(info.gguf).toMatchObject({ version: 3, alignment: 32, metadataCount: 19, tensorCount: 48 });
    expect(info.architecture).toBe('llama');
    expect(info.name).toBe('llama');
    expect(info.supported).toBe(true);
    expect(info.hparams).toMatchObject({
      vocabSize: 512,
      trainContextLength: 2048,
      embeddingLength: 64,
      blockCount: 5,
      feedForwardLength: 172,
      headCount: 8,
      headCountKV: 4,
      ropeDims: 8,
      ropeFreqBase: 10000,
      tiedEmbeddings: false,
    });
    expect(info.tokenizer).toMatchObject({ model: 'llama', pre: null, vocabSize: 512, chatTemplate: false });
    expect(info.tokenizer.special).toMatchObject({ unknown: { id: 0, text: '<unk>' }, bos: { id: 1, text: '<s>' }, eos: { id: 2, text: '</s>' } });
    expect(info.tensors.count).toBe(48);
    expect(Object.keys(info.tensors.byType)).toEqual(['F32']);
    expect(info.tensors.byType.F32.count).toBe(48);
    // All F32 and the data runs to the end of the file (MODELS.md): data offset + bytes = file size.
    expect(info.gguf.dataOffset + info.tensors.bytes).toBe(1185376);
    expect(info.tensors.parameters * 4).toBe(info.tensors.bytes);
  });

  it('a truncated copy fails with one line naming the problem', async () => {
    const bytes = readFileSync(STORIES);
    const headerCut = join(tmp, 'header-cut.gguf');
    writeFileSync(headerCut, bytes.subarray(0, 1000));
    let r = await run([headerCut]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^pocketllm: .*header-cut\.gguf: .*tokenizer\.ggml\.tokens.*\n$/);
    expect(r.err.split('\n').length).toBe(2);

    const dataCut = join(tmp, 'data-cut.gguf');
    writeFileSync(dataCut, bytes.subarray(0, bytes.length - 4096));
    r = await run([dataCut, '--json']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^pocketllm: .*data-cut\.gguf: tensor "[^"]+" .*past the end of the 1181280-byte file.*\n$/);
    expect(r.err.split('\n').length).toBe(2);
  });

  it('a missing file or bad usage fails cleanly', async () => {
    let r = await run([join(tmp, 'nope.gguf')]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`pocketllm: no such file: ${join(tmp, 'nope.gguf')}\n`);
    r = await run([]);
    expect(r.code).toBe(2);
    r = await run([STORIES, '--bogus']);
    expect(r.code).toBe(2);
  });

  it('an unsupported architecture still gets the generic facts', async () => {
    const path = join(tmp, 'gpt2.gguf');
    const kv = [
      { key: 'general.architecture', type: GGUFValueType.STRING, value: 'gpt2' },
      { key: 'general.name', type: GGUFValueType.STRING, value: 'tiny gpt2' },
      { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'gpt2' },
      { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: ['a', 'b', '<|endoftext|>'] } },
      { key: 'tokenizer.ggml.eos_token_id', type: GGUFValueType.UINT32, value: 2 },
      { key: 'tokenizer.chat_template', type: GGUFValueType.STRING, value: '{{ messages }}' },
    ];
    const tensors = [{ name: 'token_embd.weight', shape: [32, 3], type: GGMLType.F16, data: () => [new Uint8Array(32 * 3 * 2)] }];
    const sink = await fileSink(path);
    await writeGGUF(sink, kv, tensors);
    await sink.close();

    const { code, out, err } = await run([path]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(line(out, 'architecture')).toBe('gpt2');
    expect(line(out, 'supported')).toMatch(/^no: unsupported architecture "gpt2"/);
    expect(line(out, 'tokenizer')).toBe('gpt2, 3 tokens');
    expect(line(out, 'special tokens')).toBe('eos 2 "<|endoftext|>"');
    expect(line(out, 'chat template')).toBe('present');
    expect(out).toMatch(/\n\s+F16\s+1 tensors\s+192 bytes/);
    const json = JSON.parse((await run([path, '--json'])).out);
    expect(json.supported).toBe(false);
    expect(json.hparams).toBe(null);
    expect(json.unsupportedReason).toMatch(/gpt2/);
  });
});
