/**
 * The readable item layout of job-items.ts: attributes as GET /status names them, instants as
 * ISO-8601 text, bodies and header maps packed only when that pays, the request beside the
 * state when both fit in a write unit, and everything back as it went in.
 */
import { randomBytes, randomInt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { jobFromItem, jobItem, newJobItems, requestFromItem, storedChanges, storedConditionValue, storedName } from '../../lambdas/adapters/job-items.ts';
import { publicRecord, type AttemptOutput, type Job, type JobRequest } from '../../lambdas/core/job.ts';
import { acceptedJob } from '../support/memory.ts';

type Item = Record<string, unknown>;

const jobId = '8a6e0804-2bd0-4672-b79d-d97027f9071e';
const json = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
const noise = (bytes: number) => randomBytes(bytes).toString('base64');

/** A job with every field set, instants included. */
const fullJob = (): Job =>
  acceptedJob({
    jobId,
    callback: 'https://callback.example.com/done',
    status: 'running',
    attempts: 2,
    output: { started: '2026-01-01T00:00:00.000Z', durationMs: 12, statusCode: 503, headers: { 'retry-after': '5' }, body: 'busy', bodyEncoding: 'utf8', bodyBytes: 4, truncated: false },
    history: [{ attempt: 1, started: '2026-01-01T00:00:00.000Z', durationMs: 12, statusCode: 503 }],
    nextAttemptAt: Date.parse('2026-01-01T00:00:05.000Z'),
    leaseUntil: Date.parse('2026-01-01T00:00:20.000Z'),
    notified: 'no',
    notifyLeaseUntil: Date.parse('2026-01-01T00:00:30.000Z'),
    nextNotifyAt: Date.parse('2026-01-01T00:00:40.000Z'),
    sweep: '8',
  });

/** The item after an UpdateItem of `changes`, as DynamoDB applies SET and REMOVE. */
function applied(item: Item, changes: Parameters<typeof storedChanges>[0]): Item {
  const { set, remove } = storedChanges(changes);
  const next: Item = { ...item, ...set };
  for (const name of remove) delete next[name];
  return next;
}

describe('the job item', () => {
  it('names its attributes as GET /status names the fields, the public ones holding what GET /status shows', () => {
    const job = fullJob();
    const item = jobItem(job);
    const record = publicRecord(job);
    for (const [field, value] of Object.entries(record)) {
      if (field === 'jobId') expect(item['pk']).toBe(value);
      // A field without a value is absent, not null: bytes saved at every write.
      else if (value === null) expect(item, field).not.toHaveProperty(field);
      else expect(item[field], field).toEqual(value);
    }
    expect(item).toMatchObject({
      sk: 'job',
      next_attempt_at: '2026-01-01T00:00:05.000Z',
      lease_until: '2026-01-01T00:00:20.000Z',
      notify_lease_until: '2026-01-01T00:00:30.000Z',
      next_notify_at: '2026-01-01T00:00:40.000Z',
      sweep: '8',
      expiresAt: job.expiresAt,
    });
  });

  it('leaves out the fields a job does not have', () => {
    const item = jobItem(acceptedJob({ jobId }));
    for (const attribute of ['next_attempt_at', 'lease_until', 'notify_lease_until', 'next_notify_at', 'sweep']) expect(item).not.toHaveProperty(attribute);
  });

  it('comes back as it went in', () => {
    for (const job of [fullJob(), acceptedJob({ jobId }), { ...fullJob(), output: { started: '2026-01-01T00:00:00.000Z', durationMs: 1, error: 'timeout' } }]) expect(jobFromItem(jobItem(job))).toEqual(job);
  });

  it('compares a condition\'s instant with the attribute as stored: ISO text, which orders as the instants do', () => {
    expect(storedConditionValue('leaseUntil', 0)).toBe('1970-01-01T00:00:00.000Z');
    expect(storedConditionValue('attempts', 3)).toBe(3);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.parse('9999-12-31T23:59:59.999Z') }), fc.integer({ min: 0, max: Date.parse('9999-12-31T23:59:59.999Z') }), (a, b) => {
        const [x, y] = [String(storedConditionValue('leaseUntil', a)), String(storedConditionValue('leaseUntil', b))];
        expect(x < y).toBe(a < b);
        expect(x === y).toBe(a === b);
      }),
    );
  });

  it('knows each field by its stored name, and an unknown name as itself', () => {
    expect(['maxAttempts', 'nextAttemptAt', 'leaseUntil', 'status', 'request'].map(storedName)).toEqual(['max_attempts', 'next_attempt_at', 'lease_until', 'status', 'request']);
  });
});

describe('outputs, bodies and header maps', () => {
  const output = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): AttemptOutput => ({
    started: '2026-01-01T00:00:00.000Z',
    durationMs: 5,
    statusCode: 200,
    headers,
    body,
    bodyEncoding: 'utf8',
    bodyBytes: Buffer.byteLength(body),
    truncated: false,
  });
  const storedOutput = (value: AttemptOutput) => storedChanges({ output: value }).set['output'] as Item;

  it('keeps a short body and header map as they are, readable in the console', () => {
    expect(storedOutput(output('{"ok":true}'))).toEqual(output('{"ok":true}'));
  });

  it('packs a long body and header map that brotli shrinks by a tenth, naming the compression beside each', () => {
    const headers = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`x-header-${i}`, 'application/json; charset=utf-8']));
    const stored = storedOutput(output(json, headers));
    expect(stored).toMatchObject({ body: expect.any(Uint8Array), bodyCompression: 'br', headers: expect.any(Uint8Array), headersCompression: 'br' });
    expect((stored['body'] as Uint8Array).byteLength).toBeLessThan(json.length * 0.9);
  });

  it('keeps a long body that does not compress as text, without a compression', () => {
    // Random characters, mostly ASCII, some of two and three bytes: about 7 bits of entropy a byte.
    const body = Array.from({ length: 600 }, () => {
      const pick = randomInt(100);
      return String.fromCharCode(pick < 85 ? randomInt(0x80) : pick < 97 ? 0x80 + randomInt(0x780) : 0x800 + randomInt(0xd800 - 0x800));
    }).join('');
    const stored = storedOutput(output(body));
    expect(stored['body']).toBe(body);
    expect(stored).not.toHaveProperty('bodyCompression');
  });

  it('gives back every output as it went in, packed or not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 600 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.string({ maxLength: 60 }), { maxKeys: 12 }), (body, headers) => {
        const value = output(body.repeat(body.length % 3 === 0 ? 1 : 4), headers);
        expect(jobFromItem(applied(jobItem(acceptedJob({ jobId })), { output: value })).output).toEqual(value);
      }),
      { numRuns: 200 },
    );
    for (const body of [json, noise(3000), '']) {
      const value = output(body);
      expect(jobFromItem(applied(jobItem(acceptedJob({ jobId })), { output: value })).output).toEqual(value);
    }
  });

  it('refuses to read a packed value whose compression it does not know', () => {
    const item = applied(jobItem(acceptedJob({ jobId })), { output: output(json) });
    (item['output'] as Item)['bodyCompression'] = 'zstd';
    expect(() => jobFromItem(item)).toThrow(/unknown compression "zstd"/);
  });
});

describe('the request', () => {
  const job = acceptedJob({ jobId });
  const request: JobRequest = { url: job.service, method: 'POST', headers: { 'Idempotency-Key': jobId, 'Content-Type': 'application/json' }, body: '{"a":1}' };

  it('lies beside the state as a request map when both fit in one write unit', () => {
    const items = newJobItems(job, request);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ pk: jobId, sk: 'job', request: { headers: request.headers, body: request.body } });
    expect(dynamoItemSize(items[0] ?? {})).toBeLessThanOrEqual(1024);
    expect(requestFromItem(items[0] ?? {}, job)).toEqual(request);
  });

  it('gets an item of its own, first in the order of writing, when it does not fit beside the state', () => {
    const large = { ...request, body: noise(3000) };
    const items = newJobItems(job, large);
    expect(items.map((item) => item['sk'])).toEqual(['request', 'job']);
    const [own = {}, state = {}] = items;
    // The request item expires with its job.
    expect(own).toMatchObject({ pk: jobId, sk: 'request', expiresAt: job.expiresAt });
    expect(state).not.toHaveProperty('request');
    expect(requestFromItem(own, job)).toEqual(large);
    expect(requestFromItem(state, job)).toBeUndefined();
  });

  it('the last byte decides: a job whose leased item exactly fills the unit keeps its request beside, one byte more moves it out', () => {
    // The service URL lies in the state as plain text: each character is one byte more.
    const sized = (extra: number) => newJobItems({ ...job, service: `${job.service}/${'p'.repeat(extra)}` }, request);
    const leased = (item: Item) => applied(item, { status: 'started', attempts: 1, leaseUntil: Date.parse('2026-01-01T00:00:20.000Z') });
    const [base = {}] = sized(0);
    const extra = 1024 - dynamoItemSize(leased(base));
    expect(extra).toBeGreaterThan(0);
    expect(sized(extra)).toHaveLength(1);
    // The submit and the lease each cost one write unit, the lease to the last byte.
    expect(dynamoItemSize(sized(extra)[0] ?? {})).toBeLessThan(1024);
    expect(dynamoItemSize(leased(sized(extra)[0] ?? {}))).toBe(1024);
    expect(sized(extra + 1).map((item) => item['sk'])).toEqual(['request', 'job']);
  });

  it('keeps a body of null and an empty body apart', () => {
    for (const body of [null, '']) expect(requestFromItem(newJobItems(job, { ...request, body })[0] ?? {}, job)).toEqual({ ...request, body });
  });

  it('the request beside the state outlives every write, the one that makes the job final too (a replay sends it again); it is never rewritten', () => {
    const [item = {}] = newJobItems(job, request);
    for (const status of ['running', 'completed', 'failed', 'cancelled'] as const) expect(applied(item, { status, attempts: 1 })['request'], status).toEqual(item['request']);
    expect(storedChanges({ status: 'completed', attempts: 1 }).set).not.toHaveProperty('request');
    expect(storedChanges({ status: 'cancelled' }).remove).toEqual([]);
  });
});
