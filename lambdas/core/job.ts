/**
 * The Job: what a client asked us to call, where it stands, and what the last attempt saw.
 *
 * A job moves accepted → started → running → completed | failed:
 * - accepted: stored and queued, no worker has taken it yet;
 * - started: a worker holds its first attempt;
 * - running: it has been tried and waits for, or is in, a retry;
 * - completed: the service answered 2xx; failed: a final answer, attempts exhausted, or refused.
 * Its callback is settled apart: notified "no" → "true" | "notification failed" ("n/a" without one).
 */
import { jobLimits, leaseMarginMs } from '../../lib/definitions.ts';

export const jobStatuses = ['accepted', 'started', 'running', 'completed', 'failed'] as const;
export type JobStatus = (typeof jobStatuses)[number];
export const finalStatuses: readonly JobStatus[] = ['completed', 'failed'];
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
  /** Epoch ms before which no attempt starts (a scheduled retry). */
  nextAttemptAt?: number;
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
