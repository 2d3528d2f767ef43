/**
 * What the core needs from the world. lambdas/adapters/ implements these on DynamoDB, SQS and
 * node:http; tests implement them in memory. Nothing here imports the AWS SDK.
 */
import type { AttemptOutput, Job, JobRequest } from './job.ts';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

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

/** A conditional write lost its condition: someone else holds or has settled the job. */
export class ConditionFailed extends Error {
  override name = 'ConditionFailed';
}

export interface JobStore {
  /** Writes a new job and its request (ids are random UUIDs: no collision is checked for). */
  create(job: Job, request: JobRequest): Promise<void>;
  /** Deletes a job whose submit failed (nothing if there is none). */
  remove(jobId: string): Promise<void>;
  get(jobId: string): Promise<Job | undefined>;
  /**
   * Applies `changes` when the job still has the values in `expect` (undefined: attribute absent)
   * and, when `leaseFree` is given, no lease of that name runs past that instant; or throws
   * ConditionFailed. A write that makes the job final may let the store forget its request: no
   * attempt will send it again.
   */
  update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void>;
  /** `update`, returning the job as written: the write that takes a callback's lease. */
  lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job>;
  /**
   * `lease` for a job's attempt: returns the request too, which the attempt sends (in the same
   * round trip when the store keeps it beside the state). It is absent only when its record is lost.
   */
  take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }>;
  /** Jobs not settled yet (non-final, or final with a pending callback): what a restart or sweep picks up. */
  unsettled(): AsyncIterable<Job>;
  /** Remembers an Idempotency-Key's answer; returns the answer already remembered, if any. */
  /** `now` (epoch ms) decides whether a remembered key has expired (TTL deletes lazily). */
  rememberIdempotent(clientId: string, key: string, jobId: string, answer: string, expiresAt: number, now: number): Promise<string | undefined>;
  forgetIdempotent(clientId: string, key: string): Promise<void>;
}

/** Fields to set; a field set to `null` in `remove` is deleted. */
export type JobChanges = Partial<Omit<Job, 'jobId' | 'clientId' | 'created'>> & {
  remove?: Array<'leaseUntil' | 'notifyLeaseUntil' | 'nextAttemptAt' | 'nextNotifyAt' | 'sweep'>;
};

export interface JobCondition {
  /** Each listed field must equal this value; `undefined` means the attribute must be absent. */
  expect?: Partial<Record<'status' | 'attempts' | 'leaseUntil' | 'notified' | 'notifyAttempts' | 'notifyLeaseUntil', unknown>>;
  /** The status must be one of these. */
  statusIn?: readonly Job['status'][];
  /** The named lease must be absent or expired at this instant. */
  leaseFree?: { lease: 'leaseUntil' | 'notifyLeaseUntil'; now: number };
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
}

/** What the queue tells about a delivered message besides its body. */
export interface DeliveryFacts {
  /** Epoch ms when the message was sent. */
  sentAt?: number;
  /** How many times the queue has handed this message out, this time included. */
  receiveCount?: number;
}

export interface WorkQueue {
  /** Queues an attempt of a job or of its callback, due after `delayMs` (at most 15 minutes). */
  send(message: QueueMessage, delayMs?: number): Promise<void>;
  /** Queues many at once (the sweeper's and a restart's work arrives in bulk), due now. */
  sendMany(messages: QueueMessage[]): Promise<void>;
}

/** A message being handled: the handle to postpone it with. */
export interface Delivery {
  /** Makes the message reappear after `delayMs` (rounded up to whole seconds). */
  retryAfter(delayMs: number): Promise<void>;
}

export interface OutboundRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
  timeoutMs: number;
}

export interface HttpClient {
  /** Makes one request and never throws: a failure is an output with `error`. */
  send(request: OutboundRequest): Promise<AttemptOutput>;
}
