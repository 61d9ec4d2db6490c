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
