/**
 * The OpenAPI document (core/openapi.ts) and the documentation routes: a valid OpenAPI 3.1
 * document by two validators; every route the api function answers in it, with its methods,
 * and nothing else; the answers the api function really gives valid against the document's
 * schemas (held closed: a field the document does not name fails); and the page that renders
 * it, with no inline script and assets of its own origin only.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validate as readmeValidate } from '@readme/openapi-parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, describe, expect, it } from 'vitest';
import { healthPath, seedRoutes, type ApiDeps, type ApiRequest } from '../../lambdas/core/api.ts';
import { docsAssetDir, vendorAssets } from '../../lambdas/core/docs-assets.ts';
import { callbackBody } from '../../lambdas/core/callback.ts';
import { docsContentSecurityPolicy, vendorAssetPath } from '../../lambdas/core/docs.ts';
import { problemContentType } from '../../lambdas/core/errors.ts';
import { publicRecord, type Job, type JobStatus } from '../../lambdas/core/job.ts';
import { openApiDocument } from '../../lambdas/core/openapi.ts';
import { v1Routes } from '../../lambdas/core/v1.ts';
import { callApi, callApiRaw } from '../support/api.ts';
import { acceptedJob, ManualClock, MemoryClientStore, memoryApiDeps, testClient } from '../support/memory.ts';

type Json = Record<string, any>;
type OpenApiInput = Parameters<typeof readmeValidate>[0];
const document = openApiDocument() as Json;
const httpMethods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

function setup() {
  const clock = new ManualClock(Date.parse('2026-12-02T03:04:05.006Z'));
  const clients = new MemoryClientStore();
  const alice = testClient('11111111111111');
  clients.clients.set(alice.client.clientId, alice.client);
  const { jobs, deps } = memoryApiDeps(clock, clients, { sleep: async (ms) => clock.advance(ms) });
  const authorization = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
  const call = (request: Partial<ApiRequest>, credentials = true) =>
    callApi(deps, { method: 'GET', path: '/', query: {}, body: undefined, ...request, headers: { ...(credentials ? { authorization } : {}), ...request.headers } });
  return { deps, jobs, alice, call };
}

/** The api function's raw answer (its body as text), for the answers that are not JSON. */
const callRaw = callApiRaw;

/**
 * The document with every object schema that names its properties closed
 * (`additionalProperties: false`): the document leaves them open for clients, so that a field
 * added later breaks none; the server is held to naming every field it answers.
 */
function closed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(closed);
  if (typeof value !== 'object' || value === null) return value;
  const out: Json = Object.fromEntries(Object.entries(value).map(([key, each]) => [key, closed(each)]));
  if (out['type'] === 'object' && out['properties'] && out['additionalProperties'] === undefined) out['additionalProperties'] = false;
  return out;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
// ajv-formats is CommonJS: under NodeNext its default import is module.exports, whose `default` is the plugin.
addFormats.default(ajv);
ajv.addSchema(closed(document) as Json, 'doc');

const pointer = (...parts: string[]) => parts.map((part) => part.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

/** A response object of an operation, its $ref followed. */
function responseOf(method: string, path: string, status: number): { at: string; response: Json } {
  const responses = document['paths'][path]?.[method.toLowerCase()]?.['responses'];
  expect(responses, `${method} ${path} in the document`).toBeDefined();
  const response = responses[String(status)];
  expect(response, `${method} ${path} documents ${status}`).toBeDefined();
  const name = typeof response['$ref'] === 'string' ? (response['$ref'] as string).split('/').pop() : undefined;
  return name ? { at: pointer('components', 'responses', name), response: document['components']['responses'][name] } : { at: pointer('paths', path, method.toLowerCase(), 'responses', String(status)), response };
}

/** Checks an answer against its documented response: status, media type, and body schema. */
function expectDocumented(method: string, path: string, answer: { statusCode: number; headers?: Record<string, string> | undefined; body: unknown }) {
  const { at, response } = responseOf(method, path, answer.statusCode);
  const contentType = (answer.headers?.['content-type'] ?? 'application/json').split(';')[0] ?? '';
  expect(Object.keys(response['content'] ?? {}), `${method} ${path} ${answer.statusCode}: its media type`).toContain(contentType);
  const validateBody = ajv.getSchema(`doc#/${at}/content/${pointer(contentType)}/schema`);
  expect(validateBody, 'a schema to validate with').toBeDefined();
  const valid = validateBody?.(answer.body);
  expect(validateBody?.errors ?? [], `${method} ${path} ${answer.statusCode}: ${JSON.stringify(answer.body)}`).toEqual([]);
  expect(valid).toBe(true);
  for (const header of Object.keys(response['headers'] ?? {})) expect(answer.headers?.[header.toLowerCase()], `${method} ${path} ${answer.statusCode} sends ${header}`).toBeDefined();
}

/** Checks a body against one of components/schemas, held closed. */
function expectSchema(name: string, body: unknown) {
  const validateBody = ajv.getSchema(`doc#/components/schemas/${name}`);
  const valid = validateBody?.(body);
  expect(validateBody?.errors ?? [], `${name}: ${JSON.stringify(body)}`).toEqual([]);
  expect(valid).toBe(true);
}

describe('the OpenAPI document', () => {
  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator, @readme/openapi-parser)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(document));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const readme = await readmeValidate(structuredClone(document) as OpenApiInput);
    expect(readme).toMatchObject({ valid: true, warnings: [] });
  });

  it('is refused by those validators once broken, so their verdict means something', async () => {
    const broken = structuredClone(document);
    // A response without its description (the schema's rule), a path parameter not declared (a rule of the text).
    broken['paths']['/v1/jobs']['post']['responses']['202'] = { content: {} };
    broken['paths']['/v1/jobs/{job_id}']['get']['parameters'] = [];
    expect((await new Validator().validate(structuredClone(broken))).valid).toBe(false);
    expect((await readmeValidate(structuredClone(broken) as OpenApiInput)).valid).toBe(false);
  });

  it('has every route the api function answers, with its methods, and nothing else', () => {
    const answered = [...seedRoutes.map((route) => `${route.method} ${route.path}`), `GET ${healthPath}`, ...v1Routes.map((route) => `${route.method} ${route.path}`)];
    const documented = Object.entries(document['paths'] as Record<string, Json>).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => httpMethods.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...new Set(answered)].sort());
    // Path items hold operations only: nothing there the server does not answer.
    for (const item of Object.values(document['paths'] as Record<string, Json>)) expect(Object.keys(item).filter((key) => !httpMethods.includes(key))).toEqual([]);
  });

  it('asks for credentials where the routes do: Basic or Bearer on v1, none for the documentation and /health, Basic or the body on the seed', () => {
    const op = (method: string, path: string) => document['paths'][path][method.toLowerCase()];
    for (const route of v1Routes) expect(op(route.method, route.path).security, `${route.method} ${route.path}`).toEqual(route.auth ? [{ basicAuth: [] }, { bearerAuth: [] }] : []);
    for (const route of seedRoutes) expect(op(route.method, route.path).security).toEqual([{ basicAuth: [] }, {}]);
    expect(op('GET', healthPath).security).toEqual([]);
    expect(document['components']['securitySchemes']).toMatchObject({ basicAuth: { type: 'http', scheme: 'basic' }, bearerAuth: { type: 'http', scheme: 'bearer' } });
  });

  it('takes its request schemas from the schemas that validate the requests, their rules in the descriptions', () => {
    const schemas = document['components']['schemas'];
    expect(schemas['Job']).toMatchObject({ additionalProperties: false, required: ['url'], properties: { url: { type: 'string', maxLength: 2048, format: 'uri' }, max_attempts: { type: 'integer', minimum: 1, maximum: 20, default: 5 } } });
    expect(schemas['Job'].properties.url.description).toMatch(/no credentials/);
    expect(schemas['Job'].properties.headers.description).toMatch(/Transfer-Encoding/);
    expect(schemas['Job'].properties.body_base64.description).toMatch(/Not with body/);
    expect(schemas['Batch'].properties.jobs).toMatchObject({ minItems: 1, maxItems: 100, items: { $ref: '#/components/schemas/BatchJob' } });
    expect(schemas['BatchJob'].properties.idempotency_key).toMatchObject({ minLength: 1, maxLength: 255 });
    const list = document['paths']['/v1/jobs']['get'].parameters as Json[];
    expect(list.map((parameter) => parameter['name'])).toEqual(['status', 'limit', 'cursor']);
    expect(list[1]).toMatchObject({ in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } });
    // The seed's POST /webhook takes the job and the body credentials; an unknown field is ignored, not refused.
    expect(schemas['SeedJob'].additionalProperties).toBeUndefined();
    expect(JSON.stringify(document).includes('$schema')).toBe(false);
  });
});

describe("the api function's answers, against the document", () => {
  const url = 'https://service.example.com/hook';

  it('POST /v1/jobs 202, a 400 problem naming a field, a 401 problem', async () => {
    const { call } = setup();
    const accepted = await call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify({ url, method: 'put', body: { a: 1 } }), headers: { 'idempotency-key': 'k-1' } });
    expect(accepted.statusCode).toBe(202);
    expectDocumented('POST', '/v1/jobs', accepted);
    const invalid = await call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify({ url, calback: url }) });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.headers?.['content-type']).toBe(problemContentType);
    expectDocumented('POST', '/v1/jobs', invalid);
    const unauthorized = await call({ method: 'POST', path: '/v1/jobs', body: JSON.stringify({ url }) }, false);
    expect(unauthorized.statusCode).toBe(401);
    expectDocumented('POST', '/v1/jobs', unauthorized);
    const notJson = await call({ method: 'POST', path: '/v1/jobs', body: '[1]' });
    expect(notJson.statusCode).toBe(422);
    expectDocumented('POST', '/v1/jobs', notJson);
  });

  it('POST /v1/jobs/batch 200 with a refused job among accepted ones', async () => {
    const { call } = setup();
    const answer = await call({ method: 'POST', path: '/v1/jobs/batch', body: JSON.stringify({ jobs: [{ url }, { url: 'ftp://nope.example/' }, { url, idempotency_key: 'b-1' }] }) });
    expect(answer.statusCode).toBe(200);
    const results = answer.body['results'] as Json[];
    expect(results.map((result) => ('error' in result ? result['error'].status : result['status']))).toEqual(['accepted', 400, 'accepted']);
    expectDocumented('POST', '/v1/jobs/batch', answer);
  });

  it('a known path asked with another method: the 405 problem the document describes, with Allow', async () => {
    const { call } = setup();
    const answer = await call({ method: 'PUT', path: '/v1/jobs' });
    expect(answer.statusCode).toBe(405);
    const response = document['components']['responses']['MethodNotAllowed'];
    expect(Object.keys(response.content)).toEqual([problemContentType]);
    expect(answer.headers?.['content-type']).toBe(problemContentType);
    expect(answer.headers?.['allow']).toBe('POST, GET');
    expectSchema('Problem', answer.body);
  });

  it('a job id that names no job: the 404 problem', async () => {
    const { call } = setup();
    const answer = await call({ method: 'GET', path: '/v1/jobs/not-a-job-id' });
    expect(answer.statusCode).toBe(404);
    expectDocumented('GET', '/v1/jobs/{job_id}', answer);
  });

  it('POST /webhook 202, GET /status 200, GET /webhook 200, and the seed failures, in the seed bodies', async () => {
    const { call } = setup();
    const submitted = await call({ method: 'POST', path: '/webhook', body: JSON.stringify({ service: url, methodtype: 'post', data: { a: 1 }, callback: 'https://client.example.com/cb' }) });
    expect(submitted.statusCode).toBe(202);
    expectDocumented('POST', '/webhook', submitted);
    const status = await call({ method: 'GET', path: '/status', query: { job_id: String(submitted.body['job_id']) } });
    expect(status.statusCode).toBe(200);
    expectDocumented('GET', '/status', status);
    expectDocumented('GET', '/webhook', await call({ method: 'GET', path: '/webhook' }));
    const cases: Array<[string, Partial<ApiRequest>, boolean, number]> = [
      ['POST /webhook', { method: 'POST', path: '/webhook', body: JSON.stringify({ service: 'nope' }) }, true, 400],
      ['POST /webhook', { method: 'POST', path: '/webhook', body: JSON.stringify({ service: url }) }, false, 401],
      ['POST /webhook', { method: 'POST', path: '/webhook', body: 'not json' }, true, 422],
      ['POST /webhook', { method: 'POST', path: '/webhook', body: JSON.stringify({ service: url, data: 'x'.repeat(300 * 1024) }) }, true, 413],
      ['GET /status', { method: 'GET', path: '/status', query: { job_id: 'nope' } }, true, 404],
      ['GET /webhook', { method: 'GET', path: '/webhook' }, false, 401],
    ];
    for (const [route, request, credentials, expected] of cases) {
      const answer = await call(request, credentials);
      expect(answer.statusCode, route).toBe(expected);
      const [method = '', path = ''] = route.split(' ');
      expectDocumented(method, path, answer);
    }
  });

  it('GET /health 200', async () => {
    const { call } = setup();
    expectDocumented('GET', healthPath, await call({ method: 'GET', path: healthPath }, false));
  });

  it("v1's job record, list page, attempts, cancel and replay, as the core's records make them", () => {
    // The store's side of v1 (manage.ts) is not merged: these are built as it will answer them.
    const job: Job = acceptedJob({
      jobId: '2b1e6bb8-2a61-4fc5-8c49-3f0ad9e3c111',
      callback: 'https://client.example.com/cb',
      status: 'completed',
      attempts: 2,
      nextAttemptAt: Date.parse('2026-12-02T03:05:00.000Z'),
      output: { started: '2026-12-02T03:04:06.000Z', durationMs: 34, statusCode: 200, headers: { 'content-type': 'text/plain' }, body: 'ok', bodyEncoding: 'utf8', bodyBytes: 2, truncated: false },
      history: [
        { attempt: 1, started: '2026-12-02T03:04:05.100Z', durationMs: 10, error: 'timeout' },
        { attempt: 2, started: '2026-12-02T03:04:06.000Z', durationMs: 34, statusCode: 200 },
      ],
      notified: 'true',
      notifyoutput: '200',
      notifyAttempts: 1,
    });
    const other = acceptedJob({ jobId: '0c6a1d4e-53b5-4c0e-9d6e-0a9a3d4b5c6d' });
    expectDocumented('GET', '/v1/jobs/{job_id}', { statusCode: 200, body: publicRecord(job) });
    expectDocumented('GET', '/v1/jobs', { statusCode: 200, body: { jobs: [publicRecord(job), publicRecord(other)], next_cursor: 'opaque' } });
    expectDocumented('GET', '/v1/jobs', { statusCode: 200, body: { jobs: [], next_cursor: null } });
    const attempts = [
      { attempt: 1, started: '2026-12-02T03:04:05.100Z', durationMs: 10, error: 'timeout' },
      { attempt: 2, ...job.output },
    ];
    expectDocumented('GET', '/v1/jobs/{job_id}/attempts', { statusCode: 200, body: { attempts } });
    expectDocumented('GET', '/v1/jobs/{job_id}/request', { statusCode: 200, body: { url: job.service, method: 'POST', headers: { 'Idempotency-Key': job.jobId }, body: '{"a":1}' } });
    expectDocumented('GET', '/v1/jobs/{job_id}/request', { statusCode: 200, body: { url: job.service, method: 'PUT', headers: {}, body: null, body_base64: 'AP8B' } });
    expectDocumented('DELETE', '/v1/jobs/{job_id}', { statusCode: 200, body: publicRecord({ ...other, status: 'cancelled' as JobStatus }) });
    expectDocumented('GET', '/v1/jobs/{job_id}', { statusCode: 200, body: publicRecord({ ...other, replayOf: job.jobId }) });
    expectDocumented('POST', '/v1/jobs/{job_id}/replay', { statusCode: 202, body: { job_id: other.jobId, created: other.created, status: 'accepted', replay_of: job.jobId } });
  });

  it('the callback the core sends, as the document\'s webhook describes it', () => {
    const job = acceptedJob({
      jobId: '2b1e6bb8-2a61-4fc5-8c49-3f0ad9e3c111',
      status: 'failed',
      attempts: 1,
      output: { started: '2026-12-02T03:04:06.000Z', durationMs: 3, error: 'egress policy: 10.0.0.1 is private' },
    });
    const webhook = document['webhooks']['jobSettled']['post'];
    expect(webhook.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Callback' });
    expectSchema('Callback', JSON.parse(callbackBody(job)));
    expectSchema('Callback', JSON.parse(callbackBody({ ...job, status: 'completed', output: { started: job.created, durationMs: 1, statusCode: 204, headers: {}, body: '', bodyEncoding: 'utf8', bodyBytes: 0, truncated: false } })));
  });

  it('refuses what the record does not hold: a field it does not name, a status it does not know', () => {
    const record = publicRecord(acceptedJob({ jobId: '2b1e6bb8-2a61-4fc5-8c49-3f0ad9e3c111' }));
    const check = ajv.getSchema('doc#/components/schemas/JobRecord');
    expect(check?.(record)).toBe(true);
    expect(check?.({ ...record, leaseUntil: 1 })).toBe(false);
    expect(check?.({ ...record, status: 'paused' })).toBe(false);
    expect(check?.({ ...record, created: 'yesterday' })).toBe(false);
  });
});

describe('the documentation routes', () => {
  const made: string[] = [];
  afterAll(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  it('GET /v1/openapi.json answers the document, without credentials', async () => {
    const { deps } = setup();
    const answer = await callRaw(deps, { path: '/v1/openapi.json' });
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(JSON.parse(answer.text)).toEqual(document);
  });

  it('GET /v1/docs answers a page with no inline script whose every asset is its own and answers 200', async () => {
    const { deps } = setup();
    for (const path of ['/v1/docs', '/v1/docs/']) {
      const page = await callRaw(deps, { path });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(page.headers['content-security-policy']).toBe(docsContentSecurityPolicy);
      const scriptSrc = docsContentSecurityPolicy.split('; ').find((directive) => directive.startsWith('script-src'));
      expect(scriptSrc).toBe("script-src 'self'");
      // Every script is a file; no element carries an event handler.
      const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThanOrEqual(2);
      for (const [, attributes, body] of scripts) {
        expect(attributes).toMatch(/\bsrc="/);
        expect(body?.trim()).toBe('');
      }
      expect(page.text).not.toMatch(/\son[a-z]+=/i);
      // Each reference, with what it must be: a script's, a style sheet's, or a link's.
      const references = [...page.text.matchAll(/<(script|link|a)\b[^>]*\b(?:src|href)="([^"]+)"/g)].map(([, element, reference]) => ({ element, reference: reference ?? '' }));
      expect(references.length).toBeGreaterThanOrEqual(4);
      const expectedType: Record<string, string> = { script: 'text/javascript; charset=utf-8', link: 'text/css; charset=utf-8', a: 'application/json' };
      for (const { element = '', reference } of references) {
        const target = new URL(reference, `https://waas.example${path}`);
        expect(target.origin, reference).toBe('https://waas.example');
        const answer = await callRaw(deps, { path: target.pathname });
        expect(answer.statusCode, target.pathname).toBe(200);
        expect(answer.headers['content-type'], `<${element}> ${reference}`).toBe(expectedType[element]);
        if (element !== 'a') expect(answer.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      }
      expect(references.filter(({ reference }) => reference.includes('swagger-ui-bundle.'))).toHaveLength(1);
      const assets = references.filter(({ element }) => element !== 'a').map(({ reference }) => reference);
      expect(new Set(assets).size, 'each asset named once').toBe(4);
    }
  });

  it("serves Swagger UI's own files, byte for byte, and a 404 problem for any other asset", async () => {
    const { deps } = setup();
    const page = await callRaw(deps, { path: '/v1/docs' });
    const bundle = page.text.match(/src="docs\/(swagger-ui-bundle\.[0-9a-f]+\.js)"/)?.[1];
    const answer = await callRaw(deps, { path: `/v1/docs/${bundle}` });
    expect(answer.text).toBe(readFileSync(vendorAssetPath(vendorAssets[0]), 'utf8'));
    const missing = await callRaw(deps, { path: '/v1/docs/swagger-ui-bundle.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toBe(problemContentType);
    expectDocumented('GET', '/v1/docs/{asset}', { ...missing, body: JSON.parse(missing.text) });
  });

  it("reads the renderer's files from beside the bundle when the bundling put them there, else from node_modules", () => {
    const dir = mkdtempSync(join(tmpdir(), 'waas-docs-'));
    made.push(dir);
    const [script] = vendorAssets;
    expect(vendorAssetPath(script, dir)).toMatch(/node_modules\/swagger-ui-dist\/swagger-ui-bundle\.js$/);
    mkdirSync(join(dir, docsAssetDir));
    writeFileSync(join(dir, docsAssetDir, script.file), '/* copied */');
    expect(vendorAssetPath(script, dir)).toBe(join(dir, docsAssetDir, script.file));
  });
});
