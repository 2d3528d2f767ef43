/**
 * Schedules in the core, on the in-memory stores: made, read and deleted by their client alone,
 * nothing half-made when the timer fails, and each run making its job once — invoked twice at
 * once, again after a crash, or by a new timer over the same store after a restart.
 */
import { describe, expect, it } from 'vitest';
import { ScheduleNotFound, TooManySchedules, Unavailable, InvalidRequest } from '../../lambdas/core/errors.ts';
import { scheduleLimits } from '../../lambdas/core/schedule.ts';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, runDue, runKey, runSchedule, type ScheduleDeps } from '../../lambdas/core/schedules.ts';
import { ManualClock, MemoryClientStore, MemoryJobStore, MemoryScheduleStore, MemoryTimers, MemoryWorkQueue, testClient } from '../support/memory.ts';

const owner = testClient('11111111111111');
const other = testClient('22222222222222');
const job = { url: 'https://service.example.com/report', method: 'post', body: { report: 'daily' } };

function world(start = '2026-12-02T10:00:30.000Z') {
  const clock = new ManualClock(Date.parse(start));
  const clients = new MemoryClientStore();
  void clients.put(owner.client);
  void clients.put(other.client);
  const jobs = new MemoryJobStore();
  const queue = new MemoryWorkQueue();
  const schedules = new MemoryScheduleStore();
  const timers = new MemoryTimers();
  const deps: ScheduleDeps & { clients: MemoryClientStore } = { jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, schedules, timers, clients };
  return { clock, clients, jobs, queue, schedules, timers, deps };
}

const madeBy = (jobs: MemoryJobStore, scheduleId: string) => [...jobs.jobs.values()].filter((found) => found.scheduleId === scheduleId);

describe('making, reading and deleting schedules', () => {
  it('makes the record and its timer, and answers its first run', async () => {
    const { deps, timers, schedules } = world();
    const made = await createSchedule(deps, owner.client, { cron: '*/5 * * * *', timezone: 'Europe/Paris', job });
    expect(made.next_run).toBe('2026-12-02T10:05:00.000Z');
    const stored = await schedules.get(made.schedule_id);
    expect(stored).toMatchObject({ clientId: owner.client.clientId, cron: '*/5 * * * *', timezone: 'Europe/Paris', expression: 'cron(0/5 * * * ? *)', job: { ...job, method: 'POST' } });
    expect(timers.timers.get(made.schedule_id)?.expression).toBe('cron(0/5 * * * ? *)');
  });

  it('validates the job as POST /v1/jobs does, and refuses a target the egress policy refuses', async () => {
    const { deps, schedules } = world();
    await expect(createSchedule(deps, owner.client, { cron: '* * * * *', job: { url: 'https://x.example', calback: 'https://y.example' } })).rejects.toThrow(/job: unknown field "calback" \(did you mean "callback"\?\)/);
    await expect(createSchedule(deps, owner.client, { cron: '* * * * *', job: { url: 'ftp://x.example' } })).rejects.toThrow(/url must be an absolute http\(s\) URL/);
    await expect(createSchedule(deps, owner.client, { cron: '* * * * *', jobs: job })).rejects.toThrow(InvalidRequest);
    // A suggestion names a field of the schedule, not one of another body (a batch's "jobs").
    await expect(createSchedule(deps, owner.client, { cron: '* * * * *', jobb: job })).rejects.toThrow(/unknown field "jobb" \(did you mean "job"\?\)/);
    const refusing = { ...deps, refuse: async (url: string) => (url.includes('10.0.0.1') ? 'egress policy: 10.0.0.1 is a private address' : undefined) };
    await expect(createSchedule(refusing, owner.client, { cron: '* * * * *', job: { url: 'http://10.0.0.1/' } })).rejects.toThrow(/^job\.url: egress policy/);
    await expect(createSchedule(deps, owner.client, { cron: '0 0 31 2 *', job })).rejects.toThrow(/matches no time/);
    expect(schedules.schedules.size).toBe(0);
  });

  it("shows a schedule to its client alone: another client's id is a 404, as an unknown or malformed one", async () => {
    const { deps } = world();
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '0 9 * * 1-5', job });
    expect((await getSchedule(deps, owner.client, schedule_id)).scheduleId).toBe(schedule_id);
    await expect(getSchedule(deps, other.client, schedule_id)).rejects.toThrow(ScheduleNotFound);
    await expect(deleteSchedule(deps, other.client, schedule_id)).rejects.toThrow(ScheduleNotFound);
    await expect(getSchedule(deps, owner.client, 'not-an-id')).rejects.toThrow(ScheduleNotFound);
    expect(await listSchedules(deps, other.client)).toEqual([]);
    expect((await listSchedules(deps, owner.client)).map((s) => s.scheduleId)).toEqual([schedule_id]);
  });

  it('takes back the record and answers 503 when the timer cannot be made: nothing is left half-made', async () => {
    const { deps, timers, schedules } = world();
    timers.failure = new Error('ThrottlingException');
    await expect(createSchedule(deps, owner.client, { cron: '* * * * *', job })).rejects.toThrow(Unavailable);
    expect(schedules.schedules.size).toBe(0);
    expect(timers.timers.size).toBe(0);
  });

  it('deletes the timer, then the record; a timer that cannot be deleted leaves the schedule as it was (503)', async () => {
    const { deps, timers, schedules } = world();
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    timers.failure = new Error('ServiceUnavailable');
    await expect(deleteSchedule(deps, owner.client, schedule_id)).rejects.toThrow(Unavailable);
    expect(schedules.schedules.has(schedule_id)).toBe(true);
    timers.failure = undefined;
    await deleteSchedule(deps, owner.client, schedule_id);
    expect(schedules.schedules.size).toBe(0);
    expect(timers.timers.size).toBe(0);
  });

  it(`refuses a client's schedule past ${scheduleLimits.perClient} with a 409`, async () => {
    const { deps } = world();
    for (let i = 0; i < scheduleLimits.perClient; i++) await createSchedule(deps, owner.client, { cron: '0 9 * * *', job });
    await expect(createSchedule(deps, owner.client, { cron: '0 9 * * *', job })).rejects.toThrow(TooManySchedules);
    await createSchedule(deps, other.client, { cron: '0 9 * * *', job });
  });
});

describe('a run', () => {
  it("makes one job carrying the schedule's id, and moves next_run on", async () => {
    const { deps, jobs, queue, schedules } = world();
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    const at = Date.parse('2026-12-02T10:01:00.000Z');
    const outcome = await runSchedule(deps, schedule_id, at);
    expect(outcome.made).toBe('job');
    const made = madeBy(jobs, schedule_id);
    expect(made).toHaveLength(1);
    expect(made[0]).toMatchObject({ clientId: owner.client.clientId, service: job.url, status: 'accepted', scheduleId: schedule_id });
    expect(queue.sent.map((m) => m.jobId)).toEqual([made[0]?.jobId]);
    expect(await schedules.get(schedule_id)).toMatchObject({ lastRun: at, lastJobId: made[0]?.jobId, nextRun: Date.parse('2026-12-02T10:02:00.000Z') });
  });

  it('invoked twice at once for the same time makes one job, and both answer it', async () => {
    const { deps, jobs } = world();
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    const at = Date.parse('2026-12-02T10:01:00.000Z');
    // The second waits on the first's claim, re-reading it (its sleep moves no clock here, and
    // lets the first's writes go on, as a real wait would, however many they are).
    const racing = { ...deps, sleep: () => new Promise<void>((resolve) => setImmediate(resolve)) };
    const [first, second] = await Promise.all([runSchedule(racing, schedule_id, at), runSchedule(racing, schedule_id, at)]);
    expect(madeBy(jobs, schedule_id)).toHaveLength(1);
    expect(first).toEqual(second);
  });

  it('invoked again after a crash that left its claim pending and no job, makes the job then, once', async () => {
    const { deps, jobs, clock } = world();
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    const at = Date.parse('2026-12-02T10:01:00.000Z');
    clock.set(at);
    // The first invocation died after claiming the run's key, before storing its job.
    await jobs.claimIdempotent(owner.client.clientId, runKey(schedule_id, at), { jobId: '00000000-0000-4000-8000-000000000000', answer: '{}', state: 'pending', claimUntil: at + 25_000, expiresAt: at / 1000 + 86_400 }, at);
    // Retried at once, it waits on the claim, then gives up for now (KeyInProgress: invoked again later).
    await expect(runSchedule({ ...deps, sleep: async () => undefined }, schedule_id, at)).rejects.toThrow(/in progress/);
    clock.advance(30_000);
    const retried = await runSchedule(deps, schedule_id, at);
    const again = await runSchedule(deps, schedule_id, at);
    expect(madeBy(jobs, schedule_id)).toHaveLength(1);
    expect(again).toEqual(retried);
  });

  it('makes nothing once its schedule is deleted, nor for a revoked client', async () => {
    const { deps, jobs, clients } = world();
    const deleted = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    await deleteSchedule(deps, owner.client, deleted.schedule_id);
    expect(await runSchedule(deps, deleted.schedule_id, Date.parse('2026-12-02T10:01:00.000Z'))).toEqual({ made: 'nothing', reason: 'schedule gone' });
    const revoked = await createSchedule(deps, other.client, { cron: '* * * * *', job });
    await clients.revoke(other.client.clientId, '2026-12-02T10:00:40.000Z');
    expect((await runSchedule(deps, revoked.schedule_id, Date.parse('2026-12-02T10:01:00.000Z'))).made).toBe('nothing');
    expect(jobs.jobs.size).toBe(0);
  });
});

describe("the local stack's timer", () => {
  it('makes every run missed while the stack was down after the restart, each once, and none twice across the restart', async () => {
    const { deps, jobs, clock, schedules } = world('2026-12-02T10:00:30.000Z');
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    const run = (id: string, time: number) => runSchedule(deps, id, time);
    // Before its first minute: nothing is due.
    expect(await runDue(deps, run)).toEqual({ runs: 0, failed: 0 });
    clock.set(Date.parse('2026-12-02T10:01:00.500Z'));
    expect(await runDue(deps, run)).toEqual({ runs: 1, failed: 0 });
    // Down from 10:01:10 to 10:04:20: a new timer over the same store (a restart) after three minutes.
    clock.set(Date.parse('2026-12-02T10:04:20.000Z'));
    const restarted = { schedules, clock };
    expect(await runDue(restarted, run)).toEqual({ runs: 3, failed: 0 });
    expect(await runDue(restarted, run)).toEqual({ runs: 0, failed: 0 });
    const times = madeBy(jobs, schedule_id).map((made) => made.created).sort();
    expect(times).toHaveLength(4);
    expect((await schedules.get(schedule_id))?.nextRun).toBe(Date.parse('2026-12-02T10:05:00.000Z'));
  });

  it('runs a run again after a crash between its job and the move of next_run, without a second job', async () => {
    const { deps, jobs, clock, schedules } = world('2026-12-02T10:00:30.000Z');
    const { schedule_id } = await createSchedule(deps, owner.client, { cron: '* * * * *', job });
    clock.set(Date.parse('2026-12-02T10:01:05.000Z'));
    // The first pass made the job and died before next_run moved on.
    const crashing = { ...deps, schedules: Object.assign(Object.create(schedules) as MemoryScheduleStore, { advance: async () => Promise.reject(new Error('killed')) }) };
    expect(await runDue(crashing, (id, time) => runSchedule(crashing, id, time))).toEqual({ runs: 0, failed: 1 });
    expect(madeBy(jobs, schedule_id)).toHaveLength(1);
    expect(await runDue(deps, (id, time) => runSchedule(deps, id, time))).toEqual({ runs: 1, failed: 0 });
    expect(madeBy(jobs, schedule_id)).toHaveLength(1);
  });
});
