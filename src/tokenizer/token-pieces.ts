// The bytes each token stands for, as llama.cpp's token_to_piece gives them, cached per id and shared
// by both vocabulary families; only how a NORMAL token's text becomes bytes differs between them
// (SentencePiece: ▁ → space; byte-level BPE: the GPT-2 character-to-byte map).
import { TokenType, TokenizerError } from './tokenizer.js';
import type { Vocab } from './vocab.js';
import { tokenTypeOf } from './vocab.js';

const EMPTY = new Uint8Array(0);
const BYTE_TOKEN_RE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8Encoder = new TextEncoder();

export class TokenPieces {
  private readonly cache: (Uint8Array | undefined)[];

  constructor(
    private readonly vocab: Vocab,
    /** Bytes of a NORMAL token's stored text. */
    private readonly normalToBytes: (text: string) => Uint8Array,
  ) {
    this.cache = new Array<Uint8Array | undefined>(vocab.tokens.length);
  }

  get size(): number {
    return this.vocab.tokens.length;
  }

  /** Throws a TokenizerError for an id outside the vocabulary. */
  checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new TokenizerError(`token id ${id} is outside the vocabulary of ${this.size} tokens`);
    }
  }

  /** Bytes of token `id`; control and unknown tokens are empty unless `special`. */
  bytes(id: number, special: boolean): Uint8Array {
    this.checkId(id);
    const type = tokenTypeOf(this.vocab, id);
    if (!special && (type === TokenType.CONTROL || type === TokenType.UNKNOWN)) return EMPTY;
    let bytes = this.cache[id];
    if (bytes === undefined) {
      bytes = this.compute(id, type);
      this.cache[id] = bytes;
    }
    return bytes;
  }

  private compute(id: number, type: TokenType): Uint8Array {
    const text = this.vocab.tokens[id]!;
    switch (type) {
      case TokenType.CONTROL:
      case TokenType.UNKNOWN:
      case TokenType.USER_DEFINED:
        // Special and added tokens are stored as plain text.
        return utf8Encoder.encode(text);
      case TokenType.NORMAL:
        return this.normalToBytes(text);
      case TokenType.BYTE: {
        const m = BYTE_TOKEN_RE.exec(text);
        if (!m) throw new TokenizerError(`token ${id} is of type BYTE but its text ${JSON.stringify(text)} is not of the form <0xXX>`);
        return Uint8Array.of(parseInt(m[1]!, 16));
      }
      default:
        // UNUSED and UNDEFINED tokens print nothing, as in llama.cpp.
        return EMPTY;
    }
  }
}
