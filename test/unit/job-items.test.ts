/**
 * The readable item layout of job-items.ts: attributes as GET /status names them, instants as
 * ISO-8601 text, bodies and header maps packed only when that pays, the request beside the
 * state when both fit in a write unit, and everything back as it went in.
 */
import { randomBytes, randomInt } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { attemptFromItem, attemptItem, hasSubmittedState, jobFromItem, jobItem, newJobItems, requestFromItem, storedChanges, storedConditionValue, storedDefaults, storedName } from '../../lambdas/adapters/job-items.ts';
import { jobLimits } from '../../lib/definitions.ts';
import { publicRecord, type AttemptOutput, type Job, type JobRequest } from '../../lambdas/core/job.ts';
import { acceptedJob } from '../support/memory.ts';

type Item = Record<string, unknown>;

const jobId = '8a6e0804-2bd0-4672-b79d-d97027f9071e';
const json = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1, price: 1999 })) });
const noise = (bytes: number) => randomBytes(bytes).toString('base64');
/** The job field a GET /status name stands for. */
const fieldOfName = (name: string) => ({ max_attempts: 'maxAttempts', timeout_ms: 'timeoutMs', callback_max_attempts: 'callbackMaxAttempts' })[name] ?? name;

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
      // The contract's defaults are left out, and read back (storedDefaults).
      else if (Object.hasOwn(storedDefaults, fieldOfName(field)) && storedDefaults[fieldOfName(field) as keyof typeof storedDefaults] === value) expect(item, field).not.toHaveProperty(field);
      // The output's usual body fields are left out, and the history's line that repeats it is its number.
      else if (field === 'output') expect(jobFromItem(item).output).toEqual(value);
      else if (field === 'history') expect(jobFromItem(item).history).toEqual(value);
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
  const storedOutput = (value: AttemptOutput) => storedChanges({ output: value, history: [] }).set['output'] as Item;

  it('keeps a short body and header map as they are, readable in the console, without the body fields it reads back', () => {
    const { bodyEncoding: _encoding, bodyBytes: _bytes, truncated: _truncated, ...short } = output('{"ok":true}');
    expect(storedOutput(output('{"ok":true}'))).toEqual(short);
  });

  it('keeps the body fields that are not the usual ones: base64, a cut body, a size that is not the kept text\'s', () => {
    const base64 = { ...output('AAEC'), bodyEncoding: 'base64' as const, bodyBytes: 3 };
    expect(storedOutput(base64)).toMatchObject({ bodyEncoding: 'base64', bodyBytes: 3 });
    expect(storedOutput(base64)).not.toHaveProperty('truncated');
    const cut = { ...output('abc'), bodyBytes: 70_000, truncated: true };
    expect(storedOutput(cut)).toMatchObject({ bodyBytes: 70_000, truncated: true });
    expect(storedOutput(cut)).not.toHaveProperty('bodyEncoding');
    // An output without a statusCode (an error) is stored as it is.
    expect(storedOutput({ started: '2026-01-01T00:00:00.000Z', durationMs: 1, error: 'timeout' })).toEqual({ started: '2026-01-01T00:00:00.000Z', durationMs: 1, error: 'timeout' });
    for (const value of [base64, cut]) expect(jobFromItem(applied(jobItem(acceptedJob({ jobId })), { output: value, history: [] })).output).toEqual(value);
  });

  it('reads an item written before the short form (every body field there) as it was', () => {
    const value = output(json);
    const item = { ...jobItem(acceptedJob({ jobId })), output: { ...value, bodyEncoding: 'utf8', bodyBytes: value.bodyBytes, truncated: false } };
    expect(jobFromItem(item).output).toEqual(value);
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

  it('a job that enters no index at submit is one item: its request, with the state as submitted beside it, which reads back as the job', () => {
    const items = newJobItems(job, request);
    expect(items.map((item) => item['sk'])).toEqual(['request']);
    const [own = {}] = items;
    expect(hasSubmittedState(own)).toBe(true);
    expect(jobFromItem(own)).toEqual(jobFromItem(jobItem(job)));
    expect(requestFromItem(own, job)).toEqual(request);
    // The request item's attributes are the request's and the state's, none the same.
    expect(own).toMatchObject({ pk: jobId, sk: 'request', expiresAt: job.expiresAt, status: 'accepted' });
  });

  it.each([
    ['unsettled index (the local stack)', { sweep: 'a' }],
    ['due index (a first attempt beyond 15 minutes)', { due: '2027-03-01T09:30Z#a' }],
  ])('a job that enters the %s at submit gets its state item from submit on, after its request item, which holds no state', (_index, indexed) => {
    const items = newJobItems({ ...job, ...indexed }, request);
    expect(items.map((item) => item['sk'])).toEqual(['request', 'job']);
    const [own = {}, state = {}] = items;
    expect(hasSubmittedState(own)).toBe(false);
    expect(own).not.toHaveProperty('status');
    expect(state).not.toHaveProperty('request');
    expect(state).toMatchObject(indexed);
    expect(requestFromItem(own, job)).toEqual(request);
  });

  it('still reads a request map beside the state, as jobs written before (and local DATA_DIRs) have it', () => {
    const state = { ...jobItem(job), request: { headers: request.headers, body: request.body } };
    expect(requestFromItem(state, jobFromItem(state))).toEqual(request);
  });

  it('a large request is in the same one item, and expires with its job', () => {
    const large = { ...request, body: noise(3000) };
    const items = newJobItems(job, large);
    expect(items.map((item) => item['sk'])).toEqual(['request']);
    const [own = {}] = items;
    expect(own).toMatchObject({ pk: jobId, sk: 'request', expiresAt: job.expiresAt });
    expect(requestFromItem(own, job)).toEqual(large);
    expect(requestFromItem(jobItem(job), job)).toBeUndefined();
  });

  it('keeps a body of null and an empty body apart', () => {
    for (const body of [null, '']) expect(requestFromItem(newJobItems(job, { ...request, body })[0] ?? {}, job)).toEqual({ ...request, body });
  });

  it('the request beside the state (an older item\'s) outlives every write, the one that makes the job final too (a replay sends it again); it is never rewritten', () => {
    const item = { ...jobItem(job), request: { headers: request.headers, body: request.body } };
    for (const status of ['running', 'completed', 'failed', 'cancelled'] as const) expect(applied(item, { status, attempts: 1 })['request'], status).toEqual(item['request']);
    expect(storedChanges({ status: 'completed', attempts: 1 }).set).not.toHaveProperty('request');
    expect(storedChanges({ status: 'cancelled' }).remove).toEqual([]);
  });
});

describe('the short form: the same job on read', () => {
  const instant = fc.integer({ min: Date.parse('2020-01-01T00:00:00.000Z'), max: Date.parse('2030-01-01T00:00:00.000Z') }).map((ms) => new Date(ms).toISOString());
  const duration = fc.integer({ min: 0, max: 60_000 });
  /** An answer as http.ts makes it: every body field there, usual or not. */
  const answerArb: fc.Arbitrary<AttemptOutput> = fc
    .record({
      started: instant,
      durationMs: duration,
      statusCode: fc.integer({ min: 100, max: 599 }),
      headers: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 30 }), { maxKeys: 4 }),
      body: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 300 }), fc.constant(json)),
      bodyEncoding: fc.constantFrom('utf8' as const, 'base64' as const),
      bytesOff: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
      truncated: fc.boolean(),
      error: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    })
    .map(({ bytesOff, error, ...rest }) => ({ ...rest, bodyBytes: Buffer.byteLength(rest.body) + bytesOff, ...(error !== undefined ? { error } : {}) }));
  const errorArb: fc.Arbitrary<AttemptOutput> = fc.record({ started: instant, durationMs: duration, error: fc.string({ minLength: 1, maxLength: 40 }) });
  const outputArb = fc.oneof(answerArb, errorArb);
  const summaryOf = (attempt: number, output: AttemptOutput) => ({
    attempt,
    started: output.started,
    durationMs: output.durationMs,
    ...(output.statusCode !== undefined ? { statusCode: output.statusCode } : {}),
    ...(output.error !== undefined ? { error: output.error } : {}),
  });
  /** An output and a history whose last line is its summary, or another attempt's, or none. */
  const progressArb = fc
    .record({
      output: fc.option(outputArb, { nil: null }),
      earlier: fc.array(outputArb, { maxLength: 3 }),
      last: fc.constantFrom('sums up the output', 'another attempt', 'none'),
    })
    .map(({ output, earlier, last }) => {
      const history = earlier.map((o, i) => summaryOf(i + 1, o));
      if (output && last === 'sums up the output') history.push(summaryOf(history.length + 1, output));
      if (last === 'another attempt') history.push({ attempt: history.length + 1, started: '2026-01-01T00:00:00.000Z', durationMs: 0, error: 'abandoned' });
      return { output, history };
    });
  const settingsArb = fc.record({
    methodtype: fc.constantFrom('POST', 'PUT', 'GET'),
    maxAttempts: fc.integer({ min: jobLimits.maxAttempts.min, max: jobLimits.maxAttempts.max }),
    timeoutMs: fc.constantFrom(jobLimits.timeoutMs.default, 100, 60_000),
    callbackMaxAttempts: fc.integer({ min: jobLimits.callbackMaxAttempts.min, max: jobLimits.callbackMaxAttempts.max }),
  });

  it('leaves out the contract\'s defaults, which are today\'s jobLimits, and reads them back', () => {
    expect(storedDefaults).toEqual({ methodtype: 'POST', maxAttempts: jobLimits.maxAttempts.default, timeoutMs: jobLimits.timeoutMs.default, callbackMaxAttempts: jobLimits.callbackMaxAttempts.default });
    const item = jobItem(acceptedJob({ jobId }));
    for (const attribute of ['methodtype', 'max_attempts', 'timeout_ms', 'callback_max_attempts']) expect(item).not.toHaveProperty(attribute);
    const other = acceptedJob({ jobId, methodtype: 'PUT', maxAttempts: 3, timeoutMs: 500, callbackMaxAttempts: 1 });
    expect(jobItem(other)).toMatchObject({ methodtype: 'PUT', max_attempts: 3, timeout_ms: 500, callback_max_attempts: 1 });
  });

  it('stores the history\'s last line as its attempt number when it repeats the output\'s summary, and reads it back whole', () => {
    const output: AttemptOutput = { started: '2026-01-01T00:00:00.000Z', durationMs: 7, statusCode: 200, headers: {}, body: 'ok', bodyEncoding: 'utf8', bodyBytes: 2, truncated: false };
    const history = [{ attempt: 1, started: '2025-12-31T23:59:00.000Z', durationMs: 3, error: 'timeout' }, { attempt: 2, started: output.started, durationMs: 7, statusCode: 200 }];
    expect(storedChanges({ output, history }).set['history']).toEqual([history[0], 2]);
    expect(jobFromItem(applied(jobItem(acceptedJob({ jobId })), { output, history }))).toMatchObject({ output, history });
    // A last line that is not the output's (a dead letter's reason is no attempt) stays whole.
    const reason: AttemptOutput = { started: '2026-01-01T00:01:00.000Z', durationMs: 0, error: 'abandoned' };
    expect(storedChanges({ output: reason, history }).set['history']).toEqual(history);
  });

  it('every job reads back exactly as it was written, from its item and through a write of its output and history', () => {
    fc.assert(
      fc.property(progressArb, settingsArb, progressArb, ({ output, history }, settings, next) => {
        const job = { ...fullJob(), ...settings, output, history };
        const item = jobItem(job);
        expect(jobFromItem(item)).toEqual(job);
        if (next.output) expect(jobFromItem(applied(item, { output: next.output, history: next.history }))).toEqual({ ...job, output: next.output, history: next.history });
        // A kept attempt's item, which stores its output the same way.
        if (output) expect(attemptFromItem(attemptItem(jobId, { ...output, attempt: 3 }, job.expiresAt))).toEqual({ ...output, attempt: 3 });
      }),
      { numRuns: 300 },
    );
  });
});
