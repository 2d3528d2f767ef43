/**
 * The local runtime runs a function's handler as Lambda does: in execution environments of its
 * own (worker threads), one invocation at a time each, at most the function's concurrency at
 * once, and abandons an invocation that outlives its timeout.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { invocationChannel, type InvocationReport } from '../../local/invocations.ts';
import { FunctionError, FunctionTimedOut, LocalFunction, type LocalFunctionOptions } from '../../local/runtime.ts';
import type { ProbeEvent } from '../support/functions/probe.ts';

interface Seen {
  instance: string;
  invocations: number;
  functionName: string;
  requestId: string;
  remainingMs: number;
}

const made: LocalFunction[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((fn) => fn.stop()));
});

function probe(options: Partial<LocalFunctionOptions> = {}): LocalFunction {
  const fn = new LocalFunction({ name: 'notify', entry: 'test/support/functions/probe.ts', timeoutSeconds: 30, memoryMb: 256, maxConcurrency: 2, ...options });
  made.push(fn);
  return fn;
}

/** Polls `condition` until it holds, at most `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('LocalFunction', () => {
  it('invokes the handler with a context naming the function and the time left, in a warm environment it keeps, and reports each invocation', async () => {
    const fn = probe({ warm: 1 });
    await fn.start();
    expect(fn.environments).toBe(1);
    const reports: InvocationReport[] = [];
    const listen = (report: unknown) => void reports.push(report as InvocationReport);
    subscribe(invocationChannel, listen);
    try {
      const first = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
      const second = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
      expect(first).toMatchObject({ functionName: 'notify', invocations: 1 });
      expect(first.remainingMs).toBeGreaterThan(25_000);
      expect(first.remainingMs).toBeLessThanOrEqual(30_000);
      // The same environment, warm: its module state carries over; each invocation has its own request id.
      expect(second).toMatchObject({ instance: first.instance, invocations: 2 });
      expect(second.requestId).not.toBe(first.requestId);
      expect(reports).toEqual([
        { functionName: 'notify', durationMs: expect.any(Number) },
        { functionName: 'notify', durationMs: expect.any(Number) },
      ]);
    } finally {
      unsubscribe(invocationChannel, listen);
    }
  });

  it('a handler that throws fails its invocation with the error\'s name and message; its environment stays', async () => {
    const fn = probe();
    await fn.start();
    const before = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
    await expect(fn.invoke({ action: 'throw' } satisfies ProbeEvent)).rejects.toMatchObject({ name: 'ProbeFailure', message: 'the probe was asked to fail' });
    await expect(fn.invoke({ action: 'throw' } satisfies ProbeEvent)).rejects.toBeInstanceOf(FunctionError);
    expect((await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent)).instance).toBe(before.instance);
  });

  it('abandons an invocation still running at the function\'s timeout: its environment is ended, and the next one is a cold start', async () => {
    const fn = probe({ timeoutSeconds: 1 });
    await fn.start();
    const before = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
    const started = Date.now();
    await expect(fn.invoke({ action: 'hang' } satisfies ProbeEvent)).rejects.toBeInstanceOf(FunctionTimedOut);
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    await until(() => fn.environments === 0);
    const after = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
    expect(after.instance).not.toBe(before.instance);
    expect(after.invocations).toBe(1);
  });

  it('runs at most its concurrency at once, each invocation in an environment of its own; the others wait their turn', async () => {
    const fn = probe({ maxConcurrency: 2 });
    await fn.start();
    const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    const held = [0, 1, 2].map(() => fn.invoke<Seen>({ action: 'hold', counters } satisfies ProbeEvent));
    await until(() => Atomics.load(counters, 0) === 2);
    expect(fn.inFlight).toBe(3);
    expect(fn.environments).toBe(2);
    Atomics.store(counters, 2, 1);
    const seen = await Promise.all(held);
    expect(Atomics.load(counters, 1)).toBe(2);
    expect(new Set(seen.map((s) => s.instance)).size).toBe(2);
    expect(fn.inFlight).toBe(0);
  });

  it('an environment that dies (its handler exits the process) fails that invocation; the next one gets a new environment', async () => {
    const fn = probe();
    await fn.start();
    const before = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
    await expect(fn.invoke({ action: 'exit' } satisfies ProbeEvent)).rejects.toMatchObject({ name: 'Runtime.ExitError' });
    const after = await fn.invoke<Seen>({ action: 'echo' } satisfies ProbeEvent);
    expect(after.instance).not.toBe(before.instance);
  });

  it('retires environments idle past their time, down to the warm ones', async () => {
    const fn = probe({ warm: 1, idleMs: 50, maxConcurrency: 3 });
    await fn.start();
    const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    const held = [0, 1, 2].map(() => fn.invoke({ action: 'hold', counters } satisfies ProbeEvent));
    await until(() => Atomics.load(counters, 0) === 3);
    expect(fn.environments).toBe(3);
    Atomics.store(counters, 2, 1);
    await Promise.all(held);
    await until(() => fn.environments === 1);
  });

  it('stop() lets the invocations in flight end, then ends every environment and takes no more', async () => {
    const fn = probe();
    await fn.start();
    const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
    const held = fn.invoke<Seen>({ action: 'hold', counters } satisfies ProbeEvent);
    await until(() => Atomics.load(counters, 0) === 1);
    let stopped = false;
    const stopping = fn.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    Atomics.store(counters, 2, 1);
    expect((await held).functionName).toBe('notify');
    await stopping;
    expect(fn.environments).toBe(0);
    await expect(fn.invoke({ action: 'echo' } satisfies ProbeEvent)).rejects.toMatchObject({ name: 'Runtime.Stopped' });
  });
});
