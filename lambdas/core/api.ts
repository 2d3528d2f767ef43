/**
 * The HTTP API as the seed defined it, free of any gateway's event shape: a request in, an
 * answer out, or a failure thrown as one of errors.ts's classes. The api function
 * (adapters/api-function.ts) turns API Gateway's events into requests and failures into answers.
 */
import type * as z from 'zod/mini';
import { jobLimits } from '../../lib/definitions.ts';
import { authenticate, readCredentials, type Authenticator, type FailureLimiter } from './auth.ts';
import { isConsolePath } from './console-assets.ts';
import { JobNotFound, NotJson, PayloadTooLarge, RouteNotFound, type Answer } from './errors.ts';
import { publicRecord } from './job.ts';
import type { Client, ScheduleStore, ScheduleTimers } from './ports.ts';
import type { ResponseName } from './responses.ts';
import { jobIdPattern, submitSchema } from './schemas.ts';
import { submit, type SubmitDeps } from './submit.ts';
import { isV1Path, routeV1 } from './v1.ts';

export interface ApiRequest {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  /** Header names in lower case. */
  headers: Record<string, string | undefined>;
  body: string | undefined;
  /** The caller's address, as the gateway saw it. */
  sourceIp?: string;
  /** How long is left before the request must have been answered (the function's deadline, less a margin). */
  remainingMs?: number;
}

export interface ApiDeps extends SubmitDeps {
  auth: Authenticator;
  /** Slows down whoever keeps failing to authenticate; absent, nobody is slowed. */
  limiter?: FailureLimiter;
  /** The schedules and their timers (core/schedules.ts); absent, /v1/schedules answers 503. */
  schedules?: ScheduleStore;
  timers?: ScheduleTimers;
}

/** The body as a JSON object, undefined when there is none; anything else is the seed's 422. */
function readBody(body: string | undefined, limitBytes: number = jobLimits.requestBodyBytes): Record<string, unknown> | undefined {
  if (body === undefined || body.trim() === '') return undefined;
  if (Buffer.byteLength(body) > limitBytes) {
    throw new PayloadTooLarge(`request body must be at most ${limitBytes} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    throw new NotJson();
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new NotJson();
  return value as Record<string, unknown>;
}

type Route = (deps: ApiDeps, client: Client, body: Record<string, unknown>, request: ApiRequest) => Promise<Answer>;

/**
 * A seed route: what it runs, and what the OpenAPI document (core/openapi.ts) says of it. The
 * seed's rules (credentials in the body or Basic, its bodies word for word) are the document's,
 * not these entries'.
 */
export interface SeedRoute {
  /** The operation's name in the document. */
  id: string;
  method: 'GET' | 'POST';
  path: string;
  summary: string;
  /** The success status, and its body's schema by its name in responses.ts (loaded with the document only). */
  status: number;
  response: ResponseName;
  /** The job fields its JSON body takes, beside the credentials, when it takes a job. */
  body?: z.ZodMiniType;
  /** Whether it reads a `job_id`, from the body or the query. */
  jobId?: boolean;
  /** Whether it reads an `Idempotency-Key` header. */
  idempotencyKey?: boolean;
  run: Route;
}

export const seedRoutes: readonly SeedRoute[] = [
  {
    id: 'seedSubmit',
    method: 'POST',
    path: '/webhook',
    summary: 'Submit a job (the seed API)',
    status: 202,
    response: 'Accepted',
    body: submitSchema,
    idempotencyKey: true,
    run: async (deps, client, body, request) => ({
      statusCode: 202,
      body: { ...(await submit(deps, client, body, request.headers['idempotency-key'])) },
    }),
  },
  {
    id: 'seedCheckCredentials',
    method: 'GET',
    path: '/webhook',
    summary: 'Check credentials (the seed API)',
    status: 200,
    response: 'SeedSuccess',
    run: async () => ({ statusCode: 200, body: { status: 'success' } }),
  },
  {
    id: 'seedStatus',
    method: 'GET',
    path: '/status',
    summary: "A job's record (the seed API)",
    status: 200,
    response: 'JobRecord',
    jobId: true,
    run: async (deps, client, body, request) => {
      const jobId = body['job_id'] ?? request.query['job_id'];
      if (typeof jobId !== 'string' || !jobIdPattern.test(jobId)) throw new JobNotFound();
      const job = await deps.jobs.get(jobId.toLowerCase());
      // Another client's job does not exist, as far as this client can tell.
      if (!job || job.clientId !== client.clientId) throw new JobNotFound();
      return { statusCode: 200, body: publicRecord(job) };
    },
  },
];

const routes = new Map<string, Route>(seedRoutes.map((route) => [`${route.method} ${route.path}`, route.run]));

/** The health check: no credentials, no body read; the local stack's front answers 503 while its storage is down. */
export const healthPath = '/health';

export async function routeApi(deps: ApiDeps, request: ApiRequest): Promise<Answer> {
  if (isV1Path(request.path)) return routeV1(deps, request, readBody);
  // The console's page and files, without credentials (the page holds none): loaded when asked for.
  if (isConsolePath(request.path)) return (await import('./console.ts')).routeConsole(request.method, request.path);
  const key = `${request.method.toUpperCase()} ${request.path.replace(/\/+$/, '') || '/'}`;
  if (key === `GET ${healthPath}`) return { statusCode: 200, body: { status: 'ok' } };
  const route = routes.get(key);
  if (!route) throw new RouteNotFound(`no route for ${key}`);
  const body = readBody(request.body);
  const credentials = readCredentials(body, request.headers['authorization']);
  const source = request.sourceIp || 'unknown';
  const client = await authenticate(deps, credentials, source);
  return route(deps, client, body ?? {}, request);
}

