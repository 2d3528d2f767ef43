/**
 * The seed API, end to end: `npm start`'s local stack, real HTTP targets, real callbacks.
 */
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { defaultFailureLimits } from '../../lambdas/core/auth.ts';
import { basic, call, clients, demo, jobs, removeDir, startStack, startTarget, tempDataDir, waitFor, waitForJob, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack;
let service: Target;
let callbacks: Target;
let signingSecret: string;

beforeAll(async () => {
  stack = await startStack();
  signingSecret = stack.output().match(/demo signing_secret:\s+(\S+)/)?.[1] ?? '';
  service = await startTarget((request, response) => {
    if (request.url.startsWith('/flaky')) {
      // Fails the first attempt of each job, then succeeds.
      const key = String(request.headers['idempotency-key']);
      const seen = service.received.filter((r) => r.headers['idempotency-key'] === key).length;
      response.writeHead(seen === 1 ? 503 : 200, { 'content-type': 'text/plain' });
      return void response.end(seen === 1 ? 'try later' : 'done');
    }
    if (request.url.startsWith('/missing')) {
      response.writeHead(404);
      return void response.end('no such thing');
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ echo: request.body, method: request.method }));
  });
  callbacks = await startTarget((_, response) => response.end('thanks'));
});

afterAll(async () => {
  await stack?.stop();
  await service?.close();
  await callbacks?.close();
  if (stack) removeDir(stack.dataDir);
});

const callbackFor = (jobId: string) => () => callbacks.received.find((r) => JSON.parse(r.body).jobId === jobId);

describe('the seed README example', () => {
  it('runs submit → service → signed callback → /status with body credentials', async () => {
    const submitted = await call(stack.url, 'POST', '/webhook', {
      client_id: demo.clientId,
      verify_token: demo.verifyToken,
      service: `${service.url}/post`,
      methodtype: 'POST',
      headers: { serviceAuthId: 'my_service_user', serviceAuthToken: 'my_service_password', 'user-agent': 'named_user_agent', 'Content-Type': 'application/json' },
      callback: `${callbacks.url}/callback`,
      data: { userId: 1, id: 5, title: 'laboriosam mollitia et enim quasi adipisci quia provident illum', completed: false },
    });
    expect(submitted.status).toBe(202);
    expect(submitted.body['status']).toBe('accepted');
    const jobId = String(submitted.body['job_id']);
    expect(jobId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(String(submitted.body['created'])).toISOString()).toBe(submitted.body['created']);

    const callback = await waitFor(callbackFor(jobId), 20_000, 'the callback');
    const hit = service.received.find((r) => r.headers['idempotency-key'] === jobId);
    expect(hit?.method).toBe('POST');
    expect(hit?.headers['serviceauthtoken']).toBe('my_service_password');
    expect(hit?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(hit?.body ?? '{}')).toMatchObject({ userId: 1, id: 5, completed: false });

    // Signed per Standard Webhooks with the client's secret, and free of the service's headers.
    const verified = new Webhook(signingSecret).verify(callback.body, callback.headers as Record<string, string>) as Record<string, unknown>;
    expect(verified).toMatchObject({ jobId, clientId: demo.clientId, status: 'completed' });
    expect(callback.headers['webhook-id']).toBe(jobId);
    expect(callback.body).not.toContain('my_service_password');
    expect(typeof verified['job_output']).toBe('string');

    const record = await waitForJob(stack.url, jobId, (job) => job['notified'] === 'true');
    expect(record).toMatchObject({ jobId, clientId: demo.clientId, status: 'completed', attempts: 1, notified: 'true', notifyoutput: '200', methodtype: 'POST' });
    expect((record['output'] as Record<string, unknown>)['statusCode']).toBe(200);
  });

  it('accepts HTTP Basic credentials, as curl -u sends them', async () => {
    const auth = basic(demo.clientId, demo.verifyToken);
    expect(await call(stack.url, 'GET', '/webhook', undefined, auth)).toEqual({ status: 200, body: { status: 'success' } });
    const submitted = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/get`, methodtype: 'get' }, auth);
    expect(submitted.status).toBe(202);
    const record = await waitForJob(stack.url, String(submitted.body['job_id']), (job) => job['status'] === 'completed');
    expect(record['notified']).toBe('n/a');
    expect(record['methodtype']).toBe('GET');
    const status = await call(stack.url, 'GET', '/status', { ...{ client_id: demo.clientId, verify_token: demo.verifyToken }, job_id: submitted.body['job_id'] });
    expect(status.body['jobId']).toBe(submitted.body['job_id']);
  });
});

describe('error answers', () => {
  const auth = basic(demo.clientId, demo.verifyToken);

  it('answers 422 to a body that is not a JSON object', async () => {
    for (const body of ['not json', '[1,2]', '"text"']) {
      expect(await call(stack.url, 'POST', '/webhook', body, auth)).toEqual({ status: 422, body: { message: 'request type must be JSON', status: 'failed' } });
    }
    expect((await call(stack.url, 'GET', '/status', '{oops', auth)).status).toBe(422);
  });

  it('answers 401 to missing, wrong or unknown credentials', async () => {
    const bad = { status: 401, body: { status: 'bad credentials' } };
    expect(await call(stack.url, 'GET', '/webhook')).toEqual(bad);
    expect(await call(stack.url, 'GET', '/webhook', undefined, basic(demo.clientId, 'wrong'))).toEqual(bad);
    expect(await call(stack.url, 'POST', '/webhook', { client_id: '1', verify_token: demo.verifyToken, service: service.url })).toEqual(bad);
  });

  it('answers 400 naming the field and the rule', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{}, /service/],
      [{ service: '/relative' }, /service.*absolute http\(s\) URL/],
      [{ service: service.url, methodtype: 'FETCH' }, /methodtype/],
      [{ service: service.url, headers: { Host: 'evil' } }, /Host/],
      [{ service: service.url, max_attempts: 21 }, /max_attempts.*1 to 20/],
      [{ service: service.url, callback: 'ftp://x' }, /callback/],
    ];
    for (const [body, message] of cases) {
      const answer = await call(stack.url, 'POST', '/webhook', body, auth);
      expect(answer.status).toBe(400);
      expect(answer.body['status']).toBe('failed');
      expect(String(answer.body['message'])).toMatch(message);
    }
  });

  it('answers 413 to a body over 256 KiB', async () => {
    const answer = await call(stack.url, 'POST', '/webhook', { service: service.url, data: 'x'.repeat(300 * 1024) }, auth);
    expect(answer.status).toBe(413);
    expect(answer.body['status']).toBe('failed');
  });

  it('answers 404 to an unknown, malformed or foreign job id', async () => {
    const none = { status: 404, body: { status: 'No job with that ID exists' } };
    expect(await call(stack.url, 'GET', '/status?job_id=6b7d7b4b-6d76-4fed-8306-330cb945cca0', undefined, auth)).toEqual(none);
    expect(await call(stack.url, 'GET', '/status?job_id=nope', undefined, auth)).toEqual(none);
    const mine = await call(stack.url, 'POST', '/webhook', { service: service.url }, auth);
    const other = clients(stack.dataDir, 'create', '--name', 'other').json as { client_id: string; verify_token: string };
    expect(await call(stack.url, 'GET', `/status?job_id=${mine.body['job_id']}`, undefined, basic(other.client_id, other.verify_token))).toEqual(none);
  });
});

describe('delivery', () => {
  const auth = basic(demo.clientId, demo.verifyToken);

  it('retries a 503 and completes on the next attempt', async () => {
    const submitted = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/flaky`, callback: `${callbacks.url}/cb` }, auth);
    const jobId = String(submitted.body['job_id']);
    const record = await waitForJob(stack.url, jobId, (job) => job['notified'] === 'true');
    expect(record).toMatchObject({ status: 'completed', attempts: 2 });
    expect((record['history'] as unknown[]).length).toBe(2);
    expect(service.received.filter((r) => r.headers['idempotency-key'] === jobId)).toHaveLength(2);
  });

  it('fails a job on a 404 and still calls back, with the failure', async () => {
    const submitted = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/missing`, callback: `${callbacks.url}/cb` }, auth);
    const jobId = String(submitted.body['job_id']);
    const callback = await waitFor(callbackFor(jobId), 20_000, 'the failure callback');
    expect(JSON.parse(callback.body)).toMatchObject({ jobId, status: 'failed', job_output: 'no such thing' });
    const record = await waitForJob(stack.url, jobId, (job) => job['notified'] === 'true');
    expect(record).toMatchObject({ status: 'failed', attempts: 1 });
  });
});

describe('idempotent submission', () => {
  it('answers a repeat Idempotency-Key with the first 202 and runs the job once', async () => {
    const headers = { ...basic(demo.clientId, demo.verifyToken), 'idempotency-key': `order-${Date.now()}` };
    const body = { service: `${service.url}/idempotent`, callback: `${callbacks.url}/cb` };
    const answers = await Promise.all([0, 1, 2].map(() => call(stack.url, 'POST', '/webhook', body, headers)));
    // One of them made the job; a repeat gets its 202, or a 409 if it ran out of patience while the first still ran.
    const accepted = answers.filter((answer) => answer.status === 202);
    const first = accepted[0];
    expect(first).toBeDefined();
    for (const answer of answers) expect(answer.status === 202 ? answer : answer.status).toEqual(answer.status === 202 ? first : 409);
    const jobId = String(first?.body['job_id']);
    await waitForJob(stack.url, jobId, (job) => job['notified'] === 'true');
    expect(await call(stack.url, 'POST', '/webhook', body, headers)).toEqual(first);
    expect(service.received.filter((r) => r.url === '/idempotent')).toHaveLength(1);
    expect(callbacks.received.filter((r) => r.headers['webhook-id'] === jobId)).toHaveLength(1);
  });
});

describe('the clients CLI', () => {
  it('creates a client that can submit, lists it without its token, and revokes it within 10 seconds', async () => {
    const created = clients(stack.dataDir, 'create', '--name', 'acme');
    expect(created.status).toBe(0);
    const client = created.json as { client_id: string; verify_token: string; signing_secret: string };
    expect(Object.keys(client).sort()).toEqual(['client_id', 'signing_secret', 'verify_token']);
    const auth = basic(client.client_id, client.verify_token);
    expect((await call(stack.url, 'GET', '/webhook', undefined, auth)).status).toBe(200);

    const listed = clients(stack.dataDir, 'list');
    expect(JSON.stringify(listed.json)).toContain(client.client_id);
    expect(JSON.stringify(listed.json)).not.toContain(client.verify_token);

    expect(clients(stack.dataDir, 'revoke', client.client_id).status).toBe(0);
    const revokedAt = Date.now();
    await waitFor(async () => ((await call(stack.url, 'GET', '/webhook', undefined, auth)).status === 401 ? true : undefined), 10_000, 'the revocation');
    expect(Date.now() - revokedAt).toBeLessThan(10_000);
  });
});

describe('the CLIs', () => {
  it('refuse a DATA_DIR that holds no stack data, instead of making a store there', () => {
    const empty = tempDataDir();
    try {
      for (const run of [clients(empty, 'create'), clients(empty, 'list'), jobs(empty, 'list')]) {
        expect(run.status).toBe(1);
        expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/holds no waas data/)]);
      }
      expect(readdirSync(empty)).toEqual([]);
    } finally {
      removeDir(empty);
    }
  });

  it('refuse unknown commands and extra arguments with their usage and exit 2', () => {
    for (const run of [clients(stack.dataDir, 'list', 'extra'), clients(stack.dataDir, 'revoke'), clients(stack.dataDir, 'frobnicate'), clients(stack.dataDir, 'list', '--bogus'), jobs(stack.dataDir, 'show'), jobs(stack.dataDir, 'list', 'x'), jobs(stack.dataDir, 'list', '--limit', '0'), jobs(stack.dataDir, 'list', '--status', 'done')]) {
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/usage: npm run --silent (clients|jobs) --/);
      expect(run.json).toBeUndefined();
    }
  });

  it('show the operator a job as GET /status shows it, and list jobs newest first by status and client, without a token', async () => {
    const auth = basic(demo.clientId, demo.verifyToken);
    const first = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/listed`, methodtype: 'GET' }, auth);
    const second = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/listed-missing`, methodtype: 'GET', max_attempts: 1 }, auth);
    const firstId = String(first.body['job_id']);
    const secondId = String(second.body['job_id']);
    const record = await waitForJob(stack.url, firstId, (job) => job['status'] === 'completed');
    await waitForJob(stack.url, secondId, (job) => job['status'] === 'completed' || job['status'] === 'failed');

    const shown = jobs(stack.dataDir, 'show', firstId);
    expect(shown.status).toBe(0);
    expect(shown.json).toEqual(record);

    const listed = jobs(stack.dataDir, 'list', '--client', demo.clientId, '--limit', '2');
    expect(listed.status).toBe(0);
    expect((listed.json as Array<Record<string, unknown>>).map((job) => job['jobId'])).toEqual([secondId, firstId]);
    const byStatus = jobs(stack.dataDir, 'list', '--status', String(record['status']), '--limit', '1000').json as Array<Record<string, unknown>>;
    expect(byStatus.every((job) => job['status'] === record['status'])).toBe(true);
    expect(byStatus.map((job) => job['jobId'])).toContain(firstId);
    expect(jobs(stack.dataDir, 'list', '--client', '00000000000000').json).toEqual([]);

    const unknown = jobs(stack.dataDir, 'show', '8a6e0804-2bd0-4672-b79d-d97027f9071e');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr.trim().split('\n')).toEqual(['no job 8a6e0804-2bd0-4672-b79d-d97027f9071e']);
  });
});

describe('credentials under pressure', () => {
  it('rotates a signing secret: callbacks verify with the new and the old one during the overlap', async () => {
    const client = clients(stack.dataDir, 'create').json as { client_id: string; verify_token: string; signing_secret: string };
    const rotated = clients(stack.dataDir, 'rotate-secret', client.client_id).json as { signing_secret: string };
    expect(rotated.signing_secret).toMatch(/^whsec_/);
    expect(rotated.signing_secret).not.toBe(client.signing_secret);
    const submitted = await call(stack.url, 'POST', '/webhook', { service: `${service.url}/x`, callback: `${callbacks.url}/rotated` }, basic(client.client_id, client.verify_token));
    const callback = await waitFor(callbackFor(String(submitted.body['job_id'])), 20_000, 'the callback');
    for (const secret of [client.signing_secret, rotated.signing_secret]) {
      expect(new Webhook(secret).verify(callback.body, callback.headers as Record<string, string>)).toMatchObject({ clientId: client.client_id });
    }
  });

  it('answers a token guesser 429 after 10 failures, without slowing another client', async () => {
    // Failures count in fixed windows (core/auth.ts), whose turn starts the counts again: twelve
    // guesses that a turn fell between are guessed again, against another client, once (twelve
    // calls take a few seconds of the window's minute, so the second try falls within one).
    const { windowMs } = defaultFailureLimits;
    let statuses: number[] = [];
    for (let tries = 0; tries < 2; tries++) {
      const victim = clients(stack.dataDir, 'create').json as { client_id: string; verify_token: string };
      const from = Math.floor(Date.now() / windowMs);
      statuses = [];
      for (let i = 0; i < 12; i++) statuses.push((await call(stack.url, 'GET', '/webhook', undefined, basic(victim.client_id, `guess${i}`))).status);
      if (Math.floor(Date.now() / windowMs) === from) break;
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses.slice(10)).toEqual([429, 429]);
    expect((await call(stack.url, 'GET', '/webhook', undefined, basic(demo.clientId, demo.verifyToken))).status).toBe(200);
  });
});
