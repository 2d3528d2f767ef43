/**
 * The local stack's one instrumentation point: each handler invocation its runtime makes (the
 * API front's, the pollers', the sweeper's timer) is published on the diagnostics channel
 * `waas:local:invocation` with its function and duration, as Lambda's REPORT line tells them.
 * Nothing is published while nobody subscribes; the benchmark subscribes to price Lambda.
 *
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(invocationChannel, (report) => console.log(report)); // { functionName: 'execute', durationMs: 12.3 }
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { FunctionName } from '../lib/definitions.ts';

export const invocationChannel = 'waas:local:invocation';

export interface InvocationReport {
  functionName: FunctionName;
  durationMs: number;
}

const reports = channel(invocationChannel);

/** Publishes one invocation's report, if anyone listens. */
export function invocationReport(functionName: FunctionName, durationMs: number): void {
  if (reports.hasSubscribers) reports.publish({ functionName, durationMs } satisfies InvocationReport);
}
