// GPT-2's byte-to-unicode table: every byte 0..255 maps to one printable code point, so byte-level
// BPE vocabularies can store arbitrary bytes as text ("Ġ" is the space byte 0x20, "Ċ" is "\n").
//
// The rule (from GPT-2's encoder.py, also used by Hugging Face tokenizers and llama.cpp's unicode.cpp):
// bytes that are already printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the
// other 68 bytes, in increasing order, map to U+0100, U+0101, ... in turn.

function isPrintableByte(b: number): boolean {
  return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
}

/** The two directions of the table; built once by `byteUnicodeTable()`, immutable afterwards. */
export interface ByteUnicodeTable {
  /** byte → its one-character string. */
  readonly byteToChar: readonly string[];
  /** code point → byte, or -1 when the code point stands for no byte (indexed up to U+0143). */
  readonly codePointToByte: { readonly [codePoint: number]: number; readonly length: number };
}

function buildTable(): ByteUnicodeTable {
  const byteToChar: string[] = new Array<string>(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) {
    byteToChar[b] = String.fromCharCode(isPrintableByte(b) ? b : next++);
  }
  const codePointToByte = new Int16Array(next).fill(-1);
  for (let b = 0; b < 256; b++) codePointToByte[byteToChar[b]!.charCodeAt(0)] = b;
  return { byteToChar: Object.freeze(byteToChar), codePointToByte };
}

const TABLE: ByteUnicodeTable = buildTable();

export function byteUnicodeTable(): ByteUnicodeTable {
  return TABLE;
}

/** UTF-8 bytes → their byte-level text (one character per byte). */
export function bytesToByteLevel(bytes: Uint8Array): string {
  const map = TABLE.byteToChar;
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += map[bytes[i]!];
  return out;
}

/** Byte of one byte-level character (its UTF-16 code unit), or -1 if it stands for no byte. */
export function byteLevelCharToByte(codeUnit: number): number {
  const t = TABLE.codePointToByte;
  return codeUnit < t.length ? t[codeUnit]! : -1;
}

/**
 * Byte-level text → the bytes it encodes. A character outside the table (a vocabulary entry that is
 * not byte-level text) contributes its own UTF-8 bytes, so nothing is lost.
 */
export function byteLevelToBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 4);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const b = byteLevelCharToByte(text.charCodeAt(i));
    if (b >= 0) {
      out[n++] = b;
      continue;
    }
    const cp = text.codePointAt(i)!;
    if (cp > 0xffff) i++;
    n += encodeCodePoint(cp, out, n);
  }
  return out.slice(0, n);
}

function encodeCodePoint(cp: number, out: Uint8Array, at: number): number {
  if (cp < 0x80) {
    out[at] = cp;
    return 1;
  }
  if (cp < 0x800) {
    out[at] = 0xc0 | (cp >> 6);
    out[at + 1] = 0x80 | (cp & 0x3f);
    return 2;
  }
  if (cp < 0x10000) {
    out[at] = 0xe0 | (cp >> 12);
    out[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
    out[at + 2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  out[at] = 0xf0 | (cp >> 18);
  out[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
  out[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
  out[at + 3] = 0x80 | (cp & 0x3f);
  return 4;
}
