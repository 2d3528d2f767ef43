/**
 * The release: delayed jobs that wait in the store (due beyond SQS's 15 minutes: core/delay.ts)
 * are handed to the queue once they come within its reach, each message held by the queue for
 * what is left of its job's wait, so that the first attempt starts on time to the second.
 *
 * A run, every minute, goes through the due index's buckets minute by minute, from the one
 * after the last minute released (saved by the run that released it) to the one that falls due
 * `horizonMs` from now; each minute's sixteen buckets side by side, each in the order its jobs
 * fall due, ten at a time: one SendMessageBatch, then each job taken out of its bucket by a
 * conditional write. Sent first, then marked: a crash between the two sends a job twice, which
 * its lease absorbs (the second delivery finds it started); never the reverse, which would lose
 * it. A bucket is therefore its own progress: a run stopped by its deadline leaves the jobs it
 * did not send in their buckets, and the next run, starting from the minute it did not finish,
 * finds those alone. A job cancelled meanwhile has left its bucket in the cancel's write; one
 * cancelled after it was read is sent, and its message finds it final and is dropped.
 *
 * Runs that overlap (a late invocation) send some jobs twice and save the same progress; the
 * saved minute only moves forward.
 */
import { delays, release } from '../../lib/definitions.ts';
import { bucketsOf, minuteOf, queueDelay } from './delay.ts';
import { attemptLeaseMs } from './job.ts';
import type { Clock, DueIndex, DueJob, WorkQueue } from './ports.ts';

export interface ReleaseDeps {
  due: DueIndex;
  queue: WorkQueue;
  clock: Clock;
}

export interface ReleaseOptions {
  /** Epoch ms from which the run starts no further send: what it did not reach, the next run does. */
  deadline: number;
}

export interface ReleaseReport {
  /** Jobs sent and taken out of their buckets by this run. */
  released: number;
  /** The last minute this run released whole (epoch ms), if it finished any. */
  through?: number;
  /** It stopped at its deadline with buckets left within the horizon. */
  unfinished: boolean;
}

/** SendMessageBatch's ten: a bucket's jobs are sent, then marked, this many at a time. */
const batchSize = 10;

/** One run: every bucket from where the last run stopped to `release.horizonMs` from now, or until the deadline. */
export async function releaseDue(deps: ReleaseDeps, options: ReleaseOptions): Promise<ReleaseReport> {
  const now = deps.clock.now();
  const last = minuteOf(now + release.horizonMs);
  const saved = await deps.due.releasedThrough();
  // The first run ever: no bucket before this minute can hold a job (submit puts a job 15 minutes ahead at least).
  const from = saved === undefined ? minuteOf(now) : saved + delays.bucketMs;
  const report: ReleaseReport = { released: 0, unfinished: false };
  const past = () => deps.clock.now() >= options.deadline;
  for (let minute = from; minute <= last; minute += delays.bucketMs) {
    const whole = !past() && (await releaseMinute(deps, minute, past, report));
    if (!whole) return { ...report, unfinished: true };
    await deps.due.saveReleasedThrough(minute);
    report.through = minute;
  }
  return report;
}

/** A minute's buckets, `release.concurrency` side by side; whether every one was gone through. */
async function releaseMinute(deps: ReleaseDeps, minute: number, past: () => boolean, report: ReleaseReport): Promise<boolean> {
  const buckets = bucketsOf(minute);
  let next = 0;
  let whole = true;
  const lane = async () => {
    while (next < buckets.length) {
      const bucket = buckets[next++] as string;
      if (!(await releaseBucket(deps, bucket, past, report))) whole = false;
    }
  };
  await Promise.all(Array.from({ length: Math.min(release.concurrency, buckets.length) }, lane));
  return whole;
}

/** One bucket's jobs, ten at a time: sent, then marked. Whether it was gone through before the deadline. */
async function releaseBucket(deps: ReleaseDeps, bucket: string, past: () => boolean, report: ReleaseReport): Promise<boolean> {
  let batch: DueJob[] = [];
  const send = async () => {
    if (batch.length === 0) return;
    const now = deps.clock.now();
    await deps.queue.sendMany(batch.map((job) => ({ kind: 'job', jobId: job.jobId, leaseMs: attemptLeaseMs(job), ...queueDelay(job.startAt, now) })));
    const marked = await Promise.all(batch.map((job) => deps.due.released(job.jobId, job.due)));
    report.released += marked.filter(Boolean).length;
    batch = [];
  };
  for await (const job of deps.due.due(bucket)) {
    if (past()) {
      await send();
      return false;
    }
    batch.push(job);
    if (batch.length === batchSize) await send();
  }
  await send();
  return true;
}
