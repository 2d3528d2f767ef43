import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DynamoDocuments } from '../../lambdas/adapters/aws/attributes.ts';
import { AwsClient, AwsCredentialsError, AwsError, AwsNetworkError, type AwsClientOptions } from '../../lambdas/adapters/aws/client.ts';
import { sign } from '../../lambdas/adapters/aws/sigv4.ts';
import { startStorage, type Storage } from '../../local/storage.ts';
import { startRecordingServer, type RecordingServer } from '../support/recording-server.ts';

/** A loopback server playing AWS: records what reaches it and answers as `handler` says. */
type FakeAws = RecordingServer;

type Handler = (request: { headers: IncomingHttpHeaders; body: string; index: number }, res: ServerResponse, req: IncomingMessage) => void;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  vi.unstubAllEnvs();
});

async function fakeAws(handler: Handler): Promise<FakeAws> {
  const fake = await startRecordingServer((req, res, record, index) => req.on('end', () => handler({ headers: req.headers, body: record.body, index }, res, req)));
  cleanups.push(fake.close);
  return fake;
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
};

const credentials = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'secret-secret-secret-secret', sessionToken: 'session-token-session-token' };

/** A client whose waits are recorded instead of slept, and whose jitter is `random`. */
function client(options: Partial<AwsClientOptions> & { endpoint: string }, random = 0.5) {
  const delays: number[] = [];
  const aws = new AwsClient({
    service: 'dynamodb',
    region: 'eu-west-1',
    credentials,
    sleep: async (ms) => {
      delays.push(ms);
    },
    random: () => random,
    ...options,
  });
  cleanups.push(() => aws.destroy());
  return { aws, delays };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the call to fail');
}

describe('AwsClient on the wire', () => {
  it('POSTs the JSON input to the endpoint path with the target, content type and a signature the signer reproduces', async () => {
    const server = await fakeAws((_request, res) => json(res, 200, { Item: { pk: { S: 'a' } } }));
    const when = new Date('2030-05-06T07:08:09Z');
    const { aws } = client({ endpoint: `${server.url}/prefix/`, now: () => when });
    const output = await aws.call('GetItem', { TableName: 't', Key: { pk: { S: 'a' } } });

    expect(output).toEqual({ Item: { pk: { S: 'a' } } });
    const [seen] = server.requests;
    expect(seen?.method).toBe('POST');
    expect(seen?.url).toBe('/prefix/');
    expect(seen?.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(seen?.headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(seen?.headers['host']).toBe(`127.0.0.1:${server.port}`);
    expect(seen?.headers['content-length']).toBe(String(Buffer.byteLength(seen?.body ?? '')));
    expect(JSON.parse(seen?.body ?? '')).toEqual({ TableName: 't', Key: { pk: { S: 'a' } } });
    expect(seen?.headers['x-amz-security-token']).toBe(credentials.sessionToken);

    const authorization = seen?.headers['authorization'] ?? '';
    const signedNames = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
    expect(signedNames).toEqual(['content-length', 'content-type', 'host', 'x-amz-date', 'x-amz-security-token', 'x-amz-target']);
    const signedHeaders = Object.fromEntries(signedNames.filter((name) => name !== 'x-amz-date').map((name) => [name, String(seen?.headers[name])]));
    const expected = sign(
      { method: 'POST', host: `127.0.0.1:${server.port}`, path: '/prefix/', headers: signedHeaders, body: seen?.body ?? '' },
      { credentials, region: 'eu-west-1', service: 'dynamodb', date: when },
    );
    expect(authorization).toBe(expected['authorization']);
    expect(authorization).toContain('Credential=AKIDTESTTESTTEST/20300506/eu-west-1/dynamodb/aws4_request');
  });

  it('names SQS operations AmazonSQS.<Operation> and asks for query-compatible errors, as the SDK does', async () => {
    const server = await fakeAws((_request, res) => json(res, 200, { MessageId: 'm1' }));
    const { aws } = client({ service: 'sqs', endpoint: server.url });
    expect(await aws.call('SendMessage', { QueueUrl: 'q', MessageBody: 'hi' })).toEqual({ MessageId: 'm1' });
    expect(server.requests[0]?.headers['x-amz-target']).toBe('AmazonSQS.SendMessage');
    expect(server.requests[0]?.headers['x-amzn-query-mode']).toBe('true');
    expect(server.requests[0]?.headers['authorization']).toContain('/eu-west-1/sqs/aws4_request');
  });

  it('returns {} for an empty 200 answer', async () => {
    const server = await fakeAws((_request, res) => res.writeHead(200, { 'content-length': 0 }).end());
    const { aws } = client({ service: 'sqs', endpoint: server.url });
    expect(await aws.call('DeleteMessage', { QueueUrl: 'q', ReceiptHandle: 'r' })).toEqual({});
  });

  it('reuses one kept-alive connection across calls', async () => {
    const server = await fakeAws((_request, res) => json(res, 200, {}));
    const { aws } = client({ endpoint: server.url });
    for (let i = 0; i < 5; i++) await aws.call('DescribeTable', { TableName: 't' });
    expect(server.requests).toHaveLength(5);
    expect(server.connections).toBe(1);
  });
});

describe('AwsClient retries', () => {
  it('retries a 500, signing each attempt afresh, after full-jitter backoff within its bounds', async () => {
    const server = await fakeAws(({ index }, res) => (index < 2 ? json(res, 500, { __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'oops' }) : json(res, 200, { ok: 1 })));
    let tick = Date.parse('2030-01-01T00:00:00Z');
    const { aws, delays } = client({ endpoint: server.url, now: () => new Date((tick += 1000)) }, 0.999);
    expect(await aws.call('PutItem', { TableName: 't', Item: {} })).toEqual({ ok: 1 });
    expect(server.requests).toHaveLength(3);
    // The n-th retry waits random * min(20 s, 100 ms * 2^(n-1)).
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeGreaterThanOrEqual(0);
    expect(delays[0]).toBeLessThan(100);
    expect(delays[1]).toBeLessThan(200);
    expect(delays[0]).toBeCloseTo(99.9);
    expect(delays[1]).toBeCloseTo(199.8);
    const dates = server.requests.map((request) => request.headers['x-amz-date']);
    expect(new Set(dates).size).toBe(3);
  });

  it('waits no more than the 20 s cap however many attempts are allowed', async () => {
    const server = await fakeAws((_request, res) => json(res, 503, { __type: 'ServiceUnavailable' }));
    const { aws, delays } = client({ endpoint: server.url, maxAttempts: 12 }, 0.999_999);
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toBeInstanceOf(AwsError);
    expect((error as AwsError).retryable).toBe(true);
    expect(server.requests).toHaveLength(12);
    expect(Math.max(...delays)).toBeLessThan(20_000);
    expect(Math.max(...delays)).toBeGreaterThan(19_999);
  });

  it.each([
    ['DynamoDB throttling', 400, { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'slow down' }, {}],
    ['provisioned throughput exceeded', 400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException' }, {}],
    ['HTTP 429', 429, { __type: 'TooManyRequests' }, {}],
    ['SQS throttling named only by its query error header', 400, {}, { 'x-amzn-query-error': 'AWS.SimpleQueueService.RequestThrottled;Sender' }],
  ])('retries %s', async (_what, status, body, headers) => {
    const server = await fakeAws(({ index }, res) => (index === 0 ? json(res, status, body, headers) : json(res, 200, { done: true })));
    const { aws, delays } = client({ endpoint: server.url });
    expect(await aws.call('Query', { TableName: 't' })).toEqual({ done: true });
    expect(server.requests).toHaveLength(2);
    expect(delays).toEqual([50]);
  });

  it('retries a connection reset by the server', async () => {
    const server = await fakeAws(({ index }, res, req) => (index === 0 ? req.socket.destroy() : json(res, 200, { after: 'reset' })));
    const { aws, delays } = client({ endpoint: server.url }, 0.25);
    expect(await aws.call('GetItem', {})).toEqual({ after: 'reset' });
    expect(server.requests).toHaveLength(2);
    expect(delays).toEqual([25]);
  });

  it('gives up on a refused connection after maxAttempts, naming the code', async () => {
    const closed = await fakeAws(() => undefined);
    await closed.close();
    const { aws, delays } = client({ endpoint: closed.url, maxAttempts: 4 });
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toBeInstanceOf(AwsNetworkError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', operation: 'GetItem', attempts: 4 });
    expect(delays).toEqual([50, 100, 200]);
  });

  it('times out an attempt that gets no answer and retries it', async () => {
    const server = await fakeAws(({ index }, res) => {
      if (index > 0) json(res, 200, { second: true });
      // The first request is left unanswered.
    });
    const { aws, delays } = client({ endpoint: server.url, timeoutMs: 100 });
    expect(await aws.call('GetItem', {})).toEqual({ second: true });
    expect(server.requests).toHaveLength(2);
    expect(delays).toHaveLength(1);
  });

  it('reports a timeout once every attempt timed out', async () => {
    const server = await fakeAws(() => undefined);
    const { aws } = client({ endpoint: server.url, timeoutMs: 50, maxAttempts: 2 });
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toBeInstanceOf(AwsNetworkError);
    expect(error).toMatchObject({ code: 'TimeoutError', attempts: 2 });
    expect(error.message).toContain('no answer within 50 ms');
    expect(server.requests).toHaveLength(2);
  });

  it('never retries a failed condition, and hands back the parsed error body', async () => {
    const body = {
      __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException',
      message: 'The conditional request failed',
      Item: { pk: { S: 'a' }, n: { N: '1' } },
    };
    const server = await fakeAws((_request, res) => json(res, 400, body));
    const { aws, delays } = client({ endpoint: server.url });
    const secretInput = { TableName: 't', Item: { pk: { S: 'very-private-value' } }, ConditionExpression: 'attribute_not_exists(pk)' };
    const error = await rejection(aws.call('PutItem', secretInput));
    expect(error).toBeInstanceOf(AwsError);
    expect(error).toMatchObject({ name: 'ConditionalCheckFailedException', statusCode: 400, retryable: false, operation: 'PutItem', details: body });
    expect(error.message).toBe('PutItem: ConditionalCheckFailedException (400): The conditional request failed');
    expect(server.requests).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('never retries a validation error', async () => {
    const server = await fakeAws((_request, res) => json(res, 400, { __type: 'com.amazon.coral.validate#ValidationException', Message: 'bad key' }));
    const { aws } = client({ endpoint: server.url });
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toMatchObject({ name: 'ValidationException', retryable: false });
    expect(error.message).toContain('bad key');
    expect(server.requests).toHaveLength(1);
  });

  it('names an SQS error by its JSON code, not the query header', async () => {
    const server = await fakeAws((_request, res) =>
      json(res, 400, { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' }, { 'x-amzn-query-error': 'AWS.SimpleQueueService.NonExistentQueue;Sender' }),
    );
    const { aws } = client({ service: 'sqs', endpoint: server.url });
    const error = await rejection(aws.call('SendMessage', { QueueUrl: 'nope', MessageBody: 'x' }));
    expect(error).toMatchObject({ name: 'QueueDoesNotExist', statusCode: 400, retryable: false });
  });

  it('still gives an AwsError with the status code for an answer that is not JSON', async () => {
    const server = await fakeAws(({ index }, res) => {
      res.writeHead(index === 0 ? 502 : 403, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    });
    const { aws } = client({ endpoint: server.url });
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toBeInstanceOf(AwsError);
    // The 502 was retried; the 403 was not.
    expect(error).toMatchObject({ name: 'Http403', statusCode: 403, retryable: false, details: {} });
    expect(server.requests).toHaveLength(2);
  });

  it('keeps credentials, the signature and the request body out of error messages', async () => {
    const server = await fakeAws(({ headers }, res) =>
      json(res, 400, {
        __type: 'com.amazon.coral.service#InvalidSignatureException',
        // AWS quotes the canonical request, session token included.
        message: `The Canonical String for this request should have been 'x-amz-security-token:${String(headers['x-amz-security-token'])}' key ${credentials.accessKeyId}`,
      }),
    );
    const { aws } = client({ endpoint: server.url });
    const error = (await rejection(aws.call('PutItem', { Item: { secret: { S: 'body-secret' } } }))) as AwsError;
    const signature = /Signature=(\w+)/.exec(String(server.requests[0]?.headers['authorization']))?.[1] ?? 'missing';
    for (const text of [error.message, JSON.stringify(error.details), String(error.stack)]) {
      for (const secret of [credentials.sessionToken, credentials.secretAccessKey, credentials.accessKeyId, signature, 'body-secret']) expect(text).not.toContain(secret);
    }
    expect(error.message).toContain('[redacted]');
  });
});

describe('AwsClient observers', () => {
  it('lets `before` add fields that reach the wire, and shows `after` the output and byte sizes', async () => {
    const answer = JSON.stringify({ ConsumedCapacity: { CapacityUnits: 1 } });
    const server = await fakeAws((_request, res) => json(res, 200, answer));
    const { aws } = client({ endpoint: server.url });
    const seen: unknown[] = [];
    aws.observe({
      before: (operation, input) => {
        if (operation === 'PutItem') input['ReturnConsumedCapacity'] = 'TOTAL';
      },
      after: (operation, input, output, sizes) => seen.push({ operation, input, output, sizes }),
    });
    const input = { TableName: 't', Item: { pk: { S: 'ü' } } };
    await aws.call('PutItem', input);

    const wire = server.requests[0]?.body ?? '';
    expect(JSON.parse(wire)).toEqual({ ...input, ReturnConsumedCapacity: 'TOTAL' });
    expect(input).not.toHaveProperty('ReturnConsumedCapacity');
    expect(seen).toEqual([
      {
        operation: 'PutItem',
        input: { ...input, ReturnConsumedCapacity: 'TOTAL' },
        output: { ConsumedCapacity: { CapacityUnits: 1 } },
        sizes: { requestBytes: Buffer.byteLength(wire), responseBytes: Buffer.byteLength(answer) },
      },
    ]);
  });

  it('tells `failed` of a call that failed for good, and not `after`', async () => {
    const server = await fakeAws((_request, res) => json(res, 400, { __type: 'x#ConditionalCheckFailedException' }));
    const { aws } = client({ endpoint: server.url });
    const failures: string[] = [];
    const after = vi.fn();
    aws.observe({ after, failed: (operation, _input, error) => failures.push(`${operation} ${error.name}`) });
    await rejection(aws.call('UpdateItem', {}));
    expect(failures).toEqual(['UpdateItem ConditionalCheckFailedException']);
    expect(after).not.toHaveBeenCalled();
  });
});

describe('AwsClient configuration', () => {
  const fresh = (options: Partial<AwsClientOptions> & Pick<AwsClientOptions, 'service'>) => {
    const aws = new AwsClient(options);
    cleanups.push(() => aws.destroy());
    return aws;
  };
  const clearEndpoints = () => {
    for (const name of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SQS', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'AWS_REGION', 'AWS_DEFAULT_REGION']) vi.stubEnv(name, '');
  };

  it('takes the service-specific endpoint variable before AWS_ENDPOINT_URL', () => {
    clearEndpoints();
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:1111');
    vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', 'http://127.0.0.1:2222');
    expect(fresh({ service: 'dynamodb' }).endpoint).toBe('http://127.0.0.1:2222');
    expect(fresh({ service: 'sqs' }).endpoint).toBe('http://127.0.0.1:1111');
    vi.stubEnv('AWS_ENDPOINT_URL_SQS', 'http://127.0.0.1:3333');
    expect(fresh({ service: 'sqs' }).endpoint).toBe('http://127.0.0.1:3333');
    expect(fresh({ service: 'sqs', endpoint: 'http://127.0.0.1:4444' }).endpoint).toBe('http://127.0.0.1:4444');
  });

  it("falls back to the region's public endpoint, the region from AWS_REGION, then AWS_DEFAULT_REGION, then us-east-1", () => {
    clearEndpoints();
    expect(fresh({ service: 'sqs' })).toMatchObject({ region: 'us-east-1', endpoint: 'https://sqs.us-east-1.amazonaws.com' });
    vi.stubEnv('AWS_DEFAULT_REGION', 'eu-central-1');
    expect(fresh({ service: 'dynamodb' })).toMatchObject({ region: 'eu-central-1', endpoint: 'https://dynamodb.eu-central-1.amazonaws.com' });
    vi.stubEnv('AWS_REGION', 'ap-southeast-2');
    expect(fresh({ service: 'dynamodb' })).toMatchObject({ region: 'ap-southeast-2', endpoint: 'https://dynamodb.ap-southeast-2.amazonaws.com' });
    expect(fresh({ service: 'sqs', region: 'cn-north-1' }).endpoint).toBe('https://sqs.cn-north-1.amazonaws.com.cn');
  });

  it('ignores configured endpoints when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true', () => {
    clearEndpoints();
    vi.stubEnv('AWS_ENDPOINT_URL', 'http://127.0.0.1:1111');
    vi.stubEnv('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'true');
    expect(fresh({ service: 'sqs', region: 'eu-west-1' }).endpoint).toBe('https://sqs.eu-west-1.amazonaws.com');
  });

  it('reads credentials from the environment at call time', async () => {
    const server = await fakeAws((_request, res) => json(res, 200, {}));
    vi.stubEnv('AWS_ACCESS_KEY_ID', '');
    const aws = fresh({ service: 'sqs', endpoint: server.url, region: 'us-east-1' });
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDFROMENVIRONMENT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'from-env-secret');
    vi.stubEnv('AWS_SESSION_TOKEN', 'from-env-token');
    await aws.call('ListQueues', {});
    expect(server.requests[0]?.headers['authorization']).toContain('Credential=AKIDFROMENVIRONMENT/');
    expect(server.requests[0]?.headers['x-amz-security-token']).toBe('from-env-token');
  });

  it('asks a credentials function once per call', async () => {
    const server = await fakeAws(({ index }, res) => json(res, index === 0 ? 500 : 200, {}));
    const provider = vi.fn(async () => credentials);
    const { aws } = client({ endpoint: server.url, credentials: provider });
    await aws.call('GetItem', {});
    expect(server.requests).toHaveLength(2);
    expect(provider).toHaveBeenCalledTimes(1);
  });

  it('names the missing variable when there are no credentials, and sends nothing', async () => {
    const server = await fakeAws((_request, res) => json(res, 200, {}));
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDFROMENVIRONMENT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', '');
    const aws = fresh({ service: 'dynamodb', endpoint: server.url });
    const error = await rejection(aws.call('GetItem', {}));
    expect(error).toBeInstanceOf(AwsCredentialsError);
    expect(error.message).toContain('AWS_SECRET_ACCESS_KEY is not set');
    expect(error.message).not.toContain('AWS_ACCESS_KEY_ID');
    expect(server.requests).toHaveLength(0);
  });
});

describe('AwsClient against the local stack’s dynalite and fauxqs', () => {
  let storage: Storage;
  let dataDir: string;
  let dynamodb: AwsClient;
  let sqs: AwsClient;
  const local = { accessKeyId: 'local', secretAccessKey: 'local' };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'waas-aws-client-'));
    storage = await startStorage(dataDir);
    dynamodb = new AwsClient({ service: 'dynamodb', region: 'us-east-1', endpoint: storage.dynamodbEndpoint, credentials: local });
    sqs = new AwsClient({ service: 'sqs', region: 'us-east-1', endpoint: storage.sqsEndpoint, credentials: local });
  });

  afterAll(async () => {
    dynamodb?.destroy();
    sqs?.destroy();
    await storage?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('creates a table and reads, writes, queries and batches items in it', async () => {
    const TableName = 'aws-client-items';
    await dynamodb.call('CreateTable', {
      TableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
    });
    let status = '';
    for (let i = 0; i < 200 && status !== 'ACTIVE'; i++) {
      const { Table } = await dynamodb.call<{ Table: { TableStatus: string } }>('DescribeTable', { TableName });
      status = Table.TableStatus;
    }
    expect(status).toBe('ACTIVE');

    // The raw client: attribute values as the API spells them.
    await dynamodb.call('PutItem', { TableName, Item: { pk: { S: 'raw' }, sk: { S: 'job' }, n: { N: '1' }, b: { B: Buffer.from([0, 1, 255]).toString('base64') } } });
    const raw = await dynamodb.call('GetItem', { TableName, Key: { pk: { S: 'raw' }, sk: { S: 'job' } }, ConsistentRead: true });
    expect(raw).toEqual({ Item: { pk: { S: 'raw' }, sk: { S: 'job' }, n: { N: '1' }, b: { B: 'AAH/' } } });

    // The document layer: plain values.
    const db = new DynamoDocuments(dynamodb);
    const job = { pk: 'job#1', sk: 'job', status: 'accepted', attempts: 0, history: [{ at: 1, note: '' }], output: null, body: new Uint8Array([1, 2, 3]), tags: new Set(['a', 'b']) };
    await db.send('PutItem', { TableName, Item: job, ConditionExpression: 'attribute_not_exists(pk)' });
    const put = await rejection(db.send('PutItem', { TableName, Item: job, ConditionExpression: 'attribute_not_exists(pk)' }));
    expect(put).toBeInstanceOf(AwsError);
    expect(put).toMatchObject({ name: 'ConditionalCheckFailedException', statusCode: 400, retryable: false });
    expect((await db.send('GetItem', { TableName, Key: { pk: 'job#1', sk: 'job' } })).Item).toEqual(job);

    const updated = await db.send('UpdateItem', {
      TableName,
      Key: { pk: 'job#1', sk: 'job' },
      UpdateExpression: 'SET #status = :running, attempts = attempts + :one',
      ConditionExpression: '#status = :accepted',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':running': 'running', ':one': 1, ':accepted': 'accepted' },
      ReturnValues: 'ALL_NEW',
    });
    expect(updated.Attributes).toMatchObject({ status: 'running', attempts: 1 });
    const stale = await rejection(
      db.send('UpdateItem', {
        TableName,
        Key: { pk: 'job#1', sk: 'job' },
        UpdateExpression: 'SET #status = :running',
        ConditionExpression: '#status = :accepted',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: { ':running': 'running', ':accepted': 'accepted' },
      }),
    );
    expect(stale).toMatchObject({ name: 'ConditionalCheckFailedException' });

    const writes = Array.from({ length: 5 }, (_, i) => ({ PutRequest: { Item: { pk: 'batch', sk: `s${i}`, i } } }));
    const written = await db.send('BatchWriteItem', { RequestItems: { [TableName]: [...writes, { DeleteRequest: { Key: { pk: 'raw', sk: 'job' } } }] } });
    expect(written.UnprocessedItems).toEqual({});
    const pages: unknown[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await db.send('Query', {
        TableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'batch' },
        Limit: 2,
        ...(start ? { ExclusiveStartKey: start } : {}),
      });
      pages.push(...page.Items);
      start = page.LastEvaluatedKey;
    } while (start);
    expect(pages).toEqual(writes.map((write) => write.PutRequest.Item));

    const got = await db.send('BatchGetItem', {
      RequestItems: { [TableName]: { Keys: [{ pk: 'batch', sk: 's0' }, { pk: 'batch', sk: 's4' }, { pk: 'raw', sk: 'job' }], ConsistentRead: true } },
    });
    const items = (got.Responses[TableName] as Array<{ sk: string }>).sort((a, b) => a.sk.localeCompare(b.sk));
    expect(items).toEqual([
      { pk: 'batch', sk: 's0', i: 0 },
      { pk: 'batch', sk: 's4', i: 4 },
    ]);

    const missing = await rejection(dynamodb.call('GetItem', { TableName: 'no-such-table', Key: { pk: { S: 'x' } } }));
    expect(missing).toMatchObject({ name: 'ResourceNotFoundException', statusCode: 400, retryable: false });
  });

  it('creates a queue and sends, receives, postpones and deletes messages on it', async () => {
    const { QueueUrl } = await sqs.call<{ QueueUrl: string }>('CreateQueue', { QueueName: 'aws-client-queue', Attributes: { VisibilityTimeout: '30' } });
    expect(QueueUrl).toMatch(/aws-client-queue$/);
    const sent = await sqs.call<{ MessageId: string; MD5OfMessageBody: string }>('SendMessage', { QueueUrl, MessageBody: '{"kind":"job","jobId":"1"}' });
    expect(sent.MessageId).toBeTruthy();
    expect(sent.MD5OfMessageBody).toBe(createHash('md5').update('{"kind":"job","jobId":"1"}').digest('hex'));
    const batch = await sqs.call<{ Successful: unknown[]; Failed?: unknown[] }>('SendMessageBatch', {
      QueueUrl,
      Entries: ['2', '3', '4'].map((id) => ({ Id: id, MessageBody: `{"kind":"job","jobId":"${id}"}` })),
    });
    expect(batch.Successful).toHaveLength(3);
    expect(batch.Failed ?? []).toEqual([]);

    type Received = { Messages?: Array<{ Body: string; ReceiptHandle: string; Attributes?: Record<string, string> }> };
    const first = await sqs.call<Received>('ReceiveMessage', { QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageSystemAttributeNames: ['All'] });
    expect(first.Messages?.map((message) => JSON.parse(message.Body).jobId).sort()).toEqual(['1', '2', '3', '4']);
    expect(first.Messages?.every((message) => message.Attributes?.['ApproximateReceiveCount'] === '1')).toBe(true);

    // Back on the queue at once: seen a second time.
    const [again] = first.Messages ?? [];
    await sqs.call('ChangeMessageVisibility', { QueueUrl, ReceiptHandle: again?.ReceiptHandle, VisibilityTimeout: 0 });
    const second = await sqs.call<Received>('ReceiveMessage', { QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, AttributeNames: ['All'] });
    expect(second.Messages?.map((message) => message.Body)).toEqual([again?.Body]);
    expect(second.Messages?.[0]?.Attributes?.['ApproximateReceiveCount']).toBe('2');

    const handles = [...(first.Messages ?? []).slice(1), ...(second.Messages ?? [])].map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle }));
    const deleted = await sqs.call<{ Successful: unknown[]; Failed?: unknown[] }>('DeleteMessageBatch', { QueueUrl, Entries: handles });
    expect(deleted.Successful).toHaveLength(4);
    expect(deleted.Failed ?? []).toEqual([]);
    const empty = await sqs.call<Received>('ReceiveMessage', { QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 });
    expect(empty.Messages ?? []).toEqual([]);

    const gone = await rejection(sqs.call('SendMessage', { QueueUrl: `${QueueUrl}-missing`, MessageBody: 'x' }));
    expect(gone).toMatchObject({ name: 'QueueDoesNotExist', statusCode: 400, retryable: false });
  });
});
