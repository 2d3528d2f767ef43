/**
 * Finding work that has no message to carry it: a job whose enqueue was lost, whose worker
 * crashed, or (locally) whose queue did not survive a restart. The jobs table is the source of
 * truth; the queues only carry work. Re-queueing is safe because every attempt is leased.
 * The walk reads the unsettled index alone: each entry carries what is decided on here.
 */
import { sweepShards } from '../../lib/definitions.ts';
import { isFinal, isSettled } from './job.ts';
import { ConditionFailed, type Clock, type JobStore, type QueueMessage, type UnsettledJob, type WorkQueue } from './ports.ts';

export interface SweepReport {
  jobs: number;
  callbacks: number;
  leasesExpired: number;
}

export interface SweepOptions {
  /**
   * Expire every lease found: right when nothing can be in flight (a local stack starting up),
   * so that a lease taken before a crash does not hold its job up.
   */
  expireLeases?: boolean;
  /**
   * Only work overdue by this much: nothing has touched it for `idleMs` past the latest moment
   * it was due (its last update, lease expiry or scheduled retry). Younger work may simply
   * have its message on the way.
   */
  idleMs?: number;
}

/** Goes round the whole index once, shard by shard. */
export async function requeueUnsettled(deps: { jobs: JobStore; queue: WorkQueue; clock: Clock }, options: SweepOptions = {}): Promise<SweepReport> {
  const report: SweepReport = { jobs: 0, callbacks: 0, leasesExpired: 0 };
  const now = deps.clock.now();
  // Sent in bulk as they are found: a restart after a crash may find thousands.
  let found: QueueMessage[] = [];
  const flush = async () => {
    if (found.length > 0) await deps.queue.sendMany(found);
    found = [];
  };
  for (const shard of sweepShards) {
    for await (const job of deps.jobs.unsettled(shard)) {
      const kind = await visit(deps.jobs, job, now, options, report);
      if (kind === undefined) continue;
      found.push({ kind, jobId: job.jobId });
      if (found.length >= 100) await flush();
      report[kind === 'job' ? 'jobs' : 'callbacks']++;
    }
  }
  await flush();
  return report;
}

/** What one entry needs: nothing, its index entry taken out, or (returned) a message of this kind. */
async function visit(jobs: JobStore, job: UnsettledJob, now: number, options: SweepOptions, report: SweepReport): Promise<QueueMessage['kind'] | undefined> {
  if (isSettled(job)) {
    // Settled but still indexed (an interrupted clean-up): take it out of the index. Settled is
    // for good, so an index entry that lags the job cannot mislead this; a job already gone can.
    await ignoringConditionFailed(jobs.update(job.jobId, { remove: ['sweep'] }, {}));
    return undefined;
  }
  if (options.idleMs !== undefined && dueAt(job) > now - options.idleMs) return undefined;
  const kind = isFinal(job.status) ? 'callback' : 'job';
  const lease = kind === 'job' ? 'leaseUntil' : 'notifyLeaseUntil';
  if (options.expireLeases && (job[lease] ?? 0) > 0 && (await expireLease(jobs, job, lease))) report.leasesExpired++;
  return kind;
}

/** The latest moment the job's next step was due. */
export function dueAt(job: UnsettledJob): number {
  return Math.max(Date.parse(job.lastUpdate), job.leaseUntil ?? 0, job.nextAttemptAt ?? 0, job.notifyLeaseUntil ?? 0, job.nextNotifyAt ?? 0);
}

/** Sets the lease to 0: expired, yet still marking that an attempt was interrupted. */
async function expireLease(jobs: JobStore, job: UnsettledJob, lease: 'leaseUntil' | 'notifyLeaseUntil'): Promise<boolean> {
  return ignoringConditionFailed(jobs.update(job.jobId, { [lease]: 0 }, { expect: { [lease]: job[lease] } }));
}

/** Whether the write was made; a lost condition (someone else got there first) is no failure here. */
async function ignoringConditionFailed(write: Promise<void>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (error) {
    if (error instanceof ConditionFailed) return false;
    throw error;
  }
}
