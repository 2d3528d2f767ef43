import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { queueFunction, type Postpone } from '../../lambdas/adapters/queue-handler.ts';
import { WaasMetrics } from '../../lambdas/adapters/wiring.ts';
import type { Outcome } from '../../lambdas/core/deliver.ts';
import type { DeliveryFacts, QueueMessage } from '../../lambdas/core/ports.ts';
import { afterFailureTiming } from '../../lambdas/core/retry.ts';
import { deferred } from '../support/memory.ts';

const record = (messageId: string, jobId: string, receiveCount = 1): SQSRecord =>
  ({
    messageId,
    receiptHandle: `receipt-${messageId}`,
    body: JSON.stringify({ kind: 'job', jobId }),
    attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: '1700000000000' },
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:jobs',
  }) as unknown as SQSRecord;
const event = (...records: SQSRecord[]): SQSEvent => ({ Records: records });
const context = (remainingMs = 90_000) => ({ getRemainingTimeInMillis: () => remainingMs, awsRequestId: 'request-1', functionName: 'execute' }) as unknown as Context;

/** A queue function on `run`, its handed-back messages recorded. */
function fn(run: (message: QueueMessage, facts: DeliveryFacts) => Promise<Outcome>) {
  const postponed: Array<[string, string, number]> = [];
  const postpone: Postpone = async (url, handle, delayMs) => void postponed.push([url, handle, delayMs]);
  const handler = queueFunction({ label: 'test', run, queueUrl: () => 'queue-url', postpone, metrics: new WaasMetrics({ namespace: 'test' }) });
  return { handler, postponed };
}

describe('queueFunction', () => {
  it('hands a record that must wait back to its queue, due after its delay, and reports it as a batch item failure', async () => {
    const { handler, postponed } = fn(async (message) => (message.jobId === 'later' ? { done: false, retryAfterMs: 1500 } : { done: true }));
    expect(await handler(event(record('m1', 'now'), record('m2', 'later')), context())).toEqual({ batchItemFailures: [{ itemIdentifier: 'm2' }] });
    expect(postponed).toEqual([['queue-url', 'receipt-m2', 1500]]);
  });

  it('keeps each invocation\'s failures apart when one handler module serves two batches at once (the local stack\'s pollers)', async () => {
    const held = deferred<Outcome>();
    const { handler } = fn(async (message) => (message.jobId === 'held' ? held.promise : message.jobId === 'later' ? { done: false, retryAfterMs: 1000 } : { done: true }));
    // The first batch's first record fails at once; its second is still running when...
    const first = handler(event(record('a1', 'later'), record('a2', 'held')), context());
    await new Promise((resolve) => setImmediate(resolve));
    // ...a second batch starts and ends.
    expect(await handler(event(record('b1', 'now')), context())).toEqual({ batchItemFailures: [] });
    held.resolve({ done: true });
    expect(await first).toEqual({ batchItemFailures: [{ itemIdentifier: 'a1' }] });
  });

  it('a record whose attempt throws comes back soon (growing with its receives), not after the whole visibility timeout; the others still complete', async () => {
    const { handler, postponed } = fn(async (message) => {
      if (message.jobId.startsWith('broken')) throw new Error('store unavailable');
      return { done: true };
    });
    expect(await handler(event(record('m1', 'broken', 1), record('m2', 'fine'), record('m3', 'broken-again', 9)), context())).toEqual({
      batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm3' }],
    });
    const [first, ninth] = postponed.map(([, , delayMs]) => delayMs);
    expect(first).toBeGreaterThanOrEqual(afterFailureTiming.minDelayMs);
    expect(first).toBeLessThanOrEqual(afterFailureTiming.baseDelayMs);
    expect(ninth).toBeLessThanOrEqual(afterFailureTiming.maxDelayMs);
    expect(postponed.map(([, handle]) => handle)).toEqual(['receipt-m1', 'receipt-m3']);
  });

  it('hands the core what SQS tells of a record, and the deadline its function runs to', async () => {
    const seen: DeliveryFacts[] = [];
    const { handler } = fn(async (_message, facts) => {
      seen.push(facts);
      return { done: true };
    });
    const before = Date.now();
    await handler(event(record('m1', 'job-1', 3)), context(42_000));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ sentAt: 1_700_000_000_000, receiveCount: 3 });
    expect(seen[0]?.deadline).toBeGreaterThanOrEqual(before + 42_000);
    expect(seen[0]?.deadline).toBeLessThanOrEqual(Date.now() + 42_000);
  });

  it('publishes the batch\'s metrics once per invocation, as CloudWatch\'s embedded metric format', async () => {
    const disabled = process.env['POWERTOOLS_METRICS_DISABLED'];
    delete process.env['POWERTOOLS_METRICS_DISABLED'];
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    try {
      const metrics = new WaasMetrics({ namespace: 'waas', serviceName: 'waas' });
      process.stdout.write = ((chunk: string | Uint8Array) => (lines.push(String(chunk)), true)) as typeof process.stdout.write;
      const handler = queueFunction({ label: 'test', run: async (message) => (message.jobId === 'broken' ? Promise.reject(new Error('down')) : { done: true }), queueUrl: () => 'queue-url', postpone: async () => undefined, metrics });
      await handler(event(record('m1', 'fine'), record('m2', 'broken')), context());
    } finally {
      process.stdout.write = write;
      if (disabled !== undefined) process.env['POWERTOOLS_METRICS_DISABLED'] = disabled;
    }
    const emf = lines.flatMap((line) => line.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ MessagesReceived: 2, MessagesFailed: 1, _aws: { CloudWatchMetrics: [{ Namespace: 'waas' }] } });
  });

  it('a record it cannot hand back is sent again as a copy, due after its wait, and this one is done', async () => {
    const copies: Array<[string, string, number]> = [];
    const handler = queueFunction({
      label: 'test',
      run: async () => ({ done: false, retryAfterMs: 1_000 }),
      queueUrl: () => 'queue-url',
      postpone: async () => Promise.reject(Object.assign(new Error('Service Unavailable'), { name: 'ServiceUnavailable' })),
      resend: async (url, body, delayMs) => void copies.push([url, body, delayMs]),
      metrics: new WaasMetrics({ namespace: 'test' }),
    });
    const early = record('m1', 'early');
    expect(await handler(event(early), context())).toEqual({ batchItemFailures: [] });
    expect(copies).toEqual([['queue-url', early.body, 1_000]]);
  });

  it('a record whose hand-back and copy both fail is left to its visibility timeout, reported as not done', async () => {
    const handler = queueFunction({
      label: 'test',
      run: async () => ({ done: false, retryAfterMs: 1_000 }),
      queueUrl: () => 'queue-url',
      postpone: async () => Promise.reject(new Error('down')),
      resend: async () => Promise.reject(new Error('down too')),
      metrics: new WaasMetrics({ namespace: 'test' }),
    });
    expect(await handler(event(record('m1', 'early')), context())).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
  });

  it('drops a message that is not ours, and says so, instead of retrying it forever', async () => {
    const { handler, postponed } = fn(async () => ({ done: false, retryAfterMs: 1 }));
    const foreign = { ...record('m1', 'x'), body: '{"hello":"world"}' };
    expect(await handler(event(foreign), context())).toEqual({ batchItemFailures: [] });
    expect(postponed).toEqual([]);
  });
});
