/**
 * A client managing its jobs (the v1 API): read one, list them, list its attempts, cancel it,
 * replay it. Each call sees the calling client's jobs alone: another client's job, like an unknown
 * or malformed id, is JobNotFound, as GET /status has it.
 *
 * - cancel: one conditional write takes a job that is not final to `cancelled`, with no callback
 *   to make; a worker that held the job's lease at that moment records its attempt under that
 *   lease and leaves the job cancelled (core/deliver.ts), and no attempt is taken after it;
 * - replay: a new job with the old one's request, stored and queued as submit does it; the old
 *   job is left as it is, whatever its status;
 * - request: what the job sends, as it was taken (the console shows it beside the attempts).
 */
import { metricNames } from '../../lib/definitions.ts';
import { InvalidRequest, JobIsFinal, JobNotFound } from './errors.ts';
import { isFinal, nonFinalStatuses, type Attempt, type Job, type JobRequest } from './job.ts';
import { ConditionFailed, InvalidCursor, type Client, type JobPage, type ListQuery } from './ports.ts';
import { jobIdPattern } from './schemas.ts';
import { enqueue, newJob, refuseUrls, type SubmitDeps } from './submit.ts';

/** What managing jobs needs: submit's dependencies (a replay is a submit). */
export type ManageDeps = SubmitDeps;

/** The answer to a replay: the new job's, and the job it replays. */
export interface Replayed {
  job_id: string;
  created: string;
  status: 'accepted';
  replay_of: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The client's job of this id, or JobNotFound: unknown, malformed and another client's alike. */
async function owned(deps: ManageDeps, client: Client, jobId: string): Promise<Job> {
  if (!jobIdPattern.test(jobId)) throw new JobNotFound();
  const job = await deps.jobs.get(jobId.toLowerCase());
  // Another client's job does not exist, as far as this client can tell.
  if (!job || job.clientId !== client.clientId) throw new JobNotFound();
  return job;
}

/** GET /v1/jobs/{job_id}: the job as the store has it now. */
export async function getJob(deps: ManageDeps, client: Client, jobId: string): Promise<Job> {
  return owned(deps, client, jobId);
}

/** GET /v1/jobs: one page of the client's jobs, newest first (ports.ts's `JobStore.list` says what a page holds). */
export async function listJobs(deps: ManageDeps, client: Client, query: ListQuery): Promise<JobPage> {
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > 100) throw new InvalidRequest('limit: must be an integer from 1 to 100');
  try {
    return await deps.jobs.list(client.clientId, query);
  } catch (error) {
    if (error instanceof InvalidCursor) throw new InvalidRequest(`cursor: ${error.message}`);
    throw error;
  }
}

/**
 * A job's request as v1 shows it: the fields it was submitted with, a body of bytes as
 * `body_base64` (as v1 takes it), and the headers as they are sent, the `Idempotency-Key` waas
 * adds among them. The record leaves these out: the list would carry every job's headers and
 * body, and the seed's GET /status never showed them.
 */
export interface PublicRequest {
  url: string;
  method: JobRequest['method'];
  headers: Record<string, string>;
  body: string | null;
  body_base64?: string;
}

/** GET /v1/jobs/{job_id}/request: the request the job sends; InvalidRequest when it is no longer kept. */
export async function jobRequest(deps: ManageDeps, client: Client, jobId: string): Promise<PublicRequest> {
  const { request } = await ownedWithRequest(deps, client, jobId, 'shown');
  const { url, method, headers } = request;
  return request.bodyEncoding === 'base64' ? { url, method, headers, body: null, body_base64: request.body ?? '' } : { url, method, headers, body: request.body };
}

/** The client's job and its request, or JobNotFound as `owned`; InvalidRequest when its request is no longer kept. */
async function ownedWithRequest(deps: ManageDeps, client: Client, jobId: string, cannotBe: string): Promise<{ job: Job; request: JobRequest }> {
  if (!jobIdPattern.test(jobId)) throw new JobNotFound();
  const found = await deps.jobs.getWithRequest(jobId.toLowerCase());
  if (!found || found.job.clientId !== client.clientId) throw new JobNotFound();
  // Only a job finished before requests were kept for its whole retention can have lost it.
  if (!found.request) throw new InvalidRequest(`job_id: the job's request is no longer kept, so it cannot be ${cannotBe}`);
  return { job: found.job, request: found.request };
}

/** GET /v1/jobs/{job_id}/attempts: every attempt kept, oldest first. */
export async function jobAttempts(deps: ManageDeps, client: Client, jobId: string): Promise<Attempt[]> {
  const job = await owned(deps, client, jobId);
  return deps.jobs.attempts(job.jobId);
}

/**
 * DELETE /v1/jobs/{job_id}: the job cancelled, as written; JobIsFinal when it is final already
 * (also when its worker's answer made it final a moment before: of the two writes, one wins).
 */
export async function cancelJob(deps: ManageDeps, client: Client, jobId: string): Promise<Job> {
  const job = await owned(deps, client, jobId);
  if (isFinal(job.status)) throw new JobIsFinal(job.status);
  const lastUpdate = iso(deps.clock.now());
  let cancelled: Job;
  try {
    // The lease stays: a worker holding it records its attempt under it (deliver.ts), and the
    // job stays cancelled. Out of the sweeper's index, and a delayed job out of the due index
    // in the same write: nothing is left to do for it, and the release never sends it.
    cancelled = await deps.jobs.lease(
      job.jobId,
      { status: 'cancelled', notified: 'n/a', lastUpdate, remove: ['nextAttemptAt', 'nextNotifyAt', 'sweep', 'due'] },
      { statusIn: nonFinalStatuses },
    );
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    const now = await deps.jobs.get(job.jobId);
    if (!now) throw new JobNotFound();
    // Our own write, landed although its answer was lost (the SDK retried it and found it spent).
    if (now.status !== 'cancelled' || now.lastUpdate !== lastUpdate) throw new JobIsFinal(now.status);
    cancelled = now;
  }
  deps.telemetry?.count(metricNames.jobsCancelled);
  return cancelled;
}

/**
 * POST /v1/jobs/{job_id}/replay: a new job with the job's request (url, method, headers, body),
 * callback, attempts, timeout and callback attempts, stored and queued as submit does it; the old
 * job is left as it is. Its Idempotency-Key header is the new job's id where the old one's was
 * the one we added (the old job's id), and the client's own where the client set one.
 */
export async function replayJob(deps: ManageDeps, client: Client, jobId: string): Promise<Replayed> {
  const { job: old, request: oldRequest } = await ownedWithRequest(deps, client, jobId, 'replayed');
  // The egress policy may have changed since: the same refusal as at submit.
  await refuseUrls(deps, [['url', oldRequest.url], ['callback', old.callback]]);

  // A new job as submit makes one, with the old one's settings; its request is the old one's.
  const { job: made } = newJob(deps, client, {
    service: oldRequest.url,
    methodtype: oldRequest.method,
    callback: old.callback,
    max_attempts: old.maxAttempts,
    timeout_ms: old.timeoutMs,
    callback_max_attempts: old.callbackMaxAttempts,
    flow_key: old.flowKey,
    flow_rate: old.flowRate,
    flow_parallelism: old.flowParallelism,
  });
  const job: Job = { ...made, replayOf: old.jobId };
  const newId = job.jobId;
  const created = job.created;
  const headers = Object.fromEntries(
    Object.entries(oldRequest.headers).map(([name, value]) => [name, name.toLowerCase() === 'idempotency-key' && value === old.jobId ? newId : value]),
  );
  const request: JobRequest = { ...oldRequest, headers };
  await enqueue(deps, job, request);
  return { job_id: newId, created, status: 'accepted', replay_of: old.jobId };
}
