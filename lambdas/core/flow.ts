/**
 * Flow control: jobs of one client with one `flow_key` start at most `flow_rate` attempts a
 * second and have at most `flow_parallelism` attempts in flight, across every worker. A job
 * held back by its key waits, in its worker for a moment and then in the queue; it never fails
 * and never uses an attempt for that.
 *
 * The key's state is one record (the FlowStore port; the limits table on AWS and locally),
 * changed by read, decide, conditional write on its version:
 * - the rate is GCRA without burst: `nextStartAt` is the earliest instant the next attempt may
 *   start, moved on by the spacing at each start, so starts are never closer than the spacing;
 * - the attempts in flight are its `holders`, job id to lease expiry: a slot whose worker died is
 *   free once its lease ends, so no counter can leak;
 * - `pausedUntil` holds every job of the key back until then (a 429 or 503 with Retry-After);
 * - the settings are the newest job's (by `created`): a job newer than the record's settings
 *   brings its own.
 * A start that is refused writes nothing (one consistent read); a start that is let in writes
 * once, and once more when its slot is let go (only where the key counts slots).
 *
 * ```ts
 * const gate = new FlowGate(new FlowLimiter(store, clock), { clock });
 * const admission = await gate.admit(ticket, jobId, leaseMs, 1_000);
 * if (admission.granted) try { ... } finally { await gate.release(ticket, jobId, admission); }
 * ```
 */
import { flowTiming } from '../../lib/definitions.ts';
import type { Clock } from './ports.ts';

/** What a job asks of its key: its client, the key, the settings it was submitted with, and when it was made. */
export interface FlowTicket {
  clientId: string;
  key: string;
  rate?: number;
  parallelism?: number;
  /** The job's `created`: the newest job's settings apply. */
  created: string;
}

/** One key's record, as the store keeps it. */
export interface FlowState {
  /** Bumped by every write; 0: no record yet. */
  version: number;
  rate?: number;
  parallelism?: number;
  /** The `created` of the job the settings came from. */
  settingsCreated?: string;
  /** Epoch ms: the earliest start of the next attempt (GCRA's theoretical arrival time). */
  nextStartAt?: number;
  /** Job id to the epoch ms its lease, and so its slot, ends. */
  holders: Record<string, number>;
  /** Epoch ms before which no attempt of the key starts. */
  pausedUntil?: number;
}

export type HeldReason = 'paused' | 'parallelism' | 'rate' | 'contention';

/** The verdict on one start: let in (with the record to write), or held back and for how long at least. */
export type FlowVerdict =
  | { kind: 'granted'; state: FlowState; leaseUntil: number; holds: boolean }
  | { kind: 'held'; reason: HeldReason; waitMs: number; state?: FlowState };

/**
 * The record of a key: where it is kept, shared by every worker. `write` is conditional: it
 * lands only if the record is still at `expectedVersion` (0: there is none), else returns false.
 */
export interface FlowStore {
  /** The key's record, read consistently; `{ version: 0, holders: {} }` where there is none. */
  read(clientId: string, key: string): Promise<FlowState>;
  write(clientId: string, key: string, state: FlowState, expectedVersion: number): Promise<boolean>;
  /** Lets `jobId`'s slot go (nothing if it holds none). */
  release(clientId: string, key: string, jobId: string): Promise<void>;
  /** Holds the key back until `until` (epoch ms), unless it is held longer already. */
  pause(clientId: string, key: string, until: number): Promise<void>;
}

/** The least time between two starts of a key (see flowTiming.startJitterMs). */
export const startSpacingMs = (rate: number): number => (1_000 + flowTiming.startJitterMs) / rate;

/** The settings that apply: the ticket's where its job is at least as new as the record's settings. */
function settingsFor(state: FlowState, ticket: FlowTicket): Pick<FlowState, 'rate' | 'parallelism' | 'settingsCreated'> {
  if (state.settingsCreated !== undefined && ticket.created < state.settingsCreated) {
    return { rate: state.rate, parallelism: state.parallelism, settingsCreated: state.settingsCreated };
  }
  return { rate: ticket.rate, parallelism: ticket.parallelism, settingsCreated: ticket.created };
}

const withoutUndefined = <T extends object>(value: T): T => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/**
 * Whether `jobId` may start at `now` with a lease of `leaseMs`, and the record that says so. Pure:
 * the limiter writes what it returns, conditioned on the version it read.
 */
export function decideFlow(state: FlowState, ticket: FlowTicket, jobId: string, now: number, leaseMs: number): FlowVerdict {
  const settings = settingsFor(state, ticket);
  const holders = Object.fromEntries(Object.entries(state.holders).filter(([, until]) => until > now));
  const changedSettings = settings.rate !== state.rate || settings.parallelism !== state.parallelism || settings.settingsCreated !== state.settingsCreated;
  // A refusal writes only settings that a newer job brought: else it is a read alone.
  const held = (reason: HeldReason, waitMs: number): FlowVerdict => ({
    kind: 'held',
    reason,
    waitMs: Math.max(0, Math.ceil(waitMs)),
    ...(changedSettings ? { state: withoutUndefined({ ...state, ...settings, holders, version: state.version + 1 }) } : {}),
  });
  if (state.pausedUntil !== undefined && state.pausedUntil > now) return held('paused', state.pausedUntil - now);
  // The same job holding a slot still: another worker runs it (its lease is held too).
  const own = holders[jobId];
  if (own !== undefined) return held('parallelism', own - now);
  if (settings.parallelism !== undefined && Object.keys(holders).length >= settings.parallelism) {
    return held('parallelism', Math.min(...Object.values(holders)) - now);
  }
  if (settings.rate !== undefined && state.nextStartAt !== undefined && state.nextStartAt > now) return held('rate', state.nextStartAt - now);

  const leaseUntil = now + leaseMs;
  const holds = settings.parallelism !== undefined;
  const next: FlowState = withoutUndefined({
    version: state.version + 1,
    ...settings,
    // No burst: the next start is a spacing after this one, whenever this one came.
    nextStartAt: settings.rate !== undefined ? now + startSpacingMs(settings.rate) : undefined,
    holders: holds ? { ...holders, [jobId]: leaseUntil } : holders,
    pausedUntil: state.pausedUntil,
  });
  return { kind: 'granted', state: next, leaseUntil, holds };
}

/** The shared limiter: one start decided against the key's record, with bounded retries when other workers' writes win. */
export class FlowLimiter {
  constructor(
    readonly store: FlowStore,
    private readonly clock: Clock,
  ) {}

  async tryAcquire(ticket: FlowTicket, jobId: string, leaseMs: number): Promise<FlowVerdict> {
    for (let round = 0; round < flowTiming.contentionTries; round++) {
      const state = await this.store.read(ticket.clientId, ticket.key);
      const verdict = decideFlow(state, ticket, jobId, this.clock.now(), leaseMs);
      if (!verdict.state) return verdict;
      if (await this.store.write(ticket.clientId, ticket.key, verdict.state, state.version)) return verdict;
      // Lost to another worker's write: a refusal that only carried settings stands as it is.
      if (verdict.kind === 'held') return verdict;
    }
    return { kind: 'held', reason: 'contention', waitMs: 0 };
  }
}

/** A start let in (its lease ends with its slot), or a job held back: why, and how long its key says to wait at least. */
export type Admission = { granted: true; leaseUntil: number; holds: boolean } | { granted: false; reason: HeldReason; waitMs: number };

interface Waiter {
  ticket: FlowTicket;
  jobId: string;
  leaseMs: number;
  deadline: number;
  resolve: (admission: Admission) => void;
}

interface Line {
  waiters: Waiter[];
  running: boolean;
  /** Resolves the first in line's wait early: a job of this process let its slot go. */
  wake?: () => void;
}

export interface FlowGateOptions {
  clock: Clock;
  /** Waits `ms` (default: a timer); tests inject one that moves their clock. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A process's line per key in front of the shared limiter: the jobs of one key that wait in this
 * process do so in order, and only the first of them reads the key's record, so that a hundred
 * waiting jobs cost one read per wait, not a hundred (and do not race each other's writes). The
 * first in line waits as its key says: until the next start for the rate, until a pause ends,
 * or a short random while for a slot (sooner when a job of this process lets one go). A job
 * whose wait would outlast its own budget leaves the line held back, with the key's wait.
 */
export class FlowGate {
  private readonly lines = new Map<string, Line>();
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(
    readonly limiter: FlowLimiter,
    private readonly options: FlowGateOptions,
  ) {
    this.sleep = options.sleep ?? timerSleep;
    this.random = options.random ?? Math.random;
  }

  /** Waits up to `budgetMs` in the key's line for a start of `leaseMs`. */
  admit(ticket: FlowTicket, jobId: string, leaseMs: number, budgetMs: number): Promise<Admission> {
    const name = lineName(ticket);
    const line = this.lines.get(name) ?? { waiters: [], running: false };
    this.lines.set(name, line);
    const admission = new Promise<Admission>((resolve) => {
      line.waiters.push({ ticket, jobId, leaseMs, deadline: this.options.clock.now() + Math.max(0, budgetMs), resolve });
    });
    if (!line.running) void this.run(name, line);
    return admission;
  }

  /** Lets the slot of an admitted job go (where its key counted one), and wakes its key's line here. */
  async release(ticket: FlowTicket, jobId: string, admission: Admission): Promise<void> {
    if (!admission.granted || !admission.holds) return;
    try {
      await this.limiter.store.release(ticket.clientId, ticket.key, jobId);
    } finally {
      this.lines.get(lineName(ticket))?.wake?.();
    }
  }

  /** Holds every job of the key back until `until` (a destination's Retry-After). */
  pause(ticket: FlowTicket, until: number): Promise<void> {
    return this.limiter.store.pause(ticket.clientId, ticket.key, until);
  }

  private async run(name: string, line: Line): Promise<void> {
    line.running = true;
    const { clock } = this.options;
    try {
      while (line.waiters.length > 0) {
        const head = line.waiters[0] as Waiter;
        let verdict: FlowVerdict;
        try {
          verdict = await this.limiter.tryAcquire(head.ticket, head.jobId, head.leaseMs);
        } catch {
          // The record cannot be read or written: every job in line goes back, to come again soon.
          for (const waiter of line.waiters.splice(0)) waiter.resolve({ granted: false, reason: 'contention', waitMs: 0 });
          break;
        }
        if (verdict.kind === 'granted') {
          line.waiters.shift();
          head.resolve({ granted: true, leaseUntil: verdict.leaseUntil, holds: verdict.holds });
          continue;
        }
        const slot = verdict.reason === 'parallelism' || verdict.reason === 'contention';
        const poll = flowTiming.pollMs.min + this.random() * (flowTiming.pollMs.max - flowTiming.pollMs.min);
        const waitMs = slot ? Math.min(poll, verdict.waitMs || poll) : verdict.waitMs;
        const now = clock.now();
        // Those who cannot wait that long leave the line now, with what the key said.
        const staying = line.waiters.filter((waiter) => {
          if (waiter.deadline >= now + waitMs) return true;
          waiter.resolve({ granted: false, reason: verdict.reason, waitMs: verdict.waitMs });
          return false;
        });
        line.waiters.splice(0, line.waiters.length, ...staying);
        if (staying.length === 0) break;
        await new Promise<void>((resolve) => {
          line.wake = resolve;
          void this.sleep(waitMs).then(resolve);
        });
        line.wake = undefined;
      }
    } finally {
      line.running = false;
      if (line.waiters.length === 0) this.lines.delete(name);
      else void this.run(name, line);
    }
  }
}

const lineName = (ticket: Pick<FlowTicket, 'clientId' | 'key'>) => `${ticket.clientId}\u0000${ticket.key}`;
