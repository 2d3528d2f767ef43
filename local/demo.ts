/**
 * The seed's demo client. It exists only in the local stack: nothing under lib/ or lambdas/
 * knows these values, so they cannot reach AWS.
 */
import { hashToken, newSigningSecret } from '../lambdas/core/auth.ts';
import type { ClientStore } from '../lambdas/core/ports.ts';

export const demoClient = { clientId: '66666666666668', verifyToken: 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a', name: 'demo' } as const;

/** Creates the client unless it exists; its signing secret is kept across restarts. */
export async function ensureClient(
  clients: ClientStore,
  wanted: { clientId: string; verifyToken: string; name: string },
): Promise<{ clientId: string; verifyToken: string; signingSecret: string }> {
  const existing = await clients.get(wanted.clientId);
  if (existing && !existing.revoked && existing.tokenHash === hashToken(wanted.verifyToken)) {
    return { clientId: wanted.clientId, verifyToken: wanted.verifyToken, signingSecret: existing.signingSecrets[0] ?? '' };
  }
  const signingSecret = existing?.signingSecrets[0] ?? newSigningSecret();
  await clients.put({
    clientId: wanted.clientId,
    name: wanted.name,
    tokenHash: hashToken(wanted.verifyToken),
    signingSecrets: [signingSecret],
    created: existing?.created ?? new Date().toISOString(),
  });
  return { clientId: wanted.clientId, verifyToken: wanted.verifyToken, signingSecret };
}
