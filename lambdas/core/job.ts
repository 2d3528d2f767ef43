/**
 * The Job: what a client asked us to call, where it stands, and what the last attempt saw.
 *
 * A job moves accepted → started → running → completed | failed | cancelled:
 * - accepted: stored and queued, no worker has taken it yet;
 * - started: a worker holds its first attempt;
 * - running: it has been tried and waits for, or is in, a retry;
 * - completed: the service answered 2xx; failed: a final answer, attempts exhausted, or refused;
 * - cancelled: its client cancelled it before it was final (core/manage.ts): no attempt starts
 *   after that, and it gets no callback.
 * Its callback is settled apart: notified "no" → "true" | "notification failed" ("n/a" without
 * one, or once cancelled).
 */
import { jobLimits, leaseMarginMs } from '../../lib/definitions.ts';
import type { FlowTicket } from './flow.ts';

export const jobStatuses = ['accepted', 'started', 'running', 'completed', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const finalStatuses: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];
/** The statuses a job may still move from: an attempt may be taken, or the job cancelled. */
export const nonFinalStatuses: readonly JobStatus[] = jobStatuses.filter((status) => !finalStatuses.includes(status));
export const isFinal = (status: JobStatus): boolean => finalStatuses.includes(status);

export type Notified = 'no' | 'true' | 'notification failed' | 'n/a';

export const methods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'] as const;
export type Method = (typeof methods)[number];

/** The request a job makes: written once at submit, read by every attempt. */
export interface JobRequest {
  url: string;
  method: Method;
  headers: Record<string, string>;
  /** The body as sent, or null for none. */
  body: string | null;
  /** `base64`: the body is bytes (v1's `body_base64`), held as base64 text; absent: UTF-8 text. */
  bodyEncoding?: 'base64';
}

/** What one attempt saw: an answer, or the error that prevented one. */
export interface AttemptOutput {
  /** When the attempt started (ISO-8601). */
  started: string;
  durationMs: number;
  /** The HTTP status code, when the target answered. */
  statusCode?: number;
  headers?: Record<string, string>;
  /** The response body, cut at jobLimits.responseBodyBytes; base64 when it is not UTF-8 text. */
  body?: string;
  bodyEncoding?: 'utf8' | 'base64';
  /** The full size of the response body in bytes, counted to the end even when cut. */
  bodyBytes?: number;
  /** True when `body` holds less than the whole response. */
  truncated?: boolean;
  /** Why there is no answer: "timeout", a network error, or the egress policy's refusal. */
  error?: string;
}

/** One attempt as GET /v1/jobs/{id}/attempts lists it: what it saw, and its number. */
export type Attempt = AttemptOutput & { attempt: number };

/** One line of a job's attempt history: no bodies, so the history stays small. */
export interface AttemptSummary {
  attempt: number;
  started: string;
  durationMs: number;
  statusCode?: number;
  error?: string;
}

/** The job's state record: small, rewritten at each transition. */
export interface Job {
  jobId: string;
  clientId: string;
  created: string;
  lastUpdate: string;
  service: string;
  methodtype: Method;
  callback: string | null;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  timeoutMs: number;
  output: AttemptOutput | null;
  history: AttemptSummary[];
  /** Epoch ms before which no attempt starts (a scheduled retry, or a delayed job's first attempt). */
  nextAttemptAt?: number;
  /**
   * The due index's bucket ("<minute>#<shard>", core/delay.ts): present while a delayed job
   * waits in the store for the release to send its message (it is due beyond SQS's 15 minutes).
   */
  due?: string;
  /** Epoch ms until which one worker holds the current attempt. */
  leaseUntil?: number;
  notified: Notified;
  notifyoutput: string | null;
  notifyAttempts: number;
  callbackMaxAttempts: number;
  notifyLeaseUntil?: number;
  /** Epoch ms before which no callback attempt starts (a scheduled callback retry). */
  nextNotifyAt?: number;
  /**
   * The unsettled index's shard: present while the job waits on a retry of its call or its
   * callback (or, where the queue is volatile, from submit on), gone once both are settled.
   */
  sweep?: string;
  /** Epoch seconds when the store may forget the job. */
  expiresAt: number;
  /** The job this one replays (POST /v1/jobs/{id}/replay made it with that job's request). */
  replayOf?: string;
  /** v1's flow control (core/flow.ts): the key its attempts are counted under, within its client, and the settings it brought. */
  flowKey?: string;
  flowRate?: number;
  flowParallelism?: number;
  /** The schedule whose run made this job (core/schedules.ts). */
  scheduleId?: string;
}

/**
 * How long a worker holds an attempt of the service call: its timeout, and a margin for the
 * write that records it. The callback after it has a lease of its own (`callbackLeaseMs`),
 * taken by that same write.
 */
export const attemptLeaseMs = (job: Pick<Job, 'timeoutMs'>): number => job.timeoutMs + leaseMarginMs;

/** How long a worker holds a callback attempt: its timeout and the margin for its write. */
export const callbackLeaseMs = jobLimits.callbackTimeoutMs + leaseMarginMs;

/** The unsettled index's shard of a job. */
export const sweepShard = (jobId: string): string => jobId.charAt(0).toLowerCase();

/** Settled: final, and its callback (if any) settled too. Nothing more will happen to it. */
export const isSettled = (job: Pick<Job, 'status' | 'notified'>): boolean => isFinal(job.status) && job.notified !== 'no';

/** The job record as GET /status shows it: the contract's fields, none of the bookkeeping. */
export function publicRecord(job: Job): Record<string, unknown> {
  return {
    jobId: job.jobId,
    clientId: job.clientId,
    created: job.created,
    lastUpdate: job.lastUpdate,
    service: job.service,
    methodtype: job.methodtype,
    callback: job.callback,
    status: job.status,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    timeout_ms: job.timeoutMs,
    next_attempt_at: job.nextAttemptAt === undefined ? null : new Date(job.nextAttemptAt).toISOString(),
    output: job.output,
    history: job.history,
    notified: job.notified,
    notifyoutput: job.notifyoutput,
    notify_attempts: job.notifyAttempts,
    callback_max_attempts: job.callbackMaxAttempts,
    ...(job.replayOf !== undefined ? { replay_of: job.replayOf } : {}),
    ...(job.flowKey !== undefined ? { flow_key: job.flowKey } : {}),
    ...(job.flowRate !== undefined ? { flow_rate: job.flowRate } : {}),
    ...(job.flowParallelism !== undefined ? { flow_parallelism: job.flowParallelism } : {}),
    ...(job.scheduleId !== undefined ? { schedule_id: job.scheduleId } : {}),
  };
}

/** What a job asks of its flow key, if it has one. */
export function flowTicketOf(job: Pick<Job, 'clientId' | 'created' | 'flowKey' | 'flowRate' | 'flowParallelism'>): FlowTicket | undefined {
  if (job.flowKey === undefined) return undefined;
  return {
    clientId: job.clientId,
    key: job.flowKey,
    created: job.created,
    ...(job.flowRate !== undefined ? { rate: job.flowRate } : {}),
    ...(job.flowParallelism !== undefined ? { parallelism: job.flowParallelism } : {}),
  };
}

/** The seed's `job_output`: the last attempt as one line of text. */
export function outputText(output: AttemptOutput | null): string | null {
  if (!output) return null;
  if (output.error !== undefined) return output.error;
  return output.bodyEncoding === 'base64' ? `(${output.bodyBytes ?? 0} bytes of binary)` : (output.body ?? '');
}

/** A callback's last outcome as the record's `notifyoutput`. */
export function notifyText(output: AttemptOutput): string {
  return output.error ?? String(output.statusCode);
}

export function summarize(attempt: number, output: AttemptOutput): AttemptSummary {
  const summary: AttemptSummary = { attempt, started: output.started, durationMs: output.durationMs };
  if (output.statusCode !== undefined) summary.statusCode = output.statusCode;
  if (output.error !== undefined) summary.error = output.error;
  return summary;
}

/** Whether `output` is the attempt `summary` sums up (and not, say, a dead letter's reason, which no attempt saw). */
const sumsUp = (summary: AttemptSummary, output: AttemptOutput): boolean =>
  summary.started === output.started && summary.durationMs === output.durationMs && summary.statusCode === output.statusCode && summary.error === output.error;

/**
 * Every attempt of a job, oldest first, from what the store keeps of them: `kept`, the output of
 * each attempt that was followed by a retry (an item of its own), and the job, whose `output` is
 * its last attempt and whose `history` sums up each attempt. One per number: the job's output
 * where it is that attempt's (it is what the record shows), else the kept output (a run of that
 * number whose record write was lost, say), else its history line (an attempt from before
 * outputs were kept: its time, duration and status code or error).
 */
export function attemptsOf(job: Pick<Job, 'output' | 'history'>, kept: readonly Attempt[]): Attempt[] {
  const byNumber = new Map<number, Attempt>();
  for (const summary of job.history) byNumber.set(summary.attempt, { ...summary });
  for (const attempt of kept) byNumber.set(attempt.attempt, attempt);
  const last = job.history.at(-1);
  if (last && job.output && sumsUp(last, job.output)) byNumber.set(last.attempt, { ...job.output, attempt: last.attempt });
  return [...byNumber.values()].sort((a, b) => a.attempt - b.attempt);
}
