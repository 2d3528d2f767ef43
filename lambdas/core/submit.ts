/**
 * Taking a job: validate, store, queue. Nothing is answered 202 unless it is stored and will
 * run; nothing answered 503 is left behind.
 */
import { randomUUID } from 'node:crypto';
import { awsCalls, idempotencyWindowMs, jobLimits, metricNames, submitWriteWindowMs } from '../../lib/definitions.ts';
import { delayedFields, queueDelay } from './delay.ts';
import { InvalidRequest, KeyInProgress, Unavailable } from './errors.ts';
import { attemptLeaseMs, flowTicketOf, isFinal, sweepShard, type Job, type JobRequest } from './job.ts';
import type { Client, Clock, IdempotencyRecord, JobStore, QueueMessage, Telemetry, WorkQueue } from './ports.ts';
import { keyInProgressRereadsMs } from './retry.ts';
import { parse, submitSchema, type SubmitRequest, type V1JobRequest } from './schemas.ts';

export interface SubmitDeps {
  jobs: JobStore;
  queue: WorkQueue;
  clock: Clock;
  retentionDays: number;
  /** The egress policy's verdict on a URL known at submit: a reason when refused. */
  refuse(url: string): Promise<string | undefined>;
  /**
   * Index every job in the unsettled index from submit on, not only work waiting on a retry:
   * for a queue that loses its messages on a restart (the local stack's), so a restart finds
   * the jobs that were waiting in it.
   */
  indexEveryJob?: boolean;
  newId?: () => string;
  /** Waits `ms` (default: a timer); tests inject one that moves their clock. */
  sleep?: (ms: number) => Promise<void>;
  telemetry?: Telemetry;
}

export interface Accepted {
  created: string;
  job_id: string;
  status: 'accepted';
}

const hasHeader = (headers: Record<string, string>, name: string) => Object.keys(headers).some((key) => key.toLowerCase() === name);

/**
 * A job as the core takes it, whichever API it came through: the seed's fields (v1's are
 * renamed to them, `toJobInput`), and v1's bytes body.
 */
export type JobInput = SubmitRequest & {
  data_base64?: string | undefined;
  /** v1's flow control (the seed API has none). */
  flow_key?: string | undefined;
  flow_rate?: number | undefined;
  flow_parallelism?: number | undefined;
  /** What the caller calls `service`, for the messages that name it. */
  urlField?: 'url';
  /** Epoch ms before which the first attempt does not start (v1's not_before or delay_s: core/delay.ts's `startOf`). */
  startAt?: number | undefined;
  /** The schedule whose run this job is (core/schedules.ts): kept on the job as `schedule_id`. */
  scheduleId?: string;
};

/** A v1 job in the seed's names: one core behind both APIs. Its delay is `startOf`'s to read (it needs the clock). */
export function toJobInput(job: V1JobRequest): JobInput {
  const { url, method, body, body_base64, not_before: _notBefore, delay_s: _delayS, ...same } = job;
  return { ...same, service: url, methodtype: method, data: body, urlField: 'url', ...(body_base64 !== undefined ? { data_base64: body_base64 } : {}) };
}

/** The request a job makes, built once: body encoding and the headers we add. */
export function buildRequest(jobId: string, input: JobInput): JobRequest {
  const headers = { ...(input.headers ?? {}) };
  let body: string | null = null;
  let bodyEncoding: 'base64' | undefined;
  if (input.data_base64 !== undefined) {
    body = input.data_base64;
    bodyEncoding = 'base64';
  } else if (typeof input.data === 'string') body = input.data;
  else if (input.data !== undefined && input.data !== null) {
    try {
      body = JSON.stringify(input.data);
    } catch {
      throw new InvalidRequest('data: could not be serialised as JSON (too deeply nested)');
    }
    if (!hasHeader(headers, 'content-type')) headers['Content-Type'] = 'application/json';
  }
  // Targets can drop duplicates of an at-least-once delivery by this key.
  if (!hasHeader(headers, 'idempotency-key')) headers['Idempotency-Key'] = jobId;
  return { url: input.service, method: input.methodtype ?? 'POST', headers, body, ...(bodyEncoding ? { bodyEncoding } : {}) };
}

export function validIdempotencyKey(key: string): string {
  if (key.length === 0 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new InvalidRequest('Idempotency-Key: must be 1 to 255 visible ASCII characters');
  }
  return key;
}

/** POST /webhook: the seed's fields, validated, then accepted. */
export async function submit(deps: SubmitDeps, client: Client, payload: Record<string, unknown>, idempotencyKey?: string): Promise<Accepted> {
  const input = parse(submitSchema, payload);
  return accept(deps, client, input, idempotencyKey === undefined ? undefined : validIdempotencyKey(idempotencyKey));
}

/** The egress policy's verdict on each URL known now, by the field that holds it: a 400 naming the first refused. */
export async function refuseUrls(deps: Pick<SubmitDeps, 'refuse'>, urls: ReadonlyArray<readonly [string, string | null | undefined]>): Promise<void> {
  for (const [field, url] of urls) {
    if (!url) continue;
    const reason = await deps.refuse(url);
    if (reason) throw new InvalidRequest(`${field}: ${reason}`);
  }
}

const refuseTargets = (deps: SubmitDeps, input: JobInput) =>
  refuseUrls(deps, [
    [input.urlField ?? 'service', input.service],
    ['callback', input.callback],
  ]);

/** A new job and its request, as submit stores them, created `now` (a batch's jobs share one instant: its listing entry's). */
export function newJob(deps: Pick<SubmitDeps, 'clock' | 'retentionDays' | 'indexEveryJob' | 'newId'>, client: Client, input: JobInput, now: number = deps.clock.now()): { job: Job; request: JobRequest } {
  const jobId = (deps.newId ?? randomUUID)();
  const created = new Date(now).toISOString();
  const request = buildRequest(jobId, input);
  const job: Job = {
    jobId,
    clientId: client.clientId,
    created,
    lastUpdate: created,
    service: input.service,
    methodtype: request.method,
    callback: input.callback ?? null,
    status: 'accepted',
    attempts: 0,
    maxAttempts: input.max_attempts ?? jobLimits.maxAttempts.default,
    timeoutMs: input.timeout_ms ?? jobLimits.timeoutMs.default,
    output: null,
    history: [],
    notified: input.callback ? 'no' : 'n/a',
    notifyoutput: null,
    notifyAttempts: 0,
    callbackMaxAttempts: input.callback_max_attempts ?? jobLimits.callbackMaxAttempts.default,
    expiresAt: Math.floor(now / 1000) + deps.retentionDays * 86_400,
    ...(deps.indexEveryJob ? { sweep: sweepShard(jobId) } : {}),
    ...delayedFields(jobId, input.startAt, now),
    ...(input.flow_key !== undefined ? { flowKey: input.flow_key } : {}),
    ...(input.flow_rate !== undefined ? { flowRate: input.flow_rate } : {}),
    ...(input.flow_parallelism !== undefined ? { flowParallelism: input.flow_parallelism } : {}),
    ...(input.scheduleId !== undefined ? { scheduleId: input.scheduleId } : {}),
  };
  return { job, request };
}

/**
 * The message that runs a new job's first attempt, held by the queue until the job is due; none
 * for a job that waits in the store (its `due` bucket): the release sends it when it is near.
 * It carries the lease its first attempt takes, and its flow key's ticket, so that its first
 * delivery takes the attempt (and asks its key) without reading the job first.
 */
export function firstMessage(job: Job, now: number): QueueMessage | undefined {
  if (job.due !== undefined) return undefined;
  const flow = flowTicketOf(job);
  return { kind: 'job', jobId: job.jobId, leaseMs: attemptLeaseMs(job), ...(flow ? { flow } : {}), ...queueDelay(job.nextAttemptAt, now) };
}

const acceptedOf = (job: Job): Accepted => ({ created: job.created, job_id: job.jobId, status: 'accepted' });

/** A claim of `key` for `job`, as claimKey writes it. */
function claimFor(deps: SubmitDeps, job: Job): IdempotencyRecord {
  const now = deps.clock.now();
  return {
    jobId: job.jobId,
    answer: JSON.stringify(acceptedOf(job)),
    state: 'pending',
    claimUntil: now + submitWriteWindowMs,
    expiresAt: Math.floor((now + idempotencyWindowMs) / 1000),
  };
}

/** A validated job, accepted: its targets checked, its key claimed, stored and queued. */
export async function accept(deps: SubmitDeps, client: Client, input: JobInput, key?: string): Promise<Accepted> {
  await refuseTargets(deps, input);
  const { job, request } = newJob(deps, client, input);
  if (key !== undefined) {
    const earlier = await claimKey(deps, client.clientId, key, claimFor(deps, job));
    // A repeat: the first answer stands and nothing is created.
    if (earlier) return earlier;
  }
  try {
    await enqueue(deps, job, request);
  } catch (error) {
    if (key !== undefined) await deps.jobs.releaseIdempotent(client.clientId, key, job.jobId).catch(() => undefined);
    throw error;
  }
  // Should this fail, the key stays pending; the next repeat finds the job and settles it.
  if (key !== undefined) await deps.jobs.settleIdempotent(client.clientId, key, job.jobId).catch(() => undefined);
  return acceptedOf(job);
}

/**
 * Lists, stores and queues a new job, or leaves nothing and throws Unavailable. Its listing
 * entry first (a job that runs can be listed), then the message, then the job: a stored job
 * always has a message on its way, so no accepted job waits on a sweeper to be found (a job
 * delayed beyond the queue's reach has its bucket instead, written with it, which the release
 * reads). A message whose job was never stored (this submit failed after sending it) finds
 * nothing when it arrives and is dropped; its entry lists an id that GET /v1/jobs passes by.
 */
export async function enqueue(deps: SubmitDeps, job: Job, request: JobRequest): Promise<void> {
  await enlist(deps, [job]);
  const message = firstMessage(job, deps.clock.now());
  try {
    if (message) await deps.queue.send(message);
  } catch (error) {
    throw notKept(error);
  }
  await store(deps, job, request);
}

const notKept = (cause: unknown) => new Unavailable('could not store and queue the job; nothing was kept, try again', { cause });

/** One listing entry for one submit request's new jobs (one client's, one instant), before any of their messages is sent; or Unavailable. */
async function enlist(deps: SubmitDeps, jobs: readonly Job[]): Promise<void> {
  const [first] = jobs;
  if (!first) return;
  try {
    await deps.jobs.enlist(first.clientId, first.created, jobs.map((job) => job.jobId), Math.max(...jobs.map((job) => job.expiresAt)));
  } catch (error) {
    throw notKept(error);
  }
}

/** Writes a job whose message is out, or takes it back (a write that failed may still have landed, and nothing may run unasked) and throws Unavailable. */
async function store(deps: SubmitDeps, job: Job, request: JobRequest): Promise<void> {
  try {
    await deps.jobs.create(job, request);
  } catch (error) {
    await deps.jobs.remove(job.jobId).catch(() => undefined);
    throw notKept(error);
  }
  deps.telemetry?.count(metricNames.jobsAccepted);
}

/** One job of a batch: validated, or refused with the reason. */
export type BatchEntry = { input: JobInput; key?: string | undefined } | { refused: unknown };

/** A batch job's outcome, in the request's order: accepted (or a repeat's first answer), or refused. */
export type BatchResult = { accepted: Accepted } | { refused: unknown };

/** How many jobs of a batch are checked and claimed at once. */
const batchConcurrency = 25;

/** SendMessageBatch's ten: a batch is sent, and its jobs written, a chunk of this many at a time. */
const chunkSize = 10;

/**
 * A step of a batch starts only with this much time left before the api must answer: one
 * attempt of a bounded AWS call (lib/definitions.ts `awsCalls`). A step that cannot finish by
 * then is not begun, and its jobs are refused in the 200, instead of the whole batch being cut
 * off by the function's deadline with some of its jobs stored and its client told none were.
 */
export const batchStepBudgetMs = awsCalls.connectionTimeoutMs + awsCalls.requestTimeoutMs;

export interface BatchOptions {
  /** How long the api has before it must answer (its deadline, less the early answer's margin). */
  remainingMs?: number | undefined;
}

/**
 * Many jobs in one go, each accepted or refused on its own. The jobs are checked and their keys
 * claimed; the new ones are listed in one listing entry, one small write for the whole batch
 * (refused, it refuses them all, as a refused store would); then, a chunk of ten at a time and
 * the chunks side by side, one SendMessageBatch and
 * the chunk's conditional puts right after it (so a message seldom arrives before its job). A
 * job whose message or write failed is taken back and refused (503); the others stand. A step
 * that could not end before the api's deadline is not begun: its jobs are refused, and the
 * answer is given in time. Nothing is half-accepted: a job is accepted only once it is stored
 * and queued, as `accept` does for one.
 *
 * Why not BatchWriteItem: it takes no condition, and a put retried after its first try landed
 * late would write an accepted job over a worker's progress (the message is already out). A
 * conditional PutItem costs the same write units: DynamoDB bills writes per item, batched or not.
 */
export async function acceptBatch(deps: SubmitDeps, client: Client, entries: BatchEntry[], options: BatchOptions = {}): Promise<BatchResult[]> {
  const deadline = options.remainingMs === undefined ? Infinity : deps.clock.now() + options.remainingMs;
  // One instant for the batch's jobs: their one listing entry's `created`.
  const at = deps.clock.now();
  const late = () => deps.clock.now() + batchStepBudgetMs > deadline;
  const outOfTime = () => new Unavailable('the batch ran out of time before this job was stored; nothing of it was kept, submit it again');
  const results: BatchResult[] = entries.map((entry) => ('refused' in entry ? { refused: entry.refused } : { refused: undefined }));
  interface Pending {
    index: number;
    job: Job;
    request: JobRequest;
    key?: string | undefined;
  }
  const pending: Pending[] = [];
  // A key given twice in one batch: the later ones answer as the first does.
  const firstWithKey = new Map<string, number>();
  const repeats: Array<{ index: number; of: number }> = [];
  await eachLimited(entries.map((entry, index) => ({ entry, index })), batchConcurrency, async ({ entry, index }) => {
    if ('refused' in entry) return;
    if (late()) return void (results[index] = { refused: outOfTime() });
    let made: { job: Job; request: JobRequest };
    try {
      await refuseTargets(deps, entry.input);
      made = newJob(deps, client, entry.input, at);
    } catch (error) {
      results[index] = { refused: error };
      return;
    }
    if (entry.key !== undefined) {
      const first = firstWithKey.get(entry.key);
      if (first !== undefined) return void repeats.push({ index, of: first });
      firstWithKey.set(entry.key, index);
    }
    pending.push({ index, key: entry.key, ...made });
  });

  // Keys first: a repeat of an earlier request's key answers with that request's job.
  const fresh: Pending[] = [];
  await eachLimited(pending, batchConcurrency, async (item) => {
    if (item.key === undefined) return void fresh.push(item);
    if (late()) return void (results[item.index] = { refused: outOfTime() });
    try {
      const earlier = await claimKey(deps, client.clientId, item.key, claimFor(deps, item.job));
      if (earlier) results[item.index] = { accepted: earlier };
      else fresh.push(item);
    } catch (error) {
      results[item.index] = { refused: error };
    }
  });
  // In the request's order, so that its first jobs are the first sent.
  fresh.sort((a, b) => a.index - b.index);

  const refuse = async (item: Pending, error: unknown) => {
    if (item.key !== undefined) await deps.jobs.releaseIdempotent(client.clientId, item.key, item.job.jobId).catch(() => undefined);
    results[item.index] = { refused: error };
  };
  // The batch's one listing entry, before any of its messages: refused, it refuses every new job.
  const listed = await listBatch(deps, fresh, late() ? outOfTime() : undefined, refuse);
  const chunks = Array.from({ length: Math.ceil(listed.length / chunkSize) }, (_, n) => listed.slice(n * chunkSize, (n + 1) * chunkSize));
  await Promise.all(
    chunks.map(async (chunk) => {
      if (late()) return void (await Promise.all(chunk.map((item) => refuse(item, outOfTime()))));
      // A job that waits in the store has no message to send: it counts as on its way.
      const now = deps.clock.now();
      const messages = chunk.map(({ job }) => firstMessage(job, now));
      const toSend = messages.filter((message): message is QueueMessage => message !== undefined);
      const answers = toSend.length > 0 ? await deps.queue.sendBatch(toSend) : [];
      let next = 0;
      const sent = messages.map((message) => (message === undefined ? true : (answers[next++] ?? false)));
      await Promise.all(
        chunk.map(async (item, n) => {
          if (!sent[n]) return refuse(item, notKept(new Error('the queue refused the message')));
          // Its message is out: unwritten, the job is never found, and the message is dropped.
          if (late()) return refuse(item, outOfTime());
          try {
            await store(deps, item.job, item.request);
          } catch (error) {
            return refuse(item, error);
          }
          if (item.key !== undefined) await deps.jobs.settleIdempotent(client.clientId, item.key, item.job.jobId).catch(() => undefined);
          results[item.index] = { accepted: acceptedOf(item.job) };
        }),
      );
    }),
  );
  for (const { index, of } of repeats) results[index] = results[of] ?? { refused: undefined };
  return results;
}

/** Enlists the batch's new jobs in one entry (in the request's order): those to send on, or none when it was refused (or `late`) and each was. */
async function listBatch<T extends { job: Job }>(deps: SubmitDeps, fresh: T[], late: Unavailable | undefined, refuse: (item: T, error: unknown) => Promise<void>): Promise<T[]> {
  if (fresh.length === 0) return fresh;
  try {
    if (late) throw late;
    await enlist(deps, fresh.map((item) => item.job));
    return fresh;
  } catch (error) {
    await Promise.all(fresh.map((item) => refuse(item, error)));
    return [];
  }
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Claims `key` for the new job, or answers the repeat: the first 202 once its job exists, a
 * 409 while its first submit may still be running (after a few looks, since it is usually done
 * within milliseconds). A claim whose submit ended without settling it leads to its job if that
 * was stored, else to nothing: then the key is claimed anew.
 */
async function claimKey(deps: SubmitDeps, clientId: string, key: string, claim: IdempotencyRecord): Promise<Accepted | undefined> {
  const { jobs, clock } = deps;
  let replacing: string | undefined;
  let looks = 0;
  for (;;) {
    const now = clock.now();
    const held = await jobs.claimIdempotent(clientId, key, claim, now, replacing);
    if (!held) return undefined;
    if (held.state === 'done') return JSON.parse(held.answer) as Accepted;
    if (held.claimUntil <= now && held.jobId !== replacing) {
      // Its submit cannot be running any more: it stored its job (only its last write was lost), or nothing.
      const stored = await jobs.get(held.jobId);
      if (stored) {
        // Whether its message went out is not known (its submit may have failed after a write
        // that landed late): one more makes sure the job runs; a message too many finds it leased or settled.
        const message = isFinal(stored.status) ? undefined : firstMessage(stored, clock.now());
        if (message) await deps.queue.send(message);
        await jobs.settleIdempotent(clientId, key, held.jobId);
        return JSON.parse(held.answer) as Accepted;
      }
      replacing = held.jobId;
      continue;
    }
    const wait = keyInProgressRereadsMs[looks++];
    if (wait === undefined) break;
    await (deps.sleep ?? timerSleep)(wait);
  }
  throw new KeyInProgress();
}

const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
