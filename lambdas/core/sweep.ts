/**
 * Finding work that has no message to carry it: a job whose enqueue was lost, whose worker
 * crashed, or (locally) whose queue did not survive a restart. The jobs table is the source of
 * truth; the queues only carry work. Re-queueing is safe because every attempt is leased.
 */
import { isFinal, type Job } from './job.ts';
import { ConditionFailed, type Clock, type JobStore, type WorkQueue } from './ports.ts';

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
  /** Only jobs untouched for this long (their messages may simply be on their way). */
  idleMs?: number;
}

export async function requeueUnsettled(deps: { jobs: JobStore; queue: WorkQueue; clock: Clock }, options: SweepOptions = {}): Promise<SweepReport> {
  const report: SweepReport = { jobs: 0, callbacks: 0, leasesExpired: 0 };
  const now = deps.clock.now();
  for await (const job of deps.jobs.unsettled()) {
    if (options.idleMs !== undefined && Date.parse(job.lastUpdate) > now - options.idleMs) continue;
    const kind = isFinal(job.status) ? 'callback' : 'job';
    const lease = kind === 'job' ? 'leaseUntil' : 'notifyLeaseUntil';
    if (kind === 'callback' && (job.notified !== 'no' || !job.callback)) continue;
    if (options.expireLeases && job[lease] !== undefined && (job[lease] ?? 0) > 0) {
      if (await expireLease(deps.jobs, job, lease)) report.leasesExpired++;
    }
    await deps.queue.send({ kind, jobId: job.jobId });
    report[kind === 'job' ? 'jobs' : 'callbacks']++;
  }
  return report;
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
