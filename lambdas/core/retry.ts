/**
 * The RetryPolicy: what an attempt's outcome means, and when the next attempt runs.
 * One policy drives the service call and the callback alike.
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
export function backoffMs(retry: number, timing: RetryTiming = retryTiming, random: () => number = Math.random): number {
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
