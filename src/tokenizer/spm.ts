// SentencePiece tokenizer (tokenizer.ggml.model = "llama") as llama.cpp's llm_tokenizer_spm runs it:
// spaces become ▁, characters are merged pairwise by highest token score, leftovers fall back to
// <0xXX> byte tokens; special tokens are cut out of the text first; decoding reverses it.
import { TokenizerError, TokenType } from './tokenizer.js';
import type { EncodeOptions, StreamingDecoder, Tokenizer } from './tokenizer.js';
import { Utf8StreamDecoder, decodeUtf8Pieces } from './utf8-stream.js';
import { tokenTypeOf } from './vocab.js';
import type { Vocab } from './vocab.js';
import { MergeHeap } from './merge-heap.js';
import { TokenPieces } from './token-pieces.js';

/** U+2581 LOWER ONE EIGHTH BLOCK: SentencePiece's visible stand-in for a space. */
const SPACE_MARK = '\u2581';
const SPACE_MARK_RE = /\u2581/g;
const SPACE_RE = / /g;
const SPACE_BYTE = 0x20;

const utf8Encoder = new TextEncoder();

/** A piece of the input after special tokens are cut out: raw text, or an already chosen token. */
type Fragment = { readonly text: string } | { readonly token: number };

export class SpmTokenizer implements Tokenizer {
  readonly kind = 'llama';
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly eog: ReadonlySet<number>;

  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly addSpacePrefix: boolean;
  /** Merge priority by id (llama.cpp uses 0 when the file stores no scores). */
  private readonly scores: Float32Array;
  /** Token of each byte value (<0xXX>), or -1 when the vocabulary lacks it. */
  private readonly byteTokens: Int32Array;
  /** Tokens cut out of the text before merging, longest text first: all of them / user-defined only. */
  private readonly specialsWhenParsing: readonly number[];
  private readonly specialsAlways: readonly number[];
  /** Bytes of each token, cached. */
  private readonly pieces: TokenPieces;

  constructor(private readonly vocab: Vocab) {
    const n = vocab.tokens.length;
    this.vocabSize = n;
    this.bos = vocab.special.bos;
    this.eos = vocab.special.eos;
    this.eog = vocab.eog;
    this.addBos = vocab.addBos ?? true;
    this.addEos = vocab.addEos ?? false;
    this.addSpacePrefix = vocab.addSpacePrefix ?? true;
    this.scores = vocab.scores ?? new Float32Array(n);
    this.pieces = new TokenPieces(vocab, (text) => utf8Encoder.encode(text.replace(SPACE_MARK_RE, ' ')));

    this.byteTokens = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const hex = b.toString(16).toUpperCase().padStart(2, '0');
      // As llama.cpp: the <0xXX> token, else a token that is the byte itself (only for ASCII, where a
      // one-byte string is that byte).
      const id = vocab.tokenToId.get(`<0x${hex}>`) ?? (b < 0x80 ? vocab.tokenToId.get(String.fromCharCode(b)) : undefined);
      if (id !== undefined) this.byteTokens[b] = id;
    }

    const all: number[] = [];
    const userDefined: number[] = [];
    for (let id = 0; id < n; id++) {
      const t = tokenTypeOf(vocab, id);
      if (vocab.tokens[id]!.length === 0) continue;
      if (t === TokenType.CONTROL || t === TokenType.UNKNOWN || t === TokenType.USER_DEFINED) all.push(id);
      if (t === TokenType.USER_DEFINED) userDefined.push(id);
    }
    const longestFirst = (a: number, b: number) => vocab.tokens[b]!.length - vocab.tokens[a]!.length || a - b;
    this.specialsWhenParsing = all.sort(longestFirst);
    this.specialsAlways = userDefined.sort(longestFirst);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addBos = options.addBos ?? this.addBos;
    const addEos = options.addEos ?? this.addEos;
    const out: number[] = [];
    if (addBos) out.push(this.requireSpecial(this.bos, 'BOS'));

    const fragments = text.length > 0 ? this.partition(toWellFormed(text), options.parseSpecial ?? false) : [];
    // As llama.cpp: a text fragment at the start or right after a special token gets the space prefix.
    let prevSpecial = true;
    for (const f of fragments) {
      if ('token' in f) {
        out.push(f.token);
        prevSpecial = true;
        continue;
      }
      const prefixed = this.addSpacePrefix && prevSpecial ? ' ' + f.text : f.text;
      this.encodeText(prefixed.replace(SPACE_RE, SPACE_MARK), out);
      prevSpecial = false;
    }

    if (addEos) out.push(this.requireSpecial(this.eos, 'EOS'));
    return out;
  }

  decode(ids: readonly number[], options: { special?: boolean } = {}): string {
    const special = options.special ?? false;
    const parts: Uint8Array[] = [];
    for (let i = 0; i < ids.length; i++) {
      let bytes = this.pieces.bytes(ids[i]!, special);
      if (i === 1 && this.stripsSpaceAfter(ids[0]!, special)) bytes = withoutLeadingSpace(bytes);
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
    let index = 0;
    let first = -1;
    return {
      push: (token: number): string => {
        let bytes = this.pieces.bytes(token, special);
        if (index === 0) first = token;
        else if (index === 1 && this.stripsSpaceAfter(first, special)) bytes = withoutLeadingSpace(bytes);
        index++;
        return utf8.push(bytes);
      },
      flush: (): string => utf8.flush(),
    };
  }

  /**
   * Whether to drop the space right after `firstId`: encode puts the space prefix after BOS, so a
   * sequence that starts with a hidden BOS decodes to the original text. A continuation (ids without
   * BOS) keeps its leading space, as llama.cpp prints generated pieces, and so does a visible BOS
   * ("<s> Once", as llama.cpp's detokenize with special tokens shown).
   */
  private stripsSpaceAfter(firstId: number, special: boolean): boolean {
    return this.addSpacePrefix && !special && firstId === this.bos;
  }




  private requireSpecial(id: number | undefined, what: string): number {
    if (id === undefined) throw new TokenizerError(`this vocabulary has no ${what} token to add`);
    return id;
  }

  /**
   * Cuts special tokens out of the text, longest first, as llama.cpp's tokenizer_st_partition does.
   * User-defined tokens are always matched; control and unknown tokens only when `parseSpecial`.
   */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    let fragments: Fragment[] = [{ text }];
    const specials = parseSpecial ? this.specialsWhenParsing : this.specialsAlways;
    for (const id of specials) {
      const needle = this.vocab.tokens[id]!;
      let next: Fragment[] | undefined;
      for (let i = 0; i < fragments.length; i++) {
        const f = fragments[i]!;
        const at = 'text' in f ? f.text.indexOf(needle) : -1;
        if (at < 0) {
          next?.push(f);
          continue;
        }
        next ??= fragments.slice(0, i);
        const hay = (f as { text: string }).text;
        let from = 0;
        for (let m = at; m >= 0; m = hay.indexOf(needle, from)) {
          if (m > from) next.push({ text: hay.slice(from, m) });
          next.push({ token: id });
          from = m + needle.length;
        }
        if (from < hay.length) next.push({ text: hay.slice(from) });
      }
      if (next) fragments = next;
    }
    return fragments;
  }

  /**
   * The SentencePiece merge loop over one escaped fragment. Symbols are UTF-16 ranges of `text` in a
   * linked list; a max-heap of candidate pairs (score, then leftmost) picks each merge, and entries
   * made stale by an earlier merge are skipped when popped.
   */
  private encodeText(text: string, out: number[]): void {
    // Symbols: one per code point to start with.
    const cap = text.length;
    const start = new Int32Array(cap);
    const len = new Int32Array(cap);
    const prev = new Int32Array(cap);
    const next = new Int32Array(cap);
    let count = 0;
    for (let i = 0; i < text.length; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
      start[count] = i;
      len[count] = w;
      prev[count] = count - 1;
      next[count] = i + w < text.length ? count + 1 : -1;
      count++;
      i += w;
    }
    if (count === 0) return;

    const heap = new MergeHeap(count);
    const tryAdd = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const size = len[left]! + len[right]!;
      const id = this.vocab.tokenToId.get(text.slice(start[left]!, start[left]! + size));
      if (id === undefined) return;
      heap.push(-this.scores[id]!, left, right, size); // best score first
    };
    for (let i = 1; i < count; i++) tryAdd(i - 1, i);

    while (heap.size > 0) {
      const left = heap.topLeft();
      const right = heap.topRight();
      const size = heap.topSize();
      heap.pop();
      // Skip pairs whose symbols changed since the pair was queued (sizes only ever grow).
      if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
      len[left] = size;
      len[right] = 0;
      next[left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = left;
      tryAdd(prev[left]!, left);
      tryAdd(left, next[left]!);
    }

    for (let i = 0; i !== -1; i = next[i]!) this.emitSymbol(text.slice(start[i]!, start[i]! + len[i]!), out);
  }

  /** A final symbol is a token, or else its UTF-8 bytes as byte tokens (unk when one is missing). */
  private emitSymbol(piece: string, out: number[]): void {
    const id = this.vocab.tokenToId.get(piece);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    const bytes = utf8Encoder.encode(piece);
    const ids: number[] = [];
    for (const b of bytes) {
      const t = this.byteTokens[b]!;
      if (t < 0) {
        const unk = this.vocab.special.unk;
        if (unk === undefined) {
          throw new TokenizerError(`cannot encode ${JSON.stringify(piece)}: the vocabulary has neither a byte token for 0x${b.toString(16).padStart(2, '0')} nor an unknown token`);
        }
        out.push(unk);
        return;
      }
      ids.push(t);
    }
    for (const t of ids) out.push(t);
  }
}


/** Drops one leading space byte (the one the encoder added). */
function withoutLeadingSpace(bytes: Uint8Array): Uint8Array {
  return bytes.length > 0 && bytes[0] === SPACE_BYTE ? bytes.subarray(1) : bytes;
}

/** Replaces lone UTF-16 surrogates with U+FFFD, as converting the text to UTF-8 would. */
function toWellFormed(text: string): string {
  // Fast path: most text has no surrogates at all.
  if (!/[\uD800-\uDFFF]/.test(text)) return text;
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}
