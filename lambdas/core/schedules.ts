/**
 * Schedules (the v1 API's /v1/schedules): made, listed, read and deleted by their client, and
 * run, each run making one job.
 *
 * - Made: the record first, then its timer (on AWS an EventBridge Scheduler schedule; locally
 *   none, the local stack's timer reads the records). A record without its timer never runs, a
 *   timer without its record makes nothing (a run of a schedule that is gone is nothing): the
 *   record first, so that no timer can fire before its record is there. Should the timer fail,
 *   the record is taken back and the answer is 503: nothing is left half-made.
 * - Deleted: the timer first, then the record (a failure between the two leaves a record that no
 *   longer fires, which DELETE again finishes; the other order could leave a timer firing for
 *   ever that no call can reach, since another client's id must stay a 404).
 * - Run, given (schedule, scheduled time): the job is accepted as POST /v1/jobs accepts one, with
 *   a run key as its Idempotency-Key: `schedule-run <schedule_id> <time>`. The key is claimed by
 *   a conditional write before anything is made (submit's claim: pending, then done once the job
 *   is stored and queued; a claim whose run died is taken over once it cannot be running), so a
 *   run invoked twice, at once or after a crash, makes one job, and the second invocation answers
 *   with the first one's. The space in it keeps it apart from every client's own keys (visible
 *   ASCII only). The job's id is a new random one, not one derived from the key: with a derived
 *   id two invocations would hold the same claim (a claim is told from another by its job id),
 *   and the one whose write failed would take back (delete) the job the other had made. Then
 *   `next_run` moves on, conditionally and never back.
 * The claim is kept 24 hours (idempotencyWindowMs), past EventBridge Scheduler's longest retry
 * (its maximum event age is 24 hours at most) and past any restart of the local stack: a
 * missed run is run after the restart, and `next_run` moves on only once it is made.
 */
import { randomUUID } from 'node:crypto';
import { metricNames } from '../../lib/definitions.ts';
import { readCron, nextRun } from './cron.ts';
import { startOf } from './delay.ts';
import { InvalidRequest, ScheduleNotFound, TooManySchedules, Unavailable } from './errors.ts';
import type { Client, ClientStore, ScheduleStore, ScheduleTimers } from './ports.ts';
import { scheduleLimits, type Schedule } from './schedule.ts';
import { jobIdPattern, parse, v1JobSchema, v1ScheduleSchema } from './schemas.ts';
import { accept, refuseUrls, toJobInput, type SubmitDeps } from './submit.ts';

export interface ScheduleDeps extends SubmitDeps {
  schedules: ScheduleStore;
  timers: ScheduleTimers;
}

/** A run's dependencies: a schedule's, and its client's record (a revoked client's schedules make nothing). */
export interface ScheduleRunDeps extends SubmitDeps {
  schedules: ScheduleStore;
  clients: Pick<ClientStore, 'get'>;
}

export interface ScheduleCreated {
  schedule_id: string;
  next_run: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** POST /v1/schedules. */
export async function createSchedule(deps: ScheduleDeps, client: Client, body: Record<string, unknown>): Promise<ScheduleCreated> {
  const request = parse(v1ScheduleSchema, body);
  const cron = readCron(request.cron, request.timezone);
  // Submit's refusal of a target the egress policy forbids, now rather than at every run.
  await refuseUrls(deps, [
    ['job.url', request.job.url],
    ['job.callback', request.job.callback],
  ]);
  const now = deps.clock.now();
  const next = nextRun(cron, now);
  if (next === undefined) throw new InvalidRequest(`cron: ${JSON.stringify(cron.cron)} matches no time from now on`);
  if ((await deps.schedules.count(client.clientId)) >= scheduleLimits.perClient) {
    throw new TooManySchedules(`a client may have at most ${scheduleLimits.perClient} schedules; delete one first`);
  }
  const schedule: Schedule = {
    scheduleId: (deps.newId ?? randomUUID)(),
    clientId: client.clientId,
    cron: cron.cron,
    timezone: cron.timezone,
    expression: cron.expression,
    job: request.job,
    nextRun: next,
    created: iso(now),
  };
  await deps.schedules.create(schedule);
  try {
    await deps.timers.create(schedule);
  } catch (error) {
    // Whether the timer was made is not known (a create whose answer was lost): take both back.
    await Promise.allSettled([deps.schedules.remove(schedule.scheduleId), deps.timers.remove(schedule.scheduleId)]);
    throw new Unavailable('could not make the schedule\'s timer; nothing was kept, try again', { cause: error });
  }
  return { schedule_id: schedule.scheduleId, next_run: iso(next) };
}

/** The client's schedule of this id, or ScheduleNotFound: unknown, malformed and another client's alike. */
async function owned(deps: Pick<ScheduleDeps, 'schedules'>, client: Client, scheduleId: string): Promise<Schedule> {
  if (!jobIdPattern.test(scheduleId)) throw new ScheduleNotFound('no schedule with that id exists for this client');
  const schedule = await deps.schedules.get(scheduleId.toLowerCase());
  if (!schedule || schedule.clientId !== client.clientId) throw new ScheduleNotFound('no schedule with that id exists for this client');
  return schedule;
}

/** GET /v1/schedules/{schedule_id}. */
export const getSchedule = (deps: Pick<ScheduleDeps, 'schedules'>, client: Client, scheduleId: string): Promise<Schedule> => owned(deps, client, scheduleId);

/** GET /v1/schedules: all of the client's, newest first (there are at most scheduleLimits.perClient). */
export const listSchedules = (deps: Pick<ScheduleDeps, 'schedules'>, client: Client): Promise<Schedule[]> => deps.schedules.list(client.clientId);

/** DELETE /v1/schedules/{schedule_id}: no run starts after the answer; the jobs its runs made are left as they are. */
export async function deleteSchedule(deps: ScheduleDeps, client: Client, scheduleId: string): Promise<Schedule> {
  const schedule = await owned(deps, client, scheduleId);
  try {
    await deps.timers.remove(schedule.scheduleId);
  } catch (error) {
    throw new Unavailable('could not delete the schedule\'s timer; the schedule is unchanged, try again', { cause: error });
  }
  await deps.schedules.remove(schedule.scheduleId);
  return schedule;
}

/** A run's Idempotency-Key: no client's own key holds a space, so none can be mistaken for it. */
export const runKey = (scheduleId: string, scheduledTime: number): string => `schedule-run ${scheduleId} ${iso(scheduledTime)}`;

export type RunOutcome =
  | { made: 'job'; jobId: string }
  /** The schedule is gone (deleted): nothing is made. */
  | { made: 'nothing'; reason: 'schedule gone' }
  /** Its client is revoked or gone, or the job is refused now (the egress policy): no job; the run is spent. */
  | { made: 'nothing'; reason: string };

/**
 * One run of a schedule, at `scheduledTime` (epoch ms): its job made once, however often the run
 * is invoked (see the header). Throws when the job could not be stored and queued (Unavailable,
 * or another run holding the key: KeyInProgress): then it is to be invoked again.
 */
export async function runSchedule(deps: ScheduleRunDeps, scheduleId: string, scheduledTime: number): Promise<RunOutcome> {
  const schedule = await deps.schedules.get(scheduleId);
  if (!schedule) return { made: 'nothing', reason: 'schedule gone' };
  const next = nextRun(schedule, scheduledTime);
  const client = await deps.clients.get(schedule.clientId);
  let outcome: RunOutcome;
  if (!client || client.revoked) outcome = { made: 'nothing', reason: 'its client is revoked' };
  else {
    try {
      // A delay in the schedule's job (delay_s) counts from the run's own time, as if posted then.
      const job = parse(v1JobSchema, schedule.job);
      const input = { ...toJobInput(job), ...startOf(job, scheduledTime), scheduleId: schedule.scheduleId };
      const accepted = await accept(deps, client, input, runKey(schedule.scheduleId, scheduledTime));
      outcome = { made: 'job', jobId: accepted.job_id };
    } catch (error) {
      // A refusal is for good (a target the egress policy now refuses): the run is spent, not retried.
      if (!(error instanceof InvalidRequest)) throw error;
      outcome = { made: 'nothing', reason: error.message };
    }
  }
  await deps.schedules.advance(schedule.scheduleId, scheduledTime, next, outcome.made === 'job' ? outcome.jobId : undefined);
  if (outcome.made === 'job') deps.telemetry?.count(metricNames.scheduleRuns);
  return outcome;
}

/** How many runs one pass of the local timer makes at most; the rest wait for the next pass. */
export const runsPerPass = 100;

/**
 * The local stack's timer, one pass: every run due at `now` (each schedule's `next_run` at or
 * before it), oldest first, each through `run` (the schedule-run function). A schedule's runs
 * missed while the stack was down are all made, one after another, each once (its run key):
 * `next_run` moves on only once its run is made. A run that throws is left for the next pass.
 */
export async function runDue(deps: { schedules: ScheduleStore; clock: { now(): number } }, run: (scheduleId: string, scheduledTime: number) => Promise<unknown>): Promise<{ runs: number; failed: number }> {
  const now = deps.clock.now();
  let runs = 0;
  let failed = 0;
  const due = (await deps.schedules.due(now)).sort((a, b) => (a.nextRun ?? 0) - (b.nextRun ?? 0));
  for (const schedule of due) {
    let at = schedule.nextRun;
    while (at !== undefined && at <= now && runs < runsPerPass) {
      try {
        await run(schedule.scheduleId, at);
      } catch {
        failed++;
        break;
      }
      runs++;
      // The run moved next_run on (or its schedule is gone): read where it stands now.
      const ran = at;
      at = (await deps.schedules.get(schedule.scheduleId))?.nextRun;
      if (at === ran) break;
    }
  }
  return { runs, failed };
}
