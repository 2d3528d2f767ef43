/**
 * One delivery attempt, of a job's service call or of its callback, from queue message to the
 * record's next state. SQS delivers at least once, perhaps twice at the same time; a lease
 * (a conditional write with an expiry) makes sure one worker runs an attempt, and a final job
 * is never run or called back again. An expired lease is taken over: the attempt it held is
 * run again under the same number.
 *
 * Every wait ends the same way: the attempt returns `later(ms)` and the message that carries
 * the work is handed back to its queue, due then (retry.ts says how long). A job's message
 * carries its service call and, once the job is final, its callback's retries too.
 *
 * A job cancelled (core/manage.ts) is final: no attempt is taken of it after that. An attempt
 * whose lease was held when the cancel landed runs to its end and is recorded, under its lease,
 * with the job left cancelled and no callback made.
 */
import { flowTiming, jobLimits, metricNames, retryTiming, submitWriteWindowMs } from '../../lib/definitions.ts';
import { activeSecrets, callbackBody, signCallback } from './callback.ts';
import { waitsInStore } from './delay.ts';
import type { Admission, FlowGate, FlowTicket } from './flow.ts';
import { attemptLeaseMs, callbackLeaseMs, flowTicketOf, isFinal, nonFinalStatuses, notifyText, summarize, sweepShard, type AttemptOutput, type Job, type JobRequest } from './job.ts';
import {
  ConditionFailed,
  type ClientStore,
  type Clock,
  type DeliveryFacts,
  type HttpClient,
  type JobChanges,
  type JobCondition,
  type JobStore,
  type QueueMessage,
  type Telemetry,
  type WorkQueue,
} from './ports.ts';
import { earlyMessageRereadsMs, heldBackMs, judge, missingJobRetryMs, retryAfterMs, untilMs, type RetryTiming } from './retry.ts';

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
  telemetry?: Telemetry;
  /** Flow control (core/flow.ts): without it, flow keys limit nothing (tests that do not look at them). */
  flow?: FlowGate;
}

const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * What becomes of the queue message: gone, or back after a delay. `resend`: instead of the same
 * message handed back, this one sent afresh, due then (a job held back by its flow key: its waits
 * do not count as receives, so however long its key's line, it is never dead-lettered for it).
 */
export type Outcome = { done: true } | { done: false; retryAfterMs: number; resend?: QueueMessage };

const done: Outcome = { done: true };
const later = (retryAfterMs: number): Outcome => ({ done: false, retryAfterMs: Math.max(0, retryAfterMs) });
const iso = (ms: number) => new Date(ms).toISOString();
const nonFinal = nonFinalStatuses;

/** Whether work that holds a lease of `leaseMs` from `now` ends before the handler's deadline. */
const fitsBefore = (facts: DeliveryFacts, now: number, leaseMs: number) => facts.deadline === undefined || now + leaseMs <= facts.deadline;

/**
 * Runs the job's next service call, if it is due and nobody else holds it. The answer is
 * recorded as soon as it arrives; when it makes the job final, the same write takes the lease of
 * the first callback attempt, which runs next, here. Only a crash between an answer and its
 * write can make a service call run twice. An answer that is followed by a retry is kept apart
 * first (the job's output will be the next attempt's), so that every attempt can be listed.
 */
export async function runJobAttempt(deps: DeliveryDeps, jobId: string, message: JobMessageFacts = {}): Promise<Outcome> {
  const lease = await leaseAttempt(deps, jobId, message);
  if (!('job' in lease)) return lease;
  // The flow key's slot goes once the attempt is recorded (or lost), before the callback.
  let released: Promise<void> | undefined;
  const release = () => (released ??= releaseStart(deps, jobId, lease.start));
  try {
    return await attemptUnderLease(deps, jobId, lease, release);
  } finally {
    await release();
  }
}

async function attemptUnderLease(deps: DeliveryDeps, jobId: string, lease: Leased, release: () => Promise<void>): Promise<Outcome> {
  const { job: held, request, attempt, leaseUntil } = lease;

  const output: AttemptOutput = request
    ? await deps.http.send({ ...request, timeoutMs: held.timeoutMs })
    : { started: held.lastUpdate, durationMs: 0, error: 'the job request record is missing' };
  const finished = deps.clock.now();
  const verdict = request
    ? judge(output, attempt, held.maxAttempts, finished, deps.timing ?? retryTiming, deps.random)
    : ({ kind: 'final', reason: output.error ?? '' } as const);
  await pauseFlow(deps, lease.start, output, finished);

  const changes: JobChanges = {
    output,
    history: [...held.history, summarize(attempt, output)].slice(-jobLimits.attemptHistory),
    lastUpdate: iso(finished),
    remove: ['leaseUntil'],
  };
  const notifyLeaseUntil = finished + callbackLeaseMs;
  if (verdict.kind === 'retry') {
    changes.status = 'running';
    changes.nextAttemptAt = finished + verdict.delayMs;
    // Waiting on a retry: the sweeper's safety net holds it until it settles.
    changes.sweep = sweepShard(jobId);
  } else {
    changes.status = verdict.kind === 'success' ? 'completed' : 'failed';
    if (held.callback) Object.assign(changes, { notifyAttempts: 1, notifyLeaseUntil });
    else changes.remove?.push('sweep');
  }
  // Kept before the write that records it: whoever finds the retry on the job finds this attempt.
  // The lease's margin is sized for one write (awsCallWorstCaseMs); two at their worst outlast
  // it, which lets a takeover run this attempt again only if a message for it comes meanwhile
  // (the record's condition is our lease, not its expiry): at least once, as ever.
  if (verdict.kind === 'retry') await deps.jobs.keepAttempt(jobId, { ...output, attempt }, held.expiresAt);
  const recorded = await recordAttempt(deps, jobId, changes, leaseUntil);
  await release();
  // Refused: our lease ran out and another worker took the attempt over; its result stands.
  if (recorded === 'lost') return done;
  deps.telemetry?.duration(metricNames.attemptDuration, output.durationMs);
  // Cancelled while it ran: recorded as it was, no verdict on the job, no callback.
  if (recorded === 'cancelled') return done;
  deps.telemetry?.count(verdict.kind === 'retry' ? metricNames.retriesScheduled : verdict.kind === 'success' ? metricNames.jobsCompleted : metricNames.jobsFailed);
  if (verdict.kind === 'retry') return later(verdict.delayMs);
  if (!held.callback) return done;
  const settled: Job = { ...held, status: changes.status, output, lastUpdate: iso(finished), notifyAttempts: 1, notifyLeaseUntil };
  return callBack(deps, settled, 1, notifyLeaseUntil);
}

/** What the queue tells of a job's message: see QueueMessage and DeliveryFacts. */
export type JobMessageFacts = Pick<QueueMessage, 'leaseMs' | 'flow' | 'held'> & DeliveryFacts;

/** A start its flow key let in: the slot to let go once the attempt is recorded. */
interface FlowStart {
  ticket: FlowTicket;
  admission: Admission;
}

interface Leased {
  job: Job;
  request?: JobRequest;
  attempt: number;
  leaseUntil: number;
  start?: FlowStart;
}

/** Where an attempt may begin: when its lease ends, and the flow key's start it holds (if any). */
interface Admitted {
  leaseUntil: number;
  now: number;
  start?: FlowStart;
}

/**
 * Asks the job's flow key for a start of `leaseMs` (a job without one starts at once): waits for
 * it in the worker, a time drawn from flowTiming.waitInWorkerMs at most and the handler's deadline less `needMs`,
 * or holds the job back: its message is sent afresh, due when the key should have room (no
 * lease taken, no attempt spent, its status untouched). `first`: the message may take the job's
 * first attempt without a read (core/submit.ts's firstMessage), and so may the one sent afresh.
 */
async function admitStart(deps: DeliveryDeps, ticket: FlowTicket | undefined, jobId: string, leaseMs: number, needMs: number, message: JobMessageFacts, first: boolean): Promise<Admitted | Outcome> {
  const asked = deps.clock.now();
  if (!ticket || !deps.flow) return { leaseUntil: asked + leaseMs, now: asked };
  const { min, max } = flowTiming.waitInWorkerMs;
  const drawn = min + (deps.random ?? Math.random)() * (max - min);
  const budget = Math.min(drawn, message.deadline === undefined ? Infinity : message.deadline - asked - needMs);
  const admission = await deps.flow.admit(ticket, jobId, leaseMs, budget);
  if (admission.granted) return { leaseUntil: admission.leaseUntil, now: deps.clock.now(), start: { ticket, admission } };
  const times = message.held ?? 0;
  // A key that is full says nothing of when a slot frees: only a pause or the rate's next start is a wait to add.
  const keyWaitMs = admission.reason === 'paused' || admission.reason === 'rate' ? admission.waitMs : 0;
  const resend: QueueMessage = { kind: 'job', jobId, ...(first && message.leaseMs !== undefined ? { leaseMs: message.leaseMs } : {}), flow: ticket, held: times + 1 };
  return { done: false, retryAfterMs: heldBackMs(keyWaitMs, times, deps.random), resend };
}

/** Lets a flow key's slot go; where that fails, the slot frees itself when its lease ends. */
async function releaseStart(deps: DeliveryDeps, jobId: string, start: FlowStart | undefined): Promise<void> {
  if (!start || !deps.flow) return;
  await deps.flow.release(start.ticket, jobId, start.admission).catch(() => undefined);
}

/**
 * A 429 or 503 with Retry-After holds back every job of the key until then, not only this one
 * (whose own retry honours it too). Where the pause cannot be written, this job's retry still waits.
 */
async function pauseFlow(deps: DeliveryDeps, start: FlowStart | undefined, output: AttemptOutput, finished: number): Promise<void> {
  if (!start || !deps.flow || output.error !== undefined || (output.statusCode !== 429 && output.statusCode !== 503)) return;
  const ms = retryAfterMs(output.headers?.['retry-after'], finished, (deps.timing ?? retryTiming).maxRetryAfterMs);
  if (ms === undefined || ms <= 0) return;
  await deps.flow.pause(start.ticket, finished + ms).catch(() => undefined);
}

/** `take`, letting the flow key's start go again when the take fails. */
async function takeStarted(deps: DeliveryDeps, jobId: string, admitted: Admitted, changes: JobChanges, condition: JobCondition) {
  try {
    return await deps.jobs.take(jobId, changes, condition);
  } catch (error) {
    await releaseStart(deps, jobId, admitted.start);
    throw error;
  }
}

/** Takes the lease of the job's next attempt, or says what becomes of the message instead. */
async function leaseAttempt(deps: DeliveryDeps, jobId: string, message: JobMessageFacts): Promise<Leased | Outcome> {
  if (message.leaseMs !== undefined && (message.receiveCount ?? 1) === 1) {
    // A first delivery nearly always finds its job as submit left it: take attempt 1 in one
    // conditional write, no read first. Anything else is found out below. A delayed job's
    // message is held by the queue until its time, and the write asks that it be due, so a
    // message that came early (a clock apart, a restart's re-send) never starts it early.
    const needMs = message.leaseMs + jobLimits.callbackTimeoutMs;
    if (!fitsBefore(message, deps.clock.now(), needMs)) return later(0);
    const admitted = await admitStart(deps, message.flow, jobId, message.leaseMs, needMs, message, true);
    if (!('leaseUntil' in admitted)) return admitted;
    const { now, leaseUntil } = admitted;
    try {
      const { job, request } = await takeStarted(
        deps,
        jobId,
        admitted,
        { status: 'started', attempts: 1, leaseUntil, lastUpdate: iso(now), remove: ['nextAttemptAt', 'due'] },
        // A message without its key's ticket (the release's, which reads no job) takes only a job
        // that has no key: one with a key is found out below, and asks its key first.
        { expect: { status: 'accepted', attempts: 0, leaseUntil: undefined, ...(message.flow ? {} : { flowKey: undefined }) }, dueBy: now },
      );
      return { job, request, attempt: 1, leaseUntil, ...(admitted.start ? { start: admitted.start } : {}) };
    } catch (error) {
      if (!(error instanceof ConditionFailed)) throw error;
    }
  }

  let job = await deps.jobs.get(jobId);
  for (const ms of message.receiveCount === 1 ? earlyMessageRereadsMs : []) {
    if (job) break;
    await (deps.sleep ?? timerSleep)(ms);
    job = await deps.jobs.get(jobId);
  }
  if (!job) return missing(deps, message);
  // Settled by its answer, with a callback still to make: this message carries the callback's attempts.
  if (isFinal(job.status)) return callbackAttempt(deps, job, message);
  const read = deps.clock.now();
  if (job.leaseUntil !== undefined && job.leaseUntil > read) return later(untilMs(job.leaseUntil, read));
  // A delayed job that still waits in the store beyond the queue's reach: the release sends its
  // message when it is near; this one (a message too many) is dropped rather than kept for months.
  if (job.due !== undefined && job.nextAttemptAt !== undefined && waitsInStore(job.nextAttemptAt, read)) return done;
  if (job.nextAttemptAt !== undefined && job.nextAttemptAt > read) return later(untilMs(job.nextAttemptAt, read));
  const needMs = attemptLeaseMs(job) + (job.callback ? jobLimits.callbackTimeoutMs : 0);
  if (!fitsBefore(message, read, needMs)) return later(0);
  const admitted = await admitStart(deps, flowTicketOf(job), jobId, attemptLeaseMs(job), needMs, message, false);
  if (!('leaseUntil' in admitted)) return admitted;

  const { now, leaseUntil } = admitted;
  const takeover = job.leaseUntil !== undefined;
  const attempt = takeover ? Math.max(job.attempts, 1) : job.attempts + 1;
  try {
    const { job: held, request } = await takeStarted(
      deps,
      jobId,
      admitted,
      { status: attempt === 1 ? 'started' : 'running', attempts: attempt, leaseUntil, lastUpdate: iso(now), remove: ['nextAttemptAt', 'due'] },
      { expect: { attempts: job.attempts, leaseUntil: job.leaseUntil }, statusIn: nonFinal, leaseFree: { lease: 'leaseUntil', now } },
    );
    return { job: held, request, attempt, leaseUntil, ...(admitted.start ? { start: admitted.start } : {}) };
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    return afterLostRace(deps, jobId, 'leaseUntil');
  }
}

/**
 * Records a service call's attempt under the lease held until `leaseUntil`, on a job that is not
 * final: `recorded`. A job cancelled while we held the lease (a cancel leaves the lease as it is)
 * gets the attempt's output, history and time under that same lease, and stays cancelled:
 * `cancelled`. Anything else is another worker's (our lease ran out and was taken over): `lost`.
 * Each write refused only because it had landed already (see `landed`) stands.
 */
async function recordAttempt(deps: DeliveryDeps, jobId: string, changes: JobChanges, leaseUntil: number): Promise<'recorded' | 'cancelled' | 'lost'> {
  try {
    await deps.jobs.update(jobId, changes, { expect: { leaseUntil }, statusIn: nonFinal });
    return 'recorded';
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
  }
  const job = await deps.jobs.get(jobId);
  if (!job) return 'lost';
  if (shows(job, changes)) return 'recorded';
  const { output, history, lastUpdate } = changes;
  const kept: JobChanges = { output, history, lastUpdate, remove: ['leaseUntil'] };
  if (job.status !== 'cancelled' || job.leaseUntil !== leaseUntil) return 'lost';
  return (await recordUnderLease(deps, jobId, kept, { leaseUntil, status: 'cancelled' })) ? 'cancelled' : 'lost';
}

/**
 * Records an attempt's `changes` under the lease `held` names; whether they stand: written, or
 * refused only because they had landed already (see `landed`).
 */
async function recordUnderLease(deps: DeliveryDeps, jobId: string, changes: JobChanges, held: JobCondition['expect']): Promise<boolean> {
  try {
    await deps.jobs.update(jobId, changes, { expect: held });
    return true;
  } catch (error) {
    if (!(error instanceof ConditionFailed)) throw error;
    return landed(deps, jobId, changes);
  }
}

/**
 * Whether a write refused by its condition is our own that landed: the store's client retried a
 * write whose answer was lost, and the retry found the condition spent by the first. The job
 * then shows what the write set, to the millisecond of the attempt's end, which no other
 * worker's write has (another can only have taken over after our lease ran out). A lease's
 * write gets no such look: two workers may compute the same instant, and only one may hold it
 * (a lease whose answer was lost is waited out, then taken over).
 */
async function landed(deps: DeliveryDeps, jobId: string, changes: JobChanges): Promise<boolean> {
  const job = await deps.jobs.get(jobId);
  return job !== undefined && shows(job, changes);
}

/** Whether the job shows what `changes` set and removed (see `landed`). */
function shows(job: Job, changes: JobChanges): boolean {
  const written = ['lastUpdate', 'status', 'attempts', 'notifyAttempts', 'notifyLeaseUntil', 'notified', 'nextAttemptAt', 'nextNotifyAt'] as const;
  return written.every((field) => changes[field] === undefined || job[field] === changes[field]) && (changes.remove ?? []).every((field) => job[field] === undefined);
}

/**
 * A message whose job is not there. Submit sends the message before it writes the job, so the
 * message may simply be early; once the API could no longer be writing it, the submit failed
 * (its client was answered 503) and the message is dropped.
 */
function missing(deps: Pick<DeliveryDeps, 'clock'>, message: DeliveryFacts): Outcome {
  if (message.sentAt !== undefined && deps.clock.now() - message.sentAt < submitWriteWindowMs) return later(missingJobRetryMs(message.receiveCount ?? 1));
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

/** Makes callback attempt `attempt` under the lease held until `notifyLeaseUntil`, and records it. */
async function callBack(deps: DeliveryDeps, job: Job, attempt: number, notifyLeaseUntil: number): Promise<Outcome> {
  const call = await callOnce(deps, job, attempt);
  const changes: JobChanges = { notifyAttempts: attempt, notifyoutput: notifyText(call.output), remove: ['notifyLeaseUntil'] };
  if (call.verdict.kind === 'retry') {
    changes.nextNotifyAt = call.finished + call.verdict.delayMs;
    changes.sweep = sweepShard(job.jobId);
  } else {
    changes.notified = call.verdict.kind === 'success' ? 'true' : 'notification failed';
    changes.remove?.push('sweep');
  }
  // Refused: our lease ran out and another worker took the attempt over; its result stands.
  if (!(await recordUnderLease(deps, job.jobId, changes, { notifyLeaseUntil }))) return done;
  tellCallback(deps.telemetry, call.verdict.kind);
  return call.verdict.kind === 'retry' ? later(call.verdict.delayMs) : done;
}

function tellCallback(telemetry: Telemetry | undefined, verdict: CallbackCall['verdict']['kind']): void {
  if (!telemetry) return;
  if (verdict === 'success') return telemetry.count(metricNames.callbacksDelivered);
  telemetry.count(metricNames.callbackFailures);
  telemetry.count(verdict === 'retry' ? metricNames.retriesScheduled : metricNames.callbacksAbandoned);
}

/** Runs the settled job's next callback attempt, if one is due and nobody else holds it. */
export async function runCallbackAttempt(deps: DeliveryDeps, jobId: string, facts: DeliveryFacts = {}): Promise<Outcome> {
  const job = await deps.jobs.get(jobId);
  return job ? callbackAttempt(deps, job, facts) : done;
}

async function callbackAttempt(deps: DeliveryDeps, job: Job, facts: DeliveryFacts): Promise<Outcome> {
  if (!job.callback || job.notified !== 'no' || !isFinal(job.status)) return done;
  const now = deps.clock.now();
  if (job.notifyLeaseUntil !== undefined && job.notifyLeaseUntil > now) return later(untilMs(job.notifyLeaseUntil, now));
  if (job.nextNotifyAt !== undefined && job.nextNotifyAt > now) return later(untilMs(job.nextNotifyAt, now));
  if (!fitsBefore(facts, now, callbackLeaseMs)) return later(0);

  const takeover = job.notifyLeaseUntil !== undefined;
  const attempt = takeover ? Math.max(job.notifyAttempts, 1) : job.notifyAttempts + 1;
  const notifyLeaseUntil = now + callbackLeaseMs;
  let held: Job;
  try {
    held = await deps.jobs.lease(
      job.jobId,
      { notifyAttempts: attempt, notifyLeaseUntil, remove: ['nextNotifyAt'] },
      { expect: { notified: 'no', notifyAttempts: job.notifyAttempts, notifyLeaseUntil: job.notifyLeaseUntil }, leaseFree: { lease: 'notifyLeaseUntil', now } },
    );
  } catch (error) {
    if (error instanceof ConditionFailed) return afterLostRace(deps, job.jobId, 'notifyLeaseUntil');
    throw error;
  }
  return callBack(deps, held, attempt, notifyLeaseUntil);
}

/** Another worker moved the job between our read and our write: look at where it stands now. */
async function afterLostRace(deps: DeliveryDeps, jobId: string, lease: 'leaseUntil' | 'notifyLeaseUntil'): Promise<Outcome> {
  const job = await deps.jobs.get(jobId);
  if (!job) return done;
  // Settled meanwhile: what is left (a callback, for a job lease) is found by the next read.
  if (lease === 'leaseUntil' ? isFinal(job.status) && job.notified !== 'no' : job.notified !== 'no') return done;
  const until = job[lease === 'leaseUntil' && isFinal(job.status) ? 'notifyLeaseUntil' : lease];
  return later(until === undefined ? 0 : untilMs(until, deps.clock.now()));
}

/**
 * A message that SQS gave up on (dead-lettered): the job or its callback is settled as failed
 * so that it ends, visibly, rather than waiting forever. A job's message may have been carrying
 * its callback's retries: then it is the callback that is given up on.
 */
export async function settleDeadLetter(deps: Pick<DeliveryDeps, 'jobs' | 'queue' | 'clock' | 'telemetry'>, kind: 'job' | 'callback', jobId: string): Promise<void> {
  const now = deps.clock.now();
  const reason = `abandoned: the ${kind} message was dead-lettered after repeated failed deliveries`;
  try {
    const job = await deps.jobs.get(jobId);
    if (!job) return;
    if (kind === 'job' && !isFinal(job.status)) {
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
      deps.telemetry?.count(metricNames.jobsFailed);
      // The job's message is gone: its callback gets one of its own.
      if (job.callback) await deps.queue.send({ kind: 'callback', jobId });
    } else if (job.notified === 'no') {
      await deps.jobs.update(
        jobId,
        { notified: 'notification failed', notifyoutput: reason, remove: ['notifyLeaseUntil', 'nextNotifyAt', 'sweep'] },
        { expect: { notified: 'no' } },
      );
      deps.telemetry?.count(metricNames.callbacksAbandoned);
    }
  } catch (error) {
    // Already settled meanwhile: nothing to do.
    if (!(error instanceof ConditionFailed)) throw error;
  }
}
