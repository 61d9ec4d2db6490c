// The vocabulary facts every tokenizer family shares, read from GGUF metadata (tokenizer.ggml.*) and
// checked: token texts, scores, types, merges, special ids, add-BOS/EOS flags and the end-of-generation
// set, derived as llama.cpp's llama-vocab.cpp does.
import { GGUFValueType } from '../gguf/types.js';
import type { GGUFFile } from '../gguf/types.js';
import { metaArray, metaBool, metaNumber, metaString, MetadataError } from '../gguf/metadata.js';
import { TokenizerError, TokenType } from './tokenizer.js';

const KEY_PREFIX = 'tokenizer.ggml.';
const SPECIAL_ID_SUFFIX = '_token_id';

/** A u32 id of 0xFFFFFFFF (or -1 as i32) is how converters write "no such token". */
const UNSET_TOKEN_ID = 0xffffffff;

/**
 * Texts that llama.cpp treats as end of generation whatever the metadata says (llama-vocab.cpp keeps
 * this list because converters often leave eot_token_id unset).
 */
const EOG_TEXTS: ReadonlySet<string> = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<|return|>',
  '<|call|>',
  '<|flush|>',
  '<|calls|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '</s>',
  '<|eom_id|>',
  '<EOT>',
  '_<EOT>',
  '[EOT]',
  '[EOS]',
  '<|end_of_text|>',
  '<end_of_utterance>',
  '<eos>',
  '<turn|>',
  '<|tool_response>',
  '<｜end▁of▁sentence｜>',
  '[e~[',
]);

/** Texts llama.cpp takes for the end-of-turn token when tokenizer.ggml.eot_token_id is absent. */
const EOT_TEXTS: ReadonlySet<string> = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '<EOT>',
  '_<EOT>',
  '[EOT]',
  '<｜end▁of▁sentence｜>',
  '<end_of_utterance>',
]);

/** The special ids the tokenizers use by name; every other *_token_id lands in `Vocab.specialIds`. */
export interface SpecialTokens {
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly unk: number | undefined;
  readonly sep: number | undefined;
  readonly pad: number | undefined;
  readonly eot: number | undefined;
  readonly eom: number | undefined;
}

export interface Vocab {
  /** tokenizer.ggml.model: "llama" (SentencePiece), "gpt2" (byte-level BPE), ... */
  readonly model: string;
  /** tokenizer.ggml.pre: the pre-tokenizer name of BPE vocabularies. */
  readonly pre: string | undefined;
  /** Token texts by id, as stored (SentencePiece pieces keep their ▁). */
  readonly tokens: readonly string[];
  /** Merge priority of each token (SentencePiece); undefined when the file has none. */
  readonly scores: Float32Array | undefined;
  /**
   * TokenType of each token as stored, except that end-of-generation tokens are forced to CONTROL as
   * llama.cpp does; undefined when the file has none (every token is then NORMAL).
   */
  readonly tokenTypes: Int32Array | undefined;
  /** BPE merges "left right", highest priority first. */
  readonly merges: readonly string[] | undefined;
  /** First id of each token text. */
  readonly tokenToId: ReadonlyMap<string, number>;
  readonly special: SpecialTokens;
  /**
   * Every tokenizer.ggml.<name>_token_id inside the vocabulary, by <name> ("bos", "eos", "fim_pre"...),
   * with unknown/padding/seperator shortened to unk/pad/sep.
   */
  readonly specialIds: ReadonlyMap<string, number>;
  /** tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix; undefined = the family's default. */
  readonly addBos: boolean | undefined;
  readonly addEos: boolean | undefined;
  readonly addSpacePrefix: boolean | undefined;
  /** tokenizer.chat_template (Jinja). */
  readonly chatTemplate: string | undefined;
  /** Ids that end generation: eos, eot, eom and the well-known end markers. */
  readonly eog: ReadonlySet<number>;
  /** Facts that were ignored rather than fatal (an out-of-range pad id, ...). */
  readonly warnings: readonly string[];
}

/** The type of a token, NORMAL when the vocabulary stores no types. */
export function tokenTypeOf(vocab: Vocab, id: number): TokenType {
  return vocab.tokenTypes ? (vocab.tokenTypes[id] as TokenType) : TokenType.NORMAL;
}

/**
 * Short names for the metadata keys whose names differ from the usual ones (llama.cpp's LLM_KV names,
 * including the converter's historic "seperator" spelling).
 */
const SPECIAL_NAME_ALIASES: ReadonlyMap<string, string> = new Map([
  ['unknown', 'unk'],
  ['padding', 'pad'],
  ['seperator', 'sep'],
  ['separator', 'sep'],
  ['prefix', 'fim_pre'],
  ['suffix', 'fim_suf'],
  ['middle', 'fim_mid'],
]);

/** Special ids the generation loop cannot do without: a bad one is an error, not a warning. */
const REQUIRED_VALID_IDS: ReadonlySet<string> = new Set(['bos', 'eos', 'unk', 'eot', 'eom']);

/** Reads and checks the vocabulary of `file`. Throws TokenizerError on missing or inconsistent data. */
export function readVocab(file: GGUFFile): Vocab {
  try {
    return readVocabUnchecked(file);
  } catch (e) {
    if (e instanceof MetadataError) throw new TokenizerError(e.message);
    throw e;
  }
}

function readVocabUnchecked(file: GGUFFile): Vocab {
  const src = file.source;
  const model = metaString(file, `${KEY_PREFIX}model`);
  if (model === undefined) throw new TokenizerError(`${src}: no tokenizer in this file (metadata "${KEY_PREFIX}model" is missing)`);

  const tokensArr = metaArray(file, `${KEY_PREFIX}tokens`);
  if (!tokensArr) throw new TokenizerError(`${src}: tokenizer "${model}" has no token list (metadata "${KEY_PREFIX}tokens" is missing)`);
  if (tokensArr.itemType !== GGUFValueType.STRING) {
    throw new TokenizerError(`${src}: "${KEY_PREFIX}tokens" should be an array of strings, found an array of ${GGUFValueType[tokensArr.itemType]}`);
  }
  const tokens = tokensArr.items as readonly string[];
  const n = tokens.length;
  if (n === 0) throw new TokenizerError(`${src}: "${KEY_PREFIX}tokens" is empty`);

  const scores = readFloatArray(file, `${KEY_PREFIX}scores`, n);
  const tokenTypes = readIntArray(file, `${KEY_PREFIX}token_type`, n);

  const mergesArr = metaArray(file, `${KEY_PREFIX}merges`);
  let merges: readonly string[] | undefined;
  if (mergesArr) {
    if (mergesArr.itemType !== GGUFValueType.STRING) {
      throw new TokenizerError(`${src}: "${KEY_PREFIX}merges" should be an array of strings, found an array of ${GGUFValueType[mergesArr.itemType]}`);
    }
    merges = mergesArr.items as readonly string[];
  }

  const tokenToId = new Map<string, number>();
  for (let id = 0; id < n; id++) {
    const text = tokens[id]!;
    // First id wins: a later duplicate can still be produced by id but never chosen by text.
    if (text.length > 0 && !tokenToId.has(text)) tokenToId.set(text, id);
  }

  const warnings: string[] = [];
  const specialIds = new Map<string, number>();
  for (const [key, kv] of file.metadata) {
    if (!key.startsWith(KEY_PREFIX) || !key.endsWith(SPECIAL_ID_SUFFIX)) continue;
    const keyName = key.slice(KEY_PREFIX.length, key.length - SPECIAL_ID_SUFFIX.length);
    const name = SPECIAL_NAME_ALIASES.get(keyName) ?? keyName;
    const raw = metaNumber(file, key);
    if (raw === undefined || raw === -1 || raw === UNSET_TOKEN_ID) continue;
    if (!Number.isInteger(raw) || raw < 0 || raw >= n) {
      const message = `${src}: "${key}" = ${String(kv.value)} is outside the vocabulary of ${n} tokens`;
      if (REQUIRED_VALID_IDS.has(name)) throw new TokenizerError(message);
      warnings.push(`${message}; ignored`);
      continue;
    }
    // The current key wins over a deprecated alias (fim_pre over prefix).
    if (!specialIds.has(name) || keyName === name) specialIds.set(name, raw);
  }

  // llama.cpp's defaults for SentencePiece vocabularies that do not name their specials.
  if (model === 'llama') {
    for (const [name, id] of [['bos', 1], ['eos', 2], ['unk', 0]] as const) {
      if (!specialIds.has(name) && id < n) specialIds.set(name, id);
    }
  }

  let eot = specialIds.get('eot');
  if (eot === undefined) {
    for (let id = 0; id < n; id++) {
      if (EOT_TEXTS.has(tokens[id]!)) {
        eot = id;
        break;
      }
    }
  }
  const eom = specialIds.get('eom') ?? tokenToId.get('<|eom_id|>');

  const special: SpecialTokens = {
    bos: specialIds.get('bos'),
    eos: specialIds.get('eos'),
    unk: specialIds.get('unk'),
    sep: specialIds.get('sep'),
    pad: specialIds.get('pad'),
    eot,
    eom,
  };

  const eog = endOfGenerationIds(tokens, special, specialIds);

  let types = tokenTypes;
  if (types) {
    // llama.cpp overrides the type of control-looking end markers that converters left NORMAL, so they
    // are matched as specials and not printed.
    const forced = [...eog, ...(eot !== undefined ? [eot] : []), ...(eom !== undefined ? [eom] : [])];
    for (const id of forced) {
      const t = types[id]!;
      if (t !== TokenType.CONTROL && t !== TokenType.USER_DEFINED && t !== TokenType.UNKNOWN) {
        if (types === tokenTypes) types = Int32Array.from(tokenTypes);
        types[id] = TokenType.CONTROL;
      }
    }
  }

  const addBos = metaBool(file, `${KEY_PREFIX}add_bos_token`);
  const addEos = metaBool(file, `${KEY_PREFIX}add_eos_token`);
  if (addBos === true && special.bos === undefined) {
    throw new TokenizerError(`${src}: "${KEY_PREFIX}add_bos_token" is true, but "${KEY_PREFIX}bos_token_id" is not set`);
  }
  if (addEos === true && special.eos === undefined) {
    throw new TokenizerError(`${src}: "${KEY_PREFIX}add_eos_token" is true, but "${KEY_PREFIX}eos_token_id" is not set`);
  }

  return {
    model,
    pre: metaString(file, `${KEY_PREFIX}pre`),
    tokens,
    scores,
    tokenTypes: types,
    merges,
    tokenToId,
    special,
    specialIds,
    addBos,
    addEos,
    addSpacePrefix: metaBool(file, `${KEY_PREFIX}add_space_prefix`),
    chatTemplate: metaString(file, 'tokenizer.chat_template'),
    eog,
    warnings,
  };
}

/** eos, eot, eom, the FIM pad/repo/sep tokens and every token whose text is a well-known end marker. */
function endOfGenerationIds(tokens: readonly string[], special: SpecialTokens, specialIds: ReadonlyMap<string, number>): Set<number> {
  const eog = new Set<number>();
  for (const name of ['fim_pad', 'fim_rep', 'fim_sep']) {
    const id = specialIds.get(name);
    if (id !== undefined) eog.add(id);
  }
  let endId: number | undefined;
  let sId: number | undefined;
  const present = new Set<string>();
  for (let id = 0; id < tokens.length; id++) {
    const text = tokens[id]!;
    if (!EOG_TEXTS.has(text)) continue;
    eog.add(id);
    present.add(text);
    if (text === '<|end|>') endId ??= id;
    if (text === '</s>') sId ??= id;
  }
  for (const id of [special.eos, special.eot, special.eom]) if (id !== undefined) eog.add(id);

  // As llama.cpp: in vocabularies with <|return|>/<|call|> (gpt-oss harmony) or <|calls|>/<|flush|>
  // (solar-open), <|end|> closes a message, not the generation.
  const harmony = present.has('<|return|>') && present.has('<|call|>');
  const solar = present.has('<|calls|>') && present.has('<|flush|>');
  if ((harmony || solar) && endId !== undefined && endId !== special.eos) eog.delete(endId);
  // Gemma 4 ends tool responses with <|tool_response>; its </s> is ordinary text.
  if (present.has('<|tool_response>') && sId !== undefined && sId !== special.eos) eog.delete(sId);
  return eog;
}

function readFloatArray(file: GGUFFile, key: string, n: number): Float32Array | undefined {
  const arr = metaArray(file, key);
  if (!arr) return undefined;
  const items = arr.items;
  if (!ArrayBuffer.isView(items) || items instanceof BigInt64Array || items instanceof BigUint64Array) {
    throw new TokenizerError(`${file.source}: "${key}" should be an array of numbers, found an array of ${GGUFValueType[arr.itemType]}`);
  }
  checkLength(file, key, items.length, n);
  return items instanceof Float32Array ? items : Float32Array.from(items as ArrayLike<number>);
}

function readIntArray(file: GGUFFile, key: string, n: number): Int32Array | undefined {
  const arr = metaArray(file, key);
  if (!arr) return undefined;
  const items = arr.items;
  if (!ArrayBuffer.isView(items) || items instanceof BigInt64Array || items instanceof BigUint64Array || items instanceof Float32Array || items instanceof Float64Array) {
    throw new TokenizerError(`${file.source}: "${key}" should be an array of integers, found an array of ${GGUFValueType[arr.itemType]}`);
  }
  checkLength(file, key, items.length, n);
  return items instanceof Int32Array ? items : Int32Array.from(items as ArrayLike<number>);
}

function checkLength(file: GGUFFile, key: string, got: number, n: number): void {
  if (got !== n) {
    throw new TokenizerError(`${file.source}: "${key}" has ${got} entries but "${KEY_PREFIX}tokens" has ${n}; they must match`);
  }
}
