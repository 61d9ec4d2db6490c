// Byte sizes as people write them: "1GB", "512 MiB", "1.5g", or a plain number of bytes. Decimal
// units (KB, MB, GB) are powers of 1000 and binary units (KiB, MiB, GiB) powers of 1024, as on disks
// and in `free -h` respectively; a single letter (K, M, G) is read as the decimal unit.

const UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['k', 1e3],
  ['kb', 1e3],
  ['m', 1e6],
  ['mb', 1e6],
  ['g', 1e9],
  ['gb', 1e9],
  ['t', 1e12],
  ['tb', 1e12],
  ['kib', 2 ** 10],
  ['mib', 2 ** 20],
  ['gib', 2 ** 30],
  ['tib', 2 ** 40],
]);

export class ByteSizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ByteSizeError';
  }
}

/** A whole, positive number of bytes from a number or a string with an optional unit. */
export function parseByteSize(value: number | string, what = 'size'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ByteSizeError(`${what} must be a positive whole number of bytes, got ${value}`);
    return value;
  }
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
  const scale = m ? UNITS.get(m[2]!.toLowerCase()) : undefined;
  if (!m || scale === undefined) {
    throw new ByteSizeError(`${what} "${value}" is not a size: write a number of bytes or a number with KB, MB, GB, KiB, MiB or GiB (e.g. 1GB, 512MiB)`);
  }
  const bytes = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ByteSizeError(`${what} "${value}" must be more than 0 bytes`);
  return bytes;
}

/** 1234567 → "1.18 MiB": binary units, two decimals (how pocketllm reports memory). */
export function formatByteSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(2)} ${units[u]}`;
}
