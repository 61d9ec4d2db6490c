// Vocabularies for synthetic models, as GGUF tokenizer.* metadata: a self-contained minimal
// SentencePiece vocabulary, or the vocabulary of an existing GGUF file; either is padded to the
// shape's vocabulary size the way llama.cpp's converters pad (pieces "[PAD<id>]", type UNUSED).
import { readGGUF } from '../gguf/reader.js';
import { GGUFValueType } from '../gguf/types.js';
import type { GGUFArray, GGUFKV } from '../gguf/types.js';
import { openFileStorage } from '../storage/node.js';
import { TokenType } from '../tokenizer/tokenizer.js';

export interface SynthVocab {
  /** tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE). */
  readonly model: string;
  /** What the vocabulary is, for messages. */
  readonly description: string;
  /** Tokens that came from the source, before padding. */
  readonly sourceTokenCount: number;
  /** Tokens after padding (the shape's vocabulary size). */
  readonly tokenCount: number;
  /** Every tokenizer.* metadata entry, padded arrays included. */
  readonly entries: readonly GGUFKV[];
}

export class VocabError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VocabError';
  }
}

/** Score of a padding piece, as llama.cpp's SentencePiece converter writes it. */
const PAD_SCORE = -1000;

const KEY_TOKENS = 'tokenizer.ggml.tokens';
const KEY_SCORES = 'tokenizer.ggml.scores';
const KEY_TYPES = 'tokenizer.ggml.token_type';

function kv(key: string, type: GGUFValueType, value: GGUFKV['value']): GGUFKV {
  return { key, type, value };
}

function arrayKV(key: string, itemType: GGUFValueType, items: GGUFArray['items']): GGUFKV {
  return kv(key, GGUFValueType.ARRAY, { itemType, items });
}

/**
 * The smallest SentencePiece vocabulary that can tokenize any text: <unk>, <s>, </s>, the 256 byte
 * pieces <0x00>..<0xFF>, "▁", the printable ASCII characters and "▁a".."▁z" (scores falling with
 * the id, so merges are well defined), then padding up to `size`.
 */
export function minimalSpmVocab(size: number): SynthVocab {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  const pieces = ['\u2581'];
  for (let c = 0x21; c <= 0x7e; c++) pieces.push(String.fromCharCode(c));
  for (let c = 0x61; c <= 0x7a; c++) pieces.push('\u2581' + String.fromCharCode(c));
  pieces.forEach((p, i) => {
    tokens.push(p);
    types.push(TokenType.NORMAL);
    scores.push(-i);
  });
  if (size < tokens.length) throw new VocabError(`the minimal SentencePiece vocabulary has ${tokens.length} tokens, more than the shape's ${size}`);
  const source = tokens.length;
  const entries: GGUFKV[] = [
    kv('tokenizer.ggml.model', GGUFValueType.STRING, 'llama'),
    arrayKV(KEY_TOKENS, GGUFValueType.STRING, tokens),
    arrayKV(KEY_SCORES, GGUFValueType.FLOAT32, Float32Array.from(scores)),
    arrayKV(KEY_TYPES, GGUFValueType.INT32, Int32Array.from(types)),
    kv('tokenizer.ggml.bos_token_id', GGUFValueType.UINT32, 1),
    kv('tokenizer.ggml.eos_token_id', GGUFValueType.UINT32, 2),
    kv('tokenizer.ggml.unknown_token_id', GGUFValueType.UINT32, 0),
    kv('tokenizer.ggml.add_bos_token', GGUFValueType.BOOL, true),
    kv('tokenizer.ggml.add_eos_token', GGUFValueType.BOOL, false),
  ];
  return padVocab(entries, size, `minimal SentencePiece vocabulary (${source} tokens)`);
}

/** The tokenizer.* entries of a GGUF file, padded to `size` tokens. */
export async function vocabFromGGUF(path: string, size: number): Promise<SynthVocab> {
  const storage = await openFileStorage(path);
  try {
    const file = await readGGUF(storage);
    const entries = file.kv.filter((e) => e.key.startsWith('tokenizer.'));
    if (!entries.some((e) => e.key === KEY_TOKENS)) throw new VocabError(`${path} has no vocabulary (no ${KEY_TOKENS})`);
    return padVocab(entries, size, `vocabulary of ${path}`);
  } finally {
    await storage.close();
  }
}

/**
 * Pads the token, score and type arrays of `entries` to `size` tokens. A vocabulary larger than
 * `size` is refused: dropping tokens would change ids that merges and special-token keys refer to.
 */
export function padVocab(entries: readonly GGUFKV[], size: number, description: string): SynthVocab {
  const byKey = new Map(entries.map((e) => [e.key, e]));
  const tokens = stringItems(byKey.get(KEY_TOKENS));
  if (!tokens) throw new VocabError(`${description} has no ${KEY_TOKENS} string array`);
  const count = tokens.length;
  if (count > size) throw new VocabError(`${description} has ${count} tokens, more than the shape's vocabulary of ${size}`);
  const model = byKey.get('tokenizer.ggml.model')?.value;
  if (typeof model !== 'string') throw new VocabError(`${description} has no tokenizer.ggml.model`);
  for (const key of [KEY_SCORES, KEY_TYPES]) {
    const e = byKey.get(key);
    if (e && arrayLength(e) !== count) throw new VocabError(`${description}: ${key} has ${arrayLength(e)} items for ${count} tokens`);
  }
  if (count === size) return { model, description, sourceTokenCount: count, tokenCount: size, entries };

  const existing = new Set(tokens);
  const padded = tokens.slice();
  for (let id = count; id < size; id++) {
    let piece = `[PAD${id}]`;
    while (existing.has(piece)) piece += '_';
    padded.push(piece);
  }
  const out = entries.map((e): GGUFKV => {
    if (e.key === KEY_TOKENS) return arrayKV(KEY_TOKENS, GGUFValueType.STRING, padded);
    if (e.key === KEY_SCORES) return arrayKV(KEY_SCORES, GGUFValueType.FLOAT32, padNumbers(e, size, PAD_SCORE, Float32Array));
    if (e.key === KEY_TYPES) return arrayKV(KEY_TYPES, GGUFValueType.INT32, padNumbers(e, size, TokenType.UNUSED, Int32Array));
    return e;
  });
  return { model, description: `${description}, padded to ${size}`, sourceTokenCount: count, tokenCount: size, entries: out };
}

function stringItems(e: GGUFKV | undefined): readonly string[] | undefined {
  if (!e || e.type !== GGUFValueType.ARRAY) return undefined;
  const a = e.value as GGUFArray;
  return a.itemType === GGUFValueType.STRING ? (a.items as readonly string[]) : undefined;
}

function arrayLength(e: GGUFKV): number {
  return e.type === GGUFValueType.ARRAY ? (e.value as GGUFArray).items.length : -1;
}

function padNumbers<T extends Float32Array | Int32Array>(e: GGUFKV, size: number, fill: number, Kind: { new (n: number): T }): T {
  const items = (e.value as GGUFArray).items;
  if (!ArrayBuffer.isView(items) || items instanceof BigInt64Array || items instanceof BigUint64Array) {
    throw new VocabError(`${e.key} is not a numeric array`);
  }
  const out = new Kind(size);
  out.set(items as ArrayLike<number>);
  out.fill(fill, items.length);
  return out;
}
