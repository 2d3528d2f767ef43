/** The local receiver (`npm run receive`): it tells a signed callback from a forged one, and echoes anything else. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signCallback } from '../../lambdas/core/callback.ts';
import { startReceiver, type Receiver } from '../../scripts/receive.ts';

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const other = 'whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBhdCBhbGw=';
const lines: string[] = [];
let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver({ port: 0, secrets: [secret], print: (line) => lines.push(line) });
});
afterAll(() => receiver.close());

const callback = (body: string, headers: Record<string, string>) =>
  fetch(`${receiver.url}/callback`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

describe('the local receiver', () => {
  it('listens on 127.0.0.1 only', () => {
    expect(new URL(receiver.url).hostname).toBe('127.0.0.1');
  });

  it('answers 204 to a callback signed with its secret, and prints its job, status and "valid"', async () => {
    const body = JSON.stringify({ jobId: 'a1b2', status: 'completed' });
    const response = await callback(body, signCallback([other, secret], 'a1b2', new Date(), body));
    expect(response.status).toBe(204);
    expect(lines.at(-1)).toMatch(/ callback job a1b2 completed valid$/);
  });

  it('answers 401 to one signed with another secret, or altered, or unsigned, and prints "forged" with why', async () => {
    const body = JSON.stringify({ jobId: 'c3d4', status: 'failed' });
    expect((await callback(body, signCallback([other], 'c3d4', new Date(), body))).status).toBe(401);
    expect(lines.at(-1)).toMatch(/ callback job c3d4 failed forged \(.+\)$/);
    const signed = signCallback([secret], 'c3d4', new Date(), body);
    expect((await callback(body.replace('failed', 'completed'), signed)).status).toBe(401);
    expect(lines.at(-1)).toMatch(/ callback job c3d4 completed forged /);
    expect((await callback('not json', {})).status).toBe(401);
    expect(lines.at(-1)).toMatch(/ callback job - - forged \(webhook-id, webhook-timestamp or webhook-signature missing\)$/);
  });

  it('echoes any other request as JSON: method, path, query, headers and body', async () => {
    const response = await fetch(`${receiver.url}/anything/here?x=1`, { method: 'PUT', headers: { 'x-probe': 'yes' }, body: 'hello' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ method: 'PUT', path: '/anything/here', query: { x: '1' }, headers: { 'x-probe': 'yes' }, body: 'hello' });
    const get = await fetch(`${receiver.url}/get`);
    expect(await get.json()).toMatchObject({ method: 'GET', path: '/get', body: '' });
  });
});
