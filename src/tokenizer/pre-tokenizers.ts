// The pre-tokenizers of byte-level BPE vocabularies, chosen by tokenizer.ggml.pre: the regexes that cut
// text into words before BPE merges run inside each word, plus the per-family flags llama.cpp attaches
// to the name (ignore_merges, default add-BOS) and the Unicode normalization the Hugging Face tokenizer
// applies first.
//
// The regexes are those of llama.cpp's llm_tokenizer_bpe (src/llama-vocab.cpp), which are the
// Hugging Face tokenizer.json ones, written as JavaScript Unicode regexes:
// - Oniguruma's \s is Unicode White_Space; JavaScript's \s differs (it adds U+FEFF and misses U+0085),
//   so \p{White_Space} / \P{White_Space} are spelled out.
// - JavaScript has no inline (?i:...) group: the case-insensitive contractions of Llama 3 and Qwen 2 are
//   expanded to ASCII character classes ('[sS]), as llama.cpp and Hugging Face tokenizers.js both do.
// - Where a family lists several regexes, each one splits every piece the previous left (matches and
//   the text between matches both become pieces, Hugging Face's "Isolated" split behaviour).
import { TokenizerError } from './tokenizer.js';

const WS = '\\p{White_Space}';
const NOT_WS = '\\P{White_Space}';

/** 's 't 're 've 'm 'll 'd, as written in GPT-2 (lowercase only). */
const CONTRACTIONS = "'s|'t|'re|'ve|'m|'ll|'d";
/** The same, case-insensitive (Llama 3, Qwen 2: "(?i:'s|'t|...)"). */
const CONTRACTIONS_ANY_CASE = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";

/** GPT-2: contractions, words, numbers and symbol runs each with an optional leading space. */
const GPT2_WORDS = `${CONTRACTIONS}| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!${NOT_WS})|${WS}+`;

/** Llama 3 / Qwen 2 shape; `digits` is the number rule (\p{N}{1,3} for Llama 3, \p{N} for Qwen 2). */
function llama3Like(digits: string): string {
  return (
    `(?:${CONTRACTIONS_ANY_CASE})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|${digits}` +
    `| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*|${WS}*[\\r\\n]+|${WS}+(?!${NOT_WS})|${WS}+`
  );
}

/** Mistral Tekken: words split at lower→upper case changes, digits one by one. */
const TEKKEN =
  '[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+' +
  '|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*' +
  `|\\p{N}| ?[^${WS}\\p{L}\\p{N}]+[\\r\\n/]*|${WS}*[\\r\\n]+|${WS}+(?!${NOT_WS})|${WS}+`;

/**
 * DeepSeek LLM's explicit list of cased letters (llama-vocab.cpp, from DeepSeek's tokenizer.json),
 * written with escapes so no editor or normalizer can change a code point.
 */
const DEEPSEEK_LETTERS =
  'A-Za-z\\u00B5\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u01BA\\u01BC-\\u01BF\\u01C4-\\u0293\\u0295-\\u02AF' +
  '\\u0370-\\u0373\\u0376\\u0377\\u037B-\\u037D\\u037F\\u0386\\u0388-\\u038A\\u038C\\u038E-\\u03A1' +
  '\\u03A3-\\u03F5\\u03F7-\\u0481\\u048A-\\u052F\\u0531-\\u0556\\u10A0-\\u10C5\\u13A0-\\u13F5\\u13F8-\\u13FD' +
  '\\u1C90-\\u1CBA\\u1CBD-\\u1CBF\\u1D00-\\u1D2B\\u1D6B-\\u1D77\\u1D79-\\u1D9A\\u1E00-\\u1F15\\u1F18-\\u1F1D' +
  '\\u1F20-\\u1F45\\u1F48-\\u1F4D\\u1F50-\\u1F57\\u1F59\\u1F5B\\u1F5D\\u1F5F-\\u1F7D\\u1F80-\\u1FB4' +
  '\\u1FB6-\\u1FBC\\u1FBE\\u1FC2-\\u1FC4\\u1FC6-\\u1FCC\\u1FD0-\\u1FD3\\u1FD6-\\u1FDB\\u1FE0-\\u1FEC' +
  '\\u1FF2-\\u1FF4\\u1FF6-\\u1FFC\\u2102\\u2107\\u210A-\\u2113\\u2115\\u2119-\\u211D\\u2124\\u2126\\u2128' +
  '\\u212A-\\u212D\\u212F-\\u2134\\u2139\\u213C-\\u213F\\u2145-\\u2149\\u214E\\u2183\\u2184\\u2C00-\\u2C7B' +
  '\\u2C7E-\\u2CE4\\u2CEB-\\u2CEE\\u2CF2\\u2CF3\\uA640-\\uA66D\\uA680-\\uA69B\\uA722-\\uA76F\\uA771-\\uA787' +
  '\\uA78B-\\uA78E\\uAB70-\\uABBF\\uFB00-\\uFB06\\uFB13-\\uFB17\\uFF21-\\uFF3A\\uFF41-\\uFF5A' +
  '\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}' +
  '\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}';

/** llama.cpp's "default" (also its choice when tokenizer.ggml.pre is absent). */
const DEFAULT_PATTERNS = [
  '[\\p{P}\\$\\+<=>\\^~\\|]+',
  `${CONTRACTIONS}| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!${NOT_WS})`,
  '\\p{N}+',
  '[0-9][0-9][0-9]',
];

/** A pre-tokenizer family: how text becomes words, and the flags that go with the family. */
export interface PreTokenizerFamily {
  /** The canonical name (the first of `names`). */
  readonly name: string;
  /** Every tokenizer.ggml.pre value that selects this family. */
  readonly names: readonly string[];
  /** Regex sources applied in turn (flags "gu"). */
  readonly patterns: readonly string[];
  /** Whole words found in the vocabulary are emitted without merging (Hugging Face ignore_merges). */
  readonly ignoreMerges: boolean;
  /** Add BOS when tokenizer.ggml.add_bos_token is absent (llama.cpp's per-family default). */
  readonly addBosDefault: boolean;
  /**
   * Unicode normalization of text before pre-tokenization. Qwen 2/3's tokenizer.json has an NFC
   * normalizer; llama.cpp skips it, we apply it so ids match the Hugging Face tokenizer on
   * decomposed input (it changes nothing on text that is already NFC).
   */
  readonly normalize: 'NFC' | undefined;
}

function family(names: string[], patterns: string[], flags: Partial<Pick<PreTokenizerFamily, 'ignoreMerges' | 'addBosDefault' | 'normalize'>> = {}): PreTokenizerFamily {
  return {
    name: names[0]!,
    names,
    patterns,
    ignoreMerges: flags.ignoreMerges ?? false,
    addBosDefault: flags.addBosDefault ?? false,
    normalize: flags.normalize,
  };
}

const FAMILIES: readonly PreTokenizerFamily[] = [
  family(['default'], DEFAULT_PATTERNS),
  // llama.cpp spells GPT-2's name "gpt-2"; "gpt2" (the model name) is accepted as the same thing.
  family(['gpt-2', 'gpt2', 'phi-2', 'mpt', 'olmo'], [GPT2_WORDS]),
  family(['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'pixtral'], [llama3Like('\\p{N}{1,3}')], { ignoreMerges: true, addBosDefault: true }),
  family(['qwen2', 'deepseek-r1-qwen'], [llama3Like('\\p{N}')], { normalize: 'NFC' }),
  family(['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone'], ['\\p{N}', `${CONTRACTIONS}| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|${WS}+(?!${NOT_WS})`]),
  family(['deepseek-llm'], [
    '[\\r\\n]',
    `${WS}?[${DEEPSEEK_LETTERS}]+`,
    `${WS}?[!-/:-~\\uFF01-\\uFF0F\\uFF1A-\\uFF5E\\u2018-\\u201F\\u3000-\\u3002]+`,
    `${WS}+$`,
    '[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+',
    '\\p{N}+',
  ]),
  family(['tekken'], [TEKKEN], { ignoreMerges: true, addBosDefault: true }),
];

/** Every accepted tokenizer.ggml.pre value. */
export function knownPreTokenizers(): string[] {
  return FAMILIES.flatMap((f) => f.names);
}

/**
 * The family named by tokenizer.ggml.pre. An absent value means "default", as in llama.cpp; an
 * unknown one is a TokenizerError (guessing would silently give wrong ids).
 */
export function preTokenizerFamily(pre: string | undefined): PreTokenizerFamily {
  const name = pre === undefined || pre === '' ? 'default' : pre;
  const found = FAMILIES.find((f) => f.names.includes(name));
  if (!found) {
    throw new TokenizerError(`unknown BPE pre-tokenizer "${name}" (tokenizer.ggml.pre); supported: ${knownPreTokenizers().join(', ')}`);
  }
  return found;
}

/** A compiled pre-tokenizer. Owns its RegExp objects (they carry lastIndex state), so one per tokenizer. */
export class PreTokenizer {
  readonly family: PreTokenizerFamily;
  private readonly regexes: readonly RegExp[];

  constructor(family: PreTokenizerFamily) {
    this.family = family;
    this.regexes = family.patterns.map((p) => new RegExp(p, 'gu'));
  }

  /** Normalizes `text` as the family's Hugging Face tokenizer does before splitting. */
  normalize(text: string): string {
    return this.family.normalize ? text.normalize(this.family.normalize) : text;
  }

  /** Cuts (already normalized) text into words; concatenated, the words give back `text`. */
  split(text: string): string[] {
    let pieces = [text];
    for (const re of this.regexes) {
      const next: string[] = [];
      for (const piece of pieces) splitIsolated(piece, re, next);
      pieces = next;
    }
    return pieces;
  }
}

/** Pushes every match of `re` in `text`, and every stretch between matches, onto `out`. */
function splitIsolated(text: string, re: RegExp, out: string[]): void {
  let prev = 0;
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    if (m === null) break;
    const start = m.index;
    const len = m[0].length;
    if (len === 0) {
      // An empty match would repeat forever: step over one code point (two units for a surrogate pair).
      const c = text.charCodeAt(re.lastIndex);
      re.lastIndex += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
      if (re.lastIndex > text.length) break;
      continue;
    }
    if (start > prev) out.push(text.slice(prev, start));
    out.push(m[0]);
    prev = start + len;
  }
  if (prev < text.length) out.push(text.slice(prev));
}
