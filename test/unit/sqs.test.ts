import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseMessage, postpone, SqsWorkQueue } from '../../lambdas/adapters/sqs.ts';
import type { QueueMessage } from '../../lambdas/core/ports.ts';

type Input = Record<string, any>;

/** SQS as the adapter calls it: answers by operation, and records every call. */
class FakeSqs {
  private readonly answers = new Map<string, (input: Input) => unknown>();
  readonly calls: Array<{ operation: string; input: Input }> = [];

  reset(): void {
    this.answers.clear();
    this.calls.length = 0;
  }

  resetHistory(): void {
    this.calls.length = 0;
  }

  on(operation: string, answer: (input: Input) => unknown): void {
    this.answers.set(operation, answer);
  }

  async call<O>(operation: string, input: Input): Promise<O> {
    this.calls.push({ operation, input: structuredClone(input) });
    const answer = this.answers.get(operation)?.(input) ?? {};
    if (answer instanceof Error) throw answer;
    return answer as O;
  }

  inputs(operation: string): Input[] {
    return this.calls.filter((call) => call.operation === operation).map((call) => call.input);
  }
}

const sqs = new FakeSqs();
const urls = {
  job: 'https://sqs.us-east-1.amazonaws.com/000000000000/jobs',
  callback: 'https://sqs.us-east-1.amazonaws.com/000000000000/callbacks',
};
const twelveHours = 43_200;

beforeEach(() => {
  sqs.reset();
  sqs.on('SendMessage', () => ({ MessageId: 'm' }));
});

async function visibilityFor(delayMs: number): Promise<number | undefined> {
  sqs.resetHistory();
  await postpone(sqs, urls.job, 'receipt-1', delayMs);
  const calls = sqs.inputs('ChangeMessageVisibility');
  expect(calls).toHaveLength(1);
  expect(calls[0]).toMatchObject({ QueueUrl: urls.job, ReceiptHandle: 'receipt-1' });
  return calls[0]?.['VisibilityTimeout'];
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
});

describe('SqsWorkQueue', () => {
  it.each<QueueMessage>([
    { kind: 'job', jobId: 'j-1' },
    { kind: 'callback', jobId: 'j-2' },
  ])('sends a $kind message to the $kind queue', async (message) => {
    await new SqsWorkQueue(sqs, urls).send(message);
    const calls = sqs.inputs('SendMessage');
    expect(calls).toHaveLength(1);
    const input = calls[0];
    expect(input?.QueueUrl).toBe(urls[message.kind]);
    expect(JSON.parse(input?.MessageBody ?? '')).toEqual(message);
    expect(parseMessage(input?.MessageBody ?? '')).toEqual(message);
  });

  it('lets a failed send surface, so the API can answer 503', async () => {
    sqs.on('SendMessage', () => new Error('queue unavailable'));
    await expect(new SqsWorkQueue(sqs, urls).send({ kind: 'job', jobId: 'j' })).rejects.toThrow('queue unavailable');
  });
});

describe('parseMessage', () => {
  it('reads the messages we write, dropping anything extra', () => {
    expect(parseMessage('{"kind":"job","jobId":"abc"}')).toEqual({ kind: 'job', jobId: 'abc' });
    expect(parseMessage('{"kind":"callback","jobId":"abc","extra":true}')).toEqual({ kind: 'callback', jobId: 'abc' });
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

describe('SqsWorkQueue.sendMany', () => {
  it('sends ten to a request, to each kind\'s queue, and resends on its own an entry SQS refused', async () => {
    sqs.on('SendMessageBatch', (input) => ({
      Successful: input['Entries'].slice(1).map((entry: { Id: string }) => ({ Id: entry.Id, MessageId: 'm', MD5OfMessageBody: '' })),
      Failed: [{ Id: input.Entries[0]?.Id, Code: 'InternalError', SenderFault: false }],
    }));
    const messages: QueueMessage[] = [
      ...Array.from({ length: 23 }, (_, i) => ({ kind: 'job' as const, jobId: `j${i}` })),
      ...Array.from({ length: 3 }, (_, i) => ({ kind: 'callback' as const, jobId: `c${i}` })),
    ];
    await new SqsWorkQueue(sqs, urls).sendMany(messages);
    const batches = sqs.inputs('SendMessageBatch');
    expect(batches.map((batch) => [batch.QueueUrl, batch.Entries?.length])).toEqual([
      [urls.job, 10],
      [urls.job, 10],
      [urls.job, 3],
      [urls.callback, 3],
    ]);
    expect(JSON.parse(batches[3]?.Entries?.[0]?.MessageBody ?? '{}')).toEqual({ kind: 'callback', jobId: 'c0' });
    // The first entry of each batch was refused, and went again alone.
    const resent = sqs.inputs('SendMessage').map((input) => JSON.parse(input.MessageBody ?? '{}').jobId);
    expect(resent).toEqual(['j0', 'j10', 'j20', 'c0']);
  });
});
