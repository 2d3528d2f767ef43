import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AttemptOutput } from '../../lambdas/core/job.ts';
import { afterFailureMs, afterFailureTiming, backoffMs, judge, missingJobRetryMs, retryAfterMs, untilMs, type RetryTiming } from '../../lambdas/core/retry.ts';
import { jobLimits, outageRiddenOutMs, queues, receiveHeadroom, retryTiming, submitWriteWindowMs, visibilityTimeoutSeconds } from '../../lib/definitions.ts';
import { answer, failure } from '../support/memory.ts';

const runs = { numRuns: 200 };
const now = Date.parse('2025-06-01T12:00:00.000Z');
const fifteenMinutes = 15 * 60 * 1000;

const randomUnit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const retryableStatus = fc.oneof(fc.constantFrom(408, 425, 429), fc.integer({ min: 500, max: 599 }));
const finalStatus = fc.integer({ min: 300, max: 499 }).filter((status) => ![408, 425, 429].includes(status));
const networkError = fc.oneof(
  fc.constantFrom('timeout', 'ECONNREFUSED 203.0.114.7:443', 'ECONNRESET', 'ENOTFOUND example.invalid', 'socket hang up'),
  fc.string({ minLength: 1 }).filter((text) => !text.startsWith('egress policy:')),
);
/** An attempt number and a maximum with attempts still left after it. */
const attemptsLeft = fc
  .integer({ min: 2, max: 20 })
  .chain((max) => fc.record({ max: fc.constant(max), attempt: fc.integer({ min: 1, max: max - 1 }) }));
const timing = fc.record({
  baseDelayMs: fc.integer({ min: 1, max: 10_000 }),
  maxDelayMs: fc.integer({ min: 1, max: 24 * 60 * 60 * 1000 }),
  maxRetryAfterMs: fc.integer({ min: 0, max: 24 * 60 * 60 * 1000 }),
});

const ceilingOf = (retry: number, t: RetryTiming) => Math.min(t.maxDelayMs, t.baseDelayMs * 2 ** (retry - 1));

describe('classifying an attempt', () => {
  it('a 2xx answer completes the job, on any attempt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 299 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 20 }), (status, attempt, max) => {
        expect(judge(answer(status), attempt, max, now)).toEqual({ kind: 'success' });
      }),
      runs,
    );
  });

  it('408, 425, 429 and 5xx are retried while attempts remain', () => {
    fc.assert(
      fc.property(retryableStatus, attemptsLeft, randomUnit, (status, { attempt, max }, r) => {
        const verdict = judge(answer(status), attempt, max, now, retryTiming, () => r);
        expect(verdict.kind).toBe('retry');
        if (verdict.kind === 'retry') expect(verdict.delayMs).toBeGreaterThanOrEqual(0);
      }),
      runs,
    );
  });

  it('network errors and timeouts are retried while attempts remain', () => {
    fc.assert(
      fc.property(networkError, attemptsLeft, (error, { attempt, max }) => {
        expect(judge(failure(error), attempt, max, now).kind).toBe('retry');
      }),
      runs,
    );
  });

  it('any other 4xx, and 3xx, is final on the first attempt', () => {
    fc.assert(
      fc.property(finalStatus, attemptsLeft, (status, { attempt, max }) => {
        const verdict = judge(answer(status), attempt, max, now);
        expect(verdict).toEqual({ kind: 'final', reason: expect.stringContaining(String(status)) });
      }),
      runs,
    );
  });

  it('a target refused by the egress policy is final on the first attempt', () => {
    fc.assert(
      fc.property(fc.string(), attemptsLeft, (why, { attempt, max }) => {
        const error = `egress policy: ${why}`;
        expect(judge(failure(error), attempt, max, now)).toEqual({ kind: 'final', reason: error });
      }),
      runs,
    );
  });

  it('a retryable outcome is final once maxAttempts attempts were made', () => {
    const outcome = fc.oneof(retryableStatus.map((status) => answer(status)), networkError.map(failure));
    fc.assert(
      fc.property(outcome, fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 5 }), (output, max, beyond) => {
        const attempt = max + beyond;
        expect(judge(output, attempt, max, now)).toEqual({ kind: 'final', reason: expect.stringContaining(`after ${attempt} attempt`) });
      }),
      runs,
    );
  });
});

describe('backoff', () => {
  it('waits between 0 and min(cap, base·2^(n-1)) before retry n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), timing, randomUnit, (retry, t, r) => {
        const delay = backoffMs(retry, t, () => r);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceilingOf(retry, t));
      }),
      runs,
    );
  });

  it('never waits more than 15 minutes by default', () => {
    expect(retryTiming.maxDelayMs).toBe(fifteenMinutes);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), randomUnit, (retry, r) => {
        expect(backoffMs(retry, retryTiming, () => r)).toBeLessThanOrEqual(fifteenMinutes);
      }),
      runs,
    );
  });

  it('waits about 1 s before the first retry and doubles from there, up to the cap', () => {
    const almostOne = () => 0.999_999;
    expect(backoffMs(1, retryTiming, almostOne)).toBe(999);
    expect(backoffMs(2, retryTiming, almostOne)).toBe(1999);
    expect(backoffMs(3, retryTiming, almostOne)).toBe(3999);
    expect(backoffMs(30, retryTiming, almostOne)).toBe(Math.floor(fifteenMinutes * 0.999_999));
  });

  it('with a random draw close to 1 it approaches the ceiling', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), timing, (retry, t) => {
        const ceiling = ceilingOf(retry, t);
        const delay = backoffMs(retry, t, () => 0.999_999);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(ceiling * 0.999) - 1);
      }),
      runs,
    );
  });

  it('a later retry, or a larger base or cap, never waits less for the same draw', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        timing,
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        randomUnit,
        (retry, later, t, moreBase, moreCap, r) => {
          const draw = () => r;
          const bigger = { ...t, baseDelayMs: t.baseDelayMs + moreBase, maxDelayMs: t.maxDelayMs + moreCap };
          expect(backoffMs(retry + later, t, draw)).toBeGreaterThanOrEqual(backoffMs(retry, t, draw));
          expect(backoffMs(retry, bigger, draw)).toBeGreaterThanOrEqual(backoffMs(retry, t, draw));
        },
      ),
      runs,
    );
  });
});

describe('Retry-After', () => {
  const cap = retryTiming.maxRetryAfterMs;

  it('reads delta-seconds, capped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.constantFrom('', ' '), (seconds, pad) => {
        expect(retryAfterMs(`${pad}${seconds}${pad}`, now)).toBe(Math.min(seconds * 1000, cap));
      }),
      runs,
    );
  });

  it('reads an HTTP-date (IMF-fixdate) relative to now, capped, a past date meaning now', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1_000_000_000, max: 4_000_000_000 }),
        fc.integer({ min: -10_000_000, max: 10_000_000 }),
        fc.integer({ min: 0, max: 999 }),
        (nowSeconds, offsetSeconds, nowMs) => {
          const at = nowSeconds * 1000;
          const header = new Date(at + offsetSeconds * 1000).toUTCString();
          expect(header).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
          expect(retryAfterMs(header, at + nowMs)).toBe(Math.min(Math.max(offsetSeconds * 1000 - nowMs, 0), cap));
        },
      ),
      runs,
    );
  });

  it('honours a custom cap for both forms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000_000 }), (seconds, ownCap) => {
        expect(retryAfterMs(String(seconds), now, ownCap)).toBe(Math.min(seconds * 1000, ownCap));
        expect(retryAfterMs(new Date(now + seconds * 1000).toUTCString(), now, ownCap)).toBe(Math.min(seconds * 1000, ownCap));
      }),
      runs,
    );
  });

  it('a date in the past means now', () => {
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs(new Date(now - 1000).toUTCString(), now)).toBe(0);
  });

  it('also reads the obsolete RFC 850 date form that RFC 9110 asks recipients to accept', () => {
    expect(retryAfterMs('Sunday, 01-Jun-25 12:00:30 GMT', now)).toBe(30_000);
  });

  it('reads the obsolete asctime date form as GMT, whatever the machine\'s time zone', () => {
    // asctime carries no zone; RFC 9110 says it is GMT. Date.parse reads it as local time.
    const zone = process.env['TZ'];
    process.env['TZ'] = 'America/New_York';
    try {
      expect(retryAfterMs('Sun Jun  1 12:00:30 2025', now)).toBe(30_000);
    } finally {
      if (zone === undefined) delete process.env['TZ'];
      else process.env['TZ'] = zone;
    }
  });

  it('absent or unreadable is undefined', () => {
    for (const value of [undefined, '', ' ', 'soon', 'never', '1.5', '-1', '+5', '5 seconds', '120s', 'in 5 min', '0x10', '1e3', 'Mon']) {
      expect(retryAfterMs(value, now), JSON.stringify(value)).toBeUndefined();
    }
  });

  it('a word and a number is not an HTTP-date and is ignored, not read as "retry now"', () => {
    // "later 10" or "wait 60" are no HTTP-date, yet V8's lenient Date.parse reads them as a day in
    // 2001 or 1960: a date in the past, so the retry would run at once instead of after a backoff.
    const garbage = fc.tuple(fc.constantFrom('later', 'next', 'wait', 'retry', 'after', 'x'), fc.integer({ min: 1, max: 99 }));
    fc.assert(
      fc.property(garbage, ([word, n]) => {
        expect(retryAfterMs(`${word} ${n}`, now)).toBeUndefined();
      }),
      { numRuns: 50 },
    );
  });
});

describe('judging with Retry-After', () => {
  const draw = () => 0.5;

  it.each([429, 503])('a %i with Retry-After seconds waits as asked, not the backoff', (status) => {
    expect(judge(answer(status, '', { 'retry-after': '120' }), 1, 5, now, retryTiming, draw)).toEqual({ kind: 'retry', delayMs: 120_000 });
  });

  it.each([429, 503])('a %i with a Retry-After date waits until then', (status) => {
    const header = new Date(now + 42_000).toUTCString();
    expect(judge(answer(status, '', { 'retry-after': header }), 2, 5, now, retryTiming, draw)).toEqual({ kind: 'retry', delayMs: 42_000 });
  });

  it('a Retry-After beyond the cap waits the cap', () => {
    expect(judge(answer(503, '', { 'retry-after': '86400' }), 1, 5, now, retryTiming, draw)).toEqual({ kind: 'retry', delayMs: retryTiming.maxRetryAfterMs });
  });

  it('without a readable Retry-After the backoff applies', () => {
    fc.assert(
      fc.property(retryableStatus, fc.constantFrom<Record<string, string>>({}, { 'retry-after': 'soon' }), fc.integer({ min: 1, max: 4 }), randomUnit, (status, headers, attempt, r) => {
        const verdict = judge(answer(status, '', headers), attempt, 5, now, retryTiming, () => r);
        expect(verdict).toEqual({ kind: 'retry', delayMs: backoffMs(attempt, retryTiming, () => r) });
      }),
      runs,
    );
  });

  it('Retry-After never turns a final answer into a retry', () => {
    const output: AttemptOutput = answer(400, '', { 'retry-after': '5' });
    expect(judge(output, 1, 5, now).kind).toBe('final');
    expect(judge(answer(429, '', { 'retry-after': '5' }), 5, 5, now).kind).toBe('final');
  });
});

describe('the other waits of a message', () => {
  it('a message whose job is not stored yet comes back after 1 s, 2 s, 4 s, then every 8 s', () => {
    expect([1, 2, 3, 4, 5, 9].map(missingJobRetryMs)).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
  });

  it('a message whose handling threw comes back after at least a second, growing with its receives to at most 5 minutes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.double({ min: 0, max: 0.999_999, noNaN: true }), (receives, draw) => {
        const ms = afterFailureMs(receives, () => draw);
        expect(ms).toBeGreaterThanOrEqual(afterFailureTiming.minDelayMs);
        expect(ms).toBeLessThanOrEqual(Math.min(afterFailureTiming.maxDelayMs, afterFailureTiming.baseDelayMs * 2 ** (receives - 1)));
      }),
    );
    // Far below the queues' visibility timeouts, so a transient failure is ridden out quickly.
    expect(afterFailureMs(1, () => 0.999)).toBeLessThan(visibilityTimeoutSeconds('jobs') * 1000);
  });

  it('the wait until an instant is never negative', () => {
    expect(untilMs(5_000, 2_000)).toBe(3_000);
    expect(untilMs(2_000, 5_000)).toBe(0);
  });
});

describe('the receives a message may need beyond its attempts (lib/definitions.ts receiveHeadroom)', () => {
  /** How many receives the waits make until `spanMs` has passed. */
  const receivesWithin = (spanMs: number, wait: (receive: number) => number): number => {
    let elapsed = 0;
    let receive = 0;
    while (elapsed < spanMs && receive < 10_000) elapsed += wait(++receive);
    return receive;
  };

  it('covers a first delivery that arrives before its job, for as long as the API may still be writing it', () => {
    expect(receivesWithin(submitWriteWindowMs, missingJobRetryMs)).toBeLessThanOrEqual(receiveHeadroom.earlyDeliveries);
  });

  it('rides out a two-hour outage of the store or the queue at the waits a failure makes, on average', () => {
    // Full jitter: the mean wait is half the ceiling (random = 0.5), never under the floor.
    expect(receivesWithin(outageRiddenOutMs, (receive) => afterFailureMs(receive, () => 0.5))).toBeLessThanOrEqual(receiveHeadroom.outage);
  });

  it('rides out an hour of throttled invocations, each batch back after the jobs queue\'s visibility timeout', () => {
    expect(receivesWithin(60 * 60_000, () => visibilityTimeoutSeconds('jobs') * 1_000)).toBeLessThanOrEqual(receiveHeadroom.throttled);
  });

  it('adds up to the work queues\' maxReceiveCount, within the 1000 SQS allows', () => {
    const attempts = jobLimits.maxAttempts.max + jobLimits.callbackMaxAttempts.max;
    const expected = attempts * (1 + receiveHeadroom.perAttempt) + receiveHeadroom.earlyDeliveries + receiveHeadroom.outage + receiveHeadroom.throttled;
    for (const queue of [queues.jobs, queues.callbacks]) expect(queue.deadLetter.maxReceiveCount).toBe(expected);
    expect(expected).toBeLessThanOrEqual(1000);
  });
});
