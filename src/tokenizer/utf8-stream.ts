// Incremental UTF-8 decoding of token bytes: text is released only when its characters are complete,
// so a streamed reply never shows half of a multi-byte character.

export class Utf8StreamDecoder {
  private readonly decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  /** Adds bytes; returns the text whose characters are now complete. */
  push(bytes: Uint8Array): string {
    return this.decoder.decode(bytes, { stream: true });
  }

  /** Ends the stream; an incomplete trailing sequence becomes U+FFFD. */
  flush(): string {
    return this.decoder.decode();
  }
}

/** Decodes the concatenation of several byte pieces as one UTF-8 text (characters may span pieces). */
export function decodeUtf8Pieces(pieces: readonly Uint8Array[]): string {
  const utf8 = new Utf8StreamDecoder();
  let text = '';
  for (const p of pieces) text += utf8.push(p);
  return text + utf8.flush();
}
