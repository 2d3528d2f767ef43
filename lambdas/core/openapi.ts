/**
 * The OpenAPI 3.1 document of every route the api function answers, seed and v1, built from the
 * lists the routers read (api.ts's `seedRoutes` and the health check, v1.ts's `v1Routes`) and from
 * the same zod schemas that validate the requests (schemas.ts), with the answers' schemas
 * (responses.ts). Nothing here is a second description of a request: a field, a range or a rule
 * changed in schemas.ts is changed in the document.
 *
 * JSON Schema is zod 4's (`z.toJSONSchema`, draft 2020-12, the dialect of OpenAPI 3.1), of each
 * schema's input (`io: 'input'`: what a client sends, before the transforms that upper-case a
 * method or read a limit as a number). Refinements have no JSON Schema form and are left out
 * (`unrepresentable: 'any'` for anything else that has none); the rules that live only in one — the URL rules,
 * the header rules, body beside body_base64 — are said in the schemas' descriptions instead.
 *
 * What the document cannot take from a schema it says from the routes' metadata: which routes take
 * credentials (HTTP Basic or Bearer on v1; on the seed's, Basic or the JSON body), which take a
 * job id or an Idempotency-Key, and every failure each can answer — RFC 9457 problems on v1, the
 * seed's own bodies on the seed's routes.
 *
 * Built once per process, when first asked for (`openApiDocument`): v1.ts imports core/docs.ts,
 * and with it this module, only then.
 */
import * as z from 'zod/mini';
import { jobLimits } from '../../lib/definitions.ts';
import { healthPath, seedRoutes, type SeedRoute } from './api.ts';
import { problemContentType, problemTypePrefix } from './errors.ts';
import * as responses from './responses.ts';
import { idempotencyKeyRule, listLimits, submitSchema, v1BatchJobSchema, v1BatchSchema, v1JobSchema, v1ListQuerySchema } from './schemas.ts';
import { v1Routes, type V1Route } from './v1.ts';

export type JsonSchema = Record<string, unknown>;
type Json = Record<string, unknown>;

/** The document's version: the v1 API's (the seed API has none). A change to it is a change here. */
export const apiVersion = '1.0.0';

const ref = (kind: 'schemas' | 'responses' | 'parameters' | 'headers', name: string) => ({ $ref: `#/components/${kind}/${name}` });

/**
 * The seed's body credentials: the seed reads them by hand (auth.ts, `readCredentials`), not
 * through a schema, so they are written here, for the document only.
 */
const seedCredentialsSchema = z
  .object({
    client_id: z.optional(z.string().check(z.describe('The client id, with verify_token: credentials in the body, as the seed takes them (or Basic auth instead, or both if they are the same pair).'))),
    verify_token: z.optional(z.string().check(z.describe("The client's verify token."))),
  })
  .check(z.describe('Credentials in the body, as the seed takes them: both strings, or neither (then HTTP Basic). Given in both places, they must be the same pair.'));

const seedStatusBodySchema = z.object({
  job_id: z.optional(z.string().check(z.describe('The job, in the body or in the query (?job_id=).'))),
});

/** The named schemas, components/schemas: requests first, then answers. */
const named: Record<string, z.ZodMiniType> = {
  SeedJob: submitSchema,
  SeedCredentials: seedCredentialsSchema,
  SeedStatusQuery: seedStatusBodySchema,
  Job: v1JobSchema,
  BatchJob: v1BatchJobSchema,
  Batch: v1BatchSchema,
  ...responses.responseSchemas,
};

/** The list's `limit` as its query schema reads it: digits, then a number (schemas.ts). */
const listLimit = (v1ListQuerySchema.shape.limit as unknown as { _zod: { def: { innerType: unknown } } })._zod.def.innerType;

/**
 * Tidies what zod writes for OpenAPI:
 * - an integer's safe-integer bounds (zod's `int()` says them; JSON has no such limit to tell);
 * - the batch's `jobs`, which the envelope takes as anything (each job is judged on its own, so
 *   one bad job refuses only itself), but are BatchJobs;
 * - the list's `limit`: the schema reads the query's text (digits), then checks the number it
 *   makes; OpenAPI describes a query parameter's value, here that integer, and its range.
 */
function override({ zodSchema, jsonSchema }: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  if (jsonSchema['maximum'] === Number.MAX_SAFE_INTEGER) delete jsonSchema['maximum'];
  if (jsonSchema['minimum'] === Number.MIN_SAFE_INTEGER) delete jsonSchema['minimum'];
  if (zodSchema === v1BatchSchema.shape.jobs) jsonSchema['items'] = ref('schemas', 'BatchJob');
  if (zodSchema === listLimit) {
    delete jsonSchema['pattern'];
    Object.assign(jsonSchema, { type: 'integer', minimum: listLimits.min, maximum: listLimits.max, default: listLimits.default });
  }
}

const conversion = { target: 'draft-2020-12', io: 'input', unrepresentable: 'any', override } as const;

/** A schema of a document is not a document of its own: no `$schema`, no `$id`. */
function bare(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

function componentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  // Registered by object: a named schema met inside another becomes a $ref to its component.
  for (const [id, schema] of Object.entries(named)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { ...conversion, uri: (id: string) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(schemas).map(([id, schema]) => [id, bare(schema as JsonSchema)]));
}

/** An unnamed schema (a query, an empty body), inline. */
const inline = (schema: z.ZodMiniType): JsonSchema => bare(z.toJSONSchema(schema, conversion) as JsonSchema);

/** The name a schema has in components/schemas, or undefined. */
const nameOf = (schema: z.ZodMiniType): string | undefined => Object.entries(named).find(([, each]) => each === schema)?.[0];
const schemaRef = (schema: z.ZodMiniType): JsonSchema => {
  const name = nameOf(schema);
  return name ? ref('schemas', name) : inline(schema);
};

const json = (schema: JsonSchema) => ({ 'application/json': { schema } });
const problem = { [problemContentType]: { schema: ref('schemas', 'Problem') } };

/** The failures' answers, components/responses: v1's problems, then the seed's bodies. */
const sharedResponses: Record<string, Json> = {
  BadRequest: { description: 'The request is not valid: `detail` names the field and the rule (an unknown field or query parameter by name, with the field it was likely meant to be).', content: problem },
  Unauthorized: {
    description: 'No credentials, or not a client\'s: Authorization must be Basic base64(client_id:verify_token), or Bearer client_id:verify_token (or client_id.verify_token).',
    headers: { 'WWW-Authenticate': ref('headers', 'WWW-Authenticate') },
    content: problem,
  },
  JobNotFound: { description: "No such job for this client: an unknown id, a malformed one, or another client's job.", content: problem },
  MethodNotAllowed: { description: 'A known path asked with a method it does not take: `Allow` names those it does.', headers: { Allow: ref('headers', 'Allow') }, content: problem },
  PayloadTooLarge: { description: `The request body is over ${jobLimits.requestBodyBytes} bytes.`, content: problem },
  NotJson: { description: 'The request body is not a JSON object (RFC 8259) in UTF-8.', content: problem },
  TooManyRequests: {
    description: 'Too many failed attempts to authenticate from this address (or against this client id) in a minute; even the right credentials wait for Retry-After.',
    headers: { 'Retry-After': ref('headers', 'Retry-After') },
    content: problem,
  },
  InternalError: { description: 'The request failed inside the service; nothing was kept: try again.', content: problem },
  Unavailable: {
    description: 'The store or the queue is unavailable for a moment, or the request took too long (the gateway\'s own answer, `{"message":"Service Unavailable"}`, when the function ran out of time): nothing half-done is kept, try again after Retry-After.',
    headers: { 'Retry-After': ref('headers', 'Retry-After') },
    content: { ...problem, 'application/json': { schema: ref('schemas', 'GatewayMessage') } },
  },
  SeedBadRequest: { description: 'A field is not valid: `message` names it and the rule.', content: json(ref('schemas', 'SeedFailure')) },
  SeedUnauthorized: { description: 'No credentials, credentials that disagree between the body and Basic, or not a client\'s.', content: json(ref('schemas', 'SeedBadCredentials')) },
  SeedJobNotFound: { description: "No such job for this client: an unknown id, a malformed one, or another client's job.", content: json(ref('schemas', 'SeedJobNotFound')) },
  SeedKeyInProgress: {
    description: 'A request with this Idempotency-Key is still in progress: retry once it has been answered.',
    headers: { 'Retry-After': ref('headers', 'Retry-After') },
    content: json(ref('schemas', 'SeedFailure')),
  },
  SeedPayloadTooLarge: { description: `The request body is over ${jobLimits.requestBodyBytes} bytes.`, content: json(ref('schemas', 'SeedFailure')) },
  SeedNotJson: { description: 'A body is present but is not a JSON object: `{"message":"request type must be JSON","status":"failed"}`.', content: json(ref('schemas', 'SeedFailure')) },
  SeedTooManyRequests: {
    description: 'Too many failed attempts to authenticate from this address (or against this client id) in a minute; even the right credentials wait for Retry-After.',
    headers: { 'Retry-After': ref('headers', 'Retry-After') },
    content: json(ref('schemas', 'SeedFailure')),
  },
  SeedInternalError: { description: 'The request failed inside the service: `{"status":"failed","message":"internal error"}`.', content: json(ref('schemas', 'SeedFailure')) },
  SeedUnavailable: {
    description: 'The store or the queue is unavailable for a moment, or the request took too long (the gateway\'s own answer, `{"message":"Service Unavailable"}`, when the function ran out of time): try again after Retry-After.',
    headers: { 'Retry-After': ref('headers', 'Retry-After') },
    content: json({ anyOf: [ref('schemas', 'SeedFailure'), ref('schemas', 'GatewayMessage')] }),
  },
};

const sharedHeaders: Record<string, Json> = {
  'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer', minimum: 1 } },
  Allow: { description: 'The methods the path takes, comma-separated.', schema: { type: 'string' }, example: 'GET, DELETE' },
  'WWW-Authenticate': { description: 'The scheme to authenticate with.', schema: { type: 'string' }, example: 'Bearer realm="waas"' },
};

const sharedParameters: Record<string, Json> = {
  JobId: {
    name: 'job_id',
    in: 'path',
    required: true,
    description: "The job's id. A malformed, unknown or other client's id answers 404, never 400.",
    schema: inline(responses.jobIdSchema),
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description: 'A repeat with the same key from the same client within 24 hours gets the first answer and creates nothing; while the first is still being answered, a repeat gets 409.',
    schema: { type: 'string', minLength: idempotencyKeyRule.minLength, maxLength: idempotencyKeyRule.maxLength, pattern: idempotencyKeyRule.pattern.source },
  },
};

/** A 202 says what it promises; any other success is what the route is for. */
const successDescription = (status: number, summary: string) => (status === 202 ? 'Accepted: the job is stored and queued, and will run.' : summary);

/** What each v1 route answers, its success first, then every failure it can give. */
function v1Responses(route: V1Route): Json {
  const { response } = route;
  const success =
    typeof response === 'string'
      ? { description: successDescription(route.status, route.summary), content: json(ref('schemas', response)) }
      : { description: response.description, content: { [response.contentType]: { schema: response.contentType === 'application/json' ? { type: 'object' } : { type: 'string' } } } };
  const out: Json = { [route.status]: success, 400: ref('responses', 'BadRequest') };
  if (route.auth) Object.assign(out, { 401: ref('responses', 'Unauthorized'), 429: ref('responses', 'TooManyRequests') });
  if (route.path.includes('{job_id}')) out[404] = ref('responses', 'JobNotFound');
  if (route.body) Object.assign(out, { 413: ref('responses', 'PayloadTooLarge'), 422: ref('responses', 'NotJson') });
  for (const [status, description] of Object.entries(route.errors ?? {})) out[status] = { description, content: problem };
  Object.assign(out, { 500: ref('responses', 'InternalError'), 503: ref('responses', 'Unavailable') });
  return out;
}

/** A query schema as OpenAPI's query parameters, one per property. */
function queryParameters(schema: z.ZodMiniType): Json[] {
  const json = inline(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, { description, ...property }]) => ({
    name,
    in: 'query',
    required: json.required?.includes(name) ?? false,
    ...(description !== undefined ? { description } : {}),
    schema: property,
  }));
}

const v1Security = [{ basicAuth: [] }, { bearerAuth: [] }];

function v1Operation(route: V1Route): Json {
  const parameters: Json[] = [];
  for (const [, name] of route.path.matchAll(/\{([^}]+)\}/g)) {
    parameters.push(name === 'job_id' ? ref('parameters', 'JobId') : { name, in: 'path', required: true, schema: { type: 'string' }, description: 'The name the page gives it.' });
  }
  if (route.query) parameters.push(...queryParameters(route.query));
  if (route.idempotencyKey) parameters.push(ref('parameters', 'IdempotencyKey'));
  const operation: Json = {
    operationId: route.id,
    tags: [route.auth ? 'v1' : 'documentation'],
    summary: route.summary,
    security: route.auth ? v1Security : [],
    ...(parameters.length > 0 ? { parameters } : {}),
  };
  if (route.body) {
    const schema = schemaRef(route.body);
    // A body with a required field is required; one that may be empty ({} or none) is not.
    const required = nameOf(route.body) !== undefined || ((inline(route.body)['required'] as string[] | undefined)?.length ?? 0) > 0;
    operation['requestBody'] = { required, content: json(schema) };
  }
  operation['responses'] = v1Responses(route);
  return operation;
}

/**
 * The seed's routes take credentials in the JSON body too, which no OpenAPI security scheme can
 * say: Basic is one way, `{}` (none in a header) the other, with the body's fields in its schema.
 */
const seedSecurity = [{ basicAuth: [] }, {}];

function seedOperation(route: SeedRoute): Json {
  const credentials = ref('schemas', 'SeedCredentials');
  const body = route.body ? { allOf: [schemaRef(route.body), credentials] } : route.jobId ? { allOf: [credentials, ref('schemas', 'SeedStatusQuery')] } : credentials;
  const parameters: Json[] = [];
  if (route.jobId) parameters.push({ name: 'job_id', in: 'query', required: false, description: 'The job, here or in the body.', schema: { type: 'string' } });
  if (route.idempotencyKey) parameters.push(ref('parameters', 'IdempotencyKey'));
  const out: Json = { [route.status]: { description: successDescription(route.status, route.summary), content: json(ref('schemas', route.response)) } };
  if (route.body) out[400] = ref('responses', 'SeedBadRequest');
  out[401] = ref('responses', 'SeedUnauthorized');
  if (route.jobId) out[404] = ref('responses', 'SeedJobNotFound');
  if (route.idempotencyKey) out[409] = ref('responses', 'SeedKeyInProgress');
  Object.assign(out, {
    413: ref('responses', 'SeedPayloadTooLarge'),
    422: ref('responses', 'SeedNotJson'),
    429: ref('responses', 'SeedTooManyRequests'),
    500: ref('responses', 'SeedInternalError'),
    503: ref('responses', 'SeedUnavailable'),
  });
  return {
    operationId: route.id,
    tags: ['seed'],
    summary: route.summary,
    description:
      route.method === 'GET'
        ? 'Credentials (and, for /status, the job id) may come in a JSON body, as the seed API reads them, although this is a GET: curl -X GET -d sends one. Or HTTP Basic and the query.'
        : 'Credentials in the JSON body beside the job (client_id, verify_token), or HTTP Basic.',
    security: seedSecurity,
    ...(parameters.length > 0 ? { parameters } : {}),
    requestBody: { required: route.method === 'POST', content: json(body) },
    responses: out,
  };
}

const healthOperation: Json = {
  operationId: 'health',
  tags: ['seed'],
  summary: 'Whether the service can accept jobs',
  security: [],
  responses: {
    200: { description: 'It can.', content: json(ref('schemas', 'Health')) },
    503: { description: 'The local stack only: its storage is down (being restarted), `{"status":"unavailable"}`.', headers: { 'Retry-After': ref('headers', 'Retry-After') }, content: json({ type: 'object', properties: { status: { const: 'unavailable' } }, required: ['status'] }) },
  },
};

/**
 * The callback, as OpenAPI 3.1's `webhooks` say a request the API makes to its client: POST to
 * the job's `callback`, signed per Standard Webhooks (callback.ts's `signCallback`).
 */
const callbackWebhook: Json = {
  post: {
    operationId: 'jobSettled',
    summary: "A job's outcome, POSTed to its callback URL once it is completed or failed",
    description:
      'Signed per Standard Webhooks: verify webhook-signature (v1, base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}", keyed by the client\'s signing_secret, whsec_ and base64) over the raw body before reading it, with any Standard Webhooks library. Answer 2xx: anything else, or no answer within 10 s, is retried like a service call (callback_max_attempts).',
    parameters: [
      { name: 'webhook-id', in: 'header', required: true, description: 'The job id: the same on every retry, so duplicates can be dropped.', schema: inline(responses.jobIdSchema) },
      { name: 'webhook-timestamp', in: 'header', required: true, description: "This attempt's time, in Unix seconds.", schema: { type: 'string', pattern: '^[0-9]+$' } },
      {
        name: 'webhook-signature',
        in: 'header',
        required: true,
        description: 'v1,<base64 signature>: one per signing secret in use, space-separated (two for 24 hours after the secret is rotated).',
        schema: { type: 'string', pattern: '^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$' },
      },
    ],
    requestBody: { required: true, content: json(ref('schemas', 'Callback')) },
    responses: { '2XX': { description: 'Received: the callback is settled ("notified": "true").' } },
  },
};

const description = `A webhook as a service: it makes an HTTP request for you, from a queue, with retries, records the answer, and calls you back, signed (Standard Webhooks), with the outcome.

Two APIs on the same jobs:
- **v1** (\`/v1/...\`): credentials in \`Authorization\` only, HTTP Basic (\`client_id:verify_token\`) or Bearer (\`client_id:verify_token\` or \`client_id.verify_token\`). Every failure is an RFC 9457 problem (\`${problemContentType}\`, type \`${problemTypePrefix}<name>\`) whose \`detail\` names the field and the rule. An unknown field or query parameter is a 400 that names it. A known path asked with another method is a 405 with \`Allow\` (components/responses/MethodNotAllowed); an unknown path under /v1 a 404 problem.
- **The seed API** (\`/webhook\`, \`/status\`), kept word for word: credentials in the JSON body (\`client_id\`, \`verify_token\`) or HTTP Basic; its failures are its own bodies, \`{"status":...}\`.

Request bodies are JSON objects of at most ${jobLimits.requestBodyBytes} bytes. This document is generated from the schemas that validate the requests; rules JSON Schema cannot express (the URL rules, the header rules) are in the fields' descriptions.`;

function build(): Json {
  const paths: Record<string, Json> = {};
  const add = (method: string, path: string, operation: Json) => {
    paths[path] = { ...paths[path], [method.toLowerCase()]: operation };
  };
  for (const route of seedRoutes) add(route.method, route.path, seedOperation(route));
  add('GET', healthPath, healthOperation);
  for (const route of v1Routes) add(route.method, route.path, v1Operation(route));
  return {
    openapi: '3.1.0',
    info: { title: 'waas', version: apiVersion, description },
    // Relative: the deployment that serves this document (API Gateway's stage, or the local stack).
    servers: [{ url: '/', description: 'This deployment' }],
    tags: [
      { name: 'v1', description: 'The v1 API: jobs one by one or by the hundred, listed, read, cancelled and replayed.' },
      { name: 'seed', description: "The seed API, kept word for word." },
      { name: 'documentation', description: 'This document and the page that renders it; no credentials.' },
    ],
    paths,
    webhooks: { jobSettled: callbackWebhook },
    components: {
      schemas: componentSchemas(),
      responses: sharedResponses,
      parameters: sharedParameters,
      headers: sharedHeaders,
      securitySchemes: {
        basicAuth: { type: 'http', scheme: 'basic', description: 'client_id:verify_token, as `curl -u` sends them.' },
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'client_id:verify_token',
          description: 'v1 only. The token is client_id:verify_token, or client_id.verify_token (RFC 6750\'s token syntax has no colon, and a strict client or proxy may insist on it).',
        },
      },
    },
  };
}

let document: Json | undefined;

/** The document, built at the first call in a process. Not to be changed by its callers. */
export function openApiDocument(): Json {
  document ??= build();
  return document;
}
