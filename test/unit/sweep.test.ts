/**
 * The sweeper's scheduled run (core/sweep.ts) on the in-memory stores, its time an injected
 * clock: where a run stops and the next goes on, what a failure or a lost lease leaves behind.
 * test/unit/job-store.contract.test.ts runs the round across runs and the lease on dynalite too.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Job } from '../../lambdas/core/job.ts';
import { ConditionFailed, type JobStore } from '../../lambdas/core/ports.ts';
import { requeueUnsettled, scheduledSweep, type ScheduledSweepOptions } from '../../lambdas/core/sweep.ts';
import { sweep, sweeperLeaseMs } from '../../lib/definitions.ts';
import { acceptedJob, ManualClock, MemoryJobStore, MemorySweepStateStore, MemoryWorkQueue, ticking } from '../support/memory.ts';

const start = Date.parse('2026-03-01T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const idle = sweep.idleMs;

/** Two idle jobs in each of these shards, in the index's order: each visit of one queues it. */
async function world(shards: string[] = ['2', '9']) {
  const clock = new ManualClock(start);
  const store = new MemoryJobStore();
  const ring: string[] = [];
  for (const shard of shards) {
    for (let i = 0; i < 2; i++) {
      const jobId = `${shard}${randomUUID().slice(1)}`;
      const old = iso(start - 2 * idle);
      await store.create(acceptedJob({ jobId, created: iso(start - 3 * idle + i), lastUpdate: old, status: 'running', attempts: 1, sweep: shard }), { url: 'https://service.example.com', method: 'POST', headers: {}, body: null });
      ring.push(jobId);
    }
  }
  const sweeps = new MemorySweepStateStore();
  const deps = { jobs: ticking(store, clock, 1_000) as JobStore, queue: new MemoryWorkQueue(), clock, sweeps };
  /** A run whose deadline lets it take `entries` entries (each costs a second of the clock). */
  const run = async (name: string, entries: number, options: Partial<ScheduledSweepOptions> = {}) => {
    deps.queue.clear();
    const report = await scheduledSweep(deps, { idleMs: idle, deadline: clock.now() + entries * 1_000 + 500, run: name, leaseMs: sweeperLeaseMs, ...options });
    return { report, sent: deps.queue.sent.map((message) => message.jobId) };
  };
  return { clock, store, sweeps, deps, ring, run };
}

describe('scheduledSweep', () => {
  it('a run stopped in the last stretch of its round (its own shard\'s start) leaves the next to begin at that shard\'s start', async () => {
    const { ring, run, sweeps } = await world(['2', '9']);
    // Run 1 stops past the first entry of shard 9; run 2 goes round from there (9, then 2, then
    // 9's start) and stops before 9's first entry, the last of its round.
    expect((await run('run-1', 3)).report.resumeAt).toEqual({ shard: '9', after: { created: expect.any(String), jobId: ring[2] } });
    const second = await run('run-2', 3);
    expect(second.sent).toEqual([ring[3], ring[0], ring[1]]);
    expect(second.report).toMatchObject({ resumed: true, unfinished: true, resumeAt: { shard: '9' } });
    expect(sweeps.state).toEqual({ resumeAt: { shard: '9' }, unfinished: true });
    // From a shard's start, the round is the sixteen shards, each once.
    const third = await run('run-3', 100);
    expect(third.sent).toEqual([ring[2], ring[3], ring[0], ring[1]]);
    expect(third.report).toMatchObject({ resumed: true, unfinished: false, resumeAt: { shard: '9' } });
  });

  it('a run whose deadline has passed before it begins sends nothing and leaves the place where it was', async () => {
    const { ring, run, sweeps } = await world();
    await run('run-1', 1);
    const before = structuredClone(sweeps.state);
    const late = await run('run-2', 0, { deadline: start - 1 });
    expect(late.sent).toEqual([]);
    expect(late.report).toMatchObject({ skipped: false, unfinished: true, resumeAt: before.resumeAt });
    expect((await run('run-3', 100)).sent).toEqual([...ring.slice(1), ring[0]]);
  });

  it('a run whose walk fails lets the lease go at once and leaves the place as the last run left it', async () => {
    const { deps, ring, run, sweeps } = await world();
    await run('run-1', 2);
    const before = structuredClone(sweeps.state);
    deps.queue.failure = new Error('SQS is down');
    await expect(run('run-2', 100)).rejects.toThrow('SQS is down');
    expect(sweeps.lease).toBeUndefined();
    expect(sweeps.state).toEqual(before);
    deps.queue.failure = undefined;
    expect((await run('run-3', 100)).sent).toEqual([...ring.slice(2), ...ring.slice(0, 2)]);
  });

  it('a run whose lease ran out and was taken over meanwhile does not save over the newer run\'s place, and says so', async () => {
    const { clock, deps, run, sweeps } = await world();
    // While run 1 walks, its lease runs out and run 2 takes it and saves.
    const walk = deps.jobs.unsettled.bind(deps.jobs);
    let overtaken = false;
    deps.jobs = new Proxy(deps.jobs, {
      get(target, property) {
        if (property !== 'unsettled') return Reflect.get(target, property, target);
        return async function* (...args: Parameters<JobStore['unsettled']>) {
          for await (const entry of walk(...args)) {
            if (!overtaken) {
              overtaken = true;
              clock.advance(sweeperLeaseMs);
              await sweeps.claim('run-2', clock.now(), clock.now() + sweeperLeaseMs);
              await sweeps.release('run-2', { resumeAt: { shard: 'e' }, unfinished: true }, clock.now());
            }
            yield entry;
          }
        };
      },
    });
    const overrun = await run('run-1', 1_000, { deadline: Number.POSITIVE_INFINITY });
    expect(overrun.report).toMatchObject({ skipped: false, leaseLost: true });
    expect(sweeps.state).toEqual({ resumeAt: { shard: 'e' }, unfinished: true });
  });

  it('a run that finds the lease held reports whose, and touches neither the jobs nor the place', async () => {
    const { clock, run, sweeps } = await world();
    await sweeps.claim('other-run', clock.now(), clock.now() + sweeperLeaseMs);
    const skipped = await run('run-1', 100);
    expect(skipped.sent).toEqual([]);
    expect(skipped.report).toEqual({ jobs: 0, callbacks: 0, leasesExpired: 0, skipped: true, resumed: false, unfinished: false, leaseLost: false, heldBy: 'other-run', heldUntil: start + sweeperLeaseMs });
    expect(sweeps.state).toEqual({ unfinished: false });
  });
});

describe('requeueUnsettled', () => {
  it('goes on past a settled entry whose job has gone by the time it is taken out of the index', async () => {
    const { store, ring, deps } = await world(['4']);
    const settled: Job = acceptedJob({ jobId: `4${randomUUID().slice(1)}`, created: iso(start - 4 * idle), status: 'completed', notified: 'n/a', sweep: '4' });
    await store.create(settled, { url: 'https://service.example.com', method: 'POST', headers: {}, body: null });
    // As a lagging index shows a job that TTL has just deleted: the clean-up's write finds no job.
    const gone = new Proxy(deps.jobs, {
      get(target, property) {
        if (property === 'update') return async () => Promise.reject(new ConditionFailed('no such job'));
        return Reflect.get(target, property, target);
      },
    });
    expect(await requeueUnsettled({ ...deps, jobs: gone })).toEqual({ jobs: 2, callbacks: 0, leasesExpired: 0 });
    expect(deps.queue.sent.map((message) => message.jobId)).toEqual(ring);
  });
});
