/**
 * The API's failures, each a class with its HTTP answer, mapped in one place (`answerFor`).
 * The bodies are the seed's, word for word, where the seed had one.
 */

export abstract class ApiError extends Error {
  abstract readonly statusCode: number;
  /** The answer's body: by default the contract's `{"status":"failed","message":...}`. */
  body(): Record<string, unknown> {
    return { status: 'failed', message: this.message };
  }
}

export class NotJson extends ApiError {
  override name = 'NotJson';
  readonly statusCode = 422;
  override body() {
    return { message: 'request type must be JSON', status: 'failed' };
  }
}

export class BadCredentials extends ApiError {
  override name = 'BadCredentials';
  readonly statusCode = 401;
  override body() {
    return { status: 'bad credentials' };
  }
}

export class JobNotFound extends ApiError {
  override name = 'JobNotFound';
  readonly statusCode = 404;
  override body() {
    return { status: 'No job with that ID exists' };
  }
}

export class InvalidRequest extends ApiError {
  override name = 'InvalidRequest';
  readonly statusCode = 400;
}

export class PayloadTooLarge extends ApiError {
  override name = 'PayloadTooLarge';
  readonly statusCode = 413;
}

export class RouteNotFound extends ApiError {
  override name = 'RouteNotFound';
  readonly statusCode = 404;
}

/** Stripe's answer to a repeat that arrives while the first request with its key still runs. */
export class KeyInProgress extends ApiError {
  override name = 'KeyInProgress';
  readonly statusCode = 409;
  constructor() {
    super('Idempotency-Key: a request with this key is still in progress; retry once it has been answered');
  }
}

export class TooManyFailures extends ApiError {
  override name = 'TooManyFailures';
  readonly statusCode = 429;
  constructor(readonly retryAfterSeconds: number) {
    super('too many failed authentication attempts; try again later');
  }
}

export class Unavailable extends ApiError {
  override name = 'Unavailable';
  readonly statusCode = 503;
}

/** A known route asked with a method it does not take: v1 answers 405 with the methods it does. */
export class MethodNotAllowed extends ApiError {
  override name = 'MethodNotAllowed';
  readonly statusCode = 405;
  constructor(readonly allow: readonly string[], method: string, path: string) {
    super(`${path} does not take ${method}; it takes ${allow.join(', ')}`);
  }
}

export interface Answer {
  statusCode: number;
  /** Sent as JSON (application/json, or the content-type in `headers`), unless `text` is given. */
  body: Record<string, unknown>;
  /** Sent as it is instead of `body`, under the content-type in `headers` (a page, a document). */
  text?: string;
  headers?: Record<string, string>;
}

/** The headers an error's answer carries, whichever API answers it. */
function headersFor(error: ApiError): Record<string, string> | undefined {
  if (error instanceof Unavailable || error instanceof KeyInProgress) return { 'retry-after': '1' };
  if (error instanceof TooManyFailures) return { 'retry-after': String(error.retryAfterSeconds) };
  if (error instanceof MethodNotAllowed) return { allow: error.allow.join(', ') };
  return undefined;
}

/** Every error becomes the seed API's answer; one we did not expect is a 500 that says nothing inside. */
export function answerFor(error: unknown): Answer {
  if (error instanceof ApiError) {
    const answer: Answer = { statusCode: error.statusCode, body: error.body() };
    const headers = headersFor(error);
    if (headers) answer.headers = headers;
    return answer;
  }
  return { statusCode: 500, body: { status: 'failed', message: 'internal error' } };
}

/** DELETE /v1/jobs/{job_id} of a job that is already completed, failed or cancelled. */
export class JobIsFinal extends ApiError {
  override name = 'JobIsFinal';
  readonly statusCode = 409;
  constructor(readonly status: string) {
    super(`the job is already ${status}; a final job cannot be cancelled`);
  }
}

/** A schedule id that names none of this client's schedules (unknown, malformed or another client's). */
export class ScheduleNotFound extends ApiError {
  override name = 'ScheduleNotFound';
  readonly statusCode = 404;
}

/** POST /v1/schedules by a client that has as many schedules as it may. */
export class TooManySchedules extends ApiError {
  override name = 'TooManySchedules';
  readonly statusCode = 409;
}

/**
 * Each error's RFC 9457 problem type (a URN: it names the problem, it is not a page to fetch)
 * and title; `detail` is the error's own message, naming the field and the rule.
 */
const problems: Record<string, { type: string; title: string; detail?: string }> = {
  InvalidRequest: { type: 'invalid-request', title: 'The request is not valid' },
  NotJson: { type: 'not-json', title: 'The body is not a JSON object', detail: 'the request body must be a JSON object (RFC 8259) in UTF-8' },
  BadCredentials: {
    type: 'bad-credentials',
    title: 'Bad credentials',
    detail: 'Authorization must hold a client id and its verify token: Basic base64(client_id:verify_token), or Bearer client_id:verify_token',
  },
  JobNotFound: { type: 'job-not-found', title: 'No job with that ID exists', detail: 'no job with that id exists for this client' },
  RouteNotFound: { type: 'no-such-route', title: 'No such route' },
  MethodNotAllowed: { type: 'method-not-allowed', title: 'Method not allowed' },
  PayloadTooLarge: { type: 'payload-too-large', title: 'The request is too large' },
  KeyInProgress: { type: 'idempotency-key-in-progress', title: 'A request with this Idempotency-Key is in progress' },
  JobIsFinal: { type: 'job-is-final', title: 'The job is already final' },
  ScheduleNotFound: { type: 'schedule-not-found', title: 'No schedule with that ID exists', detail: 'no schedule with that id exists for this client' },
  TooManySchedules: { type: 'too-many-schedules', title: 'The client has as many schedules as it may' },
  TooManyFailures: { type: 'too-many-failures', title: 'Too many failed attempts to authenticate' },
  Unavailable: { type: 'unavailable', title: 'The service is unavailable for a moment' },
};

export const problemContentType = 'application/problem+json';
export const problemTypePrefix = 'urn:waas:problem:';

/** The problem object of an error (RFC 9457), for an answer and for a batch job's refusal. */
export function problemOf(error: unknown): { type: string; title: string; status: number; detail: string } {
  if (error instanceof ApiError) {
    const known = problems[error.name] ?? { type: 'error', title: 'Error' };
    return { type: `${problemTypePrefix}${known.type}`, title: known.title, status: error.statusCode, detail: known.detail ?? error.message };
  }
  return { type: `${problemTypePrefix}internal`, title: 'Internal error', status: 500, detail: 'the request failed inside the service; nothing was kept, try again' };
}

/** Every error as v1 answers it: an RFC 9457 problem. */
export function problemFor(error: unknown): Answer {
  const problem = problemOf(error);
  // The seed's 401 had no challenge header; v1's names the scheme it takes.
  const challenge = error instanceof BadCredentials ? { 'www-authenticate': 'Bearer realm="waas"' } : undefined;
  const headers = { 'content-type': problemContentType, ...(error instanceof ApiError ? headersFor(error) : undefined), ...challenge };
  return { statusCode: problem.status, headers, body: problem };
}
