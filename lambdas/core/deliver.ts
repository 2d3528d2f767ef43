/**
 * One delivery attempt, of a job's service call or of its callback, from queue message to the
 * record's next state. SQS delivers at least once, perhaps twice at the same time; a lease
 * (a conditional write with an expiry) makes sure one worker runs an attempt, and a final job
 * is never run or called back again. An expired lease is taken over: the attempt it held is
 * run again under the same number.
 */
import { jobLimits, leaseMarginMs, submitWriteWindowMs } from '../../lib/definitions.ts';
import { activeSecrets, callbackBody, signCallback } from './callback.ts';
import { attemptLeaseMs, isFinal, notifyText, summarize, sweepShard, type AttemptOutput, type Job, type JobRequest } from './job.ts';
import {
  ConditionFailed,
  type ClientStore,
  type Clock,
  type DeliveryFacts,
  type HttpClient,
  type JobChanges,
  type JobStore,
  type QueueMessage,
  type WorkQueue,
} from './ports.ts';
import { judge, type RetryTiming } from './retry.ts';
import { retryTiming } from '../../lib/definitions.ts';

export interface DeliveryDeps {
  jobs: JobStore;
  clients: ClientStore;
  queue: WorkQueue;
  http: HttpClient;
  clock: Clock;
  timing?: RetryTiming;
  random?: () => number;
  /** Waits `ms` (default: a timer); tests inject one that moves their clock. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * How long a first delivery that finds no job waits for submit's write, read by read, before
 * it gives its message back to the queue (which cannot return it sooner than in a second).
 */
const earlyMessageWaitsMs = [20, 80] as const;

const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What becomes of the queue message: gone, or back after a delay. */
export type Outcome = { done: true } | { done: false; retryAfterMs: number };

const done: Outcome = { done: true };
const later = (retryAfterMs: number): Outcome => ({ done: false, retryAfterMs: Math.max(0, retryAfterMs) });
const iso = (ms: number) => new Date(ms).toISOString();
const nonFinal = ['accepted', 'started', 'running'] as const;

/**
 * Runs the job's next service call, if it is due and nobody else holds it. When the job becomes
 * final, its first callback attempt runs here too, under the same lease, and one write records
 * both: the callbacks queue only carries the callback's retries.
 */
export async function runJobAttempt(deps: DeliveryDeps, jobId: string, message: JobMessageFacts = {}): Promise<Outcome> {
  const lease = await leaseAttempt(deps, jobId, message);
  if ('done' in lease) return lease;
  const { job: held, request, attempt, leaseUntil } = lease;

  const output: AttemptOutput = request
    ? await deps.http.send({ ...request, timeoutMs: held.timeoutMs })
    : { started: held.lastUpdate, durationMs: 0, error: 'the job request record is missing' };
  const finished = deps.clock.now();
  const verdict = request
    ? judge(output, attempt, held.maxAttempts, finished, deps.timing ?? retryTiming, deps.random)
    : ({ kind: 'final', reason: output.error ?? '' } as const);

  const changes: JobChanges = {
    output,
    history: [...held.history, summarize(attempt, output)].slice(-jobLimits.attemptHistory),
    lastUpdate: iso(finished),
    remove: ['leaseUntil'],
  };
  let callbackRetryMs: number | undefined;
  if (verdict.kind === 'retry') {
    changes.status = 'running';
    changes.nextAttemptAt = finished + verdict.delayMs;
    // Waiting on a retry: the sweeper's safety net holds it until it settles.
    changes.sweep = sweepShard(jobId);
  } else {
    changes.status = verdict.kind === 'success' ? 'completed' : 'failed';
    if (!held.callback) changes.remove?.push('sweep');
    else {
      const settled: Job = { ...held, status: changes.status, output, lastUpdate: iso(finished) };
      const call = await callOnce(deps, settled, 1);
      const { remove: settledFields = [], ...callbackFields } = callbackChanges(jobId, call, 1);
      Object.assign(changes, callbackFields);
      changes.remove?.push(...settledFields);
      if (call.verdict.kind === 'retry') callbackRetryMs = call.verdict.delayMs;
    }
  }
  try {
    await deps.jobs.update(jobId, changes, { expect: { leaseUntil } });
  } catch (error) {
    // Our lease ran out and another worker took the attempt over: its result stands.
    if (error instanceof ConditionFailed) return done;
    throw error;
  }
  if (verdict.kind === 'retry') return later(verdict.delayMs);
  if (callbackRetryMs !== undefined) await deps.queue.send({ kind: 'callback', jobId }, callbackRetryMs);
  return done;
}

/** What the queue tells of a job's message: see QueueMessage and DeliveryFacts. */
export type JobMessageFacts = Pick<QueueMessage, 'leaseMs'> & DeliveryFacts;

interface Leased {
  job: Job;
  request?: JobRequest;
  attempt: number;
  leaseUntil: number;
}

/** Takes the lease of the job's next attempt, or says what becomes of the message instead. */
async function leaseAttempt(deps: DeliveryDeps, jobId: string, message: JobMessageFacts): Promise<Leased | Outcome> {
  if (message.leaseMs !== undefined && (message.receiveCount ?? 1) === 1) {
    // A first delivery nearly always finds its job as submit left it: take attempt 1 in one
    // conditional write, no read first. Anything else is found out below.
    const now = deps.clock.now();
    const leaseUntil = now + message.leaseMs;
    try {
      const { job, request } = await deps.jobs.take(
        jobId,
        { status: 'started', attempts: 1, leaseUntil, lastUpdate: iso(now) },
        { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined } },
      );
      return { job, request, attempt: 1, leaseUntil };
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }

  let job = await deps.jobs.get(jobId);
  // Submit sends the message before it stores the job: the message may be a moment early.
  for (const ms of message.receiveCount === 1 ? earlyMessageWaitsMs : []) {
    if (job) break;
    await (deps.sleep ?? timerSleep)(ms);
    job = await deps.jobs.get(jobId);
  }
  if (!job) return missing(deps, message);
  if (isFinal(job.status)) {
    // A redelivery after the job settled: make sure its callback is on its way, run nothing.
    if (job.notified === 'no') await deps.queue.send({ kind: 'callback', jobId });
    return done;
  }
  const now = deps.clock.now();
  if (job.leaseUntil !== undefined && job.leaseUntil > now) return later(job.leaseUntil - now);
  if (job.nextAttemptAt !== undefined && job.nextAttemptAt > now) return later(job.nextAttemptAt - now);

  const takeover = job.leaseUntil !== undefined;
  const attempt = takeover ? Math.max(job.attempts, 1) : job.attempts + 1;
  const leaseUntil = now + attemptLeaseMs(job);
  try {
    const { job: held, request } = await deps.jobs.take(
      jobId,
      { status: attempt === 1 ? 'started' : 'running', attempts: attempt, leaseUntil, lastUpdate: iso(now), remove: ['nextAttemptAt'] },
      { expect: { attempts: job.attempts, leaseUntil: job.leaseUntil }, statusIn: nonFinal, leaseFree: { lease: 'leaseUntil', now } },
    );
    return { job: held, request, attempt, leaseUntil };
  } catch (error) {
    if (error instanceof ConditionFailed) return afterLostRace(deps, jobId, 'leaseUntil');
    throw error;
  }
}

/**
 * A message whose job is not there. Submit sends the message before it writes the job, so the
 * message may simply be early; once the API could no longer be writing it, the submit failed
 * (its client was answered 503) and the message is dropped.
 */
function missing(deps: Pick<DeliveryDeps, 'clock'>, message: DeliveryFacts): Outcome {
  if (message.sentAt !== undefined && deps.clock.now() - message.sentAt < submitWriteWindowMs) return later(1_000);
  return done;
}

interface CallbackCall {
  output: AttemptOutput;
  verdict: ReturnType<typeof judge>;
  finished: number;
}

/** One signed POST of the settled job to its callback URL, and the verdict on it. */
async function callOnce(deps: DeliveryDeps, job: Job, attempt: number): Promise<CallbackCall> {
  const now = deps.clock.now();
  const client = await deps.clients.get(job.clientId);
  if (!client) {
    const output = { started: iso(now), durationMs: 0, error: 'the client no longer exists' };
    return { output, verdict: { kind: 'final', reason: output.error }, finished: now };
  }
  const body = callbackBody(job);
  const output = await deps.http.send({
    url: job.callback ?? '',
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signCallback(activeSecrets(client, now), job.jobId, new Date(now), body) },
    body,
    timeoutMs: jobLimits.callbackTimeoutMs,
  });
  const finished = deps.clock.now();
  return { output, verdict: judge(output, attempt, job.callbackMaxAttempts, finished, deps.timing ?? retryTiming, deps.random), finished };
}

/** What a callback attempt changes in the record. */
function callbackChanges(jobId: string, call: CallbackCall, attempt: number): JobChanges {
  const changes: JobChanges = { notifyAttempts: attempt, notifyoutput: notifyText(call.output), remove: [] };
  if (call.verdict.kind === 'retry') {
    changes.nextNotifyAt = call.finished + call.verdict.delayMs;
    changes.sweep = sweepShard(jobId);
  } else {
    changes.notified = call.verdict.kind === 'success' ? 'true' : 'notification failed';
    changes.remove?.push('sweep');
  }
  return changes;
}

/** Runs the settled job's next callback retry, if one is due and nobody else holds it. */
export async function runCallbackAttempt(deps: DeliveryDeps, jobId: string): Promise<Outcome> {
  const job = await deps.jobs.get(jobId);
  if (!job || !job.callback || job.notified !== 'no' || !isFinal(job.status)) return done;
  const now = deps.clock.now();
  if (job.notifyLeaseUntil !== undefined && job.notifyLeaseUntil > now) return later(job.notifyLeaseUntil - now);
  if (job.nextNotifyAt !== undefined && job.nextNotifyAt > now) return later(job.nextNotifyAt - now);

  const takeover = job.notifyLeaseUntil !== undefined;
  const attempt = takeover ? Math.max(job.notifyAttempts, 1) : job.notifyAttempts + 1;
  const notifyLeaseUntil = now + jobLimits.callbackTimeoutMs + leaseMarginMs;
  let held: Job;
  try {
    held = await deps.jobs.lease(
      jobId,
      { notifyAttempts: attempt, notifyLeaseUntil, remove: ['nextNotifyAt'] },
      { expect: { notified: 'no', notifyAttempts: job.notifyAttempts, notifyLeaseUntil: job.notifyLeaseUntil }, leaseFree: { lease: 'notifyLeaseUntil', now } },
    );
  } catch (error) {
    if (error instanceof ConditionFailed) return afterLostRace(deps, jobId, 'notifyLeaseUntil');
    throw error;
  }

  const call = await callOnce(deps, held, attempt);
  const changes = callbackChanges(jobId, call, attempt);
  changes.remove?.push('notifyLeaseUntil');
  try {
    await deps.jobs.update(jobId, changes, { expect: { notifyLeaseUntil } });
  } catch (error) {
    if (error instanceof ConditionFailed) return done;
    throw error;
  }
  return call.verdict.kind === 'retry' ? later(call.verdict.delayMs) : done;
}

/** Another worker moved the job between our read and our write: look at where it stands now. */
async function afterLostRace(deps: DeliveryDeps, jobId: string, lease: 'leaseUntil' | 'notifyLeaseUntil'): Promise<Outcome> {
  const job = await deps.jobs.get(jobId);
  if (!job) return done;
  if (lease === 'leaseUntil' ? isFinal(job.status) : job.notified !== 'no') return done;
  const until = job[lease];
  const now = deps.clock.now();
  return later(until !== undefined && until > now ? until - now : 0);
}

/**
 * A message that SQS gave up on (dead-lettered): the job or its callback is settled as failed
 * so that it ends, visibly, rather than waiting forever.
 */
export async function settleDeadLetter(deps: Pick<DeliveryDeps, 'jobs' | 'queue' | 'clock'>, kind: 'job' | 'callback', jobId: string): Promise<void> {
  const now = deps.clock.now();
  const reason = `abandoned: the ${kind} message was dead-lettered after repeated failed deliveries`;
  try {
    if (kind === 'job') {
      const job = await deps.jobs.get(jobId);
      if (!job) return;
      await deps.jobs.update(
        jobId,
        {
          status: 'failed',
          output: { started: iso(now), durationMs: 0, error: reason },
          history: job.history,
          lastUpdate: iso(now),
          remove: job.callback ? ['leaseUntil', 'nextAttemptAt'] : ['leaseUntil', 'nextAttemptAt', 'sweep'],
        },
        { statusIn: nonFinal },
      );
      if (job.callback) await deps.queue.send({ kind: 'callback', jobId });
    } else {
      await deps.jobs.update(
        jobId,
        { notified: 'notification failed', notifyoutput: reason, remove: ['notifyLeaseUntil', 'nextNotifyAt', 'sweep'] },
        { expect: { notified: 'no' } },
      );
    }
  } catch (error) {
    // Already settled (or gone): nothing to do.
    if (!(error instanceof ConditionFailed)) throw error;
  }
}
