/**
 * The local SQS event source against the AWS SDK's SQS client, mocked with aws-sdk-client-mock:
 * receive → handler → delete what did not fail, as Lambda's event source mapping does.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, type DeleteMessageBatchCommandInput, type ReceiveMessageCommandInput, type ReceiveMessageCommandOutput } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { toHaveReceivedCommand, toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandTimes, type CustomMatcher } from 'aws-sdk-client-mock-vitest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { QueuePoller, startingPollers, toRecord, type InvokeFunction, type PollerOptions, type SqsMessage } from '../../local/poller.ts';
import { FunctionTimedOut } from '../../local/runtime.ts';
import { deferred } from '../support/memory.ts';

expect.extend({ toHaveReceivedCommand, toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandTimes });

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends CustomMatcher<T> {}
}

const sqsMock = mockClient(SQSClient);
const sqs = new SQSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

const queueUrl = 'http://127.0.0.1:9324/000000000000/jobs';
const queueArn = 'arn:aws:sqs:eu-west-1:000000000000:jobs';

const message = (n: number, receiveCount = '1'): SqsMessage => ({
  MessageId: `m${n}`,
  ReceiptHandle: `r${n}`,
  Body: JSON.stringify({ kind: 'job', jobId: `job-${n}` }),
  MD5OfBody: `md5-${n}`,
  Attributes: { ApproximateReceiveCount: receiveCount, SentTimestamp: '1700000000000' },
});

const receiveInputs = () => sqsMock.commandCalls(ReceiveMessageCommand).map((call) => call.args[0].input);
const deleteInputs = () => sqsMock.commandCalls(DeleteMessageBatchCommand).map((call) => call.args[0].input);
const deletedHandles = () => deleteInputs().flatMap((input) => (input.Entries ?? []).map((entry) => entry.ReceiptHandle));

/**
 * The queue behind the mocked client: `batches` are handed out one per receive (an Error fails
 * that receive); after that a receive long-polls until the test answers it with `answerWaiting`
 * (the poller may have stopped waiting by then). Answers are promises, as the SDK's are.
 */
function fakeQueue(batches: Array<SqsMessage[] | Error>) {
  let receives = 0;
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const waiting: Array<(messages: SqsMessage[]) => void> = [];
  const deleted = deferred();
  sqsMock.on(ReceiveMessageCommand).callsFake((_input: ReceiveMessageCommandInput): Promise<Partial<ReceiveMessageCommandOutput>> => {
    receives++;
    for (const waiter of waiters.filter((w) => receives >= w.count)) waiter.resolve();
    const batch = batches.shift();
    if (batch instanceof Error) return Promise.reject(batch);
    if (batch) return Promise.resolve({ Messages: batch });
    return new Promise((resolve) => waiting.push((messages) => resolve({ Messages: messages })));
  });
  sqsMock.on(DeleteMessageBatchCommand).callsFake(async (input: DeleteMessageBatchCommandInput) => {
    deleted.resolve();
    return { Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id })), Failed: [] };
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
    /** Answers the long polls in hand. */
    answerWaiting(messages: SqsMessage[]): void {
      for (const answer of waiting.splice(0)) answer(messages);
    },
    deleted: deleted.promise,
  };
}

const pollers: QueuePoller[] = [];
function poller(invoke: InvokeFunction, more: Partial<PollerOptions> = {}): QueuePoller {
  const created = new QueuePoller({
    sqs,
    queueUrl,
    queueArn,
    invoke,
    batchSize: 10,
    waitSeconds: 1,
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

describe('QueuePoller', () => {
  it('hands a batch to the handler as an SQS event and deletes only what it did not report as failed', async () => {
    const queue = fakeQueue([[message(1), message(2, '3'), message(3)]]);
    const events: SQSEvent[] = [];
    const p = poller(async (event): Promise<SQSBatchResponse> => {
      events.push(event);
      return { batchItemFailures: [{ itemIdentifier: 'm2' }] };
    });
    p.start();
    await within(queue.deleted, 'the delete');
    await within(p.stop(), 'stop()');

    expect(sqsMock).toHaveReceivedCommandExactlyOnceWith(DeleteMessageBatchCommand, { QueueUrl: queueUrl });
    expect(deletedHandles()).toEqual(['r1', 'r3']);
    const entries = deleteInputs()[0]?.Entries ?? [];
    expect(new Set(entries.map((entry) => entry.Id)).size).toBe(2);

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
    await within(queue.deleted, 'the delete');
    await within(p.stop(), 'stop()');
    expect(deletedHandles()).toEqual(['r1', 'r2']);
  });

  it('a batch whose every record failed deletes nothing', async () => {
    const queue = fakeQueue([[message(1), message(2)]]);
    const p = poller(async () => ({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }] }));
    p.start();
    await within(queue.receivesReach(2), 'the next receive');
    await within(p.stop(), 'stop()');
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
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
    await within(queue.receivesReach(2), 'the next receive');
    await within(p.stop(), 'stop()');
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(errors).toEqual([failure]);
  });

  it('a batch whose invocation timed out (the runtime abandoned it) counts as failed: nothing is deleted', async () => {
    const queue = fakeQueue([[message(1)]]);
    const errors: unknown[] = [];
    const p = poller(async () => Promise.reject(new FunctionTimedOut('the invocation timed out after 90 s')), { onError: (error) => errors.push(error) });
    p.start();
    await within(queue.receivesReach(2), 'the next receive');
    expect(p.inFlight).toBe(0);
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(errors).toEqual([expect.any(FunctionTimedOut)]);
  });

  it('keeps receiving while batches run, up to its concurrency: a slow batch does not hold the others up', async () => {
    const queue = fakeQueue([[message(1)], [message(2)], [message(3)]]);
    const slow = deferred();
    const handed: string[] = [];
    const p = poller(
      async (event) => {
        const jobId = String(JSON.parse(event.Records[0]?.body ?? '{}').jobId);
        handed.push(jobId);
        if (jobId === 'job-1') await slow.promise;
      },
      { concurrency: 2 },
    );
    p.start();
    // The first batch hangs; the second loop still receives, and hands on, the two others.
    await within(queue.receivesReach(4), 'the fourth receive');
    expect(handed).toEqual(['job-1', 'job-2', 'job-3']);
    expect(deletedHandles().sort()).toEqual(['r2', 'r3']);
    expect(p.inFlight).toBe(1);
    slow.resolve();
    await within(queue.receivesReach(5), 'the fifth receive');
    expect(deletedHandles().sort()).toEqual(['r1', 'r2', 'r3']);
  });

  it('receives with the batch size and wait time it was given, and every system attribute (ApproximateReceiveCount, SentTimestamp)', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { batchSize: 7, waitSeconds: 3 });
    p.start();
    await within(queue.receivesReach(1), 'the first receive');
    expect(receiveInputs()).toEqual([{ QueueUrl: queueUrl, MaxNumberOfMessages: 7, WaitTimeSeconds: 3, MessageSystemAttributeNames: ['All'] }]);
  });

  it('long-polls with five receives however high its concurrency, as Lambda\'s mapping starts', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { concurrency: 20 });
    p.start();
    await within(queue.receivesReach(startingPollers), 'five receives');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(startingPollers).toBe(5);
    expect(queue.receives).toBe(5);
  });

  it('keeps up to its concurrency of batches in flight with fewer pollers, and receives no more until one ends', async () => {
    const queue = fakeQueue(Array.from({ length: 12 }, (_, i) => [message(i + 1)]));
    const gates = new Map<string, () => void>();
    let released = false;
    const p = poller(
      (event) =>
        new Promise<void>((resolve) => {
          if (released) resolve();
          else gates.set(event.Records[0]?.messageId ?? '', resolve);
        }),
      { concurrency: 8, pollers: 2 },
    );
    p.start();
    await within(queue.receivesReach(8), 'eight receives');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(p.inFlight).toBe(8);
    expect(queue.receives).toBe(8);

    gates.get('m3')?.();
    await within(queue.receivesReach(9), 'the ninth receive');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(queue.receives).toBe(9);
    expect(p.inFlight).toBe(8);
    expect(deletedHandles()).toEqual(['r3']);
    released = true;
    for (const open of gates.values()) open();
    // Every batch handed out, the pollers long-poll the empty queue.
    await within(queue.receivesReach(14), 'the long polls of an empty queue');
    await within(p.stop(), 'stop()');
    expect(deletedHandles().sort()).toEqual(Array.from({ length: 12 }, (_, i) => `r${i + 1}`).sort());
  });

  it('runs as many receive loops as its concurrency, when that is under five', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { concurrency: 3 });
    p.start();
    await within(queue.receivesReach(3), 'three receives');
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(queue.receives).toBe(3);
  });

  it('stop() ends every loop at once, without waiting for the long polls in hand to answer', async () => {
    const queue = fakeQueue([]);
    const p = poller(async () => undefined, { concurrency: 3 });
    p.start();
    await within(queue.receivesReach(3), 'three receives');

    await within(p.stop(), 'stop()');
    const receives = queue.receives;
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(queue.receives).toBe(receives);
    expect(receives).toBe(3);
  });

  it('messages a long poll brings after stop() are not handed to the handler', async () => {
    const queue = fakeQueue([]);
    const handler = vi.fn(async () => undefined);
    const p = poller(handler);
    p.start();
    await within(queue.receivesReach(1), 'the first receive');
    await within(p.stop(), 'stop()');

    queue.answerWaiting([message(1)]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(handler).not.toHaveBeenCalled();
    expect(sqsMock).not.toHaveReceivedCommand(DeleteMessageBatchCommand);
    expect(queue.receives).toBe(1);
  });

  it('a failed receive is reported, and the poller receives again after a pause', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const failure = new Error('connection refused');
    const queue = fakeQueue([failure, [message(1)]]);
    const errors: unknown[] = [];
    const p = poller(async () => undefined, { onError: (error) => errors.push(error) });
    p.start();
    await queue.receivesReach(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toEqual([failure]);
    await vi.advanceTimersByTimeAsync(249);
    expect(queue.receives).toBe(1);

    await vi.advanceTimersByTimeAsync(1);
    await queue.deleted;
    expect(deletedHandles()).toEqual(['r1']);
  });

  it('a failed delete is reported, and the poller carries on (the messages come back and are found done)', async () => {
    const queue = fakeQueue([[message(1)]]);
    const failure = new Error('delete refused');
    sqsMock.on(DeleteMessageBatchCommand).rejects(failure);
    const errors: unknown[] = [];
    const p = poller(async () => undefined, { onError: (error) => errors.push(error) });
    p.start();
    await within(queue.receivesReach(2), 'the next receive');
    expect(sqsMock).toHaveReceivedCommandTimes(DeleteMessageBatchCommand, 1);
    expect(errors).toEqual([failure]);
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
    await within(handed.promise, 'the hand-over');
    let stopped = false;
    const stopping = p.stop().then(() => (stopped = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    gate.resolve();
    await within(stopping, 'stop()');
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
