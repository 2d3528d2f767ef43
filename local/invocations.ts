/**
 * The local stack's one instrumentation point: each handler invocation it makes (the API
 * front's, the pollers', the sweeper's timer) is published on the diagnostics channel
 * `waas:local:invocation` with its function and duration, as Lambda's REPORT line tells them.
 * Nothing is published while nobody subscribes; the benchmark subscribes to price Lambda.
 *
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(invocationChannel, (report) => console.log(report)); // { functionName: 'execute', durationMs: 12.3 }
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import type { Context } from 'aws-lambda';
import type { FunctionName } from '../lib/definitions.ts';

export const invocationChannel = 'waas:local:invocation';

export interface InvocationReport {
  functionName: FunctionName;
  durationMs: number;
}

const reports = channel(invocationChannel);

/** Invokes a handler as Lambda would, and reports how long it ran. */
export async function invoke<E, R>(functionName: FunctionName, handler: (event: E, context: Context) => Promise<R>, event: E, context: Context): Promise<R> {
  const started = performance.now();
  try {
    return await handler(event, context);
  } finally {
    if (reports.hasSubscribers) reports.publish({ functionName, durationMs: performance.now() - started } satisfies InvocationReport);
  }
}
