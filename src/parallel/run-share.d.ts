// Types of run-share.js (plain JavaScript so worker threads can load it from src/ and dist/ alike).
import type { ControlLayout } from './control-block.js';

export type KernelFunction = (...args: number[]) => unknown;

/** Runs participant p's share of every op of the current dispatch. */
export function runShare(fns: readonly KernelFunction[], i32: Int32Array, f64: Float64Array, layout: ControlLayout, p: number, args: Float64Array): void;

/** The kernel functions named in `names`, in that order; throws naming a missing one. */
export function kernelFunctions(exports: object, names: readonly string[]): KernelFunction[];

/** spinPoll results: the value changed, the time ran out, or the thread was descheduled meanwhile. */
export const SPIN_CHANGED: 0;
export const SPIN_TIMEOUT: 1;
export const SPIN_PREEMPTED: 2;

/** Polls i32[index] while it equals `value`, for at most `ms` milliseconds (see run-share.js). */
export function spinPoll(i32: Int32Array, index: number, value: number, ms: number): 0 | 1 | 2;
