// The KV cache flags shared by run, chat and bench: --kv-cache (storage precision) and --kv-resident
// (positions kept in memory before older ones spill to a temporary file), their help lines, and their
// parsing into loadModel options.
import { KV_PRECISIONS } from '../model/kv-cache.js';
import type { KVPrecision } from '../model/kv-cache.js';
import { CliUsageError, numberOption } from './args.js';

export const KV_HELP =
  `      --kv-cache T        KV cache storage: f32 (default), f16 (half the memory) or int8\n` +
  `                          (values per token and head, keys per channel: about a quarter)\n` +
  `      --kv-resident N     keep at most N positions of the KV cache in memory; older ones move to a\n` +
  `                          temporary file and are read back for attention (same output, less memory)\n`;

/** The parseArgs entries of the KV flags. */
export const KV_PARSE_OPTIONS = {
  'kv-cache': { type: 'string' },
  'kv-resident': { type: 'string' },
} as const;

/** --kv-cache and --kv-resident as loadModel options; a bad value is a usage error naming the flag. */
export function kvOptions(kvCache: string | undefined, kvResident: string | undefined): { kvCache?: KVPrecision; kvResidentTokens?: number } {
  const out: { kvCache?: KVPrecision; kvResidentTokens?: number } = {};
  if (kvCache !== undefined) {
    if (!(KV_PRECISIONS as readonly string[]).includes(kvCache)) throw new CliUsageError(`--kv-cache takes ${KV_PRECISIONS.join(', ')}; got "${kvCache}"`);
    out.kvCache = kvCache as KVPrecision;
  }
  const resident = numberOption(kvResident, '--kv-resident', { integer: true, min: 1 });
  if (resident !== undefined) out.kvResidentTokens = resident;
  return out;
}
