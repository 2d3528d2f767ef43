/**
 * The v1 API, beside the seed's on the same core: jobs submitted one by one or by the hundred,
 * listed, read, cancelled and replayed. Stricter than the seed: an unknown field is a 400 that
 * names it, a known path asked with another method a 405 with `Allow`, and every failure an
 * RFC 9457 problem (core/errors.ts, `problemFor`). Credentials come only from `Authorization`,
 * Basic or Bearer.
 *
 * `v1Routes` is the one list of what v1 answers: the router reads it, and so does the OpenAPI
 * document (every route in it, and nothing else).
 */
import * as z from 'zod/mini';
import { authenticate, readHeaderCredentials } from './auth.ts';
import { startOf } from './delay.ts';
import { jobLimits } from '../../lib/definitions.ts';
import { InvalidRequest, JobNotFound, MethodNotAllowed, PayloadTooLarge, problemOf, RouteNotFound, Unavailable, type Answer } from './errors.ts';
import { publicRecord } from './job.ts';
import { cancelJob, getJob, jobAttempts, jobRequest, listJobs, replayJob } from './manage.ts';
import type { Client } from './ports.ts';
import type { ResponseName } from './responses.ts';
import { publicSchedule } from './schedule.ts';
import { createSchedule, deleteSchedule, getSchedule, listSchedules, type ScheduleDeps } from './schedules.ts';
import { jobIdPattern, listLimits, parse, v1BatchJobSchema, v1BatchSchema, v1JobSchema, v1ListQuerySchema, v1ScheduleSchema } from './schemas.ts';
import { accept, acceptBatch, toJobInput, validIdempotencyKey, type BatchEntry } from './submit.ts';
import type { ApiDeps, ApiRequest } from './api.ts';

export type V1Method = 'GET' | 'POST' | 'DELETE';

/** What a route's handler is given: the caller (when the route is authenticated) and the request, its path parameters read. */
export interface V1Call {
  deps: ApiDeps;
  client: Client;
  request: ApiRequest;
  params: Record<string, string>;
  /** The body as a JSON object ({} when there is none). */
  body: Record<string, unknown>;
}

export interface V1Route {
  /** The operation's name in the document (and in the clients generated from it). */
  id: string;
  method: V1Method;
  /** OpenAPI's path template: `{name}` is a path parameter. */
  path: string;
  /** Whether the route takes credentials (all but the documentation). */
  auth: boolean;
  /** The schema its JSON body must meet, if it takes one. */
  body?: z.ZodMiniType;
  /** The schema its query must meet; without one, a query parameter is an unknown field. */
  query?: z.ZodMiniType;
  /** Its body's limit, when not the seed's (jobLimits.requestBodyBytes). */
  maxBodyBytes?: number;
  /** Whether it reads an `Idempotency-Key` header. */
  idempotencyKey?: boolean;
  /** The success status, for the document. */
  status: number;
  /**
   * The success answer's body, for the document: its JSON's schema by its name in responses.ts
   * (loaded with the document only, not at every cold start), or another media type (the documentation's).
   */
  response: ResponseName | { contentType: string; description: string };
  /**
   * Failures the document names beyond those it derives from the route (400 always; 401 and 429
   * with credentials; 404 with a job id; 413 and 422 with a body): status → when.
   */
  errors?: Readonly<Record<number, string>>;
  summary: string;
  run(call: V1Call): Promise<Answer>;
}

/** A job id in a path: a UUID, or no job (404) — never a 400: a malformed id names no job, as on GET /status. */
function jobIdParam(params: Record<string, string>): string {
  const jobId = params['job_id'] ?? '';
  if (!jobIdPattern.test(jobId)) throw new JobNotFound();
  return jobId.toLowerCase();
}

/** The api's schedules and their timers; a deployment without them answers 503. */
function scheduleDeps(deps: ApiDeps): ScheduleDeps {
  const { schedules, timers } = deps;
  if (!schedules || !timers) throw new Unavailable('schedules are not available in this deployment');
  return { ...deps, schedules, timers };
}

const scheduleIdParam = (params: Record<string, string>): string => params['schedule_id'] ?? '';

/** A body that must be empty or `{}`: anything in it is an unknown field. */
const emptyBody = z.strictObject({});

export const v1Routes: readonly V1Route[] = [
  {
    id: 'submitJob',
    method: 'POST',
    path: '/v1/jobs',
    auth: true,
    body: v1JobSchema,
    idempotencyKey: true,
    status: 202,
    response: 'Accepted',
    errors: { 409: 'A request with this Idempotency-Key is still in progress: retry once it has been answered.' },
    summary: 'Submit a job',
    async run({ deps, client, body, request }) {
      const job = parse(v1JobSchema, body);
      const key = request.headers['idempotency-key'];
      const input = { ...toJobInput(job), ...startOf(job, deps.clock.now()) };
      return { statusCode: 202, body: { ...(await accept(deps, client, input, key === undefined ? undefined : validIdempotencyKey(key))) } };
    },
  },
  {
    id: 'submitBatch',
    method: 'POST',
    path: '/v1/jobs/batch',
    auth: true,
    body: v1BatchSchema,
    maxBodyBytes: jobLimits.batchBodyBytes,
    status: 200,
    response: 'BatchResults',
    summary: 'Submit up to 100 jobs at once; each is accepted or refused on its own',
    async run({ deps, client, body, request }) {
      const { jobs } = parse(v1BatchSchema, body);
      const entries: BatchEntry[] = jobs.map((raw, index) => {
        // Each job as large as POST /v1/jobs takes one, and no larger.
        if (Buffer.byteLength(JSON.stringify(raw)) > jobLimits.requestBodyBytes) {
          return { refused: new PayloadTooLarge(`jobs[${index}]: a job must be at most ${jobLimits.requestBodyBytes} bytes of JSON`) };
        }
        try {
          const { idempotency_key: key, ...job } = parse(v1BatchJobSchema, raw);
          return { input: { ...toJobInput(job), ...startOf(job, deps.clock.now()) }, key };
        } catch (error) {
          return { refused: error instanceof InvalidRequest ? new InvalidRequest(`jobs[${index}]: ${error.message}`) : error };
        }
      });
      const results = await acceptBatch(deps, client, entries, { remainingMs: request.remainingMs });
      return { statusCode: 200, body: { results: results.map((result) => ('accepted' in result ? { ...result.accepted } : { error: problemOf(result.refused) })) } };
    },
  },
  {
    id: 'listJobs',
    method: 'GET',
    path: '/v1/jobs',
    auth: true,
    query: v1ListQuerySchema,
    status: 200,
    response: 'JobPage',
    summary: "List the client's jobs, newest first, a page at a time",
    async run({ deps, client, request }) {
      const query = parse(v1ListQuerySchema, request.query);
      const page = await listJobs(deps, client, {
        limit: query.limit ?? listLimits.default,
        ...(query.status !== undefined ? { status: query.status } : {}),
        ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
      });
      return { statusCode: 200, body: { jobs: page.jobs.map(publicRecord), next_cursor: page.nextCursor } };
    },
  },
  {
    id: 'getJob',
    method: 'GET',
    path: '/v1/jobs/{job_id}',
    auth: true,
    status: 200,
    response: 'JobRecord',
    summary: "A job's record, as GET /status shows it",
    async run({ deps, client, params }) {
      return { statusCode: 200, body: publicRecord(await getJob(deps, client, jobIdParam(params))) };
    },
  },
  {
    id: 'cancelJob',
    method: 'DELETE',
    path: '/v1/jobs/{job_id}',
    auth: true,
    status: 200,
    response: 'JobRecord',
    errors: { 409: 'The job is already final (completed, failed or cancelled).' },
    summary: 'Cancel a job: no attempt starts after the answer, and it gets no callback',
    async run({ deps, client, params }) {
      return { statusCode: 200, body: publicRecord(await cancelJob(deps, client, jobIdParam(params))) };
    },
  },
  {
    id: 'listAttempts',
    method: 'GET',
    path: '/v1/jobs/{job_id}/attempts',
    auth: true,
    status: 200,
    response: 'Attempts',
    summary: "Every attempt of a job's service call, oldest first, each with its answer or error",
    async run({ deps, client, params }) {
      return { statusCode: 200, body: { attempts: await jobAttempts(deps, client, jobIdParam(params)) } };
    },
  },
  {
    id: 'getJobRequest',
    method: 'GET',
    path: '/v1/jobs/{job_id}/request',
    auth: true,
    status: 200,
    response: 'ServiceRequest',
    summary: "The request a job sends: its URL, method, headers and body, as it was taken",
    async run({ deps, client, params }) {
      return { statusCode: 200, body: { ...(await jobRequest(deps, client, jobIdParam(params))) } };
    },
  },
  {
    id: 'replayJob',
    method: 'POST',
    path: '/v1/jobs/{job_id}/replay',
    auth: true,
    body: emptyBody,
    status: 202,
    response: 'Replayed',
    summary: 'Run a job again, as a new job with the same request; the old one is untouched',
    async run({ deps, client, params, body }) {
      parse(emptyBody, body);
      return { statusCode: 202, body: { ...(await replayJob(deps, client, jobIdParam(params))) } };
    },
  },
  {
    id: 'createSchedule',
    method: 'POST',
    path: '/v1/schedules',
    auth: true,
    body: v1ScheduleSchema,
    status: 201,
    response: 'ScheduleCreated',
    errors: { 409: 'The client has as many schedules as it may (100): delete one first.', 503: "The schedule's timer could not be made; nothing was kept: try again." },
    summary: 'Make a schedule: at each time its cron matches, in its time zone, a job is submitted',
    async run({ deps, client, body }) {
      return { statusCode: 201, body: { ...(await createSchedule(scheduleDeps(deps), client, body)) } };
    },
  },
  {
    id: 'listSchedules',
    method: 'GET',
    path: '/v1/schedules',
    auth: true,
    status: 200,
    response: 'Schedules',
    summary: "Every schedule of the client, newest first (at most 100: one page)",
    async run({ deps, client }) {
      return { statusCode: 200, body: { schedules: (await listSchedules(scheduleDeps(deps), client)).map(publicSchedule) } };
    },
  },
  {
    id: 'getSchedule',
    method: 'GET',
    path: '/v1/schedules/{schedule_id}',
    auth: true,
    status: 200,
    response: 'ScheduleRecord',
    errors: { 404: "No such schedule (unknown, malformed or another client's)." },
    summary: "A schedule: its cron, time zone, job, next run and last run",
    async run({ deps, client, params }) {
      return { statusCode: 200, body: publicSchedule(await getSchedule(scheduleDeps(deps), client, scheduleIdParam(params))) };
    },
  },
  {
    id: 'deleteSchedule',
    method: 'DELETE',
    path: '/v1/schedules/{schedule_id}',
    auth: true,
    status: 200,
    response: 'ScheduleRecord',
    errors: { 404: "No such schedule (unknown, malformed or another client's).", 503: "The schedule's timer could not be deleted; the schedule is unchanged: try again." },
    summary: 'Delete a schedule: no run starts after the answer; the jobs it made are left as they are',
    async run({ deps, client, params }) {
      return { statusCode: 200, body: publicSchedule(await deleteSchedule(scheduleDeps(deps), client, scheduleIdParam(params))) };
    },
  },
  // The documentation, without credentials. Imported when first asked for (core/docs.ts): the
  // document is built and the page's assets read then, not at every cold start.
  {
    id: 'openApiDocument',
    method: 'GET',
    path: '/v1/openapi.json',
    auth: false,
    status: 200,
    response: { contentType: 'application/json', description: 'This document: OpenAPI 3.1, generated from the schemas that validate the requests.' },
    summary: 'The OpenAPI 3.1 document of every route, seed and v1',
    async run() {
      return (await import('./docs.ts')).openApiAnswer();
    },
  },
  {
    id: 'docsPage',
    method: 'GET',
    path: '/v1/docs',
    auth: false,
    status: 200,
    response: { contentType: 'text/html', description: 'A page that renders this document, its assets served under /v1/docs/.' },
    summary: 'The API reference: a page that renders the OpenAPI document',
    async run({ request }) {
      return (await import('./docs.ts')).docsPage(request.path);
    },
  },
  {
    id: 'docsAsset',
    method: 'GET',
    path: '/v1/docs/{asset}',
    auth: false,
    status: 200,
    response: { contentType: 'text/javascript', description: "One of the page's scripts or style sheets (text/javascript or text/css), named by its content's hash: cached for a year." },
    errors: { 404: 'No such asset.' },
    summary: "The reference page's scripts and style sheets",
    async run({ params }) {
      return (await import('./docs.ts')).docsAsset(params['asset'] ?? '');
    },
  },
];

const segments = (path: string) => path.split('/').filter(Boolean);

/** The path parameters of `path` under `template`, or undefined when it does not match. */
function match(template: string, path: string): Record<string, string> | undefined {
  const want = segments(template);
  const got = segments(path);
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of want.entries()) {
    const value = got[i] ?? '';
    if (part.startsWith('{')) {
      let decoded: string;
      try {
        decoded = decodeURIComponent(value);
      } catch {
        return undefined;
      }
      params[part.slice(1, -1)] = decoded;
    } else if (part !== value) return undefined;
  }
  return params;
}

/** How many of a template's segments are literal: the more, the more specific (API Gateway's rule too). */
const literals = (template: string) => segments(template).filter((part) => !part.startsWith('{')).length;

/** The route for a request, or the reason there is none: no such path (404), or not this method (405). */
export function findV1Route(method: string, path: string, routes: readonly V1Route[] = v1Routes): { route: V1Route; params: Record<string, string> } {
  const matching = routes
    .map((route) => ({ route, params: match(route.path, path) }))
    .filter((found): found is { route: V1Route; params: Record<string, string> } => found.params !== undefined);
  if (matching.length === 0) throw new RouteNotFound(`no route for ${method} ${path}`);
  // The most specific path that matches decides: /v1/jobs/batch is not the job "batch".
  const best = Math.max(...matching.map(({ route }) => literals(route.path)));
  const onPath = matching.filter(({ route }) => literals(route.path) === best);
  const found = onPath.find(({ route }) => route.method === method.toUpperCase());
  if (!found) throw new MethodNotAllowed([...new Set(onPath.map(({ route }) => route.method))], method.toUpperCase(), onPath[0]?.route.path ?? path);
  return found;
}

export const isV1Path = (path: string): boolean => path === '/v1' || path.startsWith('/v1/');

/**
 * Answers a v1 request, or throws an ApiError (answered as a problem by the api function).
 * `readBody` is the api's: the seed's JSON object rules and size limit.
 */
export async function routeV1(deps: ApiDeps, request: ApiRequest, readBody: (body: string | undefined, limitBytes?: number) => Record<string, unknown> | undefined): Promise<Answer> {
  const { route, params } = findV1Route(request.method, request.path);
  if (!route.query) {
    const unknown = Object.keys(request.query);
    if (unknown.length > 0) throw new InvalidRequest(`unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => JSON.stringify(name)).join(', ')}: ${route.method} ${route.path} takes none`);
  }
  const client = route.auth ? await authenticate(deps, readHeaderCredentials(request.headers['authorization']), request.sourceIp || 'unknown') : undefined;
  // A body is read only where the route takes one: a GET's or DELETE's is not looked at.
  const body = route.body ? (readBody(request.body, route.maxBodyBytes) ?? {}) : {};
  return route.run({ deps, client: client as Client, request, params, body });
}
