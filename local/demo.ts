/**
 * The seed's demo client. It exists only in the local stack: nothing under lib/ or lambdas/
 * knows these values, so they cannot reach AWS.
 *
 * `WAAS_DEMO_CLIENT` decides whether the stack makes it: `on` (the default) creates it at the
 * first start and advertises it; `off` creates nothing and advertises nothing. A demo client that
 * exists is never touched: one revoked stays revoked, one whose token someone replaced keeps the
 * new token, across every restart.
 */
import { hashToken, newClient } from '../lambdas/core/auth.ts';
import type { ClientStore } from '../lambdas/core/ports.ts';

export const demoClient = { clientId: '66666666666668', verifyToken: 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a', name: 'demo' } as const;

/** The environment variable, and the values it takes (the first is the default). */
export const demoClientVariable = 'WAAS_DEMO_CLIENT';
export const demoClientModes = ['on', 'off'] as const;
export type DemoClientMode = (typeof demoClientModes)[number];

/** `WAAS_DEMO_CLIENT`: unset or empty is `on`; `on` or `off` in any case; anything else is refused. */
export function demoClientMode(env: Record<string, string | undefined> = process.env): DemoClientMode {
  const raw = env[demoClientVariable];
  if (raw === undefined || raw.trim() === '') return 'on';
  const value = raw.trim().toLowerCase();
  if ((demoClientModes as readonly string[]).includes(value)) return value as DemoClientMode;
  throw new Error(`${demoClientVariable} must be on or off (on, the default, creates the demo client), got ${JSON.stringify(raw)}`);
}

/** What became of the demo client at start. */
export type DemoClient =
  /** It works with the demo credentials: made now (`created`) or kept from an earlier run. */
  | { state: 'ready'; clientId: string; verifyToken: string; signingSecret: string; created: boolean }
  /** It exists and was revoked (at `revoked`): it stays so. */
  | { state: 'revoked'; clientId: string; revoked: string }
  /** It exists with another token than the demo's: someone replaced it; it is left alone. */
  | { state: 'replaced'; clientId: string }
  /**
   * `WAAS_DEMO_CLIENT=off`: nothing made or advertised. `stillAccepted`: one from an earlier run
   * still takes the demo credentials (left as it is, so the operator may want to revoke it).
   */
  | { state: 'off'; clientId: string; stillAccepted: boolean };

type Wanted = { clientId: string; verifyToken: string; name: string };

/**
 * Makes the demo client if `mode` is `on` and no client has its id; any client that has its id
 * is left exactly as it is. Says what it found.
 */
export async function ensureDemoClient(clients: ClientStore, mode: DemoClientMode, wanted: Wanted = demoClient): Promise<DemoClient> {
  const existing = await clients.get(wanted.clientId);
  const accepts = existing !== undefined && !existing.revoked && existing.tokenHash === hashToken(wanted.verifyToken);
  if (mode === 'off') return { state: 'off', clientId: wanted.clientId, stillAccepted: accepts };
  if (!existing) {
    const made = newClient(wanted);
    await clients.put(made.client);
    return { state: 'ready', clientId: wanted.clientId, verifyToken: wanted.verifyToken, signingSecret: made.signingSecret, created: true };
  }
  if (existing.revoked) return { state: 'revoked', clientId: wanted.clientId, revoked: existing.revoked };
  if (!accepts) return { state: 'replaced', clientId: wanted.clientId };
  return { state: 'ready', clientId: wanted.clientId, verifyToken: wanted.verifyToken, signingSecret: existing.signingSecrets[0] ?? '', created: false };
}

/** The lines `npm start` prints about the demo client, once the stack is ready at `url`. */
export function demoClientLines(demo: DemoClient, url: string): string[] {
  const newClientHint = 'npm run --silent clients -- create makes a new client';
  switch (demo.state) {
    case 'ready':
      return [
        `  demo client_id:      ${demo.clientId}`,
        `  demo verify_token:   ${demo.verifyToken}`,
        `  demo signing_secret: ${demo.signingSecret}`,
        `  try: curl -u ${demo.clientId}:${demo.verifyToken} ${url}/webhook`,
      ];
    case 'revoked':
      return [`  demo client ${demo.clientId} is revoked (since ${demo.revoked}) and stays so (${newClientHint})`];
    case 'replaced':
      return [`  demo client ${demo.clientId} has another token than the demo's: left as it is (${newClientHint})`];
    case 'off':
      return demo.stillAccepted
        ? [`  demo client off (${demoClientVariable}=off), but ${demo.clientId} from an earlier run still accepts the demo token (npm run --silent clients -- revoke ${demo.clientId} ends it)`]
        : [`  demo client off (${demoClientVariable}=off)`];
  }
}
