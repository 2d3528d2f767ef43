/**
 * Finding work that has no message to carry it: a job whose enqueue was lost, whose worker
 * crashed, or (locally) whose queue did not survive a restart. The jobs table is the source of
 * truth; the queues only carry work. Re-queueing is safe because every attempt is leased.
 *
 * Both walks read the unsettled index alone (each entry carries what is decided on here):
 * - `requeueUnsettled` goes round the whole index at once: the local stack's start, when nothing
 *   else runs;
 * - `scheduledSweep` is the sweeper's run on its schedule: it holds the sweeper's lease, so two
 *   runs never overlap; it starts where the last run stopped and stops at its deadline, saving
 *   where, so that run after run covers every shard, each entry once a round.
 */
import { sweepShards } from '../../lib/definitions.ts';
import { queueDelay, waitsInStore } from './delay.ts';
import { isFinal, isSettled } from './job.ts';
import {
  ConditionFailed,
  type Clock,
  type IndexMark,
  type JobStore,
  type QueueMessage,
  type SweepPosition,
  type SweepState,
  type SweepStateStore,
  type UnsettledJob,
  type WorkQueue,
} from './ports.ts';

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

type SweepDeps = { jobs: JobStore; queue: WorkQueue; clock: Clock };

/** Goes round the whole index once, from the first shard, with no deadline and no lease. */
export async function requeueUnsettled(deps: SweepDeps, options: SweepOptions = {}): Promise<SweepReport> {
  return (await walk(deps, undefined, options, () => false)).report;
}

export interface ScheduledSweepOptions {
  idleMs: number;
  /** Epoch ms from which the run takes no further entry: it saves where it stopped, and the next run goes on from there. */
  deadline: number;
  /** Who runs it (the invocation's request id): the lease's holder. */
  run: string;
  /** How long the lease holds (`sweeperLeaseMs`): past it, a run that died holding it holds nothing up. */
  leaseMs: number;
}

export interface ScheduledSweepReport extends SweepReport {
  /** Another run held the lease: this one did nothing. */
  skipped: boolean;
  /** It began where a run that could not finish had stopped. */
  resumed: boolean;
  /** It stopped at its deadline before it had gone round the index: the next run goes on from where it stopped. */
  unfinished: boolean;
  /** Its lease ran out and another run took it before it saved: where it stopped was not saved. */
  leaseLost: boolean;
  /** Where the next run starts. */
  resumeAt?: SweepPosition;
  /** Who held the lease when it was skipped, and until when (epoch ms), when the store tells. */
  heldBy?: string;
  heldUntil?: number;
}

/**
 * One run of the sweeper: takes the lease (or reports `skipped` at once), walks from where the
 * last run stopped round to there again, or until `deadline`, and saves where the next run
 * starts as it lets the lease go.
 */
export async function scheduledSweep(deps: SweepDeps & { sweeps: SweepStateStore }, options: ScheduledSweepOptions): Promise<ScheduledSweepReport> {
  const none = { jobs: 0, callbacks: 0, leasesExpired: 0, skipped: false, resumed: false, unfinished: false, leaseLost: false };
  const now = deps.clock.now();
  const claim = await deps.sweeps.claim(options.run, now, now + options.leaseMs);
  if ('held' in claim) return { ...none, skipped: true, ...claim.held };
  const { state } = claim;
  let walked: Walked;
  try {
    walked = await walk(deps, state.resumeAt, { idleMs: options.idleMs }, () => deps.clock.now() >= options.deadline);
  } catch (error) {
    // Where it stood stays as the last run left it; the lease goes now, not when it runs out.
    await deps.sweeps.release(options.run, state, deps.clock.now()).catch(() => undefined);
    throw error;
  }
  // A run that went round leaves the next to start where it started.
  const resumeAt = walked.stoppedAt ?? state.resumeAt;
  const next: SweepState = { ...(resumeAt ? { resumeAt } : {}), unfinished: walked.stoppedAt !== undefined };
  const kept = await deps.sweeps.release(options.run, next, deps.clock.now());
  return { ...none, ...walked.report, resumed: state.unfinished, unfinished: next.unfinished, leaseLost: !kept, ...(resumeAt ? { resumeAt } : {}) };
}

interface Walked {
  report: SweepReport;
  /** Set when `stop` ended the walk: where the next walk starts. */
  stoppedAt?: SweepPosition;
}

type Leg = { shard: string; range: { after?: IndexMark; upTo?: IndexMark } };

/**
 * The walk once round the index from `from` (none: the first shard's start) back to it: the
 * rest of its shard, every other shard in turn, then its shard's start up to it.
 */
function legs(from: SweepPosition | undefined): Leg[] {
  const start = from && sweepShards.includes(from.shard) ? from : undefined;
  const at = start ? sweepShards.indexOf(start.shard) : 0;
  const shards = sweepShards.map((_, i) => sweepShards[(at + i) % sweepShards.length] ?? '');
  if (!start?.after) return shards.map((shard) => ({ shard, range: {} }));
  return [{ shard: start.shard, range: { after: start.after } }, ...shards.slice(1).map((shard) => ({ shard, range: {} })), { shard: start.shard, range: { upTo: start.after } }];
}

/** Walks from `from` once round; before each entry asks `stop`, and when it says so ends there, saying where. */
async function walk(deps: SweepDeps, from: SweepPosition | undefined, options: SweepOptions, stop: () => boolean): Promise<Walked> {
  const report: SweepReport = { jobs: 0, callbacks: 0, leasesExpired: 0 };
  const now = deps.clock.now();
  // Sent in bulk as they are found: a restart after a crash may find thousands. Always sent
  // before a walk ends, so that where it stopped is saved only past work already queued.
  let found: QueueMessage[] = [];
  const flush = async () => {
    if (found.length > 0) await deps.queue.sendMany(found);
    found = [];
  };
  for (const leg of legs(from)) {
    let last = leg.range.after;
    const stopHere = async (): Promise<Walked> => {
      await flush();
      return { report, stoppedAt: { shard: leg.shard, ...(last ? { after: last } : {}) } };
    };
    if (stop()) return stopHere();
    for await (const job of deps.jobs.unsettled(leg.shard, leg.range)) {
      if (stop()) return stopHere();
      last = { created: job.created, jobId: job.jobId };
      const kind = await visit(deps.jobs, job, now, options, report);
      if (kind === undefined) continue;
      const message = kind === 'job' ? jobMessage(job, now) : { kind, jobId: job.jobId };
      if (message === undefined) continue;
      found.push(message);
      if (found.length >= 100) await flush();
      report[kind === 'job' ? 'jobs' : 'callbacks']++;
    }
  }
  await flush();
  return { report };
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

/**
 * A job's message as a walk sends it: held by the queue until its next attempt is due (a
 * delayed job's first, a retry's), so a restart neither starts it early nor has a worker hand it
 * back at once. None for a delayed job that waits in the store beyond the queue's reach: the
 * release sends it when it is near (core/release.ts), and it is not stuck, only waiting.
 */
function jobMessage(job: UnsettledJob, now: number): QueueMessage | undefined {
  if (job.status === 'accepted' && job.nextAttemptAt !== undefined && waitsInStore(job.nextAttemptAt, now)) return undefined;
  return { kind: 'job', jobId: job.jobId, ...queueDelay(job.nextAttemptAt, now) };
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
