// The SentencePiece tokenizer against llama.cpp: its vocab test cases (ggml-vocab-llama-spm.gguf.inp/.out,
// copied from llama.cpp's models/), its llama-tokenize output and the pieces and text it generated
// (shared/golden, see SUMMARY.md there), plus round trips, streaming and bad input.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readGGUFBytes } from '../src/gguf/reader.js';
import { GGUFValueType } from '../src/gguf/types.js';
import type { GGUFArray, GGUFFile, GGUFKV } from '../src/gguf/types.js';
import { buildGGUFHeader } from '../src/gguf/writer.js';
import { createTokenizer, readVocab, TokenizerError, TokenType } from '../src/tokenizer/index.js';
import type { Tokenizer } from '../src/tokenizer/index.js';

// shared/ sits beside the repository (as in CI's fresh clone).
const SHARED = fileURLToPath(new URL('../../shared/', import.meta.url));
const MODELS = `${SHARED}models`;
const GOLDEN = `${SHARED}golden`;

function loadFile(path: string): GGUFFile {
  // A fresh Uint8Array: the reader must not see a pooled Node Buffer.
  return readGGUFBytes(new Uint8Array(readFileSync(path)), path);
}

const llama2File = loadFile(`${MODELS}/llama-2-tiny-random.gguf`);
const storiesFile = loadFile(`${MODELS}/stories260K.gguf`);
const llama2 = createTokenizer(llama2File);
const stories = createTokenizer(storiesFile);

interface GoldenRun {
  prompt: string;
  prompt_tokens: number[];
  prompt_pieces: string[];
  generated_tokens: number[];
  generated_pieces: string[];
  generated_text: string;
}

function golden(name: string): GoldenRun {
  return JSON.parse(readFileSync(`${GOLDEN}/${name}`, 'utf8')) as GoldenRun;
}

const GOLDEN_RUNS: [string, Tokenizer][] = [
  ['stories260K/once_upon_a_time.greedy64.json', stories],
  ['stories260K/bos.greedy60.json', stories],
  ['llama-2-tiny-random/once_upon_a_time.greedy32.json', llama2],
  ['llama-2-tiny-random/bos.greedy32.json', llama2],
];

/** A GGUF holding only the given metadata (no tensors), parsed back. */
function fileWith(kv: GGUFKV[]): GGUFFile {
  return readGGUFBytes(buildGGUFHeader(kv, []), '<test>');
}

/** The real Llama-2 vocabulary's metadata with some keys replaced or removed. */
function llama2Metadata(change: Record<string, GGUFKV | null>): GGUFKV[] {
  const out: GGUFKV[] = [];
  for (const kv of llama2File.kv) {
    if (!kv.key.startsWith('tokenizer.')) continue;
    if (kv.key in change) {
      const repl = change[kv.key];
      if (repl) out.push(repl);
    } else out.push(kv);
  }
  for (const [key, kv] of Object.entries(change)) if (kv && !llama2File.metadata.has(key)) out.push(kv);
  return out;
}

function strings(key: string, items: string[]): GGUFKV {
  return { key, type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items } };
}

describe('SentencePiece encode matches llama.cpp', () => {
  it('reproduces every case of ggml-vocab-llama-spm (Llama-2 vocab, no BOS, no special parsing)', () => {
    const inputs = readFileSync(`${MODELS}/tokenizer-tests/ggml-vocab-llama-spm.gguf.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
    const expected = readFileSync(`${MODELS}/tokenizer-tests/ggml-vocab-llama-spm.gguf.out`, 'utf8').split('\n');
    // The .inp ends with a separator, so it has one trailing empty piece.
    expect(inputs.at(-1)).toBe('');
    inputs.pop();
    expect(expected.at(-1)).toBe('');
    expected.pop();
    expect(inputs.length).toBe(expected.length);
    expect(inputs.length).toBeGreaterThan(40);
    const got = inputs.map((text) => llama2.encode(text, { addBos: false, parseSpecial: false }).join(' '));
    const want = expected.map((line) => line.trim());
    expect(got).toEqual(want);
  });

  it('tokenizes "Once upon a time" with BOS as llama-tokenize did (stories260K and Llama-2 vocabs)', () => {
    for (const [dir, tok] of [['stories260K', stories], ['llama-2-tiny-random', llama2]] as const) {
      const want = JSON.parse(readFileSync(`${GOLDEN}/${dir}/once_upon_a_time.llama-tokenize.txt`, 'utf8')) as number[];
      expect(tok.encode('Once upon a time')).toEqual(want);
    }
    expect(stories.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
  });

  it('agrees with the prompt tokens of every golden run', () => {
    for (const [name, tok] of GOLDEN_RUNS) {
      const run = golden(name);
      expect(tok.encode(run.prompt)).toEqual(run.prompt_tokens);
    }
  });

  it('encodes 100 KB of text well under a second', () => {
    const line = 'The quick brown fox, 日本語のテキスト and 🦙 emoji — jumps over the lazy dog.\n';
    const text = line.repeat(Math.ceil(100_000 / line.length));
    const t0 = performance.now();
    const ids = llama2.encode(text);
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(1000);
    expect(llama2.decode(ids)).toBe(text);
  });
});

describe('SentencePiece decode matches llama.cpp', () => {
  it('gives each golden token the piece llama.cpp printed for it (special tokens shown)', () => {
    for (const [name, tok] of GOLDEN_RUNS) {
      const run = golden(name);
      const ids = [...run.prompt_tokens, ...run.generated_tokens];
      const pieces = [...run.prompt_pieces, ...run.generated_pieces];
      expect(ids.map((id) => tok.decode([id], { special: true }))).toEqual(pieces);
    }
  });

  it('decodes the generated tokens to the generated text, at once and streamed piece by piece', () => {
    for (const [name, tok] of GOLDEN_RUNS) {
      const run = golden(name);
      expect(tok.decode(run.generated_tokens)).toBe(run.generated_text);
      const stream = tok.streamingDecoder();
      let text = '';
      for (const id of run.generated_tokens) text += stream.push(id);
      text += stream.flush();
      expect(text).toBe(run.generated_text);
    }
  });

  it('decodes the whole golden sequence as llama-simple printed it (BOS shown with special)', () => {
    const simple = readFileSync(`${GOLDEN}/stories260K/once_upon_a_time.llama-simple.txt`, 'utf8');
    const run = golden('stories260K/once_upon_a_time.greedy64.json');
    const ids = [...run.prompt_tokens, ...run.generated_tokens];
    // llama-simple prints the prompt pieces, then each generated piece, then a newline.
    expect(run.prompt_pieces.join('') + run.generated_text + '\n').toBe(simple);
    expect(ids.map((id) => stories.decode([id], { special: true })).join('') + '\n').toBe(simple);
    // Without `special` the BOS prints nothing and the space encode put after it is dropped.
    expect(stories.decode(ids)).toBe(run.prompt + run.generated_text);
  });
});

const MULTILINGUAL = [
  'Hello, world! How are you?',
  '  leading and trailing spaces  ',
  'tabs\tand\nnewlines\r\n\n end',
  '日本語のテキスト、中文文本和한국어',
  'مرحبا بالعالم',
  'Ünïcödé àccénts: café, naïve, Ångström',
  'emoji 🦙🚀 and ZWJ 👩‍👩‍👧‍👦 🏳️‍🌈 and flags 🇫🇷',
  'Привет, мир! Γειά σου Κόσμε',
  'math ∑ x² ≤ ∞ and ½ ¾',
  '<s> looks like a control token </s>',
];

describe('round trips', () => {
  it('decode(encode(text)) gives the text back for multilingual text and emoji', () => {
    for (const tok of [llama2, stories]) {
      for (const text of MULTILINGUAL) {
        expect(tok.decode(tok.encode(text))).toBe(text);
        expect(tok.decode(tok.encode(text, { addBos: false })).slice(1)).toBe(text);
      }
    }
  });

  it('streams characters split over byte tokens without ever showing half of one', () => {
    // The 512-token stories260K vocabulary has no CJK or emoji pieces: they become <0xXX> tokens.
    const text = '日本語 🦙 👩‍👩‍👧 ok';
    const ids = stories.encode(text);
    const byteTokens = ids.filter((id) => stories.tokenText(id).startsWith('<0x'));
    expect(byteTokens.length).toBeGreaterThan(10);
    const stream = stories.streamingDecoder();
    const outputs = ids.map((id) => stream.push(id));
    outputs.push(stream.flush());
    for (const piece of outputs) {
      expect(piece).not.toContain('\uFFFD');
      expect(piece).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    }
    // Some pushes had to wait for the rest of a character.
    expect(outputs.filter((s) => s === '').length).toBeGreaterThan(5);
    expect(outputs.join('')).toBe(text);
    expect(stories.decode(ids)).toBe(text);
  });

  it('turns an incomplete byte sequence at the end into U+FFFD', () => {
    const ids = stories.encode('🦙', { addBos: false });
    const cut = ids.slice(0, -1);
    expect(stories.decode(cut)).toContain('\uFFFD');
    const stream = stories.streamingDecoder();
    let text = '';
    for (const id of cut) text += stream.push(id);
    expect(text).not.toContain('\uFFFD');
    expect(stream.flush()).toContain('\uFFFD');
  });

  it('maps byte tokens to their bytes and normal pieces to text with spaces', () => {
    const a = llama2.encode('A', { addBos: false });
    expect(a.map((id) => llama2.tokenText(id))).toEqual(['▁A']);
    expect(Array.from(llama2.tokenBytes(a[0]!))).toEqual([0x20, 0x41]);
    const byte0A = llama2File.metadata.get('tokenizer.ggml.tokens')!.value;
    expect((byte0A as GGUFArray).items[13]).toBe('<0x0A>');
    expect(Array.from(llama2.tokenBytes(13))).toEqual([0x0a]);
  });
});

describe('special tokens', () => {
  it('keeps "<s>" in the text as text unless parseSpecial', () => {
    const plain = llama2.encode('Hi <s> there', { addBos: false });
    expect(plain).not.toContain(1);
    expect(llama2.decode(plain).slice(1)).toBe('Hi <s> there');
    const parsed = llama2.encode('Hi <s> there', { addBos: false, parseSpecial: true });
    expect(parsed.filter((id) => id === 1).length).toBe(1);
    // As llama.cpp: the text after a special token gets the space prefix again.
    expect(parsed).toEqual([...llama2.encode('Hi ', { addBos: false }), 1, ...llama2.encode(' there', { addBos: false })]);
    expect(llama2.encode('</s>', { addBos: false, parseSpecial: true })).toEqual([2]);
  });

  it('adds BOS by default, EOS on request, and renders control tokens only with special', () => {
    const ids = llama2.encode('hi', { addEos: true });
    expect(ids[0]).toBe(1);
    expect(ids.at(-1)).toBe(2);
    expect(llama2.decode(ids)).toBe('hi');
    expect(llama2.decode(ids, { special: true })).toBe('<s> hi</s>');
    expect(llama2.encode('')).toEqual([1]);
    expect(llama2.encode('', { addBos: false })).toEqual([]);
  });

  it('reads the special ids and end-of-generation set of the Llama-2 vocabulary', () => {
    expect(llama2.vocabSize).toBe(32000);
    expect(llama2.kind).toBe('llama');
    expect([llama2.bos, llama2.eos]).toEqual([1, 2]);
    expect([...llama2.eog]).toEqual([2]);
    const vocab = readVocab(llama2File);
    expect(vocab.special.unk).toBe(0);
    expect(vocab.tokenTypes?.[0]).toBe(TokenType.UNKNOWN);
    expect(vocab.tokenTypes?.[1]).toBe(TokenType.CONTROL);
    expect(vocab.tokenTypes?.[3]).toBe(TokenType.BYTE);
    // stories260K writes its pad id as 0xFFFFFFFF ("unset"), which must not be an error.
    const storiesVocab = readVocab(storiesFile);
    expect(storiesVocab.special.pad).toBeUndefined();
    expect(storiesVocab.special.sep).toBeUndefined();
    expect(storiesVocab.warnings).toEqual([]);
    expect(storiesVocab.tokens.length).toBe(512);
  });

  it('finds end markers by text, as llama.cpp does when eot_token_id is missing', () => {
    const tokens = ['<unk>', '<s>', '</s>', '<|im_end|>', '<|im_start|>', '▁hi', '<0x0A>', '▁h', 'i'];
    const file = fileWith([
      { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'llama' },
      strings('tokenizer.ggml.tokens', tokens),
      { key: 'tokenizer.ggml.token_type', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.INT32, items: Int32Array.of(2, 3, 3, 1, 3, 1, 6, 1, 1) } },
      { key: 'tokenizer.ggml.padding_token_id', type: GGUFValueType.UINT32, value: 4 },
      { key: 'tokenizer.ggml.seperator_token_id', type: GGUFValueType.INT32, value: -1 },
      { key: 'tokenizer.ggml.fim_pad_token_id', type: GGUFValueType.UINT32, value: 99 },
    ]);
    const vocab = readVocab(file);
    // llama.cpp's key names (padding, seperator) under their short names; -1 means unset; a bad
    // optional id is a warning.
    expect(vocab.special.pad).toBe(4);
    expect(vocab.special.sep).toBeUndefined();
    expect(vocab.specialIds.has('fim_pad')).toBe(false);
    expect(vocab.warnings.join()).toMatch(/fim_pad_token_id" = 99 is outside the vocabulary/);
    expect(vocab.special.eot).toBe(3);
    expect([...vocab.eog].sort()).toEqual([2, 3]);
    // The converter left <|im_end|> NORMAL: it is treated as a control token, as llama.cpp does.
    expect(vocab.tokenTypes?.[3]).toBe(TokenType.CONTROL);
    const tok = createTokenizer(file);
    expect(tok.encode('hi<|im_end|>', { addBos: false, parseSpecial: true })).toEqual([5, 3]);
    expect(tok.decode([5, 3])).toBe(' hi');
  });
});

describe('bad input', () => {
  it('rejects a file without tokenizer metadata', () => {
    const file = fileWith([{ key: 'general.architecture', type: GGUFValueType.STRING, value: 'llama' }]);
    expect(() => createTokenizer(file)).toThrow(TokenizerError);
    expect(() => createTokenizer(file)).toThrow(/no tokenizer in this file/);
    expect(() => readVocab(file)).toThrow(TokenizerError);
  });

  it('rejects an unknown tokenizer model by name', () => {
    const file = fileWith(llama2Metadata({ 'tokenizer.ggml.model': { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'xyz' } }));
    expect(() => createTokenizer(file)).toThrow(/unsupported tokenizer model "xyz"/);
  });

  it('rejects a vocabulary whose scores or types do not match its tokens', () => {
    const scores = { key: 'tokenizer.ggml.scores', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.FLOAT32, items: new Float32Array(10) } };
    expect(() => createTokenizer(fileWith(llama2Metadata({ 'tokenizer.ggml.scores': scores })))).toThrow(/"tokenizer.ggml.scores" has 10 entries .* 32000/);
    const types = { key: 'tokenizer.ggml.token_type', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.INT32, items: new Int32Array(31999) } };
    expect(() => createTokenizer(fileWith(llama2Metadata({ 'tokenizer.ggml.token_type': types })))).toThrow(TokenizerError);
    expect(() => createTokenizer(fileWith(llama2Metadata({ 'tokenizer.ggml.tokens': null })))).toThrow(/no token list/);
    const wrongType = { key: 'tokenizer.ggml.tokens', type: GGUFValueType.STRING, value: 'abc' };
    expect(() => createTokenizer(fileWith(llama2Metadata({ 'tokenizer.ggml.tokens': wrongType })))).toThrow(TokenizerError);
  });

  it('rejects a BOS id outside the vocabulary', () => {
    const bos = { key: 'tokenizer.ggml.bos_token_id', type: GGUFValueType.UINT32, value: 32000 };
    expect(() => createTokenizer(fileWith(llama2Metadata({ 'tokenizer.ggml.bos_token_id': bos })))).toThrow(/bos_token_id" = 32000 is outside the vocabulary of 32000 tokens/);
  });

  it('rejects token ids outside the vocabulary when decoding', () => {
    expect(() => llama2.decode([5, 32000])).toThrow(/token id 32000 is outside the vocabulary/);
    expect(() => llama2.streamingDecoder().push(-1)).toThrow(TokenizerError);
    expect(() => llama2.tokenText(1.5)).toThrow(TokenizerError);
  });
});
