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

export interface Answer {
  statusCode: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Every error becomes an answer; one we did not expect is a 500 that says nothing inside. */
export function answerFor(error: unknown): Answer {
  if (error instanceof ApiError) {
    const answer: Answer = { statusCode: error.statusCode, body: error.body() };
    if (error instanceof Unavailable || error instanceof KeyInProgress) answer.headers = { 'retry-after': '1' };
    if (error instanceof TooManyFailures) answer.headers = { 'retry-after': String(error.retryAfterSeconds) };
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
