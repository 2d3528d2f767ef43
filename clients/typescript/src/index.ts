/**
 * A typed client for the waas v1 API. Its types are generated from the service's OpenAPI
 * document (./schema.ts, openapi-typescript); its calls go through openapi-fetch, which checks
 * every path, parameter and body against those types, so a change to the API that the client
 * does not follow fails to compile here, not at run time.
 *
 * ```ts
 * const waas = new Waas({ baseUrl: 'http://127.0.0.1:3000', clientId, token });
 * const { job_id } = await waas.submit({ url: 'https://example.com/hook', body: { hello: 'world' } });
 * for await (const job of waas.list({ status: 'failed' })) console.log(job.jobId);
 * ```
 */
import createClient, { type Client } from 'openapi-fetch';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { components, paths } from './schema.js';

export type { components, paths, webhooks } from './schema.js';

type Schemas = components['schemas'];
/** A job to submit (POST /v1/jobs). */
export type JobRequest = Schemas['Job'];
/** A job of a batch, which may carry its own idempotency_key. */
export type BatchJob = Schemas['BatchJob'];
/** A job taken: its id, when, and "accepted". */
export type Accepted = Schemas['Accepted'];
/** One result of a batch: the job accepted, or `{ error: problem }`. */
export type BatchResult = Schemas['BatchResult'];
/** A job's record, as GET /v1/jobs/{job_id} (and the seed's GET /status) shows it. */
export type JobRecord = Schemas['JobRecord'];
export type JobStatus = JobRecord['status'];
/** A page of the list. */
export type JobPage = Schemas['JobPage'];
/** One attempt of a job's service call. */
export type Attempt = Schemas['Attempt'];
/** The request a job sends to its service: URL, method, headers and body, as it was taken. */
export type ServiceRequest = Schemas['ServiceRequest'];
/** A replay's new job, and the job it repeats. */
export type Replayed = Schemas['Replayed'];
/** POST /v1/schedules's body: a cron, its time zone (default UTC), and the job each run submits. */
export type ScheduleRequest = NonNullable<paths['/v1/schedules']['post']['requestBody']>['content']['application/json'];
/** A made schedule's id and first run. */
export type ScheduleCreated = Schemas['ScheduleCreated'];
/** A schedule: its cron, time zone, job, next and last run. */
export type ScheduleRecord = Schemas['ScheduleRecord'];
/** An RFC 9457 problem, as v1 answers every failure. */
export type Problem = Schemas['Problem'];
/** What a job's callback URL is sent. */
export type CallbackPayload = Schemas['Callback'];

type ListParameters = NonNullable<paths['/v1/jobs']['get']['parameters']['query']>;
/** Which jobs to list: a status, and a page's size (1–100, default 20). */
export type ListQuery = Pick<ListParameters, 'status' | 'limit'>;
/** One page's query: the list's, and the cursor of the page before (its next_cursor). */
export type PageQuery = ListParameters;

export interface WaasOptions {
  /** Where the API is: http://127.0.0.1:3000 locally, the stack's ApiUrl on AWS. */
  baseUrl: string;
  clientId: string;
  /** The client's verify token. */
  token: string;
  /** A fetch to use instead of the global one (a test's, a proxy's). */
  fetch?: (input: Request) => Promise<Response>;
}

/**
 * A failure the API answered, as its RFC 9457 problem: `type` (urn:waas:problem:<name>),
 * `title`, `status`, and `detail`, which names the field and the rule. `retryAfter` is the
 * answer's Retry-After, in seconds, when it gave one (429, 503, a 409 on an Idempotency-Key in use).
 * An answer that is not a problem (a gateway's own 5xx) is read as one of type `about:blank`.
 */
export class WaasError extends Error {
  override readonly name = 'WaasError';
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly retryAfter: number | undefined;

  constructor(readonly problem: Problem, retryAfter?: number) {
    super(`${problem.status} ${problem.title}: ${problem.detail}`);
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.retryAfter = retryAfter;
  }
}

/** A callback whose Standard Webhooks signature does not hold: forged, altered, or too old. */
export class CallbackVerificationError extends Error {
  override readonly name = 'CallbackVerificationError';
}

/** Retry-After as seconds: a number of them, or an HTTP-date. */
function retryAfterOf(response: Response): number | undefined {
  const value = response.headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

const isProblem = (value: unknown): value is Problem =>
  typeof value === 'object' && value !== null && ['type', 'title', 'detail'].every((key) => typeof (value as Record<string, unknown>)[key] === 'string') && typeof (value as Record<string, unknown>)['status'] === 'number';

function errorOf(response: Response, body: unknown): WaasError {
  if (isProblem(body)) return new WaasError(body, retryAfterOf(response));
  const message = typeof body === 'object' && body !== null && typeof (body as Record<string, unknown>)['message'] === 'string' ? String((body as Record<string, unknown>)['message']) : typeof body === 'string' ? body : '';
  return new WaasError({ type: 'about:blank', title: response.statusText || `HTTP ${response.status}`, status: response.status, detail: message || `the API answered ${response.status}` }, retryAfterOf(response));
}

/** openapi-fetch's result: the data of a success, or the failure as a WaasError. */
function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok && result.data !== undefined) return result.data;
  throw errorOf(result.response, result.error ?? result.data);
}

/** Header names in lower case, one value each, from a fetch Headers or Node's IncomingHttpHeaders. */
function headerRecord(headers: Headers | Record<string, string | string[] | undefined>): Record<string, string> {
  const entries = headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Checks a callback's Standard Webhooks signature over its raw body (the bytes as they came:
 * not a body parsed and serialised again) with the client's signing secret (`whsec_...`), and
 * its timestamp (within 5 minutes). Returns the parsed payload, or throws CallbackVerificationError.
 *
 * ```ts
 * const payload = verifyCallback(rawBody, request.headers, process.env.WAAS_SIGNING_SECRET);
 * ```
 */
export function verifyCallback(rawBody: string | Uint8Array, headers: Headers | Record<string, string | string[] | undefined>, secret: string): CallbackPayload {
  const body = typeof rawBody === 'string' ? rawBody : new TextDecoder('utf-8', { fatal: true }).decode(rawBody);
  try {
    return new Webhook(secret).verify(body, headerRecord(headers)) as CallbackPayload;
  } catch (error) {
    if (error instanceof WebhookVerificationError) throw new CallbackVerificationError(`the callback's signature does not verify: ${error.message}`, { cause: error });
    throw new CallbackVerificationError(`the callback could not be verified: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

export class Waas {
  private readonly api: Client<paths>;

  constructor(options: WaasOptions) {
    this.api = createClient<paths>({
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      // Basic (client_id:verify_token): the credentials v1 takes in Authorization.
      headers: { authorization: `Basic ${btoa(`${options.clientId}:${options.token}`)}` },
    });
  }

  /** Submits one job; with an idempotencyKey, a repeat within 24 hours gets the first answer and creates nothing. */
  async submit(job: JobRequest, options: { idempotencyKey?: string } = {}): Promise<Accepted> {
    const header = options.idempotencyKey === undefined ? undefined : { 'Idempotency-Key': options.idempotencyKey };
    return unwrap(await this.api.POST('/v1/jobs', { body: job, params: header ? { header } : {} }));
  }

  /** Submits 1 to 100 jobs; each is accepted or refused on its own, its result in the request's order. */
  async submitBatch(jobs: BatchJob[]): Promise<BatchResult[]> {
    return unwrap(await this.api.POST('/v1/jobs/batch', { body: { jobs } })).results;
  }

  /** A job's record. An unknown job (or another client's) is a WaasError of status 404. */
  async get(jobId: string): Promise<JobRecord> {
    return unwrap(await this.api.GET('/v1/jobs/{job_id}', { params: { path: { job_id: jobId } } }));
  }

  /** One page of the client's jobs, newest first: pass the page's next_cursor to get the next one. */
  async listPage(query: PageQuery = {}): Promise<JobPage> {
    return unwrap(await this.api.GET('/v1/jobs', { params: { query } }));
  }

  /**
   * Every job of the client, newest first, page after page (`limit` a page), following
   * next_cursor to its end: each job once.
   */
  async *list(query: ListQuery = {}): AsyncGenerator<JobRecord, void, undefined> {
    let cursor: string | undefined;
    do {
      const page = await this.listPage(cursor === undefined ? query : { ...query, cursor });
      yield* page.jobs;
      cursor = page.next_cursor ?? undefined;
    } while (cursor !== undefined);
  }

  /** Every attempt of the job's service call kept, oldest first. */
  async attempts(jobId: string): Promise<Attempt[]> {
    return unwrap(await this.api.GET('/v1/jobs/{job_id}/attempts', { params: { path: { job_id: jobId } } })).attempts;
  }

  /** The request the job sends: its URL, method, headers (the Idempotency-Key waas adds among them) and body. */
  async request(jobId: string): Promise<ServiceRequest> {
    return unwrap(await this.api.GET('/v1/jobs/{job_id}/request', { params: { path: { job_id: jobId } } }));
  }

  /** Cancels a job: no attempt starts after the answer, and it gets no callback. A job already final is a WaasError of status 409. */
  async cancel(jobId: string): Promise<JobRecord> {
    return unwrap(await this.api.DELETE('/v1/jobs/{job_id}', { params: { path: { job_id: jobId } } }));
  }

  /** Runs a job again, as a new job with the same request; the old one is untouched. */
  async replay(jobId: string): Promise<Replayed> {
    return unwrap(await this.api.POST('/v1/jobs/{job_id}/replay', { params: { path: { job_id: jobId } } }));
  }

  /** Makes a schedule: at each time its cron matches, in its time zone, a job is submitted (its record carries the schedule_id). */
  async createSchedule(schedule: ScheduleRequest): Promise<ScheduleCreated> {
    return unwrap(await this.api.POST('/v1/schedules', { body: schedule }));
  }

  /** Every schedule of the client, newest first (at most 100). */
  async listSchedules(): Promise<ScheduleRecord[]> {
    return unwrap(await this.api.GET('/v1/schedules')).schedules;
  }

  /** A schedule. An unknown one (or another client's) is a WaasError of status 404. */
  async getSchedule(scheduleId: string): Promise<ScheduleRecord> {
    return unwrap(await this.api.GET('/v1/schedules/{schedule_id}', { params: { path: { schedule_id: scheduleId } } }));
  }

  /** Deletes a schedule: no run starts after the answer; the jobs it made are left as they are. */
  async deleteSchedule(scheduleId: string): Promise<ScheduleRecord> {
    return unwrap(await this.api.DELETE('/v1/schedules/{schedule_id}', { params: { path: { schedule_id: scheduleId } } }));
  }

  /** verifyCallback, for a receiver that holds a client. */
  verifyCallback(rawBody: string | Uint8Array, headers: Headers | Record<string, string | string[] | undefined>, secret: string): CallbackPayload {
    return verifyCallback(rawBody, headers, secret);
  }
}
