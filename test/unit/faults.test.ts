/**
 * The local stack's fault mode (local/faults.ts): its variable's syntax, and what each fault
 * does on the wire, shown with the real SDK clients (standard retries, 3 attempts) through the
 * proxy in front of a real dynalite and fauxqs, which record what actually reached them.
 */
import { randomUUID } from 'node:crypto';
import {
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DescribeTableCommand,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  PutItemCommand,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { DeleteMessageBatchCommand, GetQueueAttributesCommand, ReceiveMessageCommand, RequestThrottled, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients, closeAwsClients, type AwsClients } from '../../lambdas/adapters/aws.ts';
import { faultsFromEnv, startFaultProxy, type FaultProxy, type FaultSpec } from '../../local/faults.ts';
import { makeQueue, startUpstreams, type Upstreams } from '../support/fault-upstreams.ts';

const credentialNames = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;
const savedCredentials = credentialNames.map((name) => [name, process.env[name]] as const);
let up: Upstreams;

beforeAll(async () => {
  // Neither server checks signatures, but the SDK signs every call: any credentials do.
  for (const name of credentialNames) process.env[name] = 'faults-test';
  up = await startUpstreams();
});

afterAll(async () => {
  await up?.close();
  for (const [name, value] of savedCredentials) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** A proxy with `spec` in front of one service, and SDK clients that reach that service through it. */
async function through<T>(
  service: 'dynamodb' | 'sqs',
  spec: string | FaultSpec,
  run: (aws: AwsClients, proxy: FaultProxy) => Promise<T>,
  requestTimeoutMs?: number,
): Promise<T> {
  const parsed = typeof spec === 'string' ? faultsFromEnv(spec) : spec;
  if (!parsed) throw new Error(`no faults in ${String(spec)}`);
  const proxy = await startFaultProxy(service === 'dynamodb' ? up.dynamodbEndpoint : up.sqsEndpoint, parsed);
  const aws = awsClients({ region: 'us-east-1', endpoints: { [service]: proxy.endpoint }, ...(requestTimeoutMs ? { requestTimeoutMs } : {}) });
  try {
    return await run(aws, proxy);
  } finally {
    closeAwsClients(aws);
    await proxy.close();
  }
}

/** The error a call ends with (the test fails if it succeeds). */
async function failure(call: Promise<unknown>): Promise<Error & { $metadata?: { attempts?: number; httpStatusCode?: number }; $fault?: string; code?: string }> {
  try {
    await call;
  } catch (error) {
    return error as Error;
  }
  throw new Error('the call succeeded');
}

const put = (pk: string, conditional = false) =>
  new PutItemCommand({ TableName: up.table, Item: { pk: { S: pk }, note: { S: 'written' } }, ...(conditional ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}) });

async function stored(pk: string): Promise<boolean> {
  const { Item } = await up.direct.dynamodb.send(new GetItemCommand({ TableName: up.table, Key: { pk: { S: pk } }, ConsistentRead: true }));
  return Item !== undefined;
}

/** The PutItems for `pk` that reached dynalite. */
const putsReaching = (pk: string) => up.dynamoCalls('PutItem').filter((call) => (call.body['Item'] as { pk?: { S?: string } } | undefined)?.pk?.S === pk).length;

/** Waits for a condition the system under test makes true, within a bound. */
async function eventually(condition: () => Promise<boolean> | boolean, boundMs: number, what: string): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${boundMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const key = (label: string) => `${label}-${randomUUID()}`;

describe('faultsFromEnv', () => {
  it.each([undefined, '', '   ', 'off'])('is undefined for %j: the fault mode is off', (value) => {
    expect(faultsFromEnv(value)).toBeUndefined();
  });

  it('reads every key', () => {
    expect(faultsFromEnv('throttle=0.05,error=0.02,slow=0.05:50-400,reset=0.01,lost=0.01,unprocessed=0.1,seed=42')).toEqual({
      throttle: 0.05,
      error: 0.02,
      slow: { rate: 0.05, minMs: 50, maxMs: 400 },
      reset: 0.01,
      lost: 0.01,
      unprocessed: 0.1,
      seed: 42,
    });
    expect(faultsFromEnv(' lost = 1 , max = 1 , slow=.5:200 , ops=PutItem|SendMessageBatch ,')).toEqual({
      lost: 1,
      max: 1,
      slow: { rate: 0.5, minMs: 200, maxMs: 200 },
      operations: ['PutItem', 'SendMessageBatch'],
    });
    expect(faultsFromEnv('error=0,ops=all')).toEqual({ error: 0, operations: 'all' });
  });

  it.each([
    ['throtle=0.1', /unknown key "throtle"/],
    ['throttle', /"throttle" is not key=value/],
    ['throttle=1.5', /throttle must be a probability from 0 to 1/],
    ['throttle=abc', /throttle must be a probability from 0 to 1/],
    ['error=-0.1', /error must be a probability from 0 to 1/],
    ['lost=', /lost must be a probability from 0 to 1/],
    ['slow=0.1', /slow must be RATE:MIN-MAX/],
    ['slow=2:10-20', /slow must be a probability/],
    ['slow=0.1:400-50', /smaller to the larger/],
    ['slow=0.1:0-999999', /slow's maximum delay must be whole milliseconds from 0 to 120000/],
    ['seed=-1', /seed must be a whole number/],
    ['seed=1.5', /seed must be a whole number/],
    ['seed=4294967296', /seed must be an integer from 0 to 4294967295/],
    ['max=x', /max must be a whole number/],
    ['throttle=0.6,error=0.5', /must add up to at most 1, got 1.1/],
    ['throttle=0.1,throttle=0.2', /throttle is given twice/],
    ['ops=PutIt', /ops names an unknown operation "PutIt"/],
  ])('refuses %j, naming the key and the rule', (value, message) => {
    expect(() => faultsFromEnv(value)).toThrow(message);
    expect(() => faultsFromEnv(value)).toThrow(/^WAAS_FAULTS: /);
  });

  it('is checked again when a spec is given in code', async () => {
    await expect(startFaultProxy(up.dynamodbEndpoint, { throttle: 2 })).rejects.toThrow(/throttle must be a probability from 0 to 1/);
    await expect(startFaultProxy(up.dynamodbEndpoint, { slow: { rate: 1, minMs: 10, maxMs: 5 } })).rejects.toThrow(/smaller to the larger/);
  });
});

describe('DynamoDB through the fault proxy', () => {
  it('forwards everything, counting nothing, with no fault configured', async () => {
    const pk = key('plain');
    await through('dynamodb', {}, async (aws, proxy) => {
      const result = await aws.dynamodb.send(put(pk));
      expect(result.$metadata.attempts).toBe(1);
      expect(proxy.injected()).toEqual({});
    });
    expect(await stored(pk)).toBe(true);
  });

  it('answers a throttle the SDK retries: the retry writes the item', async () => {
    const pk = key('throttled-once');
    await through('dynamodb', 'throttle=1,max=1', async (aws, proxy) => {
      const result = await aws.dynamodb.send(put(pk));
      expect(result.$metadata.attempts).toBe(2);
      expect(proxy.injected()).toEqual({ throttle: 1, 'throttle:PutItem': 1 });
    });
    expect(putsReaching(pk)).toBe(1);
    expect(await stored(pk)).toBe(true);
  });

  it('throttles a seeded share of calls; every throttle is one more attempt of a call that succeeds', async () => {
    const pks = Array.from({ length: 6 }, () => key('throttled-seeded'));
    await through('dynamodb', 'throttle=0.3,seed=3', async (aws, proxy) => {
      let retries = 0;
      for (const pk of pks) retries += ((await aws.dynamodb.send(put(pk))).$metadata.attempts ?? 1) - 1;
      expect(retries).toBeGreaterThan(0);
      expect(proxy.injected()['throttle:PutItem']).toBe(retries);
    });
    for (const pk of pks) {
      expect(putsReaching(pk)).toBe(1);
      expect(await stored(pk)).toBe(true);
    }
  });

  it('makes the SDK give up with its ProvisionedThroughputExceededException when every attempt is throttled, writing nothing', async () => {
    const pk = key('throttled');
    await through('dynamodb', 'throttle=1', async (aws, proxy) => {
      const error = await failure(aws.dynamodb.send(put(pk)));
      expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
      const reasons = (error as ProvisionedThroughputExceededException).ThrottlingReasons;
      expect(reasons?.[0]?.reason).toBe('TableWriteKeyRangeThroughputExceeded');
      expect(reasons?.[0]?.resource).toBe(`arn:aws:dynamodb:us-east-1:000000000000:table/${up.table}`);
      expect(error.$metadata?.attempts).toBe(3);
      expect(proxy.injected()).toEqual({ throttle: 3, 'throttle:PutItem': 3 });
    });
    expect(putsReaching(pk)).toBe(0);
    expect(await stored(pk)).toBe(false);
  });

  it('leaves the control plane alone unless asked; asked, it answers ThrottlingException', async () => {
    await through('dynamodb', 'throttle=1', async (aws, proxy) => {
      const { Table } = await aws.dynamodb.send(new DescribeTableCommand({ TableName: up.table }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(proxy.injected()).toEqual({});
    });
    await through('dynamodb', 'throttle=1,ops=DescribeTable', async (aws) => {
      const error = await failure(aws.dynamodb.send(new DescribeTableCommand({ TableName: up.table })));
      expect(error).toBeInstanceOf(ThrottlingException);
      expect(error.$metadata?.attempts).toBe(3);
    });
  });

  it('answers a 5xx the SDK retries; with every attempt failing the SDK gives up with the server error', async () => {
    const once = key('error-once');
    await through('dynamodb', 'error=1,max=1', async (aws, proxy) => {
      expect((await aws.dynamodb.send(put(once))).$metadata.attempts).toBe(2);
      expect(proxy.injected()).toEqual({ error: 1, 'error:PutItem': 1 });
    });
    expect(await stored(once)).toBe(true);

    const always = key('error');
    await through('dynamodb', 'error=1,seed=5', async (aws) => {
      const error = await failure(aws.dynamodb.send(put(always)));
      expect(error.$metadata?.httpStatusCode).toBeGreaterThanOrEqual(500);
      expect(error.$fault).toBe('server');
      expect(error.$metadata?.attempts).toBe(3);
    });
    expect(putsReaching(always)).toBe(0);
  });

  it('loses the answer of a conditional write that landed: the SDK retries and the retry fails its condition', async () => {
    const pk = key('lost');
    await through('dynamodb', 'lost=1,max=1', async (aws, proxy) => {
      const error = await failure(aws.dynamodb.send(put(pk, true)));
      expect(error).toBeInstanceOf(ConditionalCheckFailedException);
      expect(error.$metadata?.attempts).toBe(2);
      expect(proxy.injected()).toEqual({ lost: 1, 'lost:PutItem': 1 });
    });
    // Both attempts reached DynamoDB, and the first one wrote.
    expect(putsReaching(pk)).toBe(2);
    expect(await stored(pk)).toBe(true);
  });

  it('resets the connection before forwarding: nothing is written, and a conditional retry just succeeds', async () => {
    const never = key('reset');
    await through('dynamodb', 'reset=1', async (aws, proxy) => {
      const error = await failure(aws.dynamodb.send(put(never)));
      expect(error.$metadata?.httpStatusCode).toBeUndefined();
      expect(`${error.name} ${error.code ?? ''} ${error.message}`).toMatch(/ECONNRESET|socket hang up/);
      expect(proxy.injected()).toEqual({ reset: 3, 'reset:PutItem': 3 });
    });
    expect(putsReaching(never)).toBe(0);
    expect(await stored(never)).toBe(false);

    const once = key('reset-once');
    await through('dynamodb', 'reset=1,max=1', async (aws) => {
      expect((await aws.dynamodb.send(put(once, true))).$metadata.attempts).toBe(2);
    });
    expect(putsReaching(once)).toBe(1);
  });

  it('answers part of a BatchGetItem as UnprocessedKeys, which never reach DynamoDB', async () => {
    const pks = Array.from({ length: 10 }, () => key('batch-get'));
    for (const pk of pks) await up.direct.dynamodb.send(put(pk));
    const before = up.dynamoCalls('BatchGetItem').length;
    await through('dynamodb', 'unprocessed=1,max=1,seed=1', async (aws, proxy) => {
      const result = await aws.dynamodb.send(new BatchGetItemCommand({ RequestItems: { [up.table]: { Keys: pks.map((pk) => ({ pk: { S: pk } })), ConsistentRead: true } } }));
      const got = (result.Responses?.[up.table] ?? []).map((item) => item['pk']?.S);
      const unprocessed = result.UnprocessedKeys?.[up.table];
      const held = (unprocessed?.Keys ?? []).map((k) => k['pk']?.S);
      expect(got.length).toBeGreaterThan(0);
      expect(held.length).toBeGreaterThan(0);
      expect([...got, ...held].sort()).toEqual([...pks].sort());
      expect(unprocessed?.ConsistentRead).toBe(true);
      expect(proxy.injected()).toEqual({ unprocessed: 1, 'unprocessed:BatchGetItem': 1 });

      const reached = up.dynamoCalls('BatchGetItem').slice(before);
      expect(reached).toHaveLength(1);
      const asked = ((reached[0]?.body['RequestItems'] as Record<string, { Keys: { pk: { S: string } }[] }>)[up.table]?.Keys ?? []).map((k) => k.pk.S);
      expect(asked.sort()).toEqual([...got].sort());
      for (const pk of held) expect(asked).not.toContain(pk);
    });
  });

  it('answers part of a BatchWriteItem as UnprocessedItems, which are not written', async () => {
    const pks = Array.from({ length: 10 }, () => key('batch-write'));
    await through('dynamodb', 'unprocessed=1,max=1,seed=2', async (aws) => {
      const result = await aws.dynamodb.send(
        new BatchWriteItemCommand({ RequestItems: { [up.table]: pks.map((pk) => ({ PutRequest: { Item: { pk: { S: pk } } } })) } }),
      );
      const held = (result.UnprocessedItems?.[up.table] ?? []).map((request) => request.PutRequest?.Item?.['pk']?.S);
      expect(held.length).toBeGreaterThan(0);
      expect(held.length).toBeLessThan(pks.length);
      for (const pk of pks) expect(await stored(pk)).toBe(!held.includes(pk));
    });
  });

  it('answers every entry of a batch unprocessed with ProvisionedThroughputExceededException, as DynamoDB does', async () => {
    const pk = key('batch-one');
    await through('dynamodb', 'unprocessed=1', async (aws, proxy) => {
      const error = await failure(aws.dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [up.table]: [{ PutRequest: { Item: { pk: { S: pk } } } }] } })));
      expect(error).toBeInstanceOf(ProvisionedThroughputExceededException);
      expect(proxy.injected()['unprocessed:BatchWriteItem']).toBe(3);
    });
    expect(await stored(pk)).toBe(false);
  });

  it('delays answers: beyond the SDK request timeout every attempt times out, and the writes still land', async () => {
    const pk = key('slow');
    await through(
      'dynamodb',
      'slow=1:300-300',
      async (aws, proxy) => {
        const error = await failure(aws.dynamodb.send(put(pk)));
        expect(error.name).toBe('TimeoutError');
        expect(error.$metadata?.attempts).toBe(3);
        expect(proxy.injected()).toEqual({ slow: 3, 'slow:PutItem': 3 });
        // The attempts the client gave up on are still carried out, as a service does.
        await eventually(() => putsReaching(pk) === 3, 3_000, 'three PutItems reaching dynalite');
      },
      100,
    );
    expect(await stored(pk)).toBe(true);
  });

  it('delays answers within the request timeout: the call succeeds, later', async () => {
    const pk = key('slow-ok');
    await through('dynamodb', 'slow=1:60-80', async (aws, proxy) => {
      const started = performance.now();
      expect((await aws.dynamodb.send(put(pk))).$metadata.attempts).toBe(1);
      expect(performance.now() - started).toBeGreaterThanOrEqual(59);
      expect(proxy.injected()).toEqual({ slow: 1, 'slow:PutItem': 1 });
    });
  });

  it('repeats its faults for the same seed and the same calls', async () => {
    const pks = Array.from({ length: 15 }, () => key('seeded'));
    const run = (spec: string) =>
      through('dynamodb', spec, async (aws, proxy) => {
        const outcomes: string[] = [];
        for (const pk of pks) {
          outcomes.push(
            await aws.dynamodb.send(new GetItemCommand({ TableName: up.table, Key: { pk: { S: pk } } })).then(
              (result) => `ok/${result.$metadata.attempts}`,
              (error: Error) => error.name,
            ),
          );
        }
        return { outcomes, injected: proxy.injected() };
      });
    const first = await run('error=0.3,reset=0.1,lost=0.1,seed=11');
    const again = await run('error=0.3,reset=0.1,lost=0.1,seed=11');
    const other = await run('error=0.3,reset=0.1,lost=0.1,seed=12');
    expect(Object.keys(first.injected).length).toBeGreaterThan(0);
    expect(again).toEqual(first);
    expect(other.injected).not.toEqual(first.injected);
  });

  it('closes every socket at close(), a kept-alive one and one held in a delay', async () => {
    const proxy = await startFaultProxy(up.dynamodbEndpoint, { slow: { rate: 1, minMs: 20_000, maxMs: 20_000 }, max: 1, seed: 1 });
    const aws = awsClients({ region: 'us-east-1', endpoints: { dynamodb: proxy.endpoint }, requestTimeoutMs: 30_000 });
    try {
      const held = failure(aws.dynamodb.send(new GetItemCommand({ TableName: up.table, Key: { pk: { S: 'held' } } })));
      await eventually(() => proxy.injected()['slow'] === 1, 2_000, 'the delay taking the call');
      // Bounded: a close that waits for kept-alive sockets or the delay fails here, at once.
      const bound = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), 1_000).unref());
      expect(await Promise.race([proxy.close().then(() => 'closed' as const), bound])).toBe('closed');
      // The SDK retries onto a proxy that is gone: refused.
      expect(`${(await held).message} ${(await held).code ?? ''}`).toMatch(/ECONNRESET|ECONNREFUSED|socket hang up/);
      const after = await failure(aws.dynamodb.send(new GetItemCommand({ TableName: up.table, Key: { pk: { S: 'after' } } })));
      expect(`${after.message} ${after.code ?? ''}`).toMatch(/ECONNREFUSED/);
    } finally {
      closeAwsClients(aws);
      await proxy.close();
    }
  });

  it('costs little: a few hundred calls through the proxy against the same calls direct', async () => {
    const calls = 300;
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
    await through('dynamodb', {}, async (aws) => {
      const get = (client: AwsClients, i: number) => client.dynamodb.send(new GetItemCommand({ TableName: up.table, Key: { pk: { S: `p${i}` } } }));
      const timed = async (client: AwsClients, i: number) => {
        const started = performance.now();
        await get(client, i);
        return performance.now() - started;
      };
      for (let i = 0; i < 30; i++) await Promise.all([get(up.direct, i), get(aws, i)]);
      // Alternated, so that whatever else the machine does weighs on both alike.
      const direct: number[] = [];
      const proxied: number[] = [];
      for (let i = 0; i < calls; i++) {
        direct.push(await timed(up.direct, i));
        proxied.push(await timed(aws, i));
      }
      const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
      console.log(
        `fault proxy overhead over ${calls} GetItems: median ${median(direct).toFixed(3)} ms direct, ${median(proxied).toFixed(3)} ms through the proxy ` +
          `(+${(median(proxied) - median(direct)).toFixed(3)} ms); mean ${mean(direct).toFixed(3)} / ${mean(proxied).toFixed(3)} ms`,
      );
      expect(median(proxied) - median(direct)).toBeLessThan(3);
    });
  });
});

describe('SQS through the fault proxy', () => {
  const bodies = (n: number) => Array.from({ length: n }, (_, i) => `${i}-${randomUUID()}`);

  it('answers a throttle the SDK retries; throttled at every attempt, the SDK gives up with RequestThrottled and nothing is sent', async () => {
    const queueUrl = await makeQueue(up, `throttle-${Date.now()}`);
    const [once, never] = bodies(2) as [string, string];
    await through('sqs', 'throttle=1,max=1', async (aws, proxy) => {
      expect((await aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: once }))).$metadata.attempts).toBe(2);
      expect(proxy.injected()).toEqual({ throttle: 1, 'throttle:SendMessage': 1 });
    });
    await through('sqs', 'throttle=1', async (aws, proxy) => {
      const error = await failure(aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: never })));
      expect(error).toBeInstanceOf(RequestThrottled);
      expect(error.$metadata?.attempts).toBe(3);
      expect(proxy.injected()['throttle:SendMessage']).toBe(3);
    });
    const sent = up.sqsCalls('SendMessage').map((call) => call.body['MessageBody']);
    expect(sent.filter((body) => body === once)).toHaveLength(1);
    expect(sent).not.toContain(never);
  });

  it('answers a 5xx the SDK retries', async () => {
    const queueUrl = await makeQueue(up, `error-${Date.now()}`);
    await through('sqs', 'error=1,max=1', async (aws) => {
      expect((await aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }))).$metadata.attempts).toBe(2);
    });
    await through('sqs', 'error=1', async (aws) => {
      const error = await failure(aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'y' })));
      expect(error.$metadata?.httpStatusCode).toBeGreaterThanOrEqual(500);
      expect(error.$metadata?.attempts).toBe(3);
    });
  });

  it('reports part of a SendMessageBatch as Failed (not the sender’s fault), and sends only the rest', async () => {
    const queueUrl = await makeQueue(up, `send-batch-${Date.now()}`);
    const messages = bodies(10);
    await through('sqs', 'unprocessed=1,max=1,seed=4', async (aws, proxy) => {
      const result = await aws.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: messages.map((body, i) => ({ Id: String(i), MessageBody: body })) }));
      const failed = result.Failed ?? [];
      const successful = result.Successful ?? [];
      expect(failed.length).toBeGreaterThan(0);
      expect(successful.length).toBeGreaterThan(0);
      expect([...failed, ...successful].map((entry) => Number(entry.Id)).sort((a, b) => a - b)).toEqual(messages.map((_, i) => i));
      for (const entry of failed) expect(entry).toMatchObject({ SenderFault: false, Code: 'InternalError' });
      expect(proxy.injected()).toEqual({ unprocessed: 1, 'unprocessed:SendMessageBatch': 1 });

      const expected = successful.map((entry) => messages[Number(entry.Id)]).sort();
      const received: string[] = [];
      for (let i = 0; i < 10 && received.length < expected.length; i++) {
        const { Messages = [] } = await up.direct.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
        received.push(...Messages.map((message) => message.Body ?? ''));
      }
      expect(received.sort()).toEqual(expected);
      const failedBodies = failed.map((entry) => messages[Number(entry.Id)]);
      for (const call of up.sqsCalls('SendMessageBatch').filter((c) => c.body['QueueUrl'] === queueUrl)) {
        for (const entry of call.body['Entries'] as { MessageBody: string }[]) expect(failedBodies).not.toContain(entry.MessageBody);
      }
    });
  });

  it('reports part of a DeleteMessageBatch as Failed: those messages stay in flight', async () => {
    const queueUrl = await makeQueue(up, `delete-batch-${Date.now()}`);
    for (const body of bodies(6)) await up.direct.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    const { Messages = [] } = await up.direct.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
    expect(Messages).toHaveLength(6);
    await through('sqs', 'unprocessed=1,max=1,seed=6', async (aws) => {
      const result = await aws.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })) }));
      const failed = result.Failed?.length ?? 0;
      expect(failed).toBeGreaterThan(0);
      expect((result.Successful?.length ?? 0) + failed).toBe(6);
      const { Attributes } = await up.direct.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }));
      expect(Number(Attributes?.['ApproximateNumberOfMessagesNotVisible'])).toBe(failed);
    });
  });

  it('carries a long poll through: a message sent while the poll waits is its answer', async () => {
    const queueUrl = await makeQueue(up, `long-poll-${Date.now()}`);
    const before = up.sqsCalls('ReceiveMessage').length;
    await through('sqs', {}, async (aws) => {
      const poll = aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 5 }));
      await eventually(() => up.sqsCalls('ReceiveMessage').length > before, 2_000, 'the poll reaching fauxqs');
      await up.direct.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'awaited' }));
      expect((await poll).Messages?.map((message) => message.Body)).toEqual(['awaited']);
    });
  });

  it('loses a ReceiveMessage answer: the retry finds nothing, the message stays in flight until its visibility timeout', async () => {
    const queueUrl = await makeQueue(up, `lost-receive-${Date.now()}`);
    await up.direct.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'only' }));
    const before = up.sqsCalls('ReceiveMessage').length;
    await through('sqs', 'lost=1,max=1', async (aws, proxy) => {
      const result = await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
      expect(result.Messages ?? []).toEqual([]);
      expect(result.$metadata.attempts).toBe(2);
      expect(proxy.injected()).toEqual({ lost: 1, 'lost:ReceiveMessage': 1 });
    });
    expect(up.sqsCalls('ReceiveMessage').length - before).toBe(2);
    const { Attributes } = await up.direct.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }));
    expect(Attributes?.['ApproximateNumberOfMessagesNotVisible']).toBe('1');
  });
});
