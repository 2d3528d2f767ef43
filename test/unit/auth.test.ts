import { createHash } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { Authenticator, hashToken, newSigningSecret, newVerifyToken, readCredentials } from '../../lambdas/core/auth.ts';
import { BadCredentials } from '../../lambdas/core/errors.ts';
import { credentialCacheMs } from '../../lib/definitions.ts';
import { ManualClock, MemoryClientStore, testClient } from '../support/memory.ts';

const basic = (text: string) => `Basic ${Buffer.from(text, 'utf8').toString('base64')}`;

describe('hashToken', () => {
  it('is the SHA-256 of the token, in hex', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const token = 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a';
    expect(hashToken(token)).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('readCredentials', () => {
  it('reads client_id and verify_token from the JSON body, as the seed does', () => {
    expect(readCredentials({ client_id: '66666666666668', verify_token: 'tok' }, undefined)).toEqual({ clientId: '66666666666668', token: 'tok' });
  });

  it('reads HTTP Basic auth as curl -u sends it', () => {
    expect(readCredentials(undefined, basic('66666666666668:tok'))).toEqual({ clientId: '66666666666668', token: 'tok' });
    expect(readCredentials({ service: 'https://example.com' }, `basic   ${Buffer.from('id:tok').toString('base64')}  `)).toEqual({ clientId: 'id', token: 'tok' });
  });

  it('keeps a colon inside the token (only the first one separates)', () => {
    expect(readCredentials(undefined, basic('id:to:ken'))).toEqual({ clientId: 'id', token: 'to:ken' });
  });

  it('takes credentials given in both places when they are the same pair', () => {
    expect(readCredentials({ client_id: 'id', verify_token: 'tok' }, basic('id:tok'))).toEqual({ clientId: 'id', token: 'tok' });
  });

  it('takes the body\'s credentials beside an Authorization header of another scheme', () => {
    expect(readCredentials({ client_id: 'id', verify_token: 'tok' }, 'Bearer abc')).toEqual({ clientId: 'id', token: 'tok' });
  });

  it.each([
    ['another id and token', { client_id: 'body-id', verify_token: 'body-tok' }, basic('header-id:header-tok')],
    ['the same id, another token', { client_id: 'id', verify_token: 'body-tok' }, basic('id:header-tok')],
    ['another id, the same token', { client_id: 'body-id', verify_token: 'tok' }, basic('header-id:tok')],
    ['a token differing only in case', { client_id: 'id', verify_token: 'tok' }, basic('id:TOK')],
    ['good body credentials beside a Basic header that cannot be read', { client_id: 'id', verify_token: 'tok' }, 'Basic !!!'],
    ['good body credentials beside a Basic header without a colon', { client_id: 'id', verify_token: 'tok' }, basic('id')],
    ['good body credentials beside an empty Basic header', { client_id: 'id', verify_token: 'tok' }, 'Basic'],
  ])('credentials in the body and in Basic auth that disagree (%s) give none: neither wins', (_, body, header) => {
    expect(readCredentials(body, header)).toBeUndefined();
  });

  it('Basic credentials that are not UTF-8 give none, not a token with U+FFFD in it', () => {
    const bytes = Buffer.concat([Buffer.from('id:to'), Buffer.from([0xff]), Buffer.from('k')]);
    expect(readCredentials(undefined, `Basic ${bytes.toString('base64')}`)).toBeUndefined();
  });

  it.each([
    ['no credentials at all', undefined, undefined],
    ['a body without credentials', { service: 'https://example.com' }, undefined],
    ['a numeric client_id', { client_id: 66666666666668, verify_token: 'tok' }, undefined],
    ['a body with client_id only', { client_id: 'id' }, basic('id:tok')],
    ['a body with verify_token only', { verify_token: 'tok' }, undefined],
    ['a Bearer header', undefined, 'Bearer abc'],
    ['Basic without a payload', undefined, 'Basic'],
    ['Basic with characters outside base64', undefined, 'Basic !!!'],
    ['Basic without a colon', undefined, basic('just-an-id')],
  ])('%s gives no credentials', (_, body, header) => {
    expect(readCredentials(body as Record<string, unknown> | undefined, header)).toBeUndefined();
  });
});

describe('Authenticator', () => {
  function setup() {
    const clock = new ManualClock();
    const clients = new MemoryClientStore();
    const alice = testClient('11111111111111');
    const revoked = testClient('22222222222222', { revoked: '2024-12-31T00:00:00.000Z' });
    clients.clients.set(alice.client.clientId, alice.client);
    clients.clients.set(revoked.client.clientId, revoked.client);
    return { clock, clients, alice, revoked, auth: new Authenticator(clients, clock) };
  }

  it('accepts the right token and returns its client', async () => {
    const { auth, alice } = setup();
    await expect(auth.authenticate({ clientId: alice.client.clientId, token: alice.token })).resolves.toEqual(alice.client);
  });

  it.each([
    ['a wrong token', (s: ReturnType<typeof setup>) => ({ clientId: s.alice.client.clientId, token: `${s.alice.token}x` })],
    ['another client\'s token', (s: ReturnType<typeof setup>) => ({ clientId: s.alice.client.clientId, token: s.revoked.token })],
    ['an unknown client', (s: ReturnType<typeof setup>) => ({ clientId: '99999999999999', token: s.alice.token })],
    ['a revoked client with its right token', (s: ReturnType<typeof setup>) => ({ clientId: s.revoked.client.clientId, token: s.revoked.token })],
    ['an empty client id', (s: ReturnType<typeof setup>) => ({ clientId: '', token: s.alice.token })],
    ['no credentials', () => undefined],
  ])('refuses %s with BadCredentials', async (_, credentials) => {
    const s = setup();
    await expect(s.auth.authenticate(credentials(s))).rejects.toBeInstanceOf(BadCredentials);
  });

  it('refuses a client revoked after login once the cache lifetime has passed, and no later than 10 s', async () => {
    expect(credentialCacheMs).toBeLessThanOrEqual(10_000);
    const { auth, clients, clock, alice } = setup();
    const credentials = { clientId: alice.client.clientId, token: alice.token };
    await auth.authenticate(credentials);
    await clients.revoke(alice.client.clientId, new Date(clock.now()).toISOString());

    clock.advance(credentialCacheMs - 1);
    await expect(auth.authenticate(credentials)).resolves.toMatchObject({ clientId: alice.client.clientId });
    clock.advance(1);
    await expect(auth.authenticate(credentials)).rejects.toBeInstanceOf(BadCredentials);
  });

  it('serves repeated logins from its cache until the cache lifetime passes', async () => {
    const { auth, clients, clock, alice } = setup();
    const credentials = { clientId: alice.client.clientId, token: alice.token };
    for (let i = 0; i < 5; i++) await auth.authenticate(credentials);
    expect(clients.gets).toBe(1);
    clock.advance(credentialCacheMs);
    await auth.authenticate(credentials);
    expect(clients.gets).toBe(2);
  });

  it('checks the token on every call, cached or not', async () => {
    const { auth, alice } = setup();
    await auth.authenticate({ clientId: alice.client.clientId, token: alice.token });
    await expect(auth.authenticate({ clientId: alice.client.clientId, token: 'wrong' })).rejects.toBeInstanceOf(BadCredentials);
  });
});

describe('new credentials', () => {
  it('a verify token is 24 random bytes as 48 hex characters', () => {
    const token = newVerifyToken();
    expect(token).toMatch(/^[0-9a-f]{48}$/);
    expect(Buffer.from(token, 'hex')).toHaveLength(24);
    expect(newVerifyToken()).not.toBe(token);
  });

  it('a signing secret is "whsec_" and a base64 32-byte key that Standard Webhooks accepts', () => {
    const secret = newSigningSecret();
    expect(secret.startsWith('whsec_')).toBe(true);
    const key = secret.slice('whsec_'.length);
    expect(key).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(key, 'base64')).toHaveLength(32);
    expect(newSigningSecret()).not.toBe(secret);
    const webhook = new Webhook(secret);
    const at = new Date();
    const signature = webhook.sign('msg_1', at, '{}');
    expect(() =>
      webhook.verify('{}', { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signature }),
    ).not.toThrow();
  });
});
