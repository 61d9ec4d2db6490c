// `pocketllm info`: what a GGUF file holds — format facts, architecture and hyperparameters,
// tokenizer and special tokens, chat template, tensors by type — as text or JSON.
import { MetadataError, metaBool, metaNumber, metaString, metaStringArray } from '../gguf/metadata.js';
import { readGGUF } from '../gguf/reader.js';
import type { GGUFFile } from '../gguf/types.js';
import { UnsupportedModelError, readHParams } from '../model/hparams.js';
import type { HParams } from '../model/hparams.js';
import { globalTensorName } from '../model/tensor-names.js';
import { TYPE_TRAITS } from '../quant/formats.js';
import { openFileStorage } from '../storage/node.js';
import { CliUsageError, runCliCommand } from './args.js';

const HELP = `usage: pocketllm info model.gguf [--json]

  --json   print the facts as one JSON object
`;

/** llama.cpp's llama_ftype names (general.file_type), "MOSTLY_" dropped. */
const FILE_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'ALL_F32'], [1, 'F16'], [2, 'Q4_0'], [3, 'Q4_1'], [7, 'Q8_0'], [8, 'Q5_0'], [9, 'Q5_1'],
  [10, 'Q2_K'], [11, 'Q3_K_S'], [12, 'Q3_K_M'], [13, 'Q3_K_L'], [14, 'Q4_K_S'], [15, 'Q4_K_M'],
  [16, 'Q5_K_S'], [17, 'Q5_K_M'], [18, 'Q6_K'], [19, 'IQ2_XXS'], [20, 'IQ2_XS'], [21, 'Q2_K_S'],
  [22, 'IQ3_XS'], [23, 'IQ3_XXS'], [24, 'IQ1_S'], [25, 'IQ4_NL'], [26, 'IQ3_S'], [27, 'IQ3_M'],
  [28, 'IQ2_S'], [29, 'IQ2_M'], [30, 'IQ4_XS'], [31, 'IQ1_M'], [32, 'BF16'], [36, 'TQ1_0'],
  [37, 'TQ2_0'], [38, 'MXFP4_MOE'],
]);

/** Everything `info` reports, in the shape --json prints. */
export interface ModelInfo {
  readonly file: string;
  readonly fileSize: number;
  readonly gguf: { readonly version: number; readonly alignment: number; readonly dataOffset: number; readonly metadataCount: number; readonly tensorCount: number };
  readonly architecture: string | null;
  readonly name: string | null;
  readonly fileType: { readonly id: number; readonly name: string } | null;
  readonly supported: boolean;
  /** Why pocketllm cannot run the model, when it cannot. */
  readonly unsupportedReason: string | null;
  readonly hparams: HParams | null;
  /** True when rope_freqs.weight carries per-dimension frequency factors (Llama 3 scaling). */
  readonly ropeFreqFactors: boolean;
  readonly tokenizer: {
    readonly model: string | null;
    readonly pre: string | null;
    readonly vocabSize: number;
    readonly addBos: boolean | null;
    readonly addEos: boolean | null;
    /** bos, eos, unk, pad, eot, ... as in tokenizer.ggml.<kind>_token_id. */
    readonly special: Readonly<Record<string, { readonly id: number; readonly text: string | null }>>;
    readonly chatTemplate: boolean;
  };
  readonly tensors: {
    readonly count: number;
    readonly bytes: number;
    readonly parameters: number;
    readonly byType: Readonly<Record<string, { readonly count: number; readonly bytes: number }>>;
  };
}

const SPECIAL_TOKEN_KEY = /^tokenizer\.ggml\.(\w+)_token_id$/;
/** llama.cpp writes -1 as a u32 for "no such token". */
const UNSET_TOKEN_ID = 0xffffffff;

/** Collects the facts of a parsed file. */
export function describeModel(file: GGUFFile): ModelInfo {
  let hparams: HParams | null = null;
  let unsupportedReason: string | null = null;
  try {
    hparams = readHParams(file);
  } catch (e) {
    if (!(e instanceof UnsupportedModelError) && !(e instanceof MetadataError)) throw e;
    unsupportedReason = e.message;
  }
  const tokens = metaStringArray(file, 'tokenizer.ggml.tokens') ?? [];
  const special: Record<string, { id: number; text: string | null }> = {};
  for (const e of file.kv) {
    const m = SPECIAL_TOKEN_KEY.exec(e.key);
    if (!m) continue;
    const id = metaNumber(file, e.key)!;
    special[m[1]!] = { id, text: id >= 0 && id < tokens.length ? tokens[id]! : null };
  }
  const byType: Record<string, { count: number; bytes: number }> = {};
  let bytes = 0;
  let parameters = 0;
  for (const t of file.tensors) {
    const name = TYPE_TRAITS.get(t.type)?.name ?? `type ${t.type}`;
    const entry = (byType[name] ??= { count: 0, bytes: 0 });
    entry.count++;
    entry.bytes += t.byteSize;
    bytes += t.byteSize;
    parameters += t.elementCount;
  }
  const fileTypeId = metaNumber(file, 'general.file_type');
  return {
    file: file.source,
    fileSize: file.fileSize,
    gguf: { version: file.version, alignment: file.alignment, dataOffset: file.dataOffset, metadataCount: file.kv.length, tensorCount: file.tensors.length },
    architecture: metaString(file, 'general.architecture') ?? null,
    name: metaString(file, 'general.name') ?? null,
    fileType: fileTypeId === undefined ? null : { id: fileTypeId, name: FILE_TYPE_NAMES.get(fileTypeId) ?? `unknown (${fileTypeId})` },
    supported: hparams !== null,
    unsupportedReason,
    hparams,
    ropeFreqFactors: file.tensorsByName.has(globalTensorName('ropeFreqs')),
    tokenizer: {
      model: metaString(file, 'tokenizer.ggml.model') ?? null,
      pre: metaString(file, 'tokenizer.ggml.pre') ?? null,
      vocabSize: tokens.length,
      addBos: metaBool(file, 'tokenizer.ggml.add_bos_token') ?? null,
      addEos: metaBool(file, 'tokenizer.ggml.add_eos_token') ?? null,
      special,
      chatTemplate: file.metadata.has('tokenizer.chat_template'),
    },
    tensors: { count: file.tensors.length, bytes, parameters, byType },
  };
}

function n(x: number): string {
  return x.toLocaleString('en-US');
}

/** The text form of the facts. */
export function formatModelInfo(info: ModelInfo): string {
  const lines: string[] = [];
  const row = (label: string, value: string): void => {
    lines.push(`${label.padEnd(18)}${value}`);
  };
  row('file', `${info.file} (${n(info.fileSize)} bytes)`);
  row('gguf', `version ${info.gguf.version}, alignment ${info.gguf.alignment}, data offset ${n(info.gguf.dataOffset)}, ${info.gguf.metadataCount} metadata keys`);
  row('architecture', info.architecture ?? '(none)');
  row('name', info.name ?? '(none)');
  if (info.fileType) row('file type', `${info.fileType.name} (${info.fileType.id})`);
  const hp = info.hparams;
  if (hp) {
    row('vocab size', String(hp.vocabSize));
    row('context length', String(hp.trainContextLength));
    row('embedding length', String(hp.embeddingLength));
    row('blocks', String(hp.blockCount));
    row('feed-forward', String(hp.feedForwardLength));
    row('heads', `${hp.headCount} (kv ${hp.headCountKV}, head dim ${hp.headDim})`);
    const scaling = hp.ropeLlama3
      ? `, llama3 scaling x${hp.ropeLlama3.factor} (low ${hp.ropeLlama3.lowFreqFactor}, high ${hp.ropeLlama3.highFreqFactor}, original context ${hp.ropeLlama3.originalContextLength})`
      : hp.ropeFreqScale !== 1
        ? `, linear scale ${hp.ropeFreqScale}`
        : '';
    const factors = info.ropeFreqFactors ? ', frequency factors from rope_freqs.weight' : '';
    row('rope', `${hp.ropeStyle}, ${hp.ropeDims} dims, base ${hp.ropeFreqBase}${scaling}${factors}`);
    // The f32 epsilon (1e-5 is stored as 9.99999974e-6) shown as it was written.
    row('rms norm eps', String(Number(hp.rmsNormEps.toPrecision(6))));
    row(
      'tied embeddings',
      hp.tiedEmbeddings
        ? 'yes (the output matrix stays resident; embedding rows are read from it)'
        : 'no (token_embd stays in the file; each token\'s row is read when used)',
    );
  } else {
    row('supported', `no: ${info.unsupportedReason}`);
  }
  const tk = info.tokenizer;
  row('tokenizer', `${tk.model ?? '(none)'}${tk.pre ? ` (pre: ${tk.pre})` : ''}, ${n(tk.vocabSize)} tokens`);
  const specials = Object.entries(tk.special).map(([kind, s]) =>
    s.id === UNSET_TOKEN_ID ? `${kind} unset` : `${kind} ${s.id}${s.text === null ? ' (no such token)' : ` ${JSON.stringify(s.text)}`}`,
  );
  row('special tokens', specials.length ? specials.join(', ') : '(none)');
  const flags = [tk.addBos === null ? null : `add bos ${tk.addBos ? 'yes' : 'no'}`, tk.addEos === null ? null : `add eos ${tk.addEos ? 'yes' : 'no'}`].filter((x) => x !== null);
  if (flags.length) row('', flags.join(', '));
  row('chat template', tk.chatTemplate ? 'present' : 'absent');
  row('tensors', `${info.tensors.count}, ${n(info.tensors.bytes)} bytes, ${n(info.tensors.parameters)} weights`);
  for (const [type, t] of Object.entries(info.tensors.byType)) row('', `${type.padEnd(6)} ${String(t.count).padStart(5)} tensors  ${n(t.bytes).padStart(15)} bytes`);
  return lines.join('\n') + '\n';
}

export async function infoCommand(argv: string[]): Promise<number> {
  const config = { options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true } as const;
  return runCliCommand({ name: 'info', help: HELP, config }, argv, async ({ values, positionals }) => {
    if (positionals.length !== 1) throw new CliUsageError(`info takes one model file, got ${positionals.length}`);
    const storage = await openFileStorage(positionals[0]!);
    let info: ModelInfo;
    try {
      info = describeModel(await readGGUF(storage));
    } finally {
      await storage.close();
    }
    process.stdout.write(values.json ? JSON.stringify(info, null, 2) + '\n' : formatModelInfo(info));
    return 0;
  });
}
