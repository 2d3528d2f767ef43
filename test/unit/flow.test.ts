import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideFlow, FlowGate, FlowLimiter, startSpacingMs, type FlowState, type FlowTicket } from '../../lambdas/core/flow.ts';
import { flowTiming } from '../../lib/definitions.ts';
import { ManualClock, MemoryFlowStore } from '../support/memory.ts';

const t0 = Date.parse('2025-01-01T00:00:00.000Z');
const ticket = (fields: Partial<FlowTicket> = {}): FlowTicket => ({ clientId: '11111111111111', key: 'tenant-1', created: '2025-01-01T00:00:00.000Z', ...fields });
const empty: FlowState = { version: 0, holders: {} };
const leaseMs = 25_000;

describe('a flow key decides each start', () => {
  it('spaces starts by (1000 + the jitter allowance) / rate and says how long the next must wait', () => {
    const first = decideFlow(empty, ticket({ rate: 20 }), 'a', t0, leaseMs);
    expect(first).toMatchObject({ kind: 'granted', holds: false, state: { version: 1, rate: 20, nextStartAt: t0 + startSpacingMs(20) } });
    const state = first.state as FlowState;
    expect(decideFlow(state, ticket({ rate: 20 }), 'b', t0 + 10, leaseMs)).toEqual({ kind: 'held', reason: 'rate', waitMs: Math.ceil(startSpacingMs(20) - 10) });
    expect(decideFlow(state, ticket({ rate: 20 }), 'b', t0 + startSpacingMs(20), leaseMs).kind).toBe('granted');
    expect(startSpacingMs(20)).toBe((1_000 + flowTiming.startJitterMs) / 20);
  });

  it('counts attempts in flight by their holders, and frees a crashed holder when its lease ends', () => {
    const settings = ticket({ parallelism: 2 });
    const a = decideFlow(empty, settings, 'a', t0, leaseMs);
    const b = decideFlow(a.state as FlowState, settings, 'b', t0 + 1, leaseMs);
    expect(b).toMatchObject({ kind: 'granted', holds: true, state: { holders: { a: t0 + leaseMs, b: t0 + 1 + leaseMs } } });
    const full = b.state as FlowState;
    expect(decideFlow(full, settings, 'c', t0 + 2, leaseMs)).toMatchObject({ kind: 'held', reason: 'parallelism' });
    // a's worker died: its slot is free once its lease has ended, and it is pruned by the next start.
    const later = decideFlow(full, settings, 'c', t0 + leaseMs, leaseMs);
    expect(later).toMatchObject({ kind: 'granted', state: { holders: { b: t0 + 1 + leaseMs, c: t0 + 2 * leaseMs } } });
  });

  it('holds every job of a paused key back until the pause ends', () => {
    const paused: FlowState = { version: 3, holders: {}, pausedUntil: t0 + 2_000 };
    expect(decideFlow(paused, ticket({ parallelism: 5 }), 'a', t0 + 500, leaseMs)).toMatchObject({ kind: 'held', reason: 'paused', waitMs: 1_500 });
    expect(decideFlow(paused, ticket({ parallelism: 5 }), 'a', t0 + 2_000, leaseMs).kind).toBe('granted');
  });

  it("applies the newest job's settings: a newer job brings its own, an older one does not override them", () => {
    const stored: FlowState = { version: 4, holders: { x: t0 + leaseMs }, parallelism: 1, settingsCreated: '2025-01-01T00:00:05.000Z' };
    const older = decideFlow(stored, ticket({ parallelism: 10, created: '2025-01-01T00:00:01.000Z' }), 'a', t0, leaseMs);
    expect(older).toEqual({ kind: 'held', reason: 'parallelism', waitMs: leaseMs });
    // A newer job's settings are written even while it is held back (here: none is, it is let in).
    const newer = decideFlow(stored, ticket({ parallelism: 10, created: '2025-01-01T00:00:09.000Z' }), 'a', t0, leaseMs);
    expect(newer).toMatchObject({ kind: 'granted', state: { parallelism: 10, settingsCreated: '2025-01-01T00:00:09.000Z' } });
    const stricter = decideFlow({ ...stored, parallelism: 5 }, ticket({ parallelism: 1, created: '2025-01-01T00:00:09.000Z' }), 'a', t0, leaseMs);
    expect(stricter).toMatchObject({ kind: 'held', reason: 'parallelism', state: { version: 5, parallelism: 1, settingsCreated: '2025-01-01T00:00:09.000Z' } });
  });

  it('writes nothing for a start it refuses under the settings it has', () => {
    const stored: FlowState = { version: 2, holders: { x: t0 + leaseMs }, parallelism: 1, settingsCreated: '2025-01-01T00:00:00.000Z' };
    expect(decideFlow(stored, ticket({ parallelism: 1 }), 'a', t0, leaseMs)).not.toHaveProperty('state');
  });
});

describe('the limiter, across workers', () => {
  /**
   * Whatever interleaving of starts (several at once, racing their conditional writes), releases,
   * crashes (a holder that never lets go) and time: never more holders than the parallelism, and
   * never more starts than ceil(rate) in any window of 1 s plus the jitter allowance (so that a
   * target never counts more than the rate in any second, whatever the jitter up to it).
   */
  it('never lets more than flow_parallelism run, nor more than flow_rate start in any window', async () => {
    const step = fc.oneof(
      fc.record({ op: fc.constant('start' as const), jobs: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ op: fc.constant('finish' as const), which: fc.nat(), crash: fc.boolean() }),
      fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 1_500 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 0.5, max: 60, noNaN: true }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 200, max: 5_000 }),
        fc.array(step, { maxLength: 60 }),
        async (rate, parallelism, lease, steps) => {
          const clock = new ManualClock(t0);
          const store = new MemoryFlowStore();
          const limiter = new FlowLimiter(store, clock);
          const settings = ticket({ rate, parallelism });
          const running = new Map<string, number>();
          const crashed: number[] = [];
          const starts: number[] = [];
          let next = 0;
          for (const each of steps) {
            if (each.op === 'wait') clock.advance(each.ms);
            else if (each.op === 'finish') {
              const ids = [...running.keys()];
              const id = ids[each.which % Math.max(ids.length, 1)];
              if (id === undefined) continue;
              const until = running.get(id) ?? 0;
              running.delete(id);
              // A crashed worker never lets go: its slot stays counted until its lease ends.
              if (each.crash) crashed.push(until);
              else await limiter.store.release(settings.clientId, settings.key, id);
            } else {
              const ids = Array.from({ length: each.jobs }, () => `job-${next++}`);
              const verdicts = await Promise.all(ids.map((id) => limiter.tryAcquire(settings, id, lease)));
              verdicts.forEach((verdict, n) => {
                if (verdict.kind !== 'granted') return;
                running.set(ids[n] as string, verdict.leaseUntil);
                starts.push(clock.now());
              });
            }
            const now = clock.now();
            const inFlight = [...running.values(), ...crashed].filter((until) => until > now).length;
            expect(inFlight).toBeLessThanOrEqual(parallelism);
          }
          const window = 1_000 + flowTiming.startJitterMs;
          for (const from of starts) expect(starts.filter((at) => at >= from && at < from + window).length).toBeLessThanOrEqual(Math.ceil(rate));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decides again when another worker wrote between its read and its write, a bounded number of times', async () => {
    const clock = new ManualClock(t0);
    const store = new MemoryFlowStore();
    // Every write loses to another's.
    store.write = async () => (store.calls.write++, store.calls.refusedWrite++, false);
    const verdict = await new FlowLimiter(store, clock).tryAcquire(ticket({ parallelism: 1 }), 'a', leaseMs);
    expect(verdict).toEqual({ kind: 'held', reason: 'contention', waitMs: 0 });
    expect(store.calls).toMatchObject({ read: flowTiming.contentionTries, write: flowTiming.contentionTries });
  });
});

describe("a process's line per key", () => {
  const gate = (clock: ManualClock, store = new MemoryFlowStore()) => ({
    store,
    gate: new FlowGate(new FlowLimiter(store, clock), { clock, sleep: async (ms) => clock.advance(ms), random: () => 0.5 }),
  });

  it('lets the jobs waiting in it start one by one at the rate, the first in line alone reading the key', async () => {
    const clock = new ManualClock(t0);
    const { gate: line, store } = gate(clock);
    const starts: number[] = [];
    await Promise.all(
      ['a', 'b', 'c', 'd'].map(async (id) => {
        const admission = await line.admit(ticket({ rate: 10 }), id, leaseMs, 1_000);
        expect(admission.granted).toBe(true);
        starts.push(clock.now());
      }),
    );
    expect(starts).toEqual([0, 1, 2, 3].map((n) => t0 + Math.ceil(n * startSpacingMs(10))));
    // One read per start and one per wait: not one per waiting job per wait.
    expect(store.calls.read).toBe(7);
  });

  it('holds back, with the reason and the wait its key gave, a job whose budget the wait would outlast', async () => {
    const clock = new ManualClock(t0);
    const { gate: line } = gate(clock);
    expect(await line.admit(ticket({ rate: 1 }), 'a', leaseMs, 0)).toMatchObject({ granted: true });
    expect(await line.admit(ticket({ rate: 1 }), 'b', leaseMs, 500)).toEqual({ granted: false, reason: 'rate', waitMs: startSpacingMs(1) });
  });

  it('takes the slot a job of the process lets go, and lets go only slots it took', async () => {
    const clock = new ManualClock(t0);
    const { gate: line, store } = gate(clock);
    const a = await line.admit(ticket({ parallelism: 1 }), 'a', leaseMs, 0);
    expect(await line.admit(ticket({ parallelism: 1 }), 'b', leaseMs, 0)).toMatchObject({ granted: false, reason: 'parallelism' });
    await line.release(ticket({ parallelism: 1 }), 'a', a);
    expect(await line.admit(ticket({ parallelism: 1 }), 'b', leaseMs, 0)).toMatchObject({ granted: true, holds: true });
    await line.release(ticket({ parallelism: 1 }), 'c', { granted: false, reason: 'parallelism', waitMs: 0 });
    expect(store.calls.release).toBe(1);
  });

  it("keeps one client's key apart from another's of the same name", async () => {
    const clock = new ManualClock(t0);
    const { gate: line } = gate(clock);
    expect(await line.admit(ticket({ parallelism: 1 }), 'a', leaseMs, 0)).toMatchObject({ granted: true });
    expect(await line.admit(ticket({ parallelism: 1, clientId: '22222222222222' }), 'b', leaseMs, 0)).toMatchObject({ granted: true });
    expect(await line.admit(ticket({ parallelism: 1, key: 'tenant-2' }), 'c', leaseMs, 0)).toMatchObject({ granted: true });
    expect(await line.admit(ticket({ parallelism: 1 }), 'd', leaseMs, 0)).toMatchObject({ granted: false });
  });

  it('sends every job in line back, to come again soon, when the key cannot be read', async () => {
    const clock = new ManualClock(t0);
    const { gate: line, store } = gate(clock);
    store.failure = new Error('limits table unavailable');
    expect(await line.admit(ticket({ rate: 5 }), 'a', leaseMs, 1_000)).toEqual({ granted: false, reason: 'contention', waitMs: 0 });
  });
});
