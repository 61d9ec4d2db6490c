// `pocketllm quantize in.gguf out.gguf TYPE`: rewrites a model with another weight type, choosing each
// tensor's type as llama.cpp's llama-quantize does. The output is written to a temporary file beside
// the target and renamed into place only when complete, so a failure never leaves a half file.
import { rename, rm } from 'node:fs/promises';
import { readGGUF } from '../gguf/reader.js';
import { fileSink } from '../gguf/writer.js';
import { GGMLType } from '../quant/formats.js';
import type { FileType } from '../quant/quantize-model.js';
import { FILE_TYPES, parseFileType, planQuantization, writeQuantizedModel } from '../quant/quantize-model.js';
import { openFileStorage } from '../storage/node.js';
import type { Storage } from '../storage/storage.js';
import { CliUsageError, runCliCommand } from './args.js';
import { createProgress } from './progress.js';

const HELP = `usage: pocketllm quantize [options] in.gguf out.gguf TYPE

Writes out.gguf with its weights converted to TYPE, choosing per-tensor types as llama.cpp's
llama-quantize does (norms and 1-D tensors stay as they are; rows a type cannot hold fall back).

TYPE (case-insensitive): ${FILE_TYPES.map((t) => t.name).join(', ')}
  (Q3_K, Q4_K and Q5_K mean Q3_K_M, Q4_K_M and Q5_K_M)

  -q, --quiet   print nothing but errors
  -h, --help    show this help
`;

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(2)} MiB`;

export async function quantizeCommand(argv: string[]): Promise<number> {
  const config = {
    options: { quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  } as const;
  return runCliCommand({ name: 'quantize', help: HELP, config }, argv, async ({ values, positionals }) => {
    const [input, output, typeName, ...extra] = positionals;
    if (!input || !output || !typeName || extra.length > 0) {
      throw new CliUsageError(`expected in.gguf out.gguf TYPE (got ${positionals.length} arguments); see --help`);
    }
    const fileType = parseFileType(typeName);
    if (!fileType) throw new CliUsageError(`unknown type "${typeName}"; choose one of ${FILE_TYPES.map((t) => t.name).join(', ')}`);
    return quantizeFile(input, output, fileType, values.quiet === true);
  });
}

/** Writes `input` quantized to `fileType` into `output`, through a temporary file renamed at the end. */
async function quantizeFile(input: string, output: string, fileType: FileType, quiet: boolean): Promise<number> {
  let storage: Storage | undefined;
  const temp = `${output}.tmp-${process.pid}`;
  try {
    storage = await openFileStorage(input);
    const file = await readGGUF(storage);
    const plan = planQuantization(file, fileType);
    for (const t of plan.tensors) {
      if (t.fallback) process.stderr.write(`${t.info.name}: ${t.fallback.reason}; using ${GGMLType[t.to]} instead of ${GGMLType[t.fallback.wanted]}\n`);
    }
    const progress = quiet ? { update() {}, done() {} } : createProgress(`quantizing to ${fileType.name}`, plan.tensors.length);
    const sink = await fileSink(temp);
    let written: number;
    try {
      written = await writeQuantizedModel(plan, storage, sink, { onTensor: (done) => progress.update(done) });
      await sink.close();
    } catch (e) {
      progress.done();
      await sink.close().catch(() => undefined);
      throw e;
    }
    progress.done();
    await rename(temp, output);
    if (!quiet) {
      process.stdout.write(`${output}: ${plan.tensors.length} tensors, ${fileType.name} (file type ${fileType.ftype}), ${mib(storage.size)} -> ${mib(written)}\n`);
    }
    return 0;
  } catch (e) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw e;
  } finally {
    await storage?.close().catch(() => undefined);
  }
}
