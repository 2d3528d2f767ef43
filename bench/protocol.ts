/** Messages between the bench (parent) and the stack process (bench/stack-child.ts), over IPC. */
import type { MeterSnapshot } from './meter.ts';

export interface InvocationStats {
  invocations: number;
  totalMs: number;
  /** Sum of durations rounded up to the millisecond, as Lambda bills. */
  billedMs: number;
  maxMs: number;
}

export type Invocations = Record<string, InvocationStats>;

export interface Snapshot {
  meter: MeterSnapshot;
  invocations: Invocations;
  /** Bytes of application log lines (Powertools JSON) written so far. */
  logBytes: number;
  errors: number;
  /** process.hrtime in microseconds: the clock of a .cpuprofile's timestamps. */
  hrtimeUs: number;
}

/** A stored item's size as DynamoDB counts it, and where its bytes are (cost.ts, itemBreakdown). */
export interface ItemSize {
  sk: string;
  bytes: number;
  attributes: Array<{ attribute: string; bytes: number }>;
}

export type ToChild = { type: 'snapshot'; id: number } | { type: 'itemSizes'; id: number; jobIds: string[] } | { type: 'stop' };

export type FromChild =
  | { type: 'ready'; url: string; pid: number }
  | ({ type: 'snapshot'; id: number } & Snapshot)
  | { type: 'itemSizes'; id: number; items: ItemSize[] }
  | { type: 'error'; message: string }
  | { type: 'fatal'; message: string };

/**
 * The BroadcastChannel between the local Lambda environments (bench/environment-meter.ts, in
 * their worker threads) and the stack process: it asks, they tell their meters.
 */
export const meterChannel = 'waas:bench:meter';

export type MeterMessage = { type: 'ask'; request: number } | { type: 'meter'; threadId: number; request: number | undefined; meter: MeterSnapshot };
