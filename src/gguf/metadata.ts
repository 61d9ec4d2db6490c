// Typed access to GGUF metadata: read a key as a number, string, bool or array, with a clear error
// naming the key when it is missing or of the wrong type.
import { GGUFValueType } from './types.js';
import type { GGUFArray, GGUFFile, GGUFValue } from './types.js';

export class MetadataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetadataError';
  }
}

function isArray(v: GGUFValue): v is GGUFArray {
  return typeof v === 'object' && v !== null && 'itemType' in v;
}

export function metaValue(file: GGUFFile, key: string): GGUFValue | undefined {
  return file.metadata.get(key)?.value;
}

export function metaNumber(file: GGUFFile, key: string): number | undefined;
export function metaNumber(file: GGUFFile, key: string, fallback: number): number;
export function metaNumber(file: GGUFFile, key: string, fallback?: number): number | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  throw new MetadataError(`${file.source}: metadata "${key}" should be a number, found ${describe(v)}`);
}

export function requireNumber(file: GGUFFile, key: string): number {
  const v = metaNumber(file, key);
  if (v === undefined) throw new MetadataError(`${file.source}: required metadata "${key}" is missing`);
  return v;
}

export function metaString(file: GGUFFile, key: string): string | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new MetadataError(`${file.source}: metadata "${key}" should be a string, found ${describe(v)}`);
  return v;
}

export function requireString(file: GGUFFile, key: string): string {
  const v = metaString(file, key);
  if (v === undefined) throw new MetadataError(`${file.source}: required metadata "${key}" is missing`);
  return v;
}

export function metaBool(file: GGUFFile, key: string): boolean | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return undefined;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  throw new MetadataError(`${file.source}: metadata "${key}" should be a bool, found ${describe(v)}`);
}

export function metaArray(file: GGUFFile, key: string): GGUFArray | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return undefined;
  if (!isArray(v)) throw new MetadataError(`${file.source}: metadata "${key}" should be an array, found ${describe(v)}`);
  return v;
}

export function metaStringArray(file: GGUFFile, key: string): readonly string[] | undefined {
  const a = metaArray(file, key);
  if (!a) return undefined;
  if (a.itemType !== GGUFValueType.STRING) throw new MetadataError(`${file.source}: metadata "${key}" should be an array of strings, found an array of ${GGUFValueType[a.itemType]}`);
  return a.items as readonly string[];
}

/** A numeric array as numbers (any integer or float item type). */
export function metaNumberArray(file: GGUFFile, key: string): ArrayLike<number> | undefined {
  const a = metaArray(file, key);
  if (!a) return undefined;
  const items = a.items;
  if (items instanceof BigInt64Array || items instanceof BigUint64Array) return Array.from(items, (x) => Number(x));
  if (ArrayBuffer.isView(items)) return items as ArrayLike<number>;
  throw new MetadataError(`${file.source}: metadata "${key}" should be a numeric array, found an array of ${GGUFValueType[a.itemType]}`);
}

function describe(v: GGUFValue): string {
  if (isArray(v)) return `an array of ${GGUFValueType[v.itemType]}`;
  return `${typeof v} ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)}`;
}
