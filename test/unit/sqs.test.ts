/**
 * The SQS work queues and `postpone` against the AWS SDK's SQS client, mocked with
 * aws-sdk-client-mock: which queue each message goes to, batching within SQS's limits, what is
 * resent, and the visibility a retry asks for.
 */
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SendMessageCommand, SQSClient, type SendMessageBatchCommandInput } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import {
  toHaveReceivedCommand,
  toHaveReceivedCommandExactlyOnceWith,
  toHaveReceivedCommandTimes,
  toHaveReceivedCommandWith,
  type CustomMatcher,
} from 'aws-sdk-client-mock-vitest';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseMessage, postpone, SqsWorkQueue } from '../../lambdas/adapters/sqs.ts';
import type { QueueMessage } from '../../lambdas/core/ports.ts';

expect.extend({ toHaveReceivedCommand, toHaveReceivedCommandExactlyOnceWith, toHaveReceivedCommandTimes, toHaveReceivedCommandWith });

declare module 'vitest' {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-empty-object-type
  interface Matchers<T = any> extends CustomMatcher<T> {}
}

const sqsMock = mockClient(SQSClient);
const sqs = new SQSClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });

const urls = {
  job: 'https://sqs.us-east-1.amazonaws.com/000000000000/jobs',
  callback: 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks',
};
const twelveHours = 43_200;

const commandInputs = <T extends object>(command: abstract new (...args: never[]) => { input: T }): T[] =>
  sqsMock.calls().flatMap((call) => (call.args[0] instanceof command ? [call.args[0].input as T] : []));

beforeEach(() => {
  sqsMock.reset();
  sqsMock.on(SendMessageCommand).resolves({ MessageId: 'm' });
  sqsMock.on(ChangeMessageVisibilityCommand).resolves({});
});

async function visibilityFor(delayMs: number): Promise<number | undefined> {
  sqsMock.resetHistory();
  await postpone(sqs, urls.job, 'receipt-1', delayMs);
  expect(sqsMock).toHaveReceivedCommandExactlyOnceWith(ChangeMessageVisibilityCommand, { QueueUrl: urls.job, ReceiptHandle: 'receipt-1' });
  return commandInputs(ChangeMessageVisibilityCommand)[0]?.VisibilityTimeout;
}

describe('postpone', () => {
  it.each([
    [0, 0],
    [1, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [15 * 60 * 1000, 900],
    [-5000, 0],
    [twelveHours * 1000, twelveHours],
    [twelveHours * 1000 + 1, twelveHours],
    [7 * 24 * 3600 * 1000, twelveHours],
  ])('%i ms becomes a visibility of %i s', async (delayMs, seconds) => {
    expect(await visibilityFor(delayMs)).toBe(seconds);
  });

  it('never brings a message back earlier than asked, nor later than a second after, within 12 hours', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: twelveHours * 1000 }), async (delayMs) => {
        const seconds = (await visibilityFor(delayMs)) ?? -1;
        expect(Number.isInteger(seconds)).toBe(true);
        expect(seconds * 1000).toBeGreaterThanOrEqual(delayMs);
        expect(seconds * 1000).toBeLessThan(delayMs + 1000);
      }),
      { numRuns: 100 },
    );
  });

  it('always asks SQS for a visibility it accepts (0 to 43200 s)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: -1e12, max: 1e12 }), async (delayMs) => {
        const seconds = (await visibilityFor(delayMs)) ?? -1;
        expect(seconds).toBeGreaterThanOrEqual(0);
        expect(seconds).toBeLessThanOrEqual(twelveHours);
      }),
      { numRuns: 100 },
    );
  });

  it('lets a failed call surface', async () => {
    const failure = new Error('ReceiptHandleIsInvalid');
    sqsMock.on(ChangeMessageVisibilityCommand).rejects(failure);
    await expect(postpone(sqs, urls.job, 'receipt-1', 1000)).rejects.toBe(failure);
  });
});

describe('SqsWorkQueue.send', () => {
  it.each<QueueMessage>([
    { kind: 'job', jobId: 'j-1', leaseMs: 15_000 },
    { kind: 'callback', jobId: 'j-2' },
  ])('sends a $kind message to the $kind queue, as the handlers read it', async (message) => {
    await new SqsWorkQueue(sqs, urls).send(message);
    expect(sqsMock).toHaveReceivedCommandExactlyOnceWith(SendMessageCommand, { QueueUrl: urls[message.kind] });
    const body = commandInputs(SendMessageCommand)[0]?.MessageBody ?? '';
    expect(JSON.parse(body)).toEqual(message);
    expect(parseMessage(body)).toEqual(message);
  });

  it('lets a failed send surface, so the API can answer 503', async () => {
    sqsMock.on(SendMessageCommand).rejects(new Error('queue unavailable'));
    await expect(new SqsWorkQueue(sqs, urls).send({ kind: 'job', jobId: 'j' })).rejects.toThrow('queue unavailable');
  });
});

describe('SqsWorkQueue.sendMany', () => {
  const messages: QueueMessage[] = [
    ...Array.from({ length: 23 }, (_, i) => ({ kind: 'job' as const, jobId: `j${i}` })),
    ...Array.from({ length: 3 }, (_, i) => ({ kind: 'callback' as const, jobId: `c${i}` })),
  ];
  const batches = () => commandInputs<SendMessageBatchCommandInput>(SendMessageBatchCommand);
  const ids = (bodies: Array<string | undefined>) => bodies.map((body) => (JSON.parse(body ?? '{}') as QueueMessage).jobId);

  it('sends ten to a request, to each kind\'s queue, each entry with an id of its own in its batch', async () => {
    sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => ({ Successful: (input.Entries ?? []).map((entry) => ({ Id: entry.Id, MessageId: 'm', MD5OfMessageBody: '' })), Failed: [] }));
    await new SqsWorkQueue(sqs, urls).sendMany(messages);
    expect(batches().map((batch) => [batch.QueueUrl, batch.Entries?.length])).toEqual([
      [urls.job, 10],
      [urls.job, 10],
      [urls.job, 3],
      [urls.callback, 3],
    ]);
    for (const batch of batches()) expect(new Set(batch.Entries?.map((entry) => entry.Id)).size).toBe(batch.Entries?.length);
    expect(ids(batches().flatMap((batch) => batch.Entries?.map((entry) => entry.MessageBody) ?? []))).toEqual(messages.map((message) => message.jobId));
    expect(JSON.parse(batches()[3]?.Entries?.[0]?.MessageBody ?? '{}')).toEqual({ kind: 'callback', jobId: 'c0' });
    expect(sqsMock).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('sends again, on its own, each entry SQS reports as failed', async () => {
    sqsMock.on(SendMessageBatchCommand).callsFake((input: SendMessageBatchCommandInput) => {
      const [first, ...rest] = input.Entries ?? [];
      return {
        Successful: rest.map((entry) => ({ Id: entry.Id, MessageId: 'm', MD5OfMessageBody: '' })),
        Failed: [{ Id: first?.Id, Code: 'InternalError', SenderFault: false }],
      };
    });
    await new SqsWorkQueue(sqs, urls).sendMany(messages);
    // The first entry of each batch was refused, and went again alone, to its own queue.
    expect(ids(commandInputs(SendMessageCommand).map((input) => input.MessageBody))).toEqual(['j0', 'j10', 'j20', 'c0']);
    expect(sqsMock).toHaveReceivedCommandWith(SendMessageCommand, { QueueUrl: urls.callback, MessageBody: JSON.stringify({ kind: 'callback', jobId: 'c0' }) });
    expect(sqsMock).toHaveReceivedCommandTimes(SendMessageCommand, 4);
  });

  it('a batch SQS refuses whole surfaces', async () => {
    sqsMock.on(SendMessageBatchCommand).rejects(new Error('AccessDenied'));
    await expect(new SqsWorkQueue(sqs, urls).sendMany(messages)).rejects.toThrow('AccessDenied');
  });

  it('sends nothing for nothing', async () => {
    await new SqsWorkQueue(sqs, urls).sendMany([]);
    expect(sqsMock.calls()).toHaveLength(0);
  });
});

describe('parseMessage', () => {
  it('reads the messages we write, dropping anything extra', () => {
    expect(parseMessage('{"kind":"job","jobId":"abc"}')).toEqual({ kind: 'job', jobId: 'abc' });
    expect(parseMessage('{"kind":"callback","jobId":"abc","extra":true}')).toEqual({ kind: 'callback', jobId: 'abc' });
  });

  it('keeps a lease hint only when it is a positive whole number of ms', () => {
    expect(parseMessage('{"kind":"job","jobId":"abc","leaseMs":15000}')).toEqual({ kind: 'job', jobId: 'abc', leaseMs: 15000 });
    for (const leaseMs of ['0', '-1', '1.5', '"15000"', 'null', '1e300']) {
      expect(parseMessage(`{"kind":"job","jobId":"abc","leaseMs":${leaseMs}}`)).toEqual({ kind: 'job', jobId: 'abc' });
    }
  });

  it.each([
    ['text', 'hello'],
    ['an empty body', ''],
    ['null', 'null'],
    ['an array', '[{"kind":"job","jobId":"abc"}]'],
    ['a string', '"job"'],
    ['another kind', '{"kind":"email","jobId":"abc"}'],
    ['a numeric jobId', '{"kind":"job","jobId":42}'],
    ['no jobId', '{"kind":"job"}'],
    ['an S3 event', '{"Records":[{"eventSource":"aws:s3"}]}'],
    ['an SNS envelope', '{"Type":"Notification","Message":"{\\"kind\\":\\"job\\",\\"jobId\\":\\"abc\\"}"}'],
  ])('rejects %s', (_, body) => {
    expect(parseMessage(body)).toBeUndefined();
  });

  it('never throws, whatever the body', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (body) => {
        const message = parseMessage(body);
        if (message !== undefined) expect(['job', 'callback']).toContain(message.kind);
      }),
      { numRuns: 300 },
    );
  });
});
