/**
 * In-memory fakes of the core's ports, for unit tests. The JobStore keeps the DynamoDB
 * adapter's semantics, refusals included; test/unit/job-store.contract.test.ts holds the two to
 * the same contract.
 */
import { randomBytes } from 'node:crypto';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { attemptItem, jobItem, newJobItems } from '../../lambdas/adapters/job-items.ts';
import { conditionHolds, instant, instantFields } from '../../lambdas/core/conditions.ts';
import { entryFromItem, listingItem, listPage, type EntryReader, type ListingEntry } from '../../lambdas/adapters/job-listing.ts';
import type { ApiDeps } from '../../lambdas/core/api.ts';
import { Authenticator, hashToken } from '../../lambdas/core/auth.ts';
import type { FlowState, FlowStore } from '../../lambdas/core/flow.ts';
import { attemptsOf, type Attempt, type AttemptOutput, type Job, type JobRequest } from '../../lambdas/core/job.ts';
import {
  ConditionFailed,
  type Client,
  type ClientStore,
  type Clock,
  type CountWindow,
  type DueIndex,
  type DueJob,
  type FailureCount,
  type FailureCounter,
  type HttpClient,
  type IdempotencyRecord,
  type IndexMark,
  type JobChanges,
  type JobCondition,
  type JobPage,
  type JobStore,
  type ListQuery,
  type OutboundRequest,
  type QueueMessage,
  type ScheduleStore,
  type ScheduleTimers,
  type SweepClaim,
  type SweepState,
  type SweepStateStore,
  type UnsettledJob,
  type WorkQueue,
} from '../../lambdas/core/ports.ts';
import { sweepShards } from '../../lib/definitions.ts';
import type { Schedule } from '../../lambdas/core/schedule.ts';

/** A job as submit stores it: accepted, never tried, no callback; any field can be given. */
export function acceptedJob(fields: Partial<Job> & Pick<Job, 'jobId'>): Job {
  const at = fields.created ?? '2025-01-01T00:00:00.000Z';
  return {
    clientId: '11111111111111',
    created: at,
    lastUpdate: at,
    service: 'https://service.example.com',
    methodtype: 'POST',
    callback: null,
    status: 'accepted',
    attempts: 0,
    maxAttempts: 5,
    timeoutMs: 10_000,
    output: null,
    history: [],
    notified: 'n/a',
    notifyoutput: null,
    notifyAttempts: 0,
    callbackMaxAttempts: 5,
    expiresAt: 1_738_000_000,
    ...fields,
  };
}

/** The ids of every job in the unsettled index, each shard walked whole, sorted. */
export async function unsettledIds(store: JobStore): Promise<string[]> {
  const ids: string[] = [];
  for (const shard of sweepShards) for await (const job of store.unsettled(shard)) ids.push(job.jobId);
  return ids.sort();
}

/** `jobs` whose walk of the unsettled index moves `clock` on by `stepMs` for each entry it yields. */
export function ticking(jobs: JobStore, clock: ManualClock, stepMs: number): JobStore {
  return new Proxy(jobs, {
    get(target, property) {
      if (property === 'unsettled') {
        return async function* (...args: Parameters<JobStore['unsettled']>) {
          for await (const entry of target.unsettled(...args)) {
            clock.advance(stepMs);
            yield entry;
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(private current: number = Date.parse('2025-01-01T00:00:00.000Z')) {}

  now(): number {
    return this.current;
  }

  set(ms: number): void {
    this.current = ms;
  }

  advance(ms: number): void {
    this.current += ms;
  }
}

/**
 * A value as the document client stores it (removeUndefinedValues): a copy without the keys and
 * list elements whose value is undefined, at every depth.
 */
function stored<T>(value: T): T {
  if (Array.isArray(value)) return value.filter((element) => element !== undefined).map(stored) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, field]) => field !== undefined)
        .map(([key, field]) => [key, stored(field)]),
    ) as T;
  }
  return value;
}

/** DynamoDB's largest item (400 KB, names and values). */
const maxItemBytes = 400 * 1024;

/** DynamoDB's refusal of a request it cannot run: thrown as the adapter lets it through, never a lost condition. */
function validationError(message: string): Error {
  return Object.assign(new Error(message), { name: 'ValidationException' });
}

/**
 * The DynamoDB adapter's store, in memory, refusing what it refuses:
 * - a write to a job that does not exist (attribute_exists(pk)) or whose condition does not hold
 *   is ConditionFailed; one that sets and removes nothing, or whose statusIn lists no status (an
 *   expression DynamoDB cannot parse), or that makes an item over 400 KB (as job-items.ts lays
 *   the job out, compressed), is an error;
 * - `create` overwrites a job of the same id, as PutItem does;
 * - instants are kept to the millisecond (ISO-8601 text), and compared so in conditions;
 * - the request stays as long as the job, whatever its writes (a replay sends it again), and
 *   never counts in the state item's size: it is never beside the state (job-items.ts);
 * - `unsettled` finds a shard's jobs whose `sweep` names it, as they are when found, with the
 *   fields the index projects alone;
 * - kept attempts are items of their own (400 KB each at most), overwritten by number, left
 *   where they are by `remove`, as the adapter's are; `attempts` finds none for a job not there;
 * - `enlist` keeps listing entries as the adapter does (an entry of the same key again replaces
 *   it), and `list` walks them with the adapter's own walk (job-listing.ts), newest first by
 *   their sort key: a job enlisted and never created, or removed, is passed by.
 * Conditions are checked and writes made within one synchronous step, so two concurrent callers
 * race exactly as two conditional writes do.
 */
export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, Job>();
  readonly requests = new Map<string, JobRequest>();
  readonly idempotency = new Map<string, IdempotencyRecord>();
  /** Every update asked for, with whether it was applied. */
  readonly updates: Array<{ jobId: string; changes: JobChanges; condition: JobCondition; applied: boolean }> = [];
  /** Kept attempts, by job and number. */
  readonly kept = new Map<string, Map<number, Attempt>>();

  async create(job: Job, request: JobRequest): Promise<void> {
    // As the adapter's `attribute_not_exists(pk)`: a job that is there already is left as it is.
    if (this.jobs.has(job.jobId)) return;
    const state = storedJob(job);
    const items = newJobItems(state, stored(request));
    for (const item of items) refuseOversized(item);
    this.jobs.set(job.jobId, state);
    this.requests.set(job.jobId, stored(request));
  }

  async remove(jobId: string): Promise<void> {
    this.jobs.delete(jobId);
    this.requests.delete(jobId);
  }

  async get(jobId: string): Promise<Job | undefined> {
    const job = this.jobs.get(jobId);
    return job ? structuredClone(job) : undefined;
  }

  /** Test convenience (not part of the port): the stored request alone. */
  async getRequest(jobId: string): Promise<JobRequest | undefined> {
    const request = this.requests.get(jobId);
    return request ? structuredClone(request) : undefined;
  }

  async getWithRequest(jobId: string): Promise<{ job: Job; request?: JobRequest } | undefined> {
    const job = this.jobs.get(jobId);
    if (!job) return undefined;
    const request = this.requests.get(jobId);
    return request ? { job: structuredClone(job), request: structuredClone(request) } : { job: structuredClone(job) };
  }

  async keepAttempt(jobId: string, attempt: Attempt, expiresAt: number): Promise<void> {
    refuseOversized(attemptItem(jobId, attempt, expiresAt));
    const kept = this.kept.get(jobId) ?? new Map<number, Attempt>();
    kept.set(attempt.attempt, stored(structuredClone(attempt)));
    this.kept.set(jobId, kept);
  }

  async attempts(jobId: string): Promise<Attempt[]> {
    const job = this.jobs.get(jobId);
    if (!job) return [];
    return structuredClone(attemptsOf(job, [...(this.kept.get(jobId)?.values() ?? [])]));
  }

  /** Listing entries, by client, as the adapter keeps them (job-listing.ts's layout), by their sort key. */
  readonly listings = new Map<string, Map<string, ListingEntry>>();

  async enlist(clientId: string, created: string, jobIds: string[], expiresAt: number): Promise<void> {
    if (jobIds.length === 0) return;
    const item = listingItem(clientId, created, jobIds, expiresAt);
    refuseOversized(item);
    const entries = this.listings.get(clientId) ?? new Map<string, ListingEntry>();
    entries.set(String(item['sk']), entryFromItem(item) as ListingEntry);
    this.listings.set(clientId, entries);
  }

  /** As the adapter's: the same walk (job-listing.ts's listPage) over the client's entries, read newest first. */
  async list(clientId: string, query: ListQuery): Promise<JobPage> {
    const readEntries: EntryReader = async (from, limit) => {
      const all = [...(this.listings.get(clientId) ?? new Map<string, ListingEntry>()).entries()]
        .sort(([a], [b]) => b.localeCompare(a))
        .filter(([sk]) => from === undefined || (from.inclusive ? sk <= from.sk : sk < from.sk));
      const taken = all.slice(0, limit);
      const last = taken.at(-1)?.[0];
      return { entries: taken.map(([, entry]) => structuredClone(entry)), next: all.length > limit && last !== undefined ? { sk: last, inclusive: false } : undefined };
    };
    const readJobs = async (ids: string[]) => {
      if (ids.length > 100) throw validationError('Too many items requested for the BatchGetItem call');
      return new Map(ids.flatMap((id) => (this.jobs.has(id) ? [[id, structuredClone(this.jobs.get(id) as Job)] as const] : [])));
    };
    return listPage(readEntries, readJobs, clientId, query);
  }

  async take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }> {
    const job = await this.lease(jobId, changes, condition);
    const request = this.requests.get(jobId);
    return request ? { job, request: structuredClone(request) } : { job };
  }

  async update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void> {
    await this.lease(jobId, changes, condition);
  }

  async lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job> {
    let applied = false;
    try {
      const written = this.write(jobId, changes, condition);
      applied = true;
      return structuredClone(written);
    } finally {
      this.updates.push({ jobId, changes: structuredClone(changes), condition: structuredClone(condition), applied });
    }
  }

  /** The adapter's one conditional UpdateItem, checked and made in one synchronous step. */
  private write(jobId: string, changes: JobChanges, condition: JobCondition): Job {
    const set = Object.entries(changes)
      .filter(([field, value]) => field !== 'remove' && value !== undefined)
      .map(([field, value]) => [field, instantFields.has(field) ? instant(value) : stored(value)] as const);
    const removed = (changes.remove ?? []).filter((field) => changes[field] === undefined);
    // DynamoDB parses the expressions before it reads the item.
    if (set.length === 0 && removed.length === 0) throw validationError('ExpressionAttributeNames must not be empty: the write sets and removes nothing');
    if (condition.statusIn?.length === 0) throw validationError('Invalid ConditionExpression: statusIn lists no status');
    const job = this.jobs.get(jobId);
    if (!job || !conditionHolds(job, condition)) throw new ConditionFailed('the condition of the write did not hold');
    const next = structuredClone(job) as unknown as Record<string, unknown>;
    for (const [field, value] of set) next[field] = value;
    for (const field of removed) delete next[field];
    const written = next as unknown as Job;
    // The request is never beside the state (job-items.ts): the state item alone is sized.
    if (dynamoItemSize(jobItem(written)) > maxItemBytes) throw validationError('Item size to update has exceeded the maximum allowed size');
    this.jobs.set(jobId, written);
    return written;
  }

  /**
   * As the adapter's sparse index: one shard's jobs that still carry its `sweep` shard, in the
   * index's order (`created`, then the id), each as it is when it is found, with the fields the
   * index projects and no more. The core removes `sweep` once a job and its callback are
   * settled; a job without one, or with one that names no shard of the index, is never found.
   */
  async *unsettled(shard: string, range: { after?: IndexMark; upTo?: IndexMark } = {}): AsyncIterable<UnsettledJob> {
    const inShard = (job: Job | undefined): job is Job => job?.sweep === shard && sweepShards.includes(shard);
    const marks = [...this.jobs.values()].filter(inShard).map(({ created, jobId }) => ({ created, jobId })).sort(byIndexOrder);
    for (const mark of marks) {
      if (range.after && byIndexOrder(mark, range.after) <= 0) continue;
      if (range.upTo && byIndexOrder(mark, range.upTo) > 0) return;
      const job = this.jobs.get(mark.jobId);
      if (inShard(job)) yield unsettledEntry(job);
    }
  }

  async claimIdempotent(clientId: string, key: string, claim: IdempotencyRecord, now: number, replacing?: string): Promise<IdempotencyRecord | undefined> {
    const id = idempotencyId(clientId, key);
    const held = this.idempotency.get(id);
    // As the adapter's condition: free, expired, ours already, or the abandoned claim we replace.
    const ours =
      !held || held.expiresAt < Math.floor(now / 1000) || held.jobId === claim.jobId || (replacing !== undefined && held.jobId === replacing && held.state === 'pending');
    if (!ours) return structuredClone(held);
    this.idempotency.set(id, stored(claim));
    return undefined;
  }

  async settleIdempotent(clientId: string, key: string, jobId: string): Promise<void> {
    const held = this.idempotency.get(idempotencyId(clientId, key));
    if (held?.jobId === jobId) held.state = 'done';
  }

  async releaseIdempotent(clientId: string, key: string, jobId: string): Promise<void> {
    const id = idempotencyId(clientId, key);
    const held = this.idempotency.get(id);
    if (held?.jobId === jobId && held.state === 'pending') this.idempotency.delete(id);
  }
}

const idempotencyId = (clientId: string, key: string) => `${clientId}\u0000${key}`;

/** The unsettled index's order within a shard. */
const byIndexOrder = (a: IndexMark, b: IndexMark) => a.created.localeCompare(b.created) || a.jobId.localeCompare(b.jobId);

/** A job as the unsettled index carries it: the fields UnsettledJob names, no other. */
function unsettledEntry(job: Job): UnsettledJob {
  const { jobId, created, status, notified, lastUpdate, leaseUntil, nextAttemptAt, notifyLeaseUntil, nextNotifyAt } = structuredClone(job);
  return stored({ jobId, created, status, notified, lastUpdate, leaseUntil, nextAttemptAt, notifyLeaseUntil, nextNotifyAt });
}

function storedJob(job: Job): Job {
  const copy = stored(job) as unknown as Record<string, unknown>;
  for (const field of instantFields) if (copy[field] !== undefined) copy[field] = instant(copy[field]);
  return copy as unknown as Job;
}

function refuseOversized(item: Record<string, unknown>): void {
  if (dynamoItemSize(item) > maxItemBytes) throw validationError('Item size has exceeded the maximum allowed size');
}

/**
 * The due index over a MemoryJobStore's jobs, as the adapter's sparse GSI: a bucket's jobs that
 * carry its `due`, by `nextAttemptAt` (then id), each as it is when found (the bucket is read
 * up front, as a Query's page is). `released` takes `due` off a job still in that bucket, and
 * the release's progress only moves forward. `lagging`: entries taken out that a read still
 * shows (an index is eventually consistent), for a test to make a run send one twice.
 */
export class MemoryDueIndex implements DueIndex {
  through: number | undefined;
  readonly lagging = new Map<string, DueJob>();
  /** Every bucket read, in order. */
  readonly reads: string[] = [];

  constructor(private readonly store: MemoryJobStore) {}

  async *due(bucket: string): AsyncIterable<DueJob> {
    this.reads.push(bucket);
    const found: DueJob[] = [...this.store.jobs.values()]
      .filter((job) => job.due === bucket && job.nextAttemptAt !== undefined)
      .map((job) => ({ jobId: job.jobId, due: bucket, startAt: job.nextAttemptAt as number, timeoutMs: job.timeoutMs }));
    for (const entry of this.lagging.values()) if (entry.due === bucket && !found.some((job) => job.jobId === entry.jobId)) found.push(entry);
    found.sort((a, b) => a.startAt - b.startAt || a.jobId.localeCompare(b.jobId));
    for (const entry of found) yield { ...entry };
  }

  async released(jobId: string, bucket: string): Promise<boolean> {
    this.lagging.delete(jobId);
    // Checked and written in one synchronous step, as the adapter's conditional write is.
    if (this.store.jobs.get(jobId)?.due !== bucket) return false;
    await this.store.update(jobId, { remove: ['due'] }, {});
    return true;
  }

  async releasedThrough(): Promise<number | undefined> {
    return this.through;
  }

  async saveReleasedThrough(minute: number): Promise<void> {
    if (this.through === undefined || this.through < minute) this.through = minute;
  }
}

/**
 * The sweeper's state item in memory, as the adapter keeps it: the lease is free when absent or
 * run out (instants to the millisecond), and only its holder saves and lets it go.
 */
export class MemorySweepStateStore implements SweepStateStore {
  state: SweepState = { unfinished: false };
  lease: { heldBy: string; heldUntil: number } | undefined;

  async claim(run: string, now: number, until: number): Promise<SweepClaim> {
    if (this.lease && this.lease.heldUntil > instant(now)) return { held: { ...this.lease } };
    this.lease = { heldBy: run, heldUntil: instant(until) };
    return { state: structuredClone(this.state) };
  }

  async release(run: string, state: SweepState, _now: number): Promise<boolean> {
    if (this.lease?.heldBy !== run) return false;
    this.state = stored(structuredClone(state));
    this.lease = undefined;
    return true;
  }
}

/**
 * The schedules table in memory, as the adapter keeps it: instants to the millisecond, a create
 * over one of the same id refused, `advance` only forward, each write in one synchronous step.
 */
export class MemoryScheduleStore implements ScheduleStore {
  readonly schedules = new Map<string, Schedule>();

  async create(schedule: Schedule): Promise<void> {
    if (this.schedules.has(schedule.scheduleId)) throw new ConditionFailed('a schedule of this id is there already');
    this.schedules.set(schedule.scheduleId, stored(structuredClone(schedule)));
  }

  async get(scheduleId: string): Promise<Schedule | undefined> {
    const schedule = this.schedules.get(scheduleId);
    return schedule ? structuredClone(schedule) : undefined;
  }

  async remove(scheduleId: string): Promise<void> {
    this.schedules.delete(scheduleId);
  }

  async list(clientId: string): Promise<Schedule[]> {
    return [...this.schedules.values()]
      .filter((schedule) => schedule.clientId === clientId)
      .sort((a, b) => b.created.localeCompare(a.created))
      .map((schedule) => structuredClone(schedule));
  }

  async count(clientId: string): Promise<number> {
    return [...this.schedules.values()].filter((schedule) => schedule.clientId === clientId).length;
  }

  async due(now: number): Promise<Schedule[]> {
    return [...this.schedules.values()].filter((schedule) => schedule.nextRun !== undefined && schedule.nextRun <= now).map((schedule) => structuredClone(schedule));
  }

  async advance(scheduleId: string, ran: number, next: number | undefined, jobId: string | undefined): Promise<boolean> {
    const schedule = this.schedules.get(scheduleId);
    if (!schedule || schedule.nextRun === undefined || schedule.nextRun > ran) return false;
    const { nextRun: _next, lastJobId: _job, ...rest } = schedule;
    this.schedules.set(scheduleId, { ...rest, lastRun: ran, ...(next !== undefined ? { nextRun: next } : {}), ...(jobId !== undefined ? { lastJobId: jobId } : {}) });
    return true;
  }
}

/** Timers kept by name; `failure` (while set) is thrown by create and remove. */
export class MemoryTimers implements ScheduleTimers {
  readonly timers = new Map<string, Schedule>();
  failure: Error | undefined;

  async create(schedule: Schedule): Promise<void> {
    if (this.failure) throw this.failure;
    this.timers.set(schedule.scheduleId, structuredClone(schedule));
  }

  async remove(scheduleId: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.timers.delete(scheduleId);
  }
}

export class MemoryClientStore implements ClientStore {
  readonly clients = new Map<string, Client>();
  /** How many times `get` was called: what a credential cache saves. */
  gets = 0;

  async get(clientId: string): Promise<Client | undefined> {
    this.gets++;
    const client = this.clients.get(clientId);
    return client ? structuredClone(client) : undefined;
  }

  async put(client: Client): Promise<void> {
    this.clients.set(client.clientId, structuredClone(client));
  }

  async list(): Promise<Client[]> {
    return [...this.clients.values()].map((client) => structuredClone(client));
  }

  async revoke(clientId: string, at: string): Promise<boolean> {
    const client = this.clients.get(clientId);
    if (!client) return false;
    client.revoked = at;
    return true;
  }
}

/**
 * Failure counts in a Map, as the limits table keeps them: by source and window, with a count per
 * client id beside the source's. Several FailureLimiters given one counter share its counts, as
 * function instances share the table. While `failure` is set, it throws that instead.
 */
export class MemoryFailureCounter implements FailureCounter {
  /** By `source window-start`: the source's count and each client id's. */
  readonly counts = new Map<string, { failures: number; clients: Map<string, number> }>();
  failure: Error | undefined;
  reads = 0;

  async read(source: string, window: CountWindow, clientId: string | undefined): Promise<FailureCount> {
    this.reads++;
    if (this.failure) throw this.failure;
    const entry = this.counts.get(`${source} ${window.start}`);
    return { fromSource: entry?.failures ?? 0, againstClient: clientId === undefined ? 0 : (entry?.clients.get(clientId) ?? 0) };
  }

  async record(source: string, window: CountWindow, clientId: string | undefined): Promise<void> {
    if (this.failure) throw this.failure;
    const key = `${source} ${window.start}`;
    const entry = this.counts.get(key) ?? { failures: 0, clients: new Map<string, number>() };
    entry.failures++;
    if (clientId !== undefined) entry.clients.set(clientId, (entry.clients.get(clientId) ?? 0) + 1);
    this.counts.set(key, entry);
  }
}

/**
 * The flow keys' records in memory, as the DynamoDB adapter keeps them (adapters/flow-store.ts):
 * a write lands only on the version read, a release or a pause moves the version on. Each call
 * is one synchronous step, so concurrent callers race as conditional writes do. Counts its calls.
 */
export class MemoryFlowStore implements FlowStore {
  readonly states = new Map<string, FlowState>();
  readonly calls = { read: 0, write: 0, refusedWrite: 0, release: 0, pause: 0 };
  failure: Error | undefined;

  private name(clientId: string, key: string) {
    return `${clientId}#${key}`;
  }

  async read(clientId: string, key: string): Promise<FlowState> {
    this.calls.read++;
    if (this.failure) throw this.failure;
    const state = this.states.get(this.name(clientId, key));
    return state ? structuredClone(state) : { version: 0, holders: {} };
  }

  async write(clientId: string, key: string, state: FlowState, expectedVersion: number): Promise<boolean> {
    this.calls.write++;
    if (this.failure) throw this.failure;
    if ((this.states.get(this.name(clientId, key))?.version ?? 0) !== expectedVersion) {
      this.calls.refusedWrite++;
      return false;
    }
    this.states.set(this.name(clientId, key), structuredClone(state));
    return true;
  }

  async release(clientId: string, key: string, jobId: string): Promise<void> {
    this.calls.release++;
    if (this.failure) throw this.failure;
    const state = this.states.get(this.name(clientId, key));
    if (!state || state.holders[jobId] === undefined) return;
    delete state.holders[jobId];
    state.version++;
  }

  async pause(clientId: string, key: string, until: number): Promise<void> {
    this.calls.pause++;
    if (this.failure) throw this.failure;
    const state = this.states.get(this.name(clientId, key)) ?? { version: 0, holders: {} };
    if (state.pausedUntil !== undefined && state.pausedUntil >= until) return;
    this.states.set(this.name(clientId, key), { ...state, pausedUntil: until, version: state.version + 1 });
  }
}

/** Records what was queued; throws `failure` instead while it is set. */
export class MemoryWorkQueue implements WorkQueue {
  readonly sent: QueueMessage[] = [];
  failure: Error | undefined;

  async send(message: QueueMessage): Promise<void> {
    if (this.failure) throw this.failure;
    this.sent.push({ ...message });
  }

  async sendMany(messages: QueueMessage[]): Promise<void> {
    for (const message of messages) await this.send(message);
  }

  /** Refuses the messages whose job ids `refusing` names (SQS's `Failed` entries), and all while `failure` is set. */
  readonly refusing = new Set<string>();

  async sendBatch(messages: QueueMessage[]): Promise<boolean[]> {
    return messages.map((message) => {
      if (this.failure || this.refusing.has(message.jobId)) return false;
      this.sent.push({ ...message });
      return true;
    });
  }

  /** Forgets what was queued so far. */
  clear(): void {
    this.sent.length = 0;
  }
}

export type Script = (request: OutboundRequest, index: number) => AttemptOutput | Promise<AttemptOutput>;

/** An HttpClient that answers as `script` says, and records every request. */
export class ScriptedHttp implements HttpClient {
  readonly requests: OutboundRequest[] = [];

  constructor(public script: Script) {}

  async send(request: OutboundRequest): Promise<AttemptOutput> {
    const index = this.requests.length;
    this.requests.push(structuredClone(request));
    return this.script(request, index);
  }

  /** The requests made to URLs starting with `prefix`. */
  to(prefix: string): OutboundRequest[] {
    return this.requests.filter((request) => request.url.startsWith(prefix));
  }
}

/** An answer as the HTTP client reports one. */
export function answer(statusCode: number, body = '', headers: Record<string, string> = {}): AttemptOutput {
  return {
    started: '2025-01-01T00:00:00.000Z',
    durationMs: 12,
    statusCode,
    headers,
    body,
    bodyEncoding: 'utf8',
    bodyBytes: Buffer.byteLength(body),
    truncated: false,
  };
}

/** An attempt that got no answer. */
export function failure(error: string): AttemptOutput {
  return { started: '2025-01-01T00:00:00.000Z', durationMs: 12, error };
}

/** A promise with its resolve and reject in hand. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface TestClient {
  client: Client;
  token: string;
  secret: string;
}

/** A client as `clients create` makes one, with its plain token and signing secret in hand. */
export function testClient(clientId: string, overrides: Partial<Client> = {}): TestClient {
  const token = randomBytes(24).toString('hex');
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const client: Client = {
    clientId,
    name: `client ${clientId}`,
    tokenHash: hashToken(token),
    signingSecrets: [secret],
    created: '2025-01-01T00:00:00.000Z',
    ...overrides,
  };
  return { client, token, secret };
}

/** The API's dependencies on these fakes: accept every URL, 30 days' retention, no limiter unless given. */
export function memoryApiDeps(clock: ManualClock, clients: MemoryClientStore, overrides: Partial<ApiDeps> = {}) {
  const jobs = new MemoryJobStore();
  const queue = new MemoryWorkQueue();
  const deps: ApiDeps = { jobs, queue, clock, retentionDays: 30, refuse: async () => undefined, auth: new Authenticator(clients, clock), ...overrides };
  return { jobs, queue, deps };
}
