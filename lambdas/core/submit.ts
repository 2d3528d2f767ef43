/**
 * Taking a job: validate, store, queue. Nothing is answered 202 unless it is stored and will
 * run; nothing answered 503 is left behind.
 */
import { randomUUID } from 'node:crypto';
import { idempotencyWindowMs, jobLimits, metricNames, submitWriteWindowMs } from '../../lib/definitions.ts';
import { InvalidRequest, KeyInProgress, Unavailable } from './errors.ts';
import { attemptLeaseMs, isFinal, sweepShard, type Job, type JobRequest } from './job.ts';
import type { Client, Clock, IdempotencyRecord, JobStore, Telemetry, WorkQueue } from './ports.ts';
import { keyInProgressRereadsMs } from './retry.ts';
import { parse, submitSchema, type SubmitRequest } from './schemas.ts';

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

/** The request a job makes, built once: body encoding and the headers we add. */
export function buildRequest(jobId: string, input: SubmitRequest): JobRequest {
  const headers = { ...(input.headers ?? {}) };
  let body: string | null = null;
  if (typeof input.data === 'string') body = input.data;
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
  return { url: input.service, method: input.methodtype ?? 'POST', headers, body };
}

export function validIdempotencyKey(key: string): string {
  if (key.length === 0 || key.length > 255 || !/^[\x21-\x7e]+$/.test(key)) {
    throw new InvalidRequest('Idempotency-Key: must be 1 to 255 visible ASCII characters');
  }
  return key;
}

export async function submit(deps: SubmitDeps, client: Client, payload: Record<string, unknown>, idempotencyKey?: string): Promise<Accepted> {
  const input = parse(submitSchema, payload);
  const key = idempotencyKey === undefined ? undefined : validIdempotencyKey(idempotencyKey);
  for (const [field, url] of [['service', input.service], ['callback', input.callback]] as const) {
    if (!url) continue;
    const reason = await deps.refuse(url);
    if (reason) throw new InvalidRequest(`${field}: ${reason}`);
  }

  const now = deps.clock.now();
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
  };
  const accepted: Accepted = { created, job_id: jobId, status: 'accepted' };

  if (key !== undefined) {
    const claim: IdempotencyRecord = {
      jobId,
      answer: JSON.stringify(accepted),
      state: 'pending',
      claimUntil: now + submitWriteWindowMs,
      expiresAt: Math.floor((now + idempotencyWindowMs) / 1000),
    };
    const earlier = await claimKey(deps, client.clientId, key, claim);
    // A repeat: the first answer stands and nothing is created.
    if (earlier) return earlier;
  }

  // The message first, then the job: a stored job always has a message on its way, so no
  // accepted job waits on a sweeper to be found. A message whose job was never stored (this
  // submit failed after sending it) finds nothing when it arrives and is dropped.
  let sent = false;
  try {
    await deps.queue.send({ kind: 'job', jobId, leaseMs: attemptLeaseMs(job) });
    sent = true;
    await deps.jobs.create(job, request);
  } catch (error) {
    // A write that failed may still have landed: take it back, so that nothing runs unasked.
    if (sent) await deps.jobs.remove(jobId).catch(() => undefined);
    if (key !== undefined) await deps.jobs.releaseIdempotent(client.clientId, key, jobId).catch(() => undefined);
    throw new Unavailable('could not store and queue the job; nothing was kept, try again', { cause: error });
  }
  deps.telemetry?.count(metricNames.jobsAccepted);
  // Should this fail, the key stays pending; the next repeat finds the job and settles it.
  if (key !== undefined) await deps.jobs.settleIdempotent(client.clientId, key, jobId).catch(() => undefined);
  return accepted;
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
        if (!isFinal(stored.status)) await deps.queue.send({ kind: 'job', jobId: stored.jobId, leaseMs: attemptLeaseMs(stored) });
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
