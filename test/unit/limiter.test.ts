import { describe, expect, it } from 'vitest';
import { FailureLimiter } from '../../lambdas/core/auth.ts';
import { TooManyFailures } from '../../lambdas/core/errors.ts';
import { callApi } from '../support/api.ts';
import { ManualClock, MemoryClientStore, memoryApiDeps, testClient } from '../support/memory.ts';

const limits = { perClient: 3, perSource: 5, windowMs: 60_000 };

describe('FailureLimiter', () => {
  it('refuses a source that failed too often for one client id, with the seconds left in the window', () => {
    const clock = new ManualClock(0);
    const limiter = new FailureLimiter(clock, limits);
    for (let i = 0; i < 3; i++) limiter.fail('1.2.3.4', 'alice');
    clock.set(15_000);
    expect(() => limiter.check('1.2.3.4', 'alice')).toThrow(TooManyFailures);
    try {
      limiter.check('1.2.3.4', 'alice');
    } catch (error) {
      expect((error as TooManyFailures).retryAfterSeconds).toBe(45);
    }
    // Neither another source for the same id, nor the same source for another id, is slowed.
    expect(() => limiter.check('5.6.7.8', 'alice')).not.toThrow();
    expect(() => limiter.check('1.2.3.4', 'bob')).not.toThrow();
  });

  it('refuses a source that fails across many ids', () => {
    const limiter = new FailureLimiter(new ManualClock(0), limits);
    for (let i = 0; i < 5; i++) limiter.fail('1.2.3.4', `id${i}`);
    expect(() => limiter.check('1.2.3.4', 'fresh')).toThrow(TooManyFailures);
    expect(() => limiter.check('9.9.9.9', 'fresh')).not.toThrow();
  });

  it('forgets failures when the window turns', () => {
    const clock = new ManualClock(0);
    const limiter = new FailureLimiter(clock, limits);
    for (let i = 0; i < 3; i++) limiter.fail('1.2.3.4', 'alice');
    clock.set(60_000);
    expect(() => limiter.check('1.2.3.4', 'alice')).not.toThrow();
  });
});

describe('the API under repeated failures', () => {
  it('answers 429 with Retry-After to a guesser and 200 to the real client from elsewhere', async () => {
    const clock = new ManualClock(0);
    const clients = new MemoryClientStore();
    const client = testClient('77777777777777');
    await clients.put(client.client);
    const { deps } = memoryApiDeps(clock, clients, { limiter: new FailureLimiter(clock, limits) });
    const basic = (token: string) => `Basic ${Buffer.from(`${client.client.clientId}:${token}`).toString('base64')}`;
    const request = (token: string, sourceIp: string) =>
      callApi(deps, { method: 'GET', path: '/webhook', query: {}, headers: { authorization: basic(token) }, body: undefined, sourceIp });
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await request('guess', '6.6.6.6'));
    expect(answers.map((a) => a.statusCode)).toEqual([401, 401, 401, 429]);
    expect(answers[3]?.headers?.['retry-after']).toBe('60');
    // Even the right token is refused from the guesser's address until the window turns…
    expect((await request(client.token, '6.6.6.6')).statusCode).toBe(429);
    // …while the client itself, elsewhere, is not slowed at all.
    expect((await request(client.token, '10.1.1.1')).statusCode).toBe(200);
  });
});
