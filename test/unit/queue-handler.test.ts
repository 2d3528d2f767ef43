import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { queueHandler } from '../../lambdas/adapters/queue-handler.ts';
import type { Outcome } from '../../lambdas/core/deliver.ts';
import { deferred } from '../support/memory.ts';

const record = (messageId: string, jobId: string): SQSRecord =>
  ({
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: JSON.stringify({ kind: 'job', jobId }),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1700000000000' },
  }) as unknown as SQSRecord;
const event = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
const context = {} as Context;

describe('queueHandler', () => {
  it('reports a record that must wait as a batch item failure, after postponing it by its delay', async () => {
    const postponed: Array<[string, string, number]> = [];
    const handler = queueHandler(
      async (message) => (message.jobId === 'later' ? { done: false, retryAfterMs: 1500 } : { done: true }),
      () => 'queue-url',
      async (url, handle, delayMs) => void postponed.push([url, handle, delayMs]),
    );
    expect(await handler(event(record('m1', 'now'), record('m2', 'later')), context)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    expect(postponed).toEqual([['queue-url', 'receipt-m2', 1500]]);
  });

  it('keeps each invocation\'s failures apart when one handler module serves two batches at once (the local stack\'s pollers)', async () => {
    const held = deferred<Outcome>();
    const handler = queueHandler(
      async (message) => (message.jobId === 'held' ? held.promise : message.jobId === 'later' ? { done: false, retryAfterMs: 1000 } : { done: true }),
      () => 'queue-url',
      async () => undefined,
    );
    // The first batch's first record fails at once; its second is still running when...
    const first = handler(event(record('a1', 'later'), record('a2', 'held')), context);
    await new Promise((resolve) => setImmediate(resolve));
    // ...a second batch starts and ends.
    expect(await handler(event(record('b1', 'now')), context)).toEqual({ batchItemFailures: [] });
    held.resolve({ done: true });
    expect(await first).toEqual({ batchItemFailures: [{ itemIdentifier: 'a1' }] });
  });

  it('a record whose attempt throws is a batch item failure too, and the others still complete', async () => {
    const handler = queueHandler(
      async (message) => {
        if (message.jobId === 'broken') throw new Error('store unavailable');
        return { done: true };
      },
      () => 'queue-url',
      async () => undefined,
    );
    expect(await handler(event(record('m1', 'broken'), record('m2', 'fine')), context)).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
  });
});
