/**
 * The RetryPolicy, and every other wait a job or a callback makes: what an attempt's outcome
 * means and when the next attempt runs (backoff, Retry-After: one policy for the service call
 * and the callback alike), how long a message that arrived before its job waits, and how soon a
 * message whose handling failed comes back. Each wait ends as one thing: the message that
 * carries the work is handed back to its queue, due after the wait (lambdas/adapters/sqs.ts
 * knows what SQS allows).
 */
import { retryTiming } from '../../lib/definitions.ts';
import type { AttemptOutput } from './job.ts';

export type Verdict =
  | { kind: 'success' }
  | { kind: 'final'; reason: string }
  | { kind: 'retry'; delayMs: number };

export interface RetryTiming {
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

/** Status codes worth another try: the target may answer differently later. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/**
 * Exponential backoff with full jitter: a random delay in [0, min(cap, base·2^(n-1))] before
 * retry n. Full jitter spreads a crowd of failing jobs evenly instead of in waves.
 */
export function backoffMs(retry: number, timing: Pick<RetryTiming, 'baseDelayMs' | 'maxDelayMs'> = retryTiming, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 40);
  const ceiling = Math.min(timing.maxDelayMs, timing.baseDelayMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
}

/**
 * Retry-After as milliseconds from `now`: delta-seconds or an HTTP-date, capped; undefined when
 * absent or unreadable. A date in the past means "now".
 */
export function retryAfterMs(value: string | undefined, now: number, cap: number = retryTiming.maxRetryAfterMs): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else {
    // Only RFC 9110's three HTTP-date forms: Date.parse alone reads "later 10" as a day in 2001.
    const form = httpDateForms.findIndex((pattern) => pattern.test(text));
    if (form < 0) return undefined;
    // asctime carries no zone but means GMT; Date.parse would read it as local time.
    const at = Date.parse(form === 2 ? `${text} GMT` : text);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return Math.min(Math.max(ms, 0), cap);
}

const day = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const month = '(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
/** RFC 9110 §5.6.7: IMF-fixdate, then the obsolete RFC 850 and asctime forms. */
const httpDateForms = [
  new RegExp(`^${day}, \\d{2} ${month} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT$`),
  new RegExp(`^(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)day, \\d{2}-${month}-\\d{2} \\d{2}:\\d{2}:\\d{2} GMT$`),
  new RegExp(`^${day} ${month} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}$`),
];

/**
 * The verdict on one finished attempt. `attempt` counts from 1; after `maxAttempts` a retryable
 * outcome becomes final.
 */
export function judge(
  output: AttemptOutput,
  attempt: number,
  maxAttempts: number,
  now: number,
  timing: RetryTiming = retryTiming,
  random: () => number = Math.random,
): Verdict {
  const status = output.error === undefined ? output.statusCode : undefined;
  if (status !== undefined && status >= 200 && status < 300) return { kind: 'success' };
  if (output.error?.startsWith('egress policy:')) return { kind: 'final', reason: output.error };
  if (status !== undefined && !isRetryableStatus(status)) return { kind: 'final', reason: `HTTP ${status} is not retried` };
  if (attempt >= maxAttempts) return { kind: 'final', reason: `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}` };
  const backoff = backoffMs(attempt, timing, random);
  const header = output.headers?.['retry-after'];
  const asked = status !== undefined ? retryAfterMs(header, now, timing.maxRetryAfterMs) : undefined;
  return { kind: 'retry', delayMs: asked ?? backoff };
}

/**
 * Submit sends a job's message before it stores the job, so a first delivery may find no job
 * yet: it reads again after each of these waits before it hands the message back.
 */
export const earlyMessageRereadsMs: readonly number[] = [20, 80];

/**
 * A message whose job is not there (yet) comes back after 1 s, then 2 s, 4 s and 8 s, for as
 * long as the API may still be writing the job (`submitWriteWindowMs`).
 */
export function missingJobRetryMs(receiveCount: number): number {
  return 1_000 * 2 ** Math.min(Math.max(receiveCount - 1, 0), 3);
}

/**
 * A submit whose Idempotency-Key another submit holds, still running, looks again after each of
 * these waits before it answers 409: the first is usually done within milliseconds.
 */
export const keyInProgressRereadsMs: readonly number[] = [25, 75, 150];

/** A message whose handling threw comes back after 1 s at least, growing to 5 minutes at most. */
export const afterFailureTiming = { baseDelayMs: 2_000, maxDelayMs: 5 * 60_000, minDelayMs: 1_000 } as const;

/**
 * How soon a message whose handling threw (storage unavailable or throttled, say) is handed out
 * again: soon and growing with its receive count, with jitter, so that an outage is ridden out
 * without a storm and without the queue's whole visibility timeout.
 */
export function afterFailureMs(receiveCount: number, random: () => number = Math.random): number {
  return Math.max(afterFailureTiming.minDelayMs, backoffMs(receiveCount, afterFailureTiming, random));
}

/** The wait until an instant (a lease held, a retry scheduled), none if it has passed. */
export const untilMs = (at: number, now: number): number => Math.max(0, at - now);

/**
 * A job held back by its flow key (core/flow.ts) beyond its wait in the worker: its message comes
 * back after the key's own wait (a pause's end, the next start) and a random part that grows
 * with the times it was held (up to 2^(n-1) s, capped), a second at least, so that a long line
 * costs each job few redeliveries and its returns are spread, not in waves.
 */
export const heldBackTiming = { minDelayMs: 1_000, baseDelayMs: 1_000, maxDelayMs: 4_000 } as const;

export function heldBackMs(keyWaitMs: number, timesHeld: number, random: () => number = Math.random): number {
  return Math.max(heldBackTiming.minDelayMs, Math.max(0, keyWaitMs) + backoffMs(timesHeld + 1, heldBackTiming, random));
}
