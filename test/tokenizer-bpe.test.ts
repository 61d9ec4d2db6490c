// Byte-level BPE tokenizer against the reference Hugging Face tokenizer (@huggingface/tokenizers,
// fed the same tokenizer.json): the Llama 3 and Qwen 3 vocabularies are converted to GGUF metadata
// (src/synth/vocab-hf.ts), written to an in-memory GGUF, read back and tokenized; every text of
// test/fixtures/tokenizer-corpus must give exactly the reference ids.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { readGGUFBytes } from '../src/gguf/reader.js';
import { GGUFValueType } from '../src/gguf/types.js';
import type { GGUFFile, GGUFKV } from '../src/gguf/types.js';
import { memorySink, writeGGUF } from '../src/gguf/writer.js';
import { hfTokenizerToGGUF, readLenmlTokenizerFiles } from '../src/synth/vocab-hf.js';
import type { HFTokenizerConfig, HFTokenizerJson, LenmlVocab } from '../src/synth/vocab-hf.js';
import { byteUnicodeTable } from '../src/tokenizer/byte-unicode.js';
import { knownPreTokenizers, PreTokenizer, preTokenizerFamily } from '../src/tokenizer/pre-tokenizers.js';
import { BpeTokenizer } from '../src/tokenizer/bpe.js';
import { createTokenizer } from '../src/tokenizer/index.js';
import { TokenizerError, TokenType } from '../src/tokenizer/tokenizer.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { readVocab } from '../src/tokenizer/vocab.js';
import type { Vocab } from '../src/tokenizer/vocab.js';

const CORPUS_DIR = join(import.meta.dirname, 'fixtures', 'tokenizer-corpus');

interface Case {
  readonly name: string;
  readonly text: string;
}

/** cases.json, each .txt file whole, and each of its lines. */
function loadCorpus(): Case[] {
  const cases: Case[] = JSON.parse(readFileSync(join(CORPUS_DIR, 'cases.json'), 'utf8')) as Case[];
  for (const f of readdirSync(CORPUS_DIR).filter((n) => n.endsWith('.txt')).sort()) {
    const text = readFileSync(join(CORPUS_DIR, f), 'utf8');
    cases.push({ name: f, text });
    text.split('\n').forEach((line, i) => cases.push({ name: `${f}:${i + 1}`, text: line }));
  }
  return cases;
}

const corpus = loadCorpus();

async function ggufFromKV(kv: GGUFKV[]): Promise<GGUFFile> {
  const sink = memorySink();
  await writeGGUF(sink, kv, []);
  return readGGUFBytes(sink.bytes(), '<test vocab>');
}

/** GGUF metadata of a three-token vocabulary ("a", "b", "ab"), for the error and edge cases. */
function tinyVocabKV(pre: string, extraTokens: string[] = [], extraTypes: number[] = []): GGUFKV[] {
  return [
    { key: 'tokenizer.ggml.model', type: GGUFValueType.STRING, value: 'gpt2' },
    { key: 'tokenizer.ggml.pre', type: GGUFValueType.STRING, value: pre },
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: ['a', 'b', 'ab', ...extraTokens] } },
    { key: 'tokenizer.ggml.token_type', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.INT32, items: Int32Array.from([1, 1, 1, ...extraTypes]) } },
    { key: 'tokenizer.ggml.merges', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: ['a b'] } },
  ];
}

function kvValue(kv: readonly GGUFKV[], key: string): GGUFKV['value'] | undefined {
  return kv.find((e) => e.key === key)?.value;
}

/** Each vocabulary is converted once for the whole file (conversion and GGUF writing take a second). */
const setUps = new Map<LenmlVocab, Promise<VocabUnderTest>>();
function vocabUnderTest(name: LenmlVocab): Promise<VocabUnderTest> {
  let p = setUps.get(name);
  if (!p) setUps.set(name, (p = setUp(name)));
  return p;
}

/** The first case whose ids differ, described for a readable failure; undefined when all agree. */
function firstMismatch(cases: readonly Case[], ours: (t: string) => number[], ref: (t: string) => number[]): string | undefined {
  for (const c of cases) {
    const a = ours(c.text);
    const b = ref(c.text);
    if (JSON.stringify(a) !== JSON.stringify(b)) return `${c.name} ${JSON.stringify(c.text).slice(0, 80)}\n ours ${JSON.stringify(a)}\n  ref ${JSON.stringify(b)}`;
  }
  return undefined;
}

interface VocabUnderTest {
  json: HFTokenizerJson;
  config: HFTokenizerConfig;
  kv: GGUFKV[];
  vocab: Vocab;
  ours: Tokenizer;
  /** Reference with every added token split out of the text (Hugging Face's default). */
  hf: HFTokenizer;
  /** Reference with only the tokens our GGUF marks USER_DEFINED split out (special tokens are text). */
  hfTextSpecials: HFTokenizer;
}

async function setUp(name: LenmlVocab): Promise<VocabUnderTest> {
  const { tokenizerJson: json, tokenizerConfig: config } = await readLenmlTokenizerFiles(name);
  const kv = hfTokenizerToGGUF(json, config);
  const file = await ggufFromKV(kv);
  const ours = createTokenizer(file);
  const types = kvValue(kv, 'tokenizer.ggml.token_type') as { items: Int32Array };
  const userDefined = (json.added_tokens ?? []).filter((a) => types.items[a.id] === TokenType.USER_DEFINED);
  return {
    json,
    config,
    kv,
    vocab: readVocab(file),
    ours,
    hf: new HFTokenizer(json, config),
    hfTextSpecials: new HFTokenizer({ ...json, added_tokens: userDefined }, config),
  };
}

describe.each([
  { name: 'llama3' as const, pre: 'llama-bpe', bosText: '<|begin_of_text|>', eosText: '<|end_of_text|>', addsBos: true },
  { name: 'qwen3' as const, pre: 'qwen2', bosText: undefined, eosText: '<|im_end|>', addsBos: false },
])('$name vocabulary', ({ name, pre, bosText, eosText, addsBos }) => {
  let v: VocabUnderTest;
  // Qwen's tokenizer.json normalizes to NFC before anything else.
  const normalized = (t: string): string => (name === 'qwen3' ? t.normalize('NFC') : t);

  beforeAll(async () => {
    v = await vocabUnderTest(name);
  });

  it('converts to GGUF metadata with the tokenizer.json tokens, types, merges and specials', () => {
    const tok = v.ours;
    expect(tok.kind).toBe('gpt2');
    expect(kvValue(v.kv, 'tokenizer.ggml.pre')).toBe(pre);
    const hfVocab = v.hf.get_vocab(true);
    expect(tok.vocabSize).toBe(hfVocab.size);
    for (const [text, id] of hfVocab) {
      if (tok.tokenText(id) !== text) expect(tok.tokenText(id)).toBe(text);
    }
    const merges = kvValue(v.kv, 'tokenizer.ggml.merges') as { items: readonly string[] };
    expect(merges.items.length).toBe(v.json.model.merges.length);
    const m0 = v.json.model.merges[0]!;
    expect(merges.items[0]).toBe(typeof m0 === 'string' ? m0 : m0.join(' '));
    expect(tok.bos).toBe(bosText === undefined ? undefined : v.hf.token_to_id(bosText));
    expect(tok.eos).toBe(v.hf.token_to_id(eosText));
    expect(tok.eog.has(tok.eos!)).toBe(true);
    expect(kvValue(v.kv, 'tokenizer.ggml.add_bos_token')).toBe(addsBos);
    expect(kvValue(v.kv, 'tokenizer.chat_template')).toBe(v.config.chat_template);
    const types = kvValue(v.kv, 'tokenizer.ggml.token_type') as { items: Int32Array };
    for (const a of v.json.added_tokens ?? []) {
      // Special added tokens, and ones that look like control tokens (<|...|>), become CONTROL.
      const control = a.special === true || (a.content.startsWith('<|') && a.content.endsWith('|>'));
      expect(types.items[a.id], a.content).toBe(control ? TokenType.CONTROL : TokenType.USER_DEFINED);
    }
  });

  it('gives the reference ids with special tokens parsed', () => {
    const mismatch = firstMismatch(
      corpus,
      (t) => v.ours.encode(t, { addBos: false, parseSpecial: true }),
      (t) => v.hf.encode(t, { add_special_tokens: false }).ids,
    );
    expect(mismatch).toBeUndefined();
  });

  it('gives the reference ids with special tokens as text (user-defined tokens still split)', () => {
    const mismatch = firstMismatch(
      corpus,
      (t) => v.ours.encode(t, { addBos: false, parseSpecial: false }),
      (t) => v.hfTextSpecials.encode(t, { add_special_tokens: false }).ids,
    );
    expect(mismatch).toBeUndefined();
  });

  it(`${addsBos ? 'adds' : 'does not add'} BOS by default, as the model's metadata says`, () => {
    // Qwen's post-processor adds nothing, so add_special_tokens = true must match our default. This
    // Llama 3 tokenizer.json predates Meta's BOS-adding post-processor, so its reference is BOS + ids.
    const mismatch = firstMismatch(
      corpus,
      (t) => v.ours.encode(t, { parseSpecial: true }),
      (t) => (addsBos ? [v.hf.token_to_id(bosText!)!, ...v.hf.encode(t, { add_special_tokens: false }).ids] : v.hf.encode(t, { add_special_tokens: true }).ids),
    );
    expect(mismatch).toBeUndefined();
    expect(v.ours.encode('', {})).toEqual(addsBos ? [v.ours.bos] : []);
  });

  it('decodes back to the text exactly, and as the reference decoder does', () => {
    for (const c of corpus) {
      const ids = v.ours.encode(c.text, { addBos: false, parseSpecial: true });
      expect(v.ours.decode(ids, { special: true }), c.name).toBe(normalized(c.text));
      expect(v.ours.decode(v.ours.encode(c.text, { addBos: false }))).toBe(normalized(c.text));
      if (ids.length > 0) {
        const ref = v.hf.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
        expect(v.ours.decode(ids, { special: true }), c.name).toBe(ref);
      }
    }
  });

  it('hides control tokens unless asked to show them', () => {
    const text = name === 'llama3' ? '<|begin_of_text|>hello<|eot_id|>' : '<|im_start|>hello<|im_end|><think>';
    const ids = v.ours.encode(text, { addBos: false, parseSpecial: true });
    expect(v.ours.decode(ids)).toBe(name === 'llama3' ? 'hello' : 'hello<think>');
    expect(v.ours.decode(ids, { special: true })).toBe(text);
  });

  it('streams decoded text without ever splitting a character', () => {
    for (const c of corpus) {
      const ids = v.ours.encode(c.text, { addBos: false, parseSpecial: true });
      const stream = v.ours.streamingDecoder({ special: true });
      let joined = '';
      let replacements = 0;
      for (const id of ids) {
        const chunk = stream.push(id);
        expect(chunk.isWellFormed(), c.name).toBe(true);
        replacements += chunk.split('\uFFFD').length - 1;
        joined += chunk;
      }
      joined += stream.flush();
      expect(joined, c.name).toBe(normalized(c.text));
      expect(replacements, c.name).toBe(c.text.split('\uFFFD').length - 1);
    }
  });

  it('gives the same bytes per token as the byte-level table', () => {
    const table = byteUnicodeTable();
    for (let b = 0; b < 256; b++) {
      const id = v.hf.token_to_id(table.byteToChar[b]!);
      expect(id, `byte ${b}`).toBeDefined();
      expect(Array.from(v.ours.tokenBytes(id!))).toEqual([b]);
    }
    expect(() => v.ours.decode([v.ours.vocabSize])).toThrow(TokenizerError);
    expect(() => v.ours.tokenText(-1)).toThrow(TokenizerError);
  });

  it('encodes 100 KB of varied text quickly (no quadratic blow-up)', () => {
    const fresh = new BpeTokenizer(v.vocab); // an empty word cache
    let text = '';
    for (let i = 0; text.length < 100_000; i++) text += corpus[i % corpus.length]!.text + '\n';
    const t0 = performance.now();
    const ids = fresh.encode(text, { addBos: false });
    const ms = performance.now() - t0;
    expect(fresh.decode(ids)).toBe(normalized(text));
    // A generous bound for a shared CI machine; bench/tokenizer.bench.ts measures it properly.
    expect(ms).toBeLessThan(3000);
    const t1 = performance.now();
    fresh.encode('a'.repeat(50_000) + ' '.repeat(50_000) + '\n'.repeat(1000) + '1'.repeat(20_000), { addBos: false });
    expect(performance.now() - t1).toBeLessThan(3000);
  });
});

describe('other pre-tokenizers, checked on the Llama 3 vocabulary', () => {
  let v: VocabUnderTest;
  beforeAll(async () => {
    v = await vocabUnderTest('llama3');
  });

  // The reference for each is a Hugging Face pre-tokenizer configuration with the same regex (the
  // tokenizer.json form; tokenizers.js translates Oniguruma's syntax itself). Our side is the
  // converted Llama 3 vocabulary with only tokenizer.ggml.pre changed.
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const split = (regex: string) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false });
  const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
  const TEKKEN =
    '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+';

  it.each([
    { pre: 'gpt-2', ignoreMerges: false, steps: [split(GPT2), byteLevel] },
    { pre: 'smollm', ignoreMerges: false, steps: [split('\\p{N}'), split(GPT2), byteLevel] },
    { pre: 'tekken', ignoreMerges: true, steps: [split(TEKKEN), byteLevel] },
  ])('$pre gives the reference ids', ({ pre, ignoreMerges, steps }) => {
    const variant: HFTokenizerJson = {
      ...v.json,
      normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: steps },
      model: { ...v.json.model, ignore_merges: ignoreMerges },
    };
    expect(kvValue(hfTokenizerToGGUF(variant, v.config, { pre }), 'tokenizer.ggml.pre')).toBe(pre);
    const ours = new BpeTokenizer({ ...v.vocab, pre });
    const hf = new HFTokenizer(variant, v.config);
    const mismatch = firstMismatch(
      corpus,
      (t) => ours.encode(t, { addBos: false, parseSpecial: true }),
      (t) => hf.encode(t, { add_special_tokens: false }).ids,
    );
    expect(mismatch).toBeUndefined();
  });

  it('pads the vocabulary to vocabSize with unused [PAD<id>] tokens', () => {
    const kv = hfTokenizerToGGUF(v.json, v.config, { vocabSize: 128_260 });
    const tokens = kvValue(kv, 'tokenizer.ggml.tokens') as { itemType: GGUFValueType; items: readonly string[] };
    const types = kvValue(kv, 'tokenizer.ggml.token_type') as { itemType: GGUFValueType; items: Int32Array };
    expect(tokens.itemType).toBe(GGUFValueType.STRING);
    expect(types.itemType).toBe(GGUFValueType.INT32);
    expect(tokens.items.length).toBe(128_260);
    expect(tokens.items[128_259]).toBe('[PAD128259]');
    expect(types.items[128_259]).toBe(TokenType.UNUSED);
    expect(() => hfTokenizerToGGUF(v.json, v.config, { vocabSize: 1000 })).toThrow(/smaller/);
  });
});

describe('byte-level BPE files', () => {
  it('every pre-tokenizer cuts text into non-empty words that join back to it', () => {
    for (const name of knownPreTokenizers()) {
      const pre = new PreTokenizer(preTokenizerFamily(name));
      for (const c of corpus) {
        const words = pre.split(c.text);
        expect(words.join(''), `${name}: ${c.name}`).toBe(c.text);
        expect(words.every((w) => w.length > 0), `${name}: ${c.name}`).toBe(true);
      }
    }
    expect(preTokenizerFamily(undefined).name).toBe('default');
    expect(new PreTokenizer(preTokenizerFamily('deepseek-llm')).split('Hello, 世界 123\n')).toEqual(['Hello', ',', ' ', '世界', ' ', '123', '\n']);
  });

  it('rejects an unknown pre-tokenizer by name', async () => {
    const file = await ggufFromKV(tinyVocabKV('no-such-pre'));
    expect(() => createTokenizer(file)).toThrow(TokenizerError);
    expect(() => createTokenizer(file)).toThrow(/"no-such-pre"/);
  });

  it('merges by rank and prints unused tokens as nothing', async () => {
    const tok = createTokenizer(await ggufFromKV(tinyVocabKV('gpt-2', ['[PAD3]'], [TokenType.UNUSED])));
    expect(tok.encode('abba', { addBos: false })).toEqual([2, 1, 0]);
    expect(tok.decode([2, 3, 1, 0], { special: true })).toBe('abba');
  });
});
