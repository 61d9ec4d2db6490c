// Byte-level BPE tokenizer (tokenizer.ggml.model = "gpt2") as llama.cpp's llm_tokenizer_bpe and the
// Hugging Face tokenizer run it: special tokens are cut out of the text, the rest is normalized (Qwen:
// NFC), split into words by the pre-tokenizer named in tokenizer.ggml.pre, each word's UTF-8 bytes are
// written as GPT-2 byte-level characters and merged pairwise by merge rank (lowest first, leftmost on
// ties). Decoding maps the byte-level characters back to bytes.
//
// Special tokens: user-defined tokens (added tokens with special = false in tokenizer.json) are always
// matched in text; control tokens only with `parseSpecial`. This is llama.cpp's rule, and it is Hugging
// Face's too: HF splits every added token out of the text, special or not, unless special tokens are
// to be treated as text (split_special_tokens), in which case only the non-special ones still split.
// Matching is leftmost, then longest, as Hugging Face's added-token splitter does.
//
// Decoding does not apply Hugging Face's clean_up_tokenization_spaces (" ." → "."), so decoding the ids
// of a text gives that text back exactly.
import { bytesToByteLevel, byteLevelCharToByte, byteLevelToBytes, byteUnicodeTable } from './byte-unicode.js';
import { PreTokenizer, preTokenizerFamily } from './pre-tokenizers.js';
import { TokenizerError, TokenType } from './tokenizer.js';
import type { EncodeOptions, StreamingDecoder, Tokenizer } from './tokenizer.js';
import { Utf8StreamDecoder, decodeUtf8Pieces } from './utf8-stream.js';
import { tokenTypeOf } from './vocab.js';
import type { Vocab } from './vocab.js';
import { MergeHeap } from './merge-heap.js';
import { TokenPieces } from './token-pieces.js';

const utf8Encoder = new TextEncoder();

/** Words longer than this (in UTF-16 units) are merged every time rather than cached. */
const MAX_CACHED_WORD = 256;
/** The word cache is emptied when it reaches this many entries, bounding its memory. */
const MAX_CACHE_ENTRIES = 1 << 16;

/** A special token that may be cut out of text. */
interface SpecialMatch {
  readonly text: string;
  readonly id: number;
  /** Matched even without parseSpecial (user-defined tokens). */
  readonly always: boolean;
}

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'gpt2';
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly eog: ReadonlySet<number>;
  /** The pre-tokenizer family's canonical name ("llama-bpe", "qwen2", ...). */
  readonly pre: string;

  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly preTokenizer: PreTokenizer;
  private readonly ignoreMerges: boolean;
  /** Merge rank by "left right" (the stored merge string); lower merges first. */
  private readonly ranks: Map<string, number>;
  /** Special tokens by their first UTF-16 unit, longest text first. */
  private readonly specialsByFirstUnit: Map<number, SpecialMatch[]>;
  /** Token ids of each pre-tokenized word (raw text) seen so far. */
  private readonly wordCache = new Map<string, readonly number[]>();
  /** Bytes of each token, cached. */
  private readonly pieces: TokenPieces;

  constructor(private readonly vocab: Vocab) {
    if (!vocab.merges) throw new TokenizerError('byte-level BPE vocabulary has no merges (metadata "tokenizer.ggml.merges" is missing)');
    const family = preTokenizerFamily(vocab.pre);
    const n = vocab.tokens.length;
    this.vocabSize = n;
    this.pre = family.name;
    this.bos = vocab.special.bos;
    this.eos = vocab.special.eos;
    this.eog = vocab.eog;
    this.addBos = vocab.addBos ?? family.addBosDefault;
    this.addEos = vocab.addEos ?? false;
    this.preTokenizer = new PreTokenizer(family);
    this.ignoreMerges = family.ignoreMerges;
    this.pieces = new TokenPieces(vocab, byteLevelToBytes);

    this.ranks = new Map();
    const merges = vocab.merges;
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i]!;
      // First rank wins, as llama.cpp's map emplace keeps the first.
      if (!this.ranks.has(m)) this.ranks.set(m, i);
    }

    this.specialsByFirstUnit = new Map();
    for (let id = 0; id < n; id++) {
      const t = tokenTypeOf(vocab, id);
      const text = vocab.tokens[id]!;
      if (text.length === 0) continue;
      if (t !== TokenType.CONTROL && t !== TokenType.UNKNOWN && t !== TokenType.USER_DEFINED) continue;
      const first = text.charCodeAt(0);
      let list = this.specialsByFirstUnit.get(first);
      if (!list) this.specialsByFirstUnit.set(first, (list = []));
      list.push({ text, id, always: t === TokenType.USER_DEFINED });
    }
    for (const list of this.specialsByFirstUnit.values()) list.sort((a, b) => b.text.length - a.text.length || a.id - b.id);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addBos = options.addBos ?? this.addBos;
    const addEos = options.addEos ?? this.addEos;
    const parseSpecial = options.parseSpecial ?? false;
    const out: number[] = [];
    if (addBos) out.push(this.requireSpecial(this.bos, 'BOS'));

    let from = 0;
    for (let i = 0; i < text.length; ) {
      const special = this.specialAt(text, i, parseSpecial);
      if (special === undefined) {
        i++;
        continue;
      }
      if (i > from) this.encodeFragment(text.slice(from, i), out);
      out.push(special.id);
      i += special.text.length;
      from = i;
    }
    if (from < text.length) this.encodeFragment(from === 0 ? text : text.slice(from), out);

    if (addEos) out.push(this.requireSpecial(this.eos, 'EOS'));
    return out;
  }

  decode(ids: readonly number[], options: { special?: boolean } = {}): string {
    const special = options.special ?? false;
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      const bytes = this.pieces.bytes(id, special);
      parts.push(bytes);
    }
    return decodeUtf8Pieces(parts);
  }

  tokenBytes(id: number): Uint8Array {
    return this.pieces.bytes(id, true);
  }

  tokenText(id: number): string {
    this.pieces.checkId(id);
    return this.vocab.tokens[id]!;
  }

  streamingDecoder(options: { special?: boolean } = {}): StreamingDecoder {
    const special = options.special ?? false;
    const utf8 = new Utf8StreamDecoder();
    return {
      push: (token: number): string => utf8.push(this.pieces.bytes(token, special)),
      flush: (): string => utf8.flush(),
    };
  }

  /** The special token that starts at `text[i]`, longest first, or undefined. */
  private specialAt(text: string, i: number, parseSpecial: boolean): SpecialMatch | undefined {
    const candidates = this.specialsByFirstUnit.get(text.charCodeAt(i));
    if (!candidates) return undefined;
    for (const c of candidates) {
      if ((parseSpecial || c.always) && text.startsWith(c.text, i)) return c;
    }
    return undefined;
  }

  /** Normalizes, pre-tokenizes and merges one stretch of text that holds no special token. */
  private encodeFragment(fragment: string, out: number[]): void {
    const words = this.preTokenizer.split(this.preTokenizer.normalize(fragment));
    for (const word of words) {
      const cached = this.wordCache.get(word);
      if (cached !== undefined) {
        for (const id of cached) out.push(id);
        continue;
      }
      const ids = this.encodeWord(toByteLevel(word));
      if (word.length <= MAX_CACHED_WORD) {
        if (this.wordCache.size >= MAX_CACHE_ENTRIES) this.wordCache.clear();
        this.wordCache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  /**
   * The merge loop over one byte-level word. Symbols are ranges of `word` in a linked list (one
   * character = one byte to start with); a min-heap of candidate pairs (rank, then leftmost) picks
   * each merge, and entries made stale by an earlier merge are skipped when popped.
   */
  private encodeWord(word: string): number[] {
    const whole = this.vocab.tokenToId.get(word);
    if (whole !== undefined && (this.ignoreMerges || word.length === 1)) return [whole];

    const count = word.length;
    const start = new Int32Array(count);
    const len = new Int32Array(count);
    const prev = new Int32Array(count);
    const next = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      start[i] = i;
      len[i] = 1;
      prev[i] = i - 1;
      next[i] = i + 1 < count ? i + 1 : -1;
    }

    const heap = new MergeHeap(count);
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const a = start[left]!;
      const b = start[right]!;
      const rank = this.ranks.get(word.slice(a, a + len[left]!) + ' ' + word.slice(b, b + len[right]!));
      if (rank !== undefined) heap.push(rank, left, right, len[left]! + len[right]!);
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);

    while (heap.size > 0) {
      const left = heap.topLeft();
      const right = heap.topRight();
      const size = heap.topSize();
      heap.pop();
      // A symbol only ever grows, so a changed pair shows as a different total length.
      if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
      len[left] = size;
      len[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      tryAdd(prev[left]!, left);
      tryAdd(left, next[left]!);
    }

    const ids: number[] = [];
    for (let i = 0; i !== -1; i = next[i]!) this.emitSymbol(word.slice(start[i]!, start[i]! + len[i]!), ids);
    return ids;
  }

  /** A final symbol is a token, or else (a vocabulary missing a merge result) its byte tokens. */
  private emitSymbol(symbol: string, out: number[]): void {
    const id = this.vocab.tokenToId.get(symbol);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    for (const ch of symbol) {
      const byteId = this.vocab.tokenToId.get(ch);
      if (byteId === undefined) {
        const b = byteLevelCharToByte(ch.charCodeAt(0));
        throw new TokenizerError(`byte-level BPE vocabulary has no token for byte 0x${b.toString(16).padStart(2, '0')} (byte-level "${ch}")`);
      }
      out.push(byteId);
    }
  }




  private requireSpecial(id: number | undefined, what: string): number {
    if (id === undefined) throw new TokenizerError(`this vocabulary has no ${what} token to add`);
    return id;
  }
}

/** A word's UTF-8 bytes as byte-level text; ASCII words skip the UTF-8 encoder. */
function toByteLevel(word: string): string {
  const map = byteUnicodeTable().byteToChar;
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c >= 0x80) return bytesToByteLevel(utf8Encoder.encode(word));
    out += map[c];
  }
  return out;
}


