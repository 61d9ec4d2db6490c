// The memory flags shared by run, chat and bench: --memory-budget SIZE, --cache-dir DIR, --no-cache,
// checked before any model is loaded.
import { ByteSizeError, parseByteSize } from '../memory/byte-size.js';
import { CliUsageError } from './args.js';

export interface MemoryCliOptions {
  memoryBudget?: number;
  cacheDir?: string | false;
}

/** A byte size from a flag, or a CliUsageError naming the flag. */
export function byteSizeOption(value: string, flag: string): number {
  try {
    return parseByteSize(value, flag);
  } catch (e) {
    if (e instanceof ByteSizeError) throw new CliUsageError(e.message);
    throw e;
  }
}

export function memoryOptions(budget: string | undefined, cacheDir: string | undefined, noCache: boolean | undefined): MemoryCliOptions {
  if (noCache && cacheDir !== undefined) throw new CliUsageError('--cache-dir and --no-cache contradict each other');
  const out: MemoryCliOptions = {};
  if (budget !== undefined) out.memoryBudget = byteSizeOption(budget, '--memory-budget');
  if (noCache) out.cacheDir = false;
  else if (cacheDir !== undefined) out.cacheDir = cacheDir;
  return out;
}
