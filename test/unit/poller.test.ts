import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AwsCaller } from '../../lambdas/adapters/aws/client.ts';
import { QueuePoller, toRecord, type PollerOptions, type SqsHandler, type SqsMessage } from '../../local/poller.ts';
import { deferred } from '../support/memory.ts';

const queueUrl = 'http://127.0.0.1:9324/000000000000/jobs';
const queueArn = 'arn:aws:sqs:eu-west-1:000000000000:jobs';

const message = (n: number, receiveCount = '1'): SqsMessage => ({
  MessageId: `m${n}`,
  ReceiptHandle: `r${n}`,
  Body: JSON.stringify({ kind: 'job', jobId: `job-${n}` }),
  MD5OfBody: `md5-${n}`,
  Attributes: { ApproximateReceiveCount: receiveCount, SentTimestamp: '1700000000000' },
});

type Input = Record<string, unknown>;

/**
 * The queue as the poller sees it, through the one client method it uses: `batches` are handed
 * out one per receive (an Error fails that receive); after that a receive long-polls until the
 * test answers it with `answerWaiting` (the poller may have stopped waiting by then).
 */
function fakeQueue(batches: Array<SqsMessage[] | Error>) {
  const calls: Array<{ operation: string; input: Input }> = [];
  let receives = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const waiting: Array<(messages: SqsMessage[]) => void> = [];
  const deleted = deferred();
  const sqs: AwsCaller = {
    call: <O>(operation: string, input: Input): Promise<O> => {
      calls.push({ operation, input });
      if (operation === 'DeleteMessageBatch') {
        deleted.resolve();
        return Promise.resolve({ Successful: [], Failed: [] } as O);
      }
      if (operation !== 'ReceiveMessage') return Promise.reject(new Error(`unexpected ${operation}`));
      receives++;
      for (const waiter of waiters.filter((w) => receives >= w.count)) waiter.resolve();
      const batch = batches.shift();
      if (batch instanceof Error) return Promise.reject(batch);
      if (batch) return Promise.resolve({ Messages: batch } as O);
      return new Promise<O>((resolve) => waiting.push((messages) => resolve({ Messages: messages } as O)));
    },
  };
  return {
    sqs,
    get receives() {
      return receives;
    },
    /** Resolves once `count` receives were made. */
    receivesReach(count: number): Promise<void> {
      if (receives >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    /** Answers the long polls in hand. */
    answerWaiting(messages: SqsMessage[]): void {
      for (const answer of waiting.splice(0)) answer(messages);
    },
    inputs: (operation: string) => calls.filter((call) => call.operation === operation).map((call) => call.input),
    deletedHandles: () =>
      calls
        .filter((call) => call.operation === 'DeleteMessageBatch')
        .flatMap((call) => (call.input['Entries'] as Array<{ ReceiptHandle: string }>).map((entry) => entry.ReceiptHandle)),
    deleted: deleted.promise,
  };
}

const pollers: QueuePoller[] = [];
function poller(queue: { sqs: AwsCaller }, handler: SqsHandler, more: Partial<PollerOptions> = {}): QueuePoller {
  const created = new QueuePoller({
    sqs: queue.sqs,
    queueUrl,
    queueArn,
    functionName: 'execute',
    handler,
    batchSize: 10,
    waitSeconds: 1,
    timeoutSeconds: 30,
    concurrency: 1,
    ...more,
  });
  pollers.push(created);
  return created;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(pollers.splice(0).map((p) => within(p.stop(), 'stop()').catch(() => undefined)));
});

/** `promise`, or a failure naming `what` if it has not settled within two seconds. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within 2 s`)), 2_000);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

describe('QueuePoller', () => {
  it('hands a batch to the handler as an SQS event and deletes only what it did not report as failed', async () => {
    const queue = fakeQueue([[message(1), message(2, '3'), message(3)]]);
    const events: SQSEvent[] = [];
    const p = poller(queue, async (event): Promise<SQSBatchResponse> => {
      events.push(event);
      return { batchItemFailures: [{ itemIdentifier: 'm2' }] };
    });
    p.start();
    await queue.deleted;
    await within(p.stop(), 'stop()');

    expect(queue.deletedHandles()).toEqual(['r1', 'r3']);
    const input = queue.inputs('DeleteMessageBatch')[0];
    expect(input?.['QueueUrl']).toBe(queueUrl);
    expect(new Set((input?.['Entries'] as Array<{ Id: string }>).map((entry) => entry.Id)).size).toBe(2);

    expect(events).toHaveLength(1);
    const records = events[0]?.Records ?? [];
    expect(records.map((record) => record.messageId)).toEqual(['m1', 'm2', 'm3']);
    expect(records[1]).toMatchObject({
      messageId: 'm2',
      receiptHandle: 'r2',
      body: message(2).Body,
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: 'eu-west-1',
      attributes: { ApproximateReceiveCount: '3', SentTimestamp: '1700000000000' },
    });
  });

  it('a batch with no failures is deleted whole', async () => {
    const queue = fakeQueue([[message(1), message(2)]]);
    const p = poller(queue, async () => ({ batchItemFailures: [] }));
    p.start();
    await queue.deleted;
    await within(p.stop(), 'stop()');
    expect(queue.deletedHandles()).toEqual(['r1', 'r2']);
  });

  it('a handler that throws deletes nothing, and the poller carries on', async () => {
    const queue = fakeQueue([[message(1), message(2)]]);
    const errors: unknown[] = [];
    const failure = new Error('handler crashed');
    const p = poller(
      queue,
      async () => {
        throw failure;
      },
      { onError: (error) => errors.push(error) },
    );
    p.start();
    await queue.receivesReach(2);
    await within(p.stop(), 'stop()');
    expect(queue.inputs('DeleteMessageBatch')).toHaveLength(0);
    expect(errors).toEqual([failure]);
  });

  it('a batch still running at the function timeout counts as failed: nothing is deleted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const queue = fakeQueue([[message(1)]]);
    const errors: unknown[] = [];
    const handed = deferred();
    const p = poller(
      queue,
      () => {
        handed.resolve();
        return new Promise(() => undefined);
      },
      { timeoutSeconds: 5, onError: (error) => errors.push(error) },
    );
    p.start();
    await handed.promise;
    expect(p.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(5_000);
    await queue.receivesReach(2);
    expect(p.inFlight).toBe(0);
    expect(queue.inputs('DeleteMessageBatch')).toHaveLength(0);
    expect(String(errors[0])).toMatch(/timed out after 5 s/);
  });

  it('receives with the batch size and wait time it was given, and all system attributes', async () => {
    const queue = fakeQueue([]);
    const p = poller(queue, async () => undefined, { batchSize: 7, waitSeconds: 3 });
    p.start();
    await queue.receivesReach(1);
    expect(queue.inputs('ReceiveMessage')[0]).toEqual({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 7,
      WaitTimeSeconds: 3,
      MessageSystemAttributeNames: ['All'],
    });
  });

  it('stop() ends every loop at once, without waiting for the long polls in hand to answer', async () => {
    const queue = fakeQueue([]);
    const p = poller(queue, async () => undefined, { concurrency: 3 });
    p.start();
    await queue.receivesReach(3);

    await within(p.stop(), 'stop()');
    const receives = queue.receives;
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(queue.receives).toBe(receives);
    expect(receives).toBe(3);
  });

  it('messages a long poll brings after stop() are not handed to the handler', async () => {
    const queue = fakeQueue([]);
    const handler = vi.fn(async () => undefined);
    const p = poller(queue, handler);
    p.start();
    await queue.receivesReach(1);
    await within(p.stop(), 'stop()');

    queue.answerWaiting([message(1)]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(handler).not.toHaveBeenCalled();
    expect(queue.inputs('DeleteMessageBatch')).toHaveLength(0);
    expect(queue.receives).toBe(1);
  });

  it('a failed receive is reported, and the poller receives again after a pause', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const failure = new Error('connection refused');
    const queue = fakeQueue([failure, [message(1)]]);
    const errors: unknown[] = [];
    const p = poller(queue, async () => undefined, { onError: (error) => errors.push(error) });
    p.start();
    await queue.receivesReach(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual([failure]);
    expect(queue.receives).toBe(1);

    await vi.advanceTimersByTimeAsync(250);
    await queue.deleted;
    expect(queue.deletedHandles()).toEqual(['r1']);
  });

  it('stop() waits for the batch in hand to finish and delete', async () => {
    const queue = fakeQueue([[message(1)]]);
    const gate = deferred();
    const handed = deferred();
    const p = poller(queue, async () => {
      handed.resolve();
      await gate.promise;
    });
    p.start();
    await handed.promise;
    let stopped = false;
    const stopping = p.stop().then(() => (stopped = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(queue.deletedHandles()).toEqual(['r1']);
    expect(queue.receives).toBe(1);
  });
});

describe('toRecord', () => {
  it('shapes a message as Lambda\'s SQS event source does', () => {
    expect(toRecord(message(7, '4'), queueArn)).toEqual({
      messageId: 'm7',
      receiptHandle: 'r7',
      body: message(7).Body,
      attributes: expect.objectContaining({ ApproximateReceiveCount: '4', SentTimestamp: '1700000000000' }),
      messageAttributes: {},
      md5OfBody: 'md5-7',
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: 'eu-west-1',
    });
  });

  it('fills in what a bare message lacks', () => {
    const record = toRecord({ MessageId: 'm', ReceiptHandle: 'r', Body: 'b' }, 'arn:aws:sqs:ap-south-1:1:q');
    expect(record.attributes.ApproximateReceiveCount).toBe('1');
    expect(Number(record.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(record.awsRegion).toBe('ap-south-1');
    expect(record.eventSource).toBe('aws:sqs');
  });
});
