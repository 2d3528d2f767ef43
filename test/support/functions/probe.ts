/**
 * A Lambda handler for the local runtime's tests, run in its worker threads. What it does is
 * the event's `action`; it answers with what it saw of its context and of its environment
 * (a module-level id and invocation count, which a new environment starts afresh).
 */
import type { Context } from 'aws-lambda';

const instance = Math.random().toString(36).slice(2);
let invocations = 0;

export interface ProbeEvent {
  action: 'echo' | 'throw' | 'exit' | 'hold' | 'hang';
  /** For `hold`: [running, most running at once, released]: counters shared with the test. */
  counters?: Int32Array;
}

export async function handler(event: ProbeEvent, context: Context) {
  invocations++;
  const seen = { instance, invocations, functionName: context.functionName, requestId: context.awsRequestId, remainingMs: context.getRemainingTimeInMillis() };
  if (event.action === 'throw') {
    const error = new Error('the probe was asked to fail');
    error.name = 'ProbeFailure';
    throw error;
  }
  if (event.action === 'exit') process.exit(3);
  if (event.action === 'hang') await new Promise(() => undefined);
  if (event.action === 'hold' && event.counters) {
    const counters = event.counters;
    const running = Atomics.add(counters, 0, 1) + 1;
    for (let most = Atomics.load(counters, 1); running > most; most = Atomics.load(counters, 1)) Atomics.compareExchange(counters, 1, most, running);
    // Until the test lets go.
    while (Atomics.load(counters, 2) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    Atomics.sub(counters, 0, 1);
  }
  return seen;
}
