/**
 * Whatever a target answers, the items we write stay far below DynamoDB's 400 KB item limit:
 * the worst case of every bounded field, in text that no compression shrinks, stored as the
 * jobs store stores it (job-items.ts) and measured by DynamoDB's own size rules (item-size.ts).
 * And a typical job costs what the README says: its request in an item of its own, its state one write unit a
 * write. The sizes are printed for the README.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand, type PutCommandInput, type QueryCommandInput, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { eventJson } from '../../bench/load.ts';
import { documentOptions } from '../../lambdas/adapters/aws.ts';
import { DynamoJobStore } from '../../lambdas/adapters/dynamo.ts';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { newJobItems, storedChanges } from '../../lambdas/adapters/job-items.ts';
import { runJobAttempt } from '../../lambdas/core/deliver.ts';
import type { AttemptOutput, Job, JobRequest } from '../../lambdas/core/job.ts';
import { submit } from '../../lambdas/core/submit.ts';
import { jobLimits } from '../../lib/definitions.ts';
import { acceptedJob, answer, ManualClock, MemoryClientStore, MemoryWorkQueue, ScriptedHttp, testClient } from '../support/memory.ts';

type Item = Record<string, any>;

const dynamoItemLimit = 400 * 1024;

/**
 * UTF-8 text of `bytes` bytes that brotli cannot shrink by the 10% that would get it stored
 * packed: random characters, mostly ASCII, some of two and three bytes (about 7 bits of entropy
 * per byte). Stored as text, it is the largest a field of that many bytes can be. `printable`
 * leaves out the control characters, which no header value holds.
 */
function incompressible(bytes: number, { printable = false } = {}): string {
  const chars: string[] = [];
  let length = 0;
  for (;;) {
    const pick = randomInt(100);
    const ascii = printable ? 0x20 + randomInt(0x5f) : randomInt(0x80);
    const code = pick < 85 ? ascii : pick < 97 ? 0x80 + randomInt(0x780) : 0x800 + randomInt(0xd800 - 0x800);
    const char = String.fromCharCode(code);
    const size = Buffer.byteLength(char);
    if (length + size > bytes) break;
    chars.push(char);
    length += size;
  }
  return chars.join('').padEnd(chars.length + bytes - length, 'x');
}

const longUrl = `https://example.com/${'p'.repeat(jobLimits.urlChars - 20)}`;
const error = incompressible(1024);

/** The last attempt's output with every capture limit reached. */
function worstOutput(body: Pick<AttemptOutput, 'body' | 'bodyEncoding'>): AttemptOutput {
  const headers: Record<string, string> = {};
  // Response headers are kept up to responseHeaderBytes in all.
  for (let i = 0; i < 64; i++) headers[`x-header-${String(i).padStart(2, '0')}`] = incompressible(jobLimits.responseHeaderBytes / 64 - 12, { printable: true });
  return { started: new Date().toISOString(), durationMs: 60_000, statusCode: 503, headers, ...body, bodyBytes: 100 * 1024 * 1024, truncated: true, error };
}

/** A job with every bounded field at its limit, but for its output and history. */
function largestJob(): Job {
  return {
    jobId: '6b7d7b4b-6d76-4fed-8306-330cb945cca0',
    clientId: '6'.repeat(128),
    created: new Date().toISOString(),
    lastUpdate: new Date().toISOString(),
    service: longUrl,
    methodtype: 'OPTIONS',
    callback: longUrl,
    status: 'running',
    attempts: 20,
    maxAttempts: 20,
    timeoutMs: 60_000,
    output: null,
    history: [],
    nextAttemptAt: Date.now(),
    leaseUntil: Date.now(),
    notified: 'notification failed',
    notifyoutput: error,
    notifyAttempts: 20,
    callbackMaxAttempts: 20,
    notifyLeaseUntil: Date.now(),
    nextNotifyAt: Date.now(),
    sweep: '6',
    expiresAt: 1_900_000_000,
  };
}

/** The state item after submit, then one write that reaches every limit (output, history), as UpdateItem applies it. */
function largestStateItem(body: Pick<AttemptOutput, 'body' | 'bodyEncoding'>): Item {
  const job = largestJob();
  const items = newJobItems(job, { url: longUrl, method: 'OPTIONS', headers: { 'Idempotency-Key': job.jobId }, body: null });
  const state: Item = { ...(items.at(-1) ?? {}) };
  const history = Array.from({ length: jobLimits.attemptHistory }, (_, i) => ({ attempt: i + 1, started: new Date().toISOString(), durationMs: 60_000, statusCode: 599, error }));
  const { set, remove } = storedChanges({ output: worstOutput(body), history });
  Object.assign(state, set);
  for (const name of remove) delete state[name];
  expect(state).toMatchObject({ sk: 'job', history: expect.any(Array), output: expect.any(Object) });
  return state;
}

describe('the largest items', () => {
  it('keeps the largest job state item under a third of the 400 KB limit', () => {
    // The capture limit of a binary body, in base64 (a third larger), from random bytes.
    const base64 = dynamoItemSize(largestStateItem({ body: randomBytes(jobLimits.responseBodyBytes).toString('base64'), bodyEncoding: 'base64' }));
    // The same limit as text that stays text.
    const text = dynamoItemSize(largestStateItem({ body: incompressible(jobLimits.responseBodyBytes), bodyEncoding: 'utf8' }));
    console.log(JSON.stringify({ largestJobItemBytes: { base64Body: base64, textBody: text } }));
    expect(Math.max(base64, text)).toBeLessThan(dynamoItemLimit / 3);
  });

  it('keeps the largest request item (written once) under the 400 KB limit with room to spare', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < jobLimits.maxHeaders; i++) headers[`X-H-${String(i).padStart(2, '0')}`] = incompressible(Math.floor(jobLimits.headerBytes / jobLimits.maxHeaders) - 12, { printable: true });
    const request: JobRequest = { url: longUrl, method: 'POST', headers, body: incompressible(jobLimits.requestBodyBytes) };
    const job = acceptedJob({ jobId: '6b7d7b4b-6d76-4fed-8306-330cb945cca0', service: longUrl });
    // One item: the request, and beside it the state as submitted (newJobItems).
    const items = newJobItems(job, request);
    expect(items.map((item) => item['sk'])).toEqual(['request']);
    const [own = {}] = items;
    expect(own).toMatchObject({ status: 'accepted', clientId: job.clientId });
    // The body stays text: packing would have made it smaller, so this is the worst there is.
    expect(own).not.toHaveProperty('bodyCompression');
    expect(own['body']).toBe(request.body);
    const bytes = dynamoItemSize(own);
    // And were the headers kept as text too (they are packed only when that saves a tenth).
    const { headersCompression: _packed, ...rest } = own;
    const bound = dynamoItemSize({ ...rest, headers });
    console.log(JSON.stringify({ largestRequestItemBytes: bytes, withHeadersUnpacked: bound }));
    expect(bytes).toBeGreaterThan(jobLimits.requestBodyBytes);
    expect(Math.max(bytes, bound)).toBeLessThan(300_000);
  });
});

const ddb = mockClient(DynamoDBDocumentClient);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), documentOptions);

afterEach(() => {
  ddb.reset();
});

/** A jobs table behind the mocked document client that records the size of the job item each write leaves. */
function measuredTable() {
  const items = new Map<string, Item>();
  const writes: Array<{ command: string; sk: string; before: number; after: number }> = [];
  const id = (key: Item | undefined) => `${key?.['pk']}|${key?.['sk']}`;
  const size = (key: string) => dynamoItemSize(items.get(key) ?? {});
  const record = (command: string, key: string, write: () => void) => {
    const before = size(key);
    write();
    const sk = key.split('|')[1] ?? '';
    // A job's own items; the submit's listing entry (job-listing.ts) is not the job's.
    if (sk === 'job' || sk === 'request') writes.push({ command, sk, before, after: size(key) });
  };
  ddb.on(PutCommand).callsFake(async (input: PutCommandInput) => {
    record('PutItem', id(input.Item), () => items.set(id(input.Item), structuredClone(input.Item ?? {})));
    return {};
  });
  ddb.on(GetCommand).callsFake(async (input: { Key: Item }) => {
    const item = items.get(id(input.Key));
    return item ? { Item: structuredClone(item) } : {};
  });
  ddb.on(QueryCommand).callsFake(async (input: QueryCommandInput) => {
    const values = input.ExpressionAttributeValues ?? {};
    const found = [...items.values()].filter((item) => item['pk'] === values[':pk'] && String(item['sk']) >= String(values[':job']) && String(item['sk']) <= String(values[':request']));
    return { Items: structuredClone(found.sort((a, b) => String(a['sk']).localeCompare(String(b['sk'])))) };
  });
  ddb.on(DeleteCommand).callsFake(async (input: { Key: Item }) => {
    items.delete(id(input.Key));
    return {};
  });
  ddb.on(UpdateCommand).callsFake(async (input: UpdateCommandInput) => {
    const key = id(input.Key);
    record('UpdateItem', key, () => {
      const item = structuredClone(items.get(key) ?? {});
      const [, sets = '', removes = ''] = /^(?:SET (.*?))?(?: ?REMOVE (.*))?$/.exec(input.UpdateExpression ?? '') ?? [];
      for (const clause of sets ? sets.split(', ') : []) {
        const [name = '', value = ''] = clause.split(' = ');
        item[input.ExpressionAttributeNames?.[name] ?? name] = structuredClone(input.ExpressionAttributeValues?.[value]);
      }
      for (const name of removes ? removes.split(', ') : []) delete item[input.ExpressionAttributeNames?.[name] ?? name];
      items.set(key, item);
    });
    return input.ReturnValues === 'ALL_NEW' ? { Attributes: structuredClone(items.get(key)) } : {};
  });
  return { items, writes };
}

/** The benchmark's job (bench/run.ts): a 1 KiB order event as data, short local URLs, a callback, no headers of its own. */
/** What the benchmark's service answers with (bench/load.ts), and the date header Node's server adds. */
const benchHeaders = { 'content-type': 'application/json', 'content-length': '1024', date: 'Sat, 28 Nov 2026 18:19:54 GMT' };

async function typicalJob(indexEveryJob: boolean, responseHeaders: Record<string, string> = benchHeaders) {
  const { items, writes } = measuredTable();
  const clock = new ManualClock(Date.parse('2026-11-28T18:19:54.024Z'));
  const jobs = new DynamoJobStore(documents, 'waas-jobs');
  const queue = new MemoryWorkQueue();
  const clients = new MemoryClientStore();
  const { client } = testClient('66666666666668');
  await clients.put(client);
  const data = eventJson(1024);
  expect(Buffer.byteLength(JSON.stringify(data))).toBe(1024);
  const service = 'http://127.0.0.1:43127/service';
  const callback = 'http://127.0.0.1:43128/callback';
  const accepted = await submit({ jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, indexEveryJob }, client, { service, methodtype: 'POST', callback, data });
  const key = `${accepted.job_id}|job`;
  const submitted = structuredClone(items.get(key));

  // The service answers with the same kind of event and its headers; the callback with 204.
  const responseBody = JSON.stringify(eventJson(1024));
  const http = new ScriptedHttp((_request, index) => {
    clock.advance(40);
    return index === 0 ? { ...answer(200, responseBody, responseHeaders), started: new Date(clock.now()).toISOString(), durationMs: 40 } : answer(204);
  });
  const [message] = queue.sent;
  expect(await runJobAttempt({ jobs, clients, queue, http, clock }, accepted.job_id, { ...message, receiveCount: 1, sentAt: clock.now() })).toEqual({ done: true });
  expect(http.requests.map((request) => [request.url, Object.keys(request.headers).length])).toEqual([
    [service, 2],
    [callback, 4],
  ]);
  expect(items.get(key)).toMatchObject({ status: 'completed', notified: 'true', notifyoutput: '204' });
  // Submit writes the request's item (on AWS with the state as submitted beside it; in the local
  // stack the state's own item after it); the lease makes (or updates) the state item.
  expect(writes.map((write) => `${write.command} ${write.sk}`)).toEqual(
    indexEveryJob ? ['PutItem request', 'PutItem job', 'UpdateItem job', 'UpdateItem job', 'UpdateItem job'] : ['PutItem request', 'PutItem job', 'UpdateItem job', 'UpdateItem job'],
  );
  const state = writes.filter((write) => write.sk === 'job');
  const [afterLease, afterAnswer, afterCallback] = state.slice(-3).map((write) => write.after);
  const request = items.get(`${accepted.job_id}|request`);
  const sizes = { request: dynamoItemSize(request ?? {}), afterLease, afterAnswer, afterCallback, writeUnits: writes.map((write) => Math.ceil(Math.max(write.before, write.after) / 1024)) };
  console.log(JSON.stringify({ typicalJobItemBytes: { [`${indexEveryJob ? 'local' : 'aws'}, ${Object.keys(responseHeaders).length} response headers`]: sizes } }));
  return { items, submitted, sizes };
}

describe('a typical job', () => {
  it.each([
    ['on AWS', false],
    ['in the local stack (every job in the sweep index)', true],
  ])('%s, keeps its request in an item of its own, and its state in one write unit at every write', async (_where, indexEveryJob) => {
    const { items, submitted, sizes } = await typicalJob(indexEveryJob);
    expect([...items.keys()].filter((key) => key.endsWith('|request'))).toHaveLength(1);
    // On AWS submit writes one item, the request's with the state beside it; locally the state too.
    if (indexEveryJob) expect(submitted).not.toHaveProperty('request');
    else expect(submitted).toBeUndefined();
    // The request's own item, written once at submit (on AWS with the submitted state): one unit.
    expect(sizes.request).toBeLessThanOrEqual(1024);
    // Submit, (locally: the state), lease, answer, callback: one unit each.
    expect(sizes.writeUnits).toEqual(indexEveryJob ? [1, 1, 1, 1, 1] : [1, 1, 1, 1]);
  });

  it('with one more response header (a 36-character request id), the answer and the callback writes cost two units: the figures are printed', async () => {
    const { sizes } = await typicalJob(false, { ...benchHeaders, 'x-request-id': '1d7c9b1e-4c9e-4c59-9a61-52d1f0e2b7a4' });
    expect(sizes.afterAnswer).toBeGreaterThan(1024);
    expect(sizes.afterAnswer).toBeLessThan(1100);
  });
});
