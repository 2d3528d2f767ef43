import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type Message, type ReceiveMessageCommandOutput } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueuePoller, toRecord, type PollerOptions, type SqsHandler } from '../../local/poller.ts';
import { deferred } from '../support/memory.ts';

const sqsMock = mockClient(SQSClient);
const sqs = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
const queueUrl = 'http://127.0.0.1:9324/000000000000/jobs';
const queueArn = 'arn:aws:sqs:eu-west-1:000000000000:jobs';

const message = (n: number, receiveCount = '1'): Message => ({
  MessageId: `m${n}`,
  ReceiptHandle: `r${n}`,
  Body: JSON.stringify({ kind: 'job', jobId: `job-${n}` }),
  MD5OfBody: `md5-${n}`,
  Attributes: { ApproximateReceiveCount: receiveCount, SentTimestamp: '1700000000000' },
});

/**
 * The queue as the poller sees it: `batches` are handed out one per receive; after that a receive
 * long-polls until the poller aborts it, as the SDK does with the abort signal it is given.
 */
function fakeQueue(batches: Message[][]) {
  let receives = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const deleted = deferred();
  sqsMock.on(ReceiveMessageCommand).callsFake((): Promise<Partial<ReceiveMessageCommandOutput>> => {
    // The options the poller passed to send() (the abort signal) are in the stub's last call.
    const options = (sqsMock.send.args.at(-1) as unknown[] | undefined)?.[1] as { abortSignal?: AbortSignal } | undefined;
    receives++;
    for (const waiter of waiters.filter((w) => receives >= w.count)) waiter.resolve();
    const batch = batches.shift();
    if (batch) return Promise.resolve({ Messages: batch });
    return new Promise((_, reject) => {
      const signal = options?.abortSignal;
      const abort = () => reject(Object.assign(new Error('Request aborted'), { name: 'AbortError' }));
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
    });
  });
  sqsMock.on(DeleteMessageBatchCommand).callsFake(async () => {
    deleted.resolve();
    return { Successful: [], Failed: [] };
  });
  return {
    get receives() {
      return receives;
    },
    /** Resolves once `count` receives were made. */
    receivesReach(count: number): Promise<void> {
      if (receives >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    deleted: deleted.promise,
  };
}

const pollers: QueuePoller[] = [];
function poller(handler: SqsHandler, more: Partial<PollerOptions> = {}): QueuePoller {
  const created = new QueuePoller({
    sqs,
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

beforeEach(() => {
  sqsMock.reset();
});

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

const deletedHandles = () =>
  sqsMock.commandCalls(DeleteMessageBatchCommand).flatMap((call) => (call.args[0].input.Entries ?? []).map((entry) => entry.ReceiptHandle));

describe('QueuePoller', () => {
  it('hands a batch to the handler as an SQS event and deletes only what it did not report as failed', async () => {
    const queue = fakeQueue([[message(1), message(2, '3'), message(3)]]);
    const events: SQSEvent[] = [];
    const p = poller(async (event): Promise<SQSBatchResponse> => {
      events.push(event);
      return { batchItemFailures: [{ itemIdentifier: 'm2' }] };
    });
    p.start();
    await queue.deleted;
    await within(p.stop(), 'stop()');

    expect(deletedHandles()).toEqual(['r1', 'r3']);
    const call = sqsMock.commandCalls(DeleteMessageBatchCommand)[0];
    expect(call?.args[0].input.QueueUrl).toBe(queueUrl);
    expect(new Set(call?.args[0].input.Entries?.map((entry) => entry.Id)).size).toBe(2);

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
    const p = poller(async () => ({ batchItemFailures: [] }));
    p.start();
    await queue.deleted;
    await within(p.stop(), 'stop()');
    expect(deletedHandles()).toEqual(['r1', 'r2']);
  });

  it('a handler that throws deletes nothing, and the poller carries on', async () => {
    const queue = fakeQueue([[message(1), message(2)]]);
    const errors: unknown[] = [];
    const failure = new Error('handler crashed');
    const p = poller(
      async () => {
        throw failure;
      },
      { onError: (error) => errors.push(error) },
    );
    p.start();
    await queue.receivesReach(2);
    await within(p.stop(), 'stop()');
    expect(sqsMock.commandCalls(DeleteMessageBatchCommand)).toHaveLength(0);
    expect(errors).toEqual([failure]);
  });

  it('a batch still running at the function timeout counts as failed: nothing is deleted', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const queue = fakeQueue([[message(1)]]);
    const errors: unknown[] = [];
    const handed = deferred();
    const p = poller(
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
    expect(sqsMock.commandCalls(DeleteMessageBatchCommand)).toHaveLength(0);
    expect(String(errors[0])).toMatch(/timed out after 5 s/);
  });

  it('receives with the batch size and wait time it was given, and all system attributes', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { batchSize: 7, waitSeconds: 3 });
    p.start();
    await queue.receivesReach(1);
    expect(sqsMock.commandCalls(ReceiveMessageCommand)[0]?.args[0].input).toEqual({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 7,
      WaitTimeSeconds: 3,
      MessageSystemAttributeNames: ['All'],
    });
  });

  it('stop() aborts the long polls in hand and ends every loop', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { concurrency: 3 });
    p.start();
    await queue.receivesReach(3);
    const signals = sqsMock.send.args.map((args) => (args as unknown[])[1] as { abortSignal?: AbortSignal } | undefined);
    expect(signals.every((options) => options?.abortSignal?.aborted === false)).toBe(true);

    await within(p.stop(), 'stop()');
    expect(signals.every((options) => options?.abortSignal?.aborted === true)).toBe(true);
    const receives = queue.receives;
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(queue.receives).toBe(receives);
    expect(receives).toBe(3);
  });

  it('stop() waits for the batch in hand to finish and delete', async () => {
    const queue = fakeQueue([[message(1)]]);
    const gate = deferred();
    const handed = deferred();
    const p = poller(async () => {
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
    expect(deletedHandles()).toEqual(['r1']);
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
