/**
 * Secrets never reach the logs: a local stack at POWERTOOLS_LOG_LEVEL=DEBUG runs jobs for a
 * freshly created client (so its token and signing secret are not the printed demo ones), with
 * secret header values, secret bodies, callbacks that succeed and fail, wrong tokens, a rotated
 * secret, a revocation and refused targets; then everything the stack printed is scanned for
 * each of those secrets, their hashes and their encodings.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { hashToken } from '../../lambdas/core/auth.ts';
import { basic, call, clients, demo, removeDir, startStack, startTarget, waitFor, waitForJob, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack;
let service: Target;
let callbacks: Target;
let client: { clientId: string; verifyToken: string; signingSecret: string };

/** Every secret the run hands the stack, by what it is. */
const secrets = new Map<string, string>();
const secret = (what: string): string => {
  const value = randomBytes(24).toString('base64url');
  secrets.set(what, value);
  return value;
};

beforeAll(async () => {
  [stack, service, callbacks] = await Promise.all([
    startStack({ env: { POWERTOOLS_LOG_LEVEL: 'DEBUG' } }),
    startTarget((request, response) => {
      if (request.url.startsWith('/fail')) {
        response.writeHead(500);
        return void response.end('down');
      }
      if (request.url.startsWith('/reject')) {
        response.writeHead(400);
        return void response.end('no');
      }
      // Echoes what it got, so the secrets are also in the job's output and the callback.
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ headers: request.headers, body: request.body }));
    }),
    startTarget((request, response) => {
      response.writeHead(request.url.startsWith('/down') ? 500 : 200);
      response.end('thanks');
    }),
  ]);
  const created = clients(stack.dataDir, 'create', '--name', 'log-scan');
  const json = created.json as { client_id?: string; verify_token?: string; signing_secret?: string } | undefined;
  if (created.status !== 0 || !json?.client_id || !json.verify_token || !json.signing_secret) throw new Error(`clients create failed: ${created.stderr}`);
  client = { clientId: json.client_id, verifyToken: json.verify_token, signingSecret: json.signing_secret };
});

afterAll(async () => {
  await stack?.stop();
  await service?.close();
  await callbacks?.close();
  if (stack) removeDir(stack.dataDir);
});

/** The forms a secret could be printed in: itself, URL-encoded, and its two halves when long. */
function forms(value: string): string[] {
  const all = [value, encodeURIComponent(value)];
  if (value.length >= 32) all.push(value.slice(0, 16), value.slice(-16));
  return [...new Set(all)];
}

/** Where in `output` any of `named` appears, in any of its forms. */
function leaks(output: string, named: Map<string, string>): Array<{ what: string; form: string; at: number }> {
  const found: Array<{ what: string; form: string; at: number }> = [];
  for (const [what, value] of named) {
    for (const form of forms(value)) {
      const at = output.indexOf(form);
      if (at >= 0) found.push({ what, form, at });
    }
  }
  return found;
}

describe('logs at DEBUG hold no credential, secret or client header value', () => {
  it('runs jobs with secrets through a fresh client, then finds none of them in anything the stack printed', async () => {
    const auth = basic(client.clientId, client.verifyToken);
    const as = { clientId: client.clientId, verifyToken: client.verifyToken };
    secrets.set('verify_token', client.verifyToken);
    secrets.set('verify_token sha256', hashToken(client.verifyToken));
    secrets.set('Basic credentials', auth['authorization']?.replace(/^Basic /, '') ?? '');
    secrets.set('signing_secret', client.signingSecret);
    secrets.set('signing_secret key', client.signingSecret.replace(/^whsec_/, ''));

    // 1. Completed, called back: secret headers, a secret JSON body, echoed into the output.
    const first = await call(stack.url, 'POST', '/webhook', {
      service: `${service.url}/echo`,
      headers: { Authorization: `Bearer ${secret('Authorization header')}`, 'x-api-key': secret('x-api-key header'), 'X-Session': secret('X-Session header') },
      data: { password: secret('body password'), nested: { card: secret('body card') } },
      callback: `${callbacks.url}/ok`,
    }, auth);
    expect(first.status).toBe(202);
    const firstId = String(first.body['job_id']);
    await waitForJob(stack.url, firstId, (job) => job['notified'] === 'true', as);
    // The secrets did pass through the stack: the scan below is looking for things it handled.
    const hit = service.received.find((r) => r.headers['idempotency-key'] === firstId);
    expect(hit?.headers['x-api-key']).toBe(secrets.get('x-api-key header'));
    expect(hit?.body).toContain(secrets.get('body password'));
    const signed = callbacks.received.find((r) => r.body.includes(firstId));
    expect(signed).toBeDefined();
    expect(() => new Webhook(client.signingSecret).verify(signed?.body ?? '', signed?.headers as Record<string, string>)).not.toThrow();

    // 2. Retried then failed, callback down: a secret raw-text body and a bearer token.
    const second = await call(stack.url, 'POST', '/webhook', {
      service: `${service.url}/fail`,
      methodtype: 'PUT',
      headers: { Authorization: `Bearer ${secret('retried Authorization header')}` },
      data: secret('raw text body'),
      max_attempts: 2,
      callback: `${callbacks.url}/down`,
      callback_max_attempts: 2,
    }, auth);
    expect(second.status).toBe(202);

    // 3. Refused by the target (400, not retried), a secret in the query string and a header.
    const third = await call(stack.url, 'POST', '/webhook', {
      service: `${service.url}/reject?api_key=${secret('query string api_key')}`,
      headers: { 'x-api-key': secret('rejected x-api-key header') },
      callback: `${callbacks.url}/ok`,
    }, auth);
    expect(third.status).toBe(202);

    // 4. Refused at submit: private targets, with secrets along.
    for (const payload of [
      { service: 'http://169.254.169.254/latest/meta-data/', headers: { Authorization: `Bearer ${secret('refused service Authorization header')}` } },
      { service: `${service.url}/echo`, callback: 'http://10.0.0.1/hook', headers: { 'x-api-key': secret('refused callback x-api-key header') } },
      { service: `${service.url}/echo`, headers: { 'X-Evil': `${secret('CRLF header value')}\r\nHost: evil.example` } },
      { service: `${service.url}/echo`, headers: { 'Proxy-Authorization': `Basic ${secret('Proxy-Authorization header')}` } },
    ]) {
      const refused = await call(stack.url, 'POST', '/webhook', payload, auth);
      expect(refused.status).toBe(400);
      expect(leaks(JSON.stringify(refused.body), secrets)).toEqual([]);
    }

    // 5. Wrong tokens (a mistyped real token is a secret too), by Basic and in the body.
    for (let i = 0; i < 3; i++) {
      const wrong = secret(`wrong token ${i}`);
      expect((await call(stack.url, 'POST', '/webhook', { service: `${service.url}/echo` }, basic(client.clientId, wrong))).status).toBe(401);
    }
    const wrongInBody = secret('wrong token in body');
    expect((await call(stack.url, 'GET', '/webhook', { client_id: client.clientId, verify_token: wrongInBody })).status).toBe(401);
    expect((await call(stack.url, 'GET', `/status?job_id=${firstId}`, undefined, basic(client.clientId, secret('wrong token on status')))).status).toBe(401);

    await waitForJob(stack.url, String(second.body['job_id']), (job) => job['status'] === 'failed' && job['notified'] === 'notification failed', as);
    await waitForJob(stack.url, String(third.body['job_id']), (job) => job['status'] === 'failed' && job['notified'] === 'true', as);

    // 6. A rotated signing secret signs the next callback; both secrets are secrets.
    const rotated = clients(stack.dataDir, 'rotate-secret', client.clientId);
    const rotatedSecret = (rotated.json as { signing_secret?: string } | undefined)?.signing_secret;
    expect(rotated.status, rotated.stderr).toBe(0);
    expect(rotatedSecret).toMatch(/^whsec_/);
    secrets.set('rotated signing_secret', rotatedSecret ?? '');
    secrets.set('rotated signing_secret key', (rotatedSecret ?? '').replace(/^whsec_/, ''));
    const fourth = await call(stack.url, 'POST', '/webhook', {
      service: `${service.url}/echo`,
      headers: { Authorization: `Bearer ${secret('after rotation Authorization header')}` },
      callback: `${callbacks.url}/ok`,
    }, auth);
    expect(fourth.status).toBe(202);
    await waitForJob(stack.url, String(fourth.body['job_id']), (job) => job['notified'] === 'true', as);

    // 7. Revoked: refused within the documented bound.
    const revoked = clients(stack.dataDir, 'revoke', client.clientId);
    expect(revoked.status, revoked.stderr).toBe(0);
    await waitFor(async () => ((await call(stack.url, 'GET', '/webhook', undefined, auth)).status === 401 ? true : undefined), 15_000, 'the revocation to take effect');

    // Everything the stack printed, after it stopped (so nothing is still buffered).
    await stack.stop();
    const output = stack.output();
    const lines = output.split('\n').filter((line) => line.trim() !== '');
    const structured = lines.filter((line) => {
      try {
        return typeof (JSON.parse(line) as Record<string, unknown>)['level'] === 'string';
      } catch {
        return false;
      }
    });
    for (const [what, value] of secrets) expect(value.length, what).toBeGreaterThanOrEqual(16);
    const found = leaks(output, secrets);
    console.log(JSON.stringify({ logScan: { lines: lines.length, structuredLogLines: structured.length, secretsScanned: secrets.size, leaks: found } }));

    // The scan reads the real output: the demo token, which the stack prints on purpose, is found.
    expect(output).toContain('waas is ready at');
    expect(leaks(output, new Map([['demo verify_token', demo.verifyToken]]))).not.toEqual([]);
    // And the handlers did log at DEBUG (requests, attempts), so the scan had logs to read.
    expect(structured.length).toBeGreaterThan(20);
    expect(found).toEqual([]);
  });
});
