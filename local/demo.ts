/**
 * The seed's demo client. It exists only in the local stack: nothing under lib/ or lambdas/
 * knows these values, so they cannot reach AWS.
 */
import { hashToken, newClient } from '../lambdas/core/auth.ts';
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
  // A revoked or changed demo client is made again, keeping its signing secret and creation date.
  const kept = existing?.signingSecrets[0];
  const made = newClient({ ...wanted, ...(kept ? { signingSecret: kept } : {}), ...(existing ? { created: existing.created } : {}) });
  await clients.put(made.client);
  return { clientId: wanted.clientId, verifyToken: wanted.verifyToken, signingSecret: made.signingSecret };
}
