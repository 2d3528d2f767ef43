/**
 * Delayed jobs (v1's `not_before` and `delay_s`): when a job's first attempt may start, and how
 * its wait is carried until then.
 * - Up to SQS's 15 minutes (`delays.queueMaxMs`): by its message, sent at submit with that delay
 *   (DelaySeconds, rounded up to whole seconds, so it never arrives early).
 * - Beyond: the job waits in the store, in the due index's bucket of the minute it falls due
 *   (`due` = "<minute>#<shard>"), sending nothing; the release (core/release.ts) sends its
 *   message, with what is left of its wait, once it is within the queue's reach.
 * Either way the job is `accepted` with `next_attempt_at` = its time until a worker takes it,
 * and no worker takes it before then (core/deliver.ts asks that it be due).
 */
import { delays, sweepShards } from '../../lib/definitions.ts';
import { InvalidRequest } from './errors.ts';
import { sweepShard, type Job } from './job.ts';

/** The v1 fields that delay a job. */
export interface DelayFields {
  not_before?: string | undefined;
  delay_s?: number | undefined;
}

/**
 * The instant (epoch ms) before which the job's first attempt does not start, from its fields
 * and `now`: none when it runs now (no field, `delay_s` 0, or a `not_before` that has passed).
 * A `not_before` more than a year ahead is refused, naming the field; the schema has checked
 * everything else (its form, `delay_s`'s range, not both).
 */
export function startOf(fields: DelayFields, now: number): { startAt?: number } {
  let startAt: number | undefined;
  if (fields.delay_s !== undefined) startAt = now + fields.delay_s * 1_000;
  else if (fields.not_before !== undefined) {
    startAt = Date.parse(fields.not_before);
    if (startAt - now > delays.maxSeconds * 1_000) {
      throw new InvalidRequest(`not_before: must be at most ${delays.maxSeconds} seconds (365 days) ahead; it is ${Math.ceil((startAt - now) / 1_000)} seconds ahead`);
    }
  }
  return startAt !== undefined && startAt > now ? { startAt } : {};
}

/** The start of the minute that holds `ms`. */
export const minuteOf = (ms: number): number => ms - (((ms % delays.bucketMs) + delays.bucketMs) % delays.bucketMs);

/** A due-index bucket: a minute ("2027-03-01T09:30Z") and a shard. */
export const bucketOf = (minute: number, shard: string): string => `${new Date(minuteOf(minute)).toISOString().slice(0, 16)}Z#${shard}`;

/** Every bucket of one minute, one per shard. */
export const bucketsOf = (minute: number): string[] => sweepShards.map((shard) => bucketOf(minute, shard));

/** Whether a job due at `startAt` waits in the store (the due index) rather than in its message. */
export const waitsInStore = (startAt: number, now: number): boolean => startAt - now > delays.queueMaxMs;

/** What a new job delayed to `startAt` carries: its time, and its bucket when it waits in the store. */
export function delayedFields(jobId: string, startAt: number | undefined, now: number): Pick<Job, 'nextAttemptAt' | 'due'> {
  if (startAt === undefined || startAt <= now) return {};
  return { nextAttemptAt: startAt, ...(waitsInStore(startAt, now) ? { due: bucketOf(startAt, sweepShard(jobId)) } : {}) };
}

/** The queue delay of a message for work due at `at` (none when due now), at most the queue's 15 minutes. */
export function queueDelay(at: number | undefined, now: number): { delayMs?: number } {
  if (at === undefined || at <= now) return {};
  return { delayMs: Math.min(at - now, delays.queueMaxMs) };
}
