import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { activeSecrets, rotateSecret, secretOverlapMs, signCallback } from '../../lambdas/core/callback.ts';
import { newSigningSecret } from '../../lambdas/core/auth.ts';

const body = JSON.stringify({ jobId: 'j', status: 'completed' });

describe('signing secret rotation', () => {
  it('signs with the new and the old secret during the overlap, so either verifies', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const old = newSigningSecret();
    const rotated = rotateSecret({ signingSecrets: [old] }, newSigningSecret(), now);
    const secrets = activeSecrets(rotated, now + secretOverlapMs - 1);
    expect(secrets).toEqual([rotated.signingSecrets[0], old]);
    const headers = signCallback(secrets, 'j', new Date(now), body);
    expect(headers['webhook-signature']?.split(' ')).toHaveLength(2);
    for (const secret of secrets) {
      // Verify as a receiver would (its clock near the signature's timestamp).
      const verifier = new Webhook(secret);
      expect(() => verifier.verify(body, { ...headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000)) })).toThrow();
      const fresh = signCallback(secrets, 'j', new Date(), body);
      expect(verifier.verify(body, fresh)).toEqual(JSON.parse(body));
    }
  });

  it('stops signing with the old secret when the overlap ends', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const old = newSigningSecret();
    const rotated = rotateSecret({ signingSecrets: [old] }, newSigningSecret(), now);
    expect(activeSecrets(rotated, now + secretOverlapMs)).toEqual([rotated.signingSecrets[0]]);
    const fresh = signCallback(activeSecrets(rotated, Date.now() + secretOverlapMs * 2), 'j', new Date(), body);
    expect(() => new Webhook(old).verify(body, fresh)).toThrow();
  });

  it('keeps at most two secrets however often it rotates', () => {
    let client = { signingSecrets: [newSigningSecret()] } as { signingSecrets: string[]; secretsRetireAt?: string };
    for (let i = 0; i < 5; i++) client = rotateSecret(client, newSigningSecret(), Date.parse('2026-01-01T00:00:00Z') + i);
    expect(client.signingSecrets).toHaveLength(2);
  });
});
