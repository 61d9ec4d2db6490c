// The facts about the machine and runtime that a benchmark result is meaningless without.
import os from 'node:os';

export interface MachineInfo {
  readonly cpu: string;
  /** Logical CPUs the OS reports. */
  readonly logicalCpus: number;
  readonly totalMemoryBytes: number;
  readonly platform: string;
  readonly arch: string;
  readonly node: string;
  /** V8 version (the wasm compiler). */
  readonly v8: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() || 'unknown CPU',
    logicalCpus: os.availableParallelism?.() ?? cpus.length,
    totalMemoryBytes: os.totalmem(),
    platform: `${os.type()} ${os.release()}`,
    arch: process.arch,
    node: process.version,
    v8: process.versions.v8,
  };
}
