// The tokenizer factory: picks the tokenizer family named by tokenizer.ggml.model and builds it from
// the file's vocabulary. Every family is one case of the switch; anything else is a TokenizerError.
import type { GGUFFile } from '../gguf/types.js';
import { metaString, MetadataError } from '../gguf/metadata.js';
import { BpeTokenizer } from './bpe.js';
import { SpmTokenizer } from './spm.js';
import { TokenizerError } from './tokenizer.js';
import type { Tokenizer } from './tokenizer.js';
import { readVocab } from './vocab.js';

export { TokenizerError, TokenType } from './tokenizer.js';
export type { EncodeOptions, StreamingDecoder, Tokenizer } from './tokenizer.js';
export { readVocab, tokenTypeOf } from './vocab.js';
export type { SpecialTokens, Vocab } from './vocab.js';

/** Builds the tokenizer described by `file`'s metadata. Throws TokenizerError when there is none. */
export function createTokenizer(file: GGUFFile): Tokenizer {
  let model: string | undefined;
  try {
    model = metaString(file, 'tokenizer.ggml.model');
  } catch (e) {
    if (e instanceof MetadataError) throw new TokenizerError(e.message);
    throw e;
  }
  switch (model) {
    case undefined:
      throw new TokenizerError(`${file.source}: no tokenizer in this file (metadata "tokenizer.ggml.model" is missing)`);
    case 'llama':
      return new SpmTokenizer(readVocab(file));
    case 'gpt2':
      return new BpeTokenizer(readVocab(file));
    default:
      throw new TokenizerError(`${file.source}: unsupported tokenizer model "${model}" (supported: "llama", "gpt2")`);
  }
}
