/** How the console writes what the API answers: times, durations, statuses, failures. */
import { WaasError, type JobRecord, type JobStatus } from '@waas/client';

/**
 * Every status, in the order a job goes through them: the filter lists them so. Written once, as
 * the keys of a record of them all, so that it fails to compile when the API gains a status it
 * does not name (or loses one it does).
 */
export const statuses = Object.keys({ accepted: true, started: true, running: true, completed: true, failed: true, cancelled: true } satisfies Record<JobStatus, true>) as readonly JobStatus[];

const finalStatuses: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);
export const isFinal = (status: JobStatus): boolean => finalStatuses.has(status);

/** Whether anything about the job may still change: an attempt to come, or its callback's. */
export const isSettled = (job: JobRecord): boolean => isFinal(job.status) && job.notified !== 'no';

/** A time in the reader's locale, to the second. */
export const when = (iso: string): string => new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export const duration = (ms: number): string => (ms < 1_000 ? `${ms} ms` : `${(ms / 1_000).toFixed(ms < 10_000 ? 2 : 1)} s`);

/** A failure as one line: the API's problem (status, title, detail), or the network's error. */
export function failureText(error: unknown): string {
  // The client's own message for a problem: `<status> <title>: <detail>`.
  if (error instanceof WaasError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** What the record's `notified` says, in words. */
export const callbackOutcome: Record<JobRecord['notified'], string> = {
  'n/a': 'No callback (none was given, or the job was cancelled)',
  no: 'Not settled yet',
  true: 'Delivered: the callback answered 2xx',
  'notification failed': 'Failed: the callback’s attempts are exhausted',
};

/** A status code's class, for its colour: 2xx, 3xx, 4xx, 5xx. */
export const codeClass = (code: number): string => `code code-${Math.floor(code / 100)}xx`;
