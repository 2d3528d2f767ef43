/**
 * In-memory fakes of the core's ports, for unit tests. The JobStore keeps the DynamoDB
 * adapter's semantics (attribute_exists(pk), expect / statusIn / leaseFree, fields removed by
 * `remove`, the sparse unsettled index), and checks-and-writes within one synchronous step, so
 * two concurrent callers race exactly as two conditional writes do.
 */
import { randomBytes } from 'node:crypto';
import type { ApiDeps } from '../../lambdas/core/api.ts';
import { Authenticator, hashToken } from '../../lambdas/core/auth.ts';
import type { AttemptOutput, Job, JobRequest } from '../../lambdas/core/job.ts';
import {
  ConditionFailed,
  type Client,
  type ClientStore,
  type Clock,
  type HttpClient,
  type JobChanges,
  type JobCondition,
  type JobStore,
  type OutboundRequest,
  type QueueMessage,
  type WorkQueue,
} from '../../lambdas/core/ports.ts';

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

/** Copies without the keys whose value is undefined, as DynamoDB's removeUndefinedValues stores them. */
function stored<T extends object>(value: T): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const key of Object.keys(copy)) if (copy[key] === undefined) delete copy[key];
  return copy as T;
}

interface Remembered {
  jobId: string;
  answer: string;
  expiresAt: number;
}

export class MemoryJobStore implements JobStore {
  readonly jobs = new Map<string, Job>();
  readonly requests = new Map<string, JobRequest>();
  readonly idempotency = new Map<string, Remembered>();
  /** Every update asked for, with whether its condition held. */
  readonly updates: Array<{ jobId: string; changes: JobChanges; condition: JobCondition; applied: boolean }> = [];

  async create(job: Job, request: JobRequest): Promise<void> {
    if (this.jobs.has(job.jobId)) throw new ConditionFailed(`job ${job.jobId} exists`);
    this.jobs.set(job.jobId, stored(job));
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

  async take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }> {
    const job = await this.lease(jobId, changes, condition);
    const request = this.requests.get(jobId);
    return request ? { job, request: structuredClone(request) } : { job };
  }

  async update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void> {
    await this.lease(jobId, changes, condition);
  }

  async lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job> {
    const job = this.jobs.get(jobId);
    const applied = job !== undefined && holds(job, condition);
    this.updates.push({ jobId, changes: structuredClone(changes), condition: structuredClone(condition), applied });
    if (!job || !applied) throw new ConditionFailed('the condition of the write did not hold');
    const next = structuredClone(job) as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(changes)) {
      if (field === 'remove' || value === undefined) continue;
      next[field] = structuredClone(value);
    }
    for (const field of changes.remove ?? []) {
      if (!(field in changes) || changes[field] === undefined) delete next[field];
    }
    const written = next as unknown as Job;
    this.jobs.set(jobId, written);
    return structuredClone(written);
  }

  /**
   * As the adapter's sparse index: the jobs that still carry their `sweep` shard. The core
   * removes it once a job and its callback are settled; a job without one is never swept.
   */
  async *unsettled(): AsyncIterable<Job> {
    for (const job of [...this.jobs.values()]) {
      if (job.sweep !== undefined) yield structuredClone(job);
    }
  }

  async rememberIdempotent(clientId: string, key: string, jobId: string, answer: string, expiresAt: number, now: number): Promise<string | undefined> {
    const id = idempotencyId(clientId, key);
    const earlier = this.idempotency.get(id);
    // As the adapter's condition: an expired key counts as absent.
    if (earlier && earlier.expiresAt >= Math.floor(now / 1000)) return earlier.answer;
    this.idempotency.set(id, { jobId, answer, expiresAt });
    return undefined;
  }

  async forgetIdempotent(clientId: string, key: string): Promise<void> {
    this.idempotency.delete(idempotencyId(clientId, key));
  }
}

const idempotencyId = (clientId: string, key: string) => `${clientId}\u0000${key}`;

function holds(job: Job, condition: JobCondition): boolean {
  const fields = job as unknown as Record<string, unknown>;
  for (const [field, value] of Object.entries(condition.expect ?? {})) {
    if (value === undefined ? fields[field] !== undefined : fields[field] !== value) return false;
  }
  if (condition.statusIn && !condition.statusIn.includes(job.status)) return false;
  if (condition.leaseFree) {
    const until = job[condition.leaseFree.lease];
    if (until !== undefined && until > condition.leaseFree.now) return false;
  }
  return true;
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

/** Records what was queued; throws `failure` instead while it is set. */
export class MemoryWorkQueue implements WorkQueue {
  readonly sent: QueueMessage[] = [];
  /** The delay each sent message asked for, by index in `sent`. */
  readonly delays: number[] = [];
  failure: Error | undefined;

  async send(message: QueueMessage, delayMs = 0): Promise<void> {
    if (this.failure) throw this.failure;
    this.sent.push({ ...message });
    this.delays.push(delayMs);
  }

  async sendMany(messages: QueueMessage[]): Promise<void> {
    for (const message of messages) await this.send(message);
  }

  /** Forgets what was queued so far, and the delays asked for it. */
  clear(): void {
    this.sent.length = 0;
    this.delays.length = 0;
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
