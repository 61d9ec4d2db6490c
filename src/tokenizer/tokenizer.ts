// The Tokenizer contract every vocabulary family implements (SentencePiece in spm.ts, byte-level BPE
// in bpe.ts), and the token attributes they share.

/** GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
export enum TokenType {
  UNDEFINED = 0,
  NORMAL = 1,
  UNKNOWN = 2,
  CONTROL = 3,
  USER_DEFINED = 4,
  UNUSED = 5,
  BYTE = 6,
}

export interface EncodeOptions {
  /** Prepend BOS (default: the vocabulary's add_bos_token, or true for SentencePiece). */
  addBos?: boolean;
  /** Append EOS (default: the vocabulary's add_eos_token). */
  addEos?: boolean;
  /** Match control and user-defined tokens written in the text, such as "<|eot_id|>" (default false). */
  parseSpecial?: boolean;
}

/** Turns a stream of token ids into text without ever emitting half a UTF-8 character. */
export interface StreamingDecoder {
  /** Adds a token; returns the text that became complete (possibly ""). */
  push(token: number): string;
  /** Returns whatever is left (an incomplete byte sequence becomes U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  /** "llama" (SentencePiece) or "gpt2" (byte-level BPE), as in tokenizer.ggml.model. */
  readonly kind: string;
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  /** Every id that ends generation (EOS, EOT, EOM ... from metadata). */
  readonly eog: ReadonlySet<number>;
  encode(text: string, options?: EncodeOptions): number[];
  /** Text of a sequence of ids (control tokens render as empty unless `special`). */
  decode(ids: readonly number[], options?: { special?: boolean }): string;
  /** Raw bytes a token stands for (after byte-token and byte-level decoding). */
  tokenBytes(id: number): Uint8Array;
  /** The stored piece text of a token, as in tokenizer.ggml.tokens. */
  tokenText(id: number): string;
  streamingDecoder(options?: { special?: boolean }): StreamingDecoder;
}

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}
