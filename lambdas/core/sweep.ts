/**
 * Finding work that has no message to carry it: a job whose enqueue was lost, whose worker
 * crashed, or (locally) whose queue did not survive a restart. The jobs table is the source of
 * truth; the queues only carry work. Re-queueing is safe because every attempt is leased.
 */
import { isFinal, isSettled, type Job } from './job.ts';
import { ConditionFailed, type Clock, type JobStore, type QueueMessage, type WorkQueue } from './ports.ts';

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

export async function requeueUnsettled(deps: { jobs: JobStore; queue: WorkQueue; clock: Clock }, options: SweepOptions = {}): Promise<SweepReport> {
  const report: SweepReport = { jobs: 0, callbacks: 0, leasesExpired: 0 };
  const now = deps.clock.now();
  // Sent in bulk as they are found: a restart after a crash may find thousands.
  let found: QueueMessage[] = [];
  const flush = async () => {
    if (found.length > 0) await deps.queue.sendMany(found);
    found = [];
  };
  for await (const job of deps.jobs.unsettled()) {
    if (isSettled(job)) {
      // Settled but still indexed (an interrupted clean-up): take it out of the index.
      await deps.jobs.update(job.jobId, { remove: ['sweep'] }, {});
      continue;
    }
    if (options.idleMs !== undefined && dueAt(job) > now - options.idleMs) continue;
    const kind = isFinal(job.status) ? 'callback' : 'job';
    const lease = kind === 'job' ? 'leaseUntil' : 'notifyLeaseUntil';
    if (options.expireLeases && job[lease] !== undefined && (job[lease] ?? 0) > 0) {
      if (await expireLease(deps.jobs, job, lease)) report.leasesExpired++;
    }
    found.push({ kind, jobId: job.jobId });
    if (found.length >= 100) await flush();
    report[kind === 'job' ? 'jobs' : 'callbacks']++;
  }
  await flush();
  return report;
}

/** The latest moment the job's next step was due. */
export function dueAt(job: Job): number {
  return Math.max(Date.parse(job.lastUpdate), job.leaseUntil ?? 0, job.nextAttemptAt ?? 0, job.notifyLeaseUntil ?? 0, job.nextNotifyAt ?? 0);
}

/** Sets the lease to 0: expired, yet still marking that an attempt was interrupted. */
async function expireLease(jobs: JobStore, job: Job, lease: 'leaseUntil' | 'notifyLeaseUntil'): Promise<boolean> {
  try {
    await jobs.update(job.jobId, { [lease]: 0 }, { expect: { [lease]: job[lease] } });
    return true;
  } catch (error) {
    if (error instanceof ConditionFailed) return false;
    throw error;
  }
}
