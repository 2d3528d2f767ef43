/**
 * The failure limiter (core/auth.ts) on an in-memory counter and a clock that moves only when
 * told to: its limits, its windows, counts shared by every instance, the ids it counts, and what
 * it does when its counter fails; then the API (core/api.ts) in front of it.
 */
import { describe, expect, it } from 'vitest';
import { countFreshMs, FailureLimiter, type CounterFailed } from '../../lambdas/core/auth.ts';
import { TooManyFailures } from '../../lambdas/core/errors.ts';
import type { FailureCounter } from '../../lambdas/core/ports.ts';
import { callApi } from '../support/api.ts';
import { deferred, ManualClock, MemoryClientStore, MemoryFailureCounter, memoryApiDeps, testClient } from '../support/memory.ts';

const limits = { perClient: 3, perSource: 5, windowMs: 60_000 };
const alice = '11111111111111';
const bob = '22222222222222';

function limiterAt(now: number, counter: FailureCounter = new MemoryFailureCounter(), onCounterFailed?: CounterFailed) {
  const clock = new ManualClock(now);
  return { clock, limiter: new FailureLimiter(counter, { clock, limits, ...(onCounterFailed ? { onCounterFailed } : {}) }) };
}

const refusal = (check: Promise<void>) => check.then(() => undefined, (error: unknown) => error);

describe('FailureLimiter', () => {
  it('refuses a source that failed too often for one client id, with the seconds left in the window', async () => {
    const { clock, limiter } = limiterAt(0);
    for (let i = 0; i < 3; i++) await limiter.fail('1.2.3.4', alice);
    clock.set(15_000);
    const error = await refusal(limiter.check('1.2.3.4', alice));
    expect(error).toBeInstanceOf(TooManyFailures);
    expect((error as TooManyFailures).retryAfterSeconds).toBe(45);
    // Neither another source for the same id, nor the same source for another id, is slowed.
    await expect(limiter.check('5.6.7.8', alice)).resolves.toBeUndefined();
    await expect(limiter.check('1.2.3.4', bob)).resolves.toBeUndefined();
  });

  it('lets a source fail up to the limit, and refuses it only then', async () => {
    const { limiter } = limiterAt(0);
    for (let i = 0; i < 2; i++) await limiter.fail('1.2.3.4', alice);
    await expect(limiter.check('1.2.3.4', alice)).resolves.toBeUndefined();
    await limiter.fail('1.2.3.4', alice);
    await expect(limiter.check('1.2.3.4', alice)).rejects.toBeInstanceOf(TooManyFailures);
  });

  it('refuses a source that fails across many ids, or with none', async () => {
    const { limiter } = limiterAt(0);
    for (let i = 0; i < 4; i++) await limiter.fail('1.2.3.4', `3333333333333${i}`);
    await limiter.fail('1.2.3.4', undefined);
    await expect(limiter.check('1.2.3.4', '44444444444444')).rejects.toBeInstanceOf(TooManyFailures);
    await expect(limiter.check('1.2.3.4', undefined)).rejects.toBeInstanceOf(TooManyFailures);
    await expect(limiter.check('9.9.9.9', '44444444444444')).resolves.toBeUndefined();
  });

  it('forgets failures when the window turns, and counts a window by the clock, not by the first failure', async () => {
    const { clock, limiter } = limiterAt(50_000);
    for (let i = 0; i < 3; i++) await limiter.fail('1.2.3.4', alice);
    await expect(limiter.check('1.2.3.4', alice)).rejects.toBeInstanceOf(TooManyFailures);
    // The window is [0, 60 s): ten seconds after the failures it is over.
    clock.set(60_000);
    await expect(limiter.check('1.2.3.4', alice)).resolves.toBeUndefined();
  });

  it('holds across instances: what one limiter counted, another one refuses', async () => {
    const counter = new MemoryFailureCounter();
    const instances = [limiterAt(0, counter), limiterAt(0, counter), limiterAt(0, counter)].map((each) => each.limiter);
    // Each instance sees one failure only; together they are over the limit of three.
    await Promise.all(instances.map((limiter) => limiter.fail('1.2.3.4', alice)));
    for (const limiter of instances) await expect(limiter.check('1.2.3.4', alice)).rejects.toBeInstanceOf(TooManyFailures);
  });

  it('counts per client id only an id of the shape this service makes: any other is counted against the source alone', async () => {
    const counter = new MemoryFailureCounter();
    const { limiter } = limiterAt(0, counter);
    const hostile = ['x'.repeat(10_000), 'alice', '1111111111111', '111111111111111', ' 11111111111111', '١١١١١١١١١١١١١١'];
    for (const id of hostile) await limiter.fail('1.2.3.4', id);
    const counts = [...counter.counts.values()];
    expect(counts.map((entry) => [entry.failures, entry.clients.size])).toEqual([[hostile.length, 0]]);
    // Each id alone is under the per-client limit (3), the source is over its own (5).
    await expect(limiter.check('1.2.3.4', 'alice')).rejects.toBeInstanceOf(TooManyFailures);
  });

  it('fails open when its counter cannot be read, and still counts when it can again; telling whoever runs it, without credentials', async () => {
    const reported: Array<[unknown, string]> = [];
    const counter = new MemoryFailureCounter();
    const { limiter } = limiterAt(0, counter, (error, doing) => reported.push([error, doing]));
    for (let i = 0; i < 3; i++) await limiter.fail('1.2.3.4', alice);
    const down = new Error('ServiceUnavailable');
    counter.failure = down;
    await expect(limiter.check('1.2.3.4', alice)).resolves.toBeUndefined();
    await expect(limiter.fail('1.2.3.4', alice)).resolves.toBeUndefined();
    expect(reported).toEqual([
      [down, 'check'],
      [down, 'record'],
    ]);
    counter.failure = undefined;
    await expect(limiter.check('1.2.3.4', alice)).rejects.toBeInstanceOf(TooManyFailures);
  });
});

describe('the API under repeated failures', () => {
  function api(counter: FailureCounter = new MemoryFailureCounter(), onCounterFailed?: CounterFailed) {
    const clock = new ManualClock(0);
    const clients = new MemoryClientStore();
    const client = testClient('77777777777777');
    clients.clients.set(client.client.clientId, client.client);
    const limiter = new FailureLimiter(counter, { clock, limits, ...(onCounterFailed ? { onCounterFailed } : {}) });
    const { deps } = memoryApiDeps(clock, clients, { limiter });
    const basic = (clientId: string, token: string) => `Basic ${Buffer.from(`${clientId}:${token}`).toString('base64')}`;
    const request = (token: string, sourceIp: string, clientId = client.client.clientId) =>
      callApi(deps, { method: 'GET', path: '/webhook', query: {}, headers: { authorization: basic(clientId, token) }, body: undefined, sourceIp });
    return { clock, clients, client, request };
  }

  it('answers 429 with Retry-After to a guesser, even for the right token, and 200 to the real client from elsewhere', async () => {
    const { client, request } = api();
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await request('guess', '6.6.6.6'));
    expect(answers.map((a) => a.statusCode)).toEqual([401, 401, 401, 429]);
    expect(answers[3]?.headers?.['retry-after']).toBe('60');
    // Even the right token is refused from the guesser's address until the window turns…
    expect((await request(client.token, '6.6.6.6')).statusCode).toBe(429);
    // …while the client itself, elsewhere, is not slowed at all.
    expect((await request(client.token, '10.1.1.1')).statusCode).toBe(200);
  });

  it('reads the counts once a second per address and id, and writes once a failure: never for a success, nor for a 429', async () => {
    const counter = new MemoryFailureCounter();
    const { client, request, clock } = api(counter);
    for (let i = 0; i < 5; i++) await request(client.token, '6.6.6.6');
    expect(counter.reads).toBe(1);
    expect(counter.counts.size).toBe(0);
    clock.advance(countFreshMs);
    for (let i = 0; i < 5; i++) await request('guess', '6.6.6.6');
    expect(counter.reads).toBe(2);
    // Three 401s counted (this instance's own, in its copy at once); the two 429s after them wrote nothing.
    expect([...counter.counts.values()].map((entry) => entry.failures)).toEqual([3]);
  });

  it('sees another instance\'s failures within a second', async () => {
    const counter = new MemoryFailureCounter();
    const one = api(counter);
    const other = api(counter);
    expect((await other.request(other.client.token, '6.6.6.6')).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) expect((await one.request('guess', '6.6.6.6')).statusCode).toBe(401);
    // The other instance read the counts before those failures: for a second it trusts that.
    expect((await other.request(other.client.token, '6.6.6.6')).statusCode).toBe(200);
    other.clock.advance(countFreshMs);
    expect((await other.request(other.client.token, '6.6.6.6')).statusCode).toBe(429);
  });

  it('checks the credentials while the counts are read, not after', async () => {
    const read = deferred<{ fromSource: number; againstClient: number }>();
    const counter: FailureCounter = { read: () => read.promise, record: async () => undefined };
    const { clients, client, request } = api(counter);
    const before = clients.gets;
    const answering = request(client.token, '6.6.6.6');
    await new Promise((resolve) => setImmediate(resolve));
    expect(clients.gets).toBe(before + 1);
    read.resolve({ fromSource: 0, againstClient: 0 });
    expect((await answering).statusCode).toBe(200);
  });

  it('answers as the credentials say while its counter is down, and says so', async () => {
    const reported: string[] = [];
    const counter = new MemoryFailureCounter();
    counter.failure = new Error('ProvisionedThroughputExceededException');
    const { client, request } = api(counter, (_, doing) => reported.push(doing));
    expect((await request(client.token, '6.6.6.6')).statusCode).toBe(200);
    const guesses = [];
    for (let i = 0; i < 4; i++) guesses.push((await request('guess', '6.6.6.6')).statusCode);
    expect(guesses).toEqual([401, 401, 401, 401]);
    expect(reported).toEqual(['check', 'check', 'record', 'check', 'record', 'check', 'record', 'check', 'record']);
  });
});
