/**
 * What the core needs from the world. lambdas/adapters/ implements these on DynamoDB, SQS and
 * node:http; tests implement them in memory. Nothing here imports the AWS SDK.
 */
import type { MetricName } from '../../lib/definitions.ts';
import type { FlowTicket } from './flow.ts';
import type { Attempt, AttemptOutput, Job, JobRequest, JobStatus } from './job.ts';
import type { Schedule } from './schedule.ts';
import { batchLimits } from './schemas.ts';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * What the core tells as it works: the adapters publish it as metrics (lib/definitions.ts
 * names them and says what each counts). Told once per thing that happened, after the write
 * that made it so: an attempt whose record another worker won is not counted twice.
 */
export interface Telemetry {
  count(metric: MetricName, value?: number): void;
  /** A duration, in milliseconds. */
  duration(metric: MetricName, ms: number): void;
}

/** Tells nothing: where no one counts (tests, the local stack's own recovery). */
export const silentTelemetry: Telemetry = { count: () => undefined, duration: () => undefined };

export interface Client {
  clientId: string;
  name: string;
  /** SHA-256 of the verify token, hex. */
  tokenHash: string;
  /**
   * Standard Webhooks secrets, newest first. The newest always signs; the older ones sign too
   * until `secretsRetireAt`, the end of a rotation's overlap.
   */
  signingSecrets: string[];
  secretsRetireAt?: string;
  created: string;
  revoked?: string;
}

export interface ClientStore {
  get(clientId: string): Promise<Client | undefined>;
  put(client: Client): Promise<void>;
  list(): Promise<Client[]>;
  revoke(clientId: string, at: string): Promise<boolean>;
}

/** A fixed window of time that counts are kept in: from `start` (included) to `end` (excluded), epoch ms. */
export interface CountWindow {
  start: number;
  end: number;
}

/** Failed authentications from one source address in one window. */
export interface FailureCount {
  /** All of them, whatever client ids were tried. */
  fromSource: number;
  /** Those against the one client id asked about; 0 when none was. */
  againstClient: number;
}

/**
 * Failed authentications counted where every function instance sees the same numbers (on
 * AWS and locally, the limits table): the FailureLimiter reads them before a request is let in
 * and adds to them after a failure. Per client id only for the ids it is given.
 */
export interface FailureCounter {
  /** The failures from `source` in `window`, and those of them against `clientId` when one is given. */
  read(source: string, window: CountWindow, clientId: string | undefined): Promise<FailureCount>;
  /** Counts one failure from `source` in `window`, and against `clientId` too when one is given. */
  record(source: string, window: CountWindow, clientId: string | undefined): Promise<void>;
}

/** A conditional write lost its condition: someone else holds or has settled the job. */
export class ConditionFailed extends Error {
  override name = 'ConditionFailed';
}

export interface JobStore {
  /**
   * Writes a new job and its request. The request is stored no later than the job: whoever
   * finds the job finds its request. Where the job is already (ids are random UUIDs: it can only
   * be this same create, come again), it is left as it is: a late create never undoes progress.
   */
  create(job: Job, request: JobRequest): Promise<void>;
  /** Deletes a job whose submit failed (nothing if there is none). */
  remove(jobId: string): Promise<void>;
  get(jobId: string): Promise<Job | undefined>;
  /** The job and its request (kept for the job's whole retention: a replay sends it again). */
  getWithRequest(jobId: string): Promise<{ job: Job; request?: JobRequest } | undefined>;
  /**
   * Applies `changes` when the job still has the values in `expect` (undefined: attribute absent)
   * and, when `leaseFree` is given, no lease of that name runs past that instant; or throws
   * ConditionFailed. The request stays, whatever the write: a replay sends it again.
   */
  update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void>;
  /** `update`, returning the job as written: the write that takes a callback's lease. */
  lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job>;
  /**
   * `lease` for a job's attempt: returns the request too, which the attempt sends (in the same
   * round trip when the store keeps it beside the state). It is absent only when its record is lost.
   */
  take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }>;
  /**
   * One shard of the unsettled index: the jobs not settled yet (non-final, or final with a
   * pending callback), what a restart or sweep picks up, in the index's order (by `created`),
   * each as the index has it. `after`: only the entries past that one; `upTo`: none past it.
   */
  unsettled(shard: string, range?: { after?: IndexMark; upTo?: IndexMark }): AsyncIterable<UnsettledJob>;
  /**
   * Claims an Idempotency-Key for a new job: written as `pending` unless the key is held (not
   * expired at `now`, epoch ms) by another job. Returns undefined when the claim is ours (also
   * when our own earlier write of it landed unseen, as a retried call's does), else the record
   * that holds the key. `replacing` takes over a pending claim of that job (its submit ended
   * without settling it, and left no job).
   */
  claimIdempotent(clientId: string, key: string, claim: IdempotencyRecord, now: number, replacing?: string): Promise<IdempotencyRecord | undefined>;
  /** The claim's job is stored and queued: the key leads to it from now on. */
  settleIdempotent(clientId: string, key: string, jobId: string): Promise<void>;
  /** Lets go of a pending claim of this job (its submit failed): the key leads to nothing. */
  releaseIdempotent(clientId: string, key: string, jobId: string): Promise<void>;
  /**
   * Keeps one attempt's output apart from the job (the job's `output` holds only the last), until
   * the job's `expiresAt`: written for an attempt followed by a retry, before the write that
   * records it. The same number again (a takeover that ran the attempt again) overwrites it.
   */
  keepAttempt(jobId: string, attempt: Attempt, expiresAt: number): Promise<void>;
  /**
   * Every attempt of the job, oldest first: those kept apart and the job's own output as its last
   * (job.ts's `attemptsOf` says which wins where both have a number). None for a job not there.
   */
  attempts(jobId: string): Promise<Attempt[]>;
  /**
   * Lists jobs about to be created: one listing entry of `clientId`'s, for `jobIds` (one submit
   * request's new jobs, in the request's order, all created at the one instant `created`), kept
   * until `expiresAt` (epoch seconds: the latest of the jobs' TTLs). Written before any message of
   * those jobs is sent, so that every job that runs can be listed; a job listed whose items were
   * never written (its submit failed after this) is not found, and `list` passes it by. One
   * entry holds at most a batch's jobs (POST /v1/jobs/batch: 100); none for no job.
   */
  enlist(clientId: string, created: string, jobIds: string[], expiresAt: number): Promise<void>;
  /**
   * One page of a client's jobs, newest first (by `created`; jobs of one instant in an order of
   * the store's that holds from page to page: a batch's jobs in the request's order), from
   * `cursor` on (none: the newest). Only jobs that were enlisted are listed. With
   * `status`, only jobs of that status are on the page; a page looks at no more than
   * `listExamined` jobs whatever it finds, so it may hold fewer than `limit`, even none, with a
   * `nextCursor` to go on from. `nextCursor` is null once no job is left past the page: following
   * it to its end lists each job once. A cursor this store did not give for this client is
   * refused with InvalidCursor.
   */
  list(clientId: string, query: ListQuery): Promise<JobPage>;
}

/** Jobs a listing's page looks at, at most, whatever it finds: what keeps a page's cost bounded. */
export const listExamined = 100;

export interface ListQuery {
  status?: JobStatus;
  /** 1 to 100. */
  limit: number;
  cursor?: string;
}

export interface JobPage {
  jobs: Job[];
  nextCursor: string | null;
}

/** A listing's cursor that does not decode, or that another client's listing gave. */
export class InvalidCursor extends Error {
  override name = 'InvalidCursor';
}

/**
 * Where a listing stands: in the client's listing entry of `created` whose first job is
 * `first` (the entry's key), after `seen` of its jobs (1 to all of them).
 */
export interface ListPosition {
  clientId: string;
  created: string;
  first: string;
  seen: number;
}

/** A position as the opaque cursor the API hands out: base64url of its JSON. */
export function encodeCursor(position: ListPosition): string {
  return Buffer.from(JSON.stringify({ client: position.clientId, created: position.created, first: position.first, seen: position.seen }), 'utf8').toString('base64url');
}

/** The position a cursor names, if it decodes to one of `clientId`'s listing; else InvalidCursor. */
export function decodeCursor(cursor: string, clientId: string): ListPosition {
  let value: unknown;
  try {
    if (cursor.length === 0 || cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursor('does not decode: it must be a next_cursor this listing gave');
  }
  const { client, created, first, seen } = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const text = (field: unknown): field is string => typeof field === 'string' && field.length > 0 && field.length <= 64;
  const count = typeof seen === 'number' && Number.isInteger(seen) && seen >= 1 && seen <= batchLimits.max;
  if (!text(client) || !text(created) || !text(first) || !count || Number.isNaN(Date.parse(created))) {
    throw new InvalidCursor('does not decode: it must be a next_cursor this listing gave');
  }
  if (client !== clientId) throw new InvalidCursor('was given to another client\'s listing');
  return { clientId: client, created, first, seen };
}

/**
 * A job as the unsettled index carries it: the fields the sweeper decides on and no more
 * (lib/definitions.ts lists their attributes beside the index), so that no job is read whole.
 */
export type UnsettledJob = Pick<Job, 'jobId' | 'created' | 'status' | 'notified' | 'lastUpdate' | 'leaseUntil' | 'nextAttemptAt' | 'notifyLeaseUntil' | 'nextNotifyAt'>;

/** A place in a shard of the unsettled index: the entry of this job (the index orders by `created`). */
export type IndexMark = Pick<Job, 'created' | 'jobId'>;

/** Where a walk of the unsettled index stands: a shard, and the last entry done in it (none: its start). */
export interface SweepPosition {
  shard: string;
  after?: IndexMark;
}

/** What the last sweeper run left for the next. */
export interface SweepState {
  /** Where the next run starts (none: the first shard's start). */
  resumeAt?: SweepPosition;
  /** The last run stopped at its deadline before it had gone round the index. */
  unfinished: boolean;
}

/**
 * A claim of the sweeper's lease: ours, with the state the last run left; or held by another
 * run (named, with its expiry in epoch ms, where the store's refusal tells them).
 */
export type SweepClaim = { state: SweepState } | { held: { heldBy?: string; heldUntil?: number } };

/** The sweeper's own record: where a run stopped, and the lease that keeps two runs from overlapping. */
export interface SweepStateStore {
  /**
   * Takes the lease for `run` until `until` (epoch ms), unless another run holds it past `now`:
   * then nothing is written and the claim says it is held.
   */
  claim(run: string, now: number, until: number): Promise<SweepClaim>;
  /**
   * Saves `state` and lets the lease go, if `run` still holds it; false when it does not (its
   * lease ran out and another run took it: that run's state stands).
   */
  release(run: string, state: SweepState, now: number): Promise<boolean>;
}

/** An Idempotency-Key: the job it leads to and the first answer, once that job exists. */
export interface IdempotencyRecord {
  jobId: string;
  /** The 202 body to answer repeats with (JSON). */
  answer: string;
  /** `pending` while its submit runs; `done` once the job is stored and queued. */
  state: 'pending' | 'done';
  /** Epoch ms after which a pending claim's submit cannot still be running. */
  claimUntil: number;
  /** Epoch seconds when the key is forgotten. */
  expiresAt: number;
}

/** Fields to set; a field set to `null` in `remove` is deleted. */
export type JobChanges = Partial<Omit<Job, 'jobId' | 'clientId' | 'created'>> & {
  remove?: Array<'leaseUntil' | 'notifyLeaseUntil' | 'nextAttemptAt' | 'nextNotifyAt' | 'sweep' | 'due'>;
};

export interface JobCondition {
  /** Each listed field must equal this value; `undefined` means the attribute must be absent. */
  expect?: Partial<Record<'status' | 'attempts' | 'leaseUntil' | 'notified' | 'notifyAttempts' | 'notifyLeaseUntil' | 'flowKey', unknown>>;
  /** The status must be one of these. */
  statusIn?: readonly Job['status'][];
  /** The named lease must be absent or expired at this instant. */
  leaseFree?: { lease: 'leaseUntil' | 'notifyLeaseUntil'; now: number };
  /** `nextAttemptAt` must be absent or at most this instant: the attempt is due (a delayed job is never taken early). */
  dueBy?: number;
}

export type MessageKind = 'job' | 'callback';

export interface QueueMessage {
  kind: MessageKind;
  jobId: string;
  /**
   * The lease a job's attempt takes (ms), written by submit: with it, the first delivery takes
   * the job's first attempt in one conditional write, without reading the job first.
   */
  leaseMs?: number;
  /**
   * The job's flow key and settings (v1's flow_*), written by submit: the first delivery asks its
   * key for a start without reading the job first.
   */
  flow?: FlowTicket;
  /** How many times the job was held back by its flow key (its waits grow with it). */
  held?: number;
  /**
   * How long the queue holds the message before it is delivered (a delayed job's wait, at most
   * SQS's 15 minutes): not part of the body. The queue rounds it up to whole seconds, so that
   * the message never arrives before the work is due.
   */
  delayMs?: number;
}

/** A delayed job as the due index has it: what the release sends its message by. */
export interface DueJob {
  jobId: string;
  /** Its bucket, as the job's `due` has it. */
  due: string;
  /** Epoch ms of its first attempt (its `next_attempt_at`). */
  startAt: number;
  timeoutMs: number;
}

/**
 * The delayed jobs waiting in the store, by bucket (core/delay.ts names them), and the release's
 * own record of how far it has gone.
 */
export interface DueIndex {
  /** One bucket's jobs, in the order they fall due. */
  due(bucket: string): AsyncIterable<DueJob>;
  /**
   * Takes the job out of the index, if it is still in `bucket`: false when it is not (released
   * before, started, or cancelled meanwhile). Called only once its message is out.
   */
  released(jobId: string, bucket: string): Promise<boolean>;
  /** Epoch ms of the last minute whose every bucket was released; none before the first run. */
  releasedThrough(): Promise<number | undefined>;
  /** Saves `minute` as released through, unless a later one is saved already (runs may overlap). */
  saveReleasedThrough(minute: number): Promise<void>;
}

/** What the queue tells about a delivered message besides its body. */
export interface DeliveryFacts {
  /** Epoch ms when the message was sent. */
  sentAt?: number;
  /** How many times the queue has handed this message out, this time included. */
  receiveCount?: number;
  /**
   * Epoch ms by which the handler must have handed the message back (its function's deadline):
   * an attempt that could not finish and be recorded by then is not started.
   */
  deadline?: number;
}

export interface WorkQueue {
  /** Queues an attempt of a job or of its callback, due now. */
  send(message: QueueMessage): Promise<void>;
  /** Queues many at once (the sweeper's and a restart's work arrives in bulk), due now. */
  sendMany(messages: QueueMessage[]): Promise<void>;
  /**
   * Queues many new jobs' messages, ten to a request, and says of each whether it is on its
   * way (in `messages`' order): a batch submit refuses only the jobs whose message failed.
   */
  sendBatch(messages: QueueMessage[]): Promise<boolean[]>;
}

export interface OutboundRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  /** `base64`: `body` holds bytes, as base64 text; absent: UTF-8 text. */
  bodyEncoding?: 'base64';
  timeoutMs: number;
}

export interface HttpClient {
  /** Makes one request and never throws: a failure is an output with `error`. */
  send(request: OutboundRequest): Promise<AttemptOutput>;
}

/**
 * The schedules table: each schedule a record of its own, its client's by `clientId`. Runs
 * are not kept here: a run's key is claimed in the JobStore, as an Idempotency-Key is
 * (core/schedules.ts says why).
 */
export interface ScheduleStore {
  /** Writes a new schedule; ConditionFailed when one of its id is there already. */
  create(schedule: Schedule): Promise<void>;
  get(scheduleId: string): Promise<Schedule | undefined>;
  /** Deletes it (nothing if it is not there). */
  remove(scheduleId: string): Promise<void>;
  /** Every schedule of the client, newest first (a client has a bounded number: scheduleLimits). */
  list(clientId: string): Promise<Schedule[]>;
  /** How many schedules the client has (its index entries counted: no schedule is read). */
  count(clientId: string): Promise<number>;
  /** Every schedule whose `nextRun` is at or before `now` (the local stack's timer; on AWS EventBridge Scheduler fires them). */
  due(now: number): Promise<Schedule[]>;
  /**
   * Records the run of `ran` (epoch ms) and moves `nextRun` on to `next` (none: it never runs
   * again), if `nextRun` is still at or before `ran`; false when it is not (a later run has moved
   * it on already) or the schedule is gone. It never moves `nextRun` back.
   */
  advance(scheduleId: string, ran: number, next: number | undefined, jobId: string | undefined): Promise<boolean>;
}

/**
 * What fires schedules on AWS: one EventBridge Scheduler schedule per waas schedule, named by
 * its id. Locally nothing: the local stack's timer reads the schedules table itself.
 */
export interface ScheduleTimers {
  /** Makes the schedule's timer; a timer of that name already there (this same create, retried) is fine. */
  create(schedule: Schedule): Promise<void>;
  /** Deletes the schedule's timer; none there is fine. */
  remove(scheduleId: string): Promise<void>;
}

/** No timers of its own: where the schedules table is read by a timer (the local stack's). */
export const noTimers: ScheduleTimers = { create: async () => undefined, remove: async () => undefined };
