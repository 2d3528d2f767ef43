/**
 * The local stack's demo client: made once, then never touched — revoked stays revoked, a
 * replaced token stays replaced — and `WAAS_DEMO_CLIENT=off` makes nothing and advertises nothing.
 */
import { describe, expect, it } from 'vitest';
import { hashToken, newClient } from '../../lambdas/core/auth.ts';
import { demoClient, demoClientLines, demoClientMode, ensureDemoClient } from '../../local/demo.ts';
import { MemoryClientStore } from '../support/memory.ts';

const url = 'http://127.0.0.1:3000';

describe('demoClientMode (WAAS_DEMO_CLIENT)', () => {
  it('is on when unset or empty, and reads on and off in any case', () => {
    expect(demoClientMode({})).toBe('on');
    expect(demoClientMode({ WAAS_DEMO_CLIENT: '' })).toBe('on');
    expect(demoClientMode({ WAAS_DEMO_CLIENT: 'on' })).toBe('on');
    expect(demoClientMode({ WAAS_DEMO_CLIENT: 'off' })).toBe('off');
    expect(demoClientMode({ WAAS_DEMO_CLIENT: ' OFF ' })).toBe('off');
  });

  it('refuses any other value, naming the variable and the values it takes', () => {
    for (const value of ['no', 'false', '0', 'yes']) {
      expect(() => demoClientMode({ WAAS_DEMO_CLIENT: value })).toThrow(`WAAS_DEMO_CLIENT must be on or off (on, the default, creates the demo client), got "${value}"`);
    }
  });
});

describe('ensureDemoClient', () => {
  it('makes the demo client at the first start and keeps it, secret and all, at the next', async () => {
    const clients = new MemoryClientStore();
    const first = await ensureDemoClient(clients, 'on');
    expect(first).toMatchObject({ state: 'ready', clientId: demoClient.clientId, verifyToken: demoClient.verifyToken, created: true });
    const stored = clients.clients.get(demoClient.clientId);
    expect(stored).toMatchObject({ name: 'demo', tokenHash: hashToken(demoClient.verifyToken) });
    expect(stored?.revoked).toBeUndefined();

    const again = await ensureDemoClient(clients, 'on');
    expect(again).toEqual({ ...first, created: false });
    expect(clients.clients.get(demoClient.clientId)).toEqual(stored);
  });

  it('advertises the credentials, and how to try them', async () => {
    const demo = await ensureDemoClient(new MemoryClientStore(), 'on');
    if (demo.state !== 'ready') throw new Error(`expected ready, got ${demo.state}`);
    expect(demoClientLines(demo, url)).toEqual([
      `  demo client_id:      66666666666668`,
      `  demo verify_token:   d7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a`,
      `  demo signing_secret: ${demo.signingSecret}`,
      `  try: curl -u 66666666666668:d7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a ${url}/webhook`,
    ]);
  });

  it('leaves a revoked demo client revoked, at every start, and says so', async () => {
    const clients = new MemoryClientStore();
    await ensureDemoClient(clients, 'on');
    await clients.revoke(demoClient.clientId, '2026-01-02T03:04:05.000Z');
    const stored = structuredClone(clients.clients.get(demoClient.clientId));

    for (let start = 0; start < 2; start++) {
      const demo = await ensureDemoClient(clients, 'on');
      expect(demo).toEqual({ state: 'revoked', clientId: demoClient.clientId, revoked: '2026-01-02T03:04:05.000Z' });
      expect(clients.clients.get(demoClient.clientId)).toEqual(stored);
      expect(demoClientLines(demo, url)).toEqual([
        '  demo client 66666666666668 is revoked (since 2026-01-02T03:04:05.000Z) and stays so (npm run --silent clients -- create makes a new client)',
      ]);
    }
  });

  it('leaves a demo client whose token was replaced as it is, and says so without a token', async () => {
    const clients = new MemoryClientStore();
    const replaced = newClient({ clientId: demoClient.clientId, name: 'mine', verifyToken: 'a'.repeat(48) });
    await clients.put(replaced.client);

    const demo = await ensureDemoClient(clients, 'on');
    expect(demo).toEqual({ state: 'replaced', clientId: demoClient.clientId });
    expect(clients.clients.get(demoClient.clientId)).toEqual(replaced.client);
    const lines = demoClientLines(demo, url);
    expect(lines).toEqual(["  demo client 66666666666668 has another token than the demo's: left as it is (npm run --silent clients -- create makes a new client)"]);
    expect(lines.join('\n')).not.toContain(demoClient.verifyToken);
  });

  it('with WAAS_DEMO_CLIENT=off makes nothing and advertises nothing', async () => {
    const clients = new MemoryClientStore();
    const demo = await ensureDemoClient(clients, 'off');
    expect(demo).toEqual({ state: 'off', clientId: demoClient.clientId, stillAccepted: false });
    expect(clients.clients.size).toBe(0);
    expect(demoClientLines(demo, url)).toEqual(['  demo client off (WAAS_DEMO_CLIENT=off)']);
  });

  it('with WAAS_DEMO_CLIENT=off leaves one from an earlier run as it is, and says that it still takes the demo token', async () => {
    const clients = new MemoryClientStore();
    await ensureDemoClient(clients, 'on');
    const stored = structuredClone(clients.clients.get(demoClient.clientId));

    const demo = await ensureDemoClient(clients, 'off');
    expect(demo).toEqual({ state: 'off', clientId: demoClient.clientId, stillAccepted: true });
    expect(clients.clients.get(demoClient.clientId)).toEqual(stored);
    const lines = demoClientLines(demo, url);
    expect(lines).toEqual([
      '  demo client off (WAAS_DEMO_CLIENT=off), but 66666666666668 from an earlier run still accepts the demo token (npm run --silent clients -- revoke 66666666666668 ends it)',
    ]);
    expect(lines.join('\n')).not.toContain(demoClient.verifyToken);

    await clients.revoke(demoClient.clientId, '2026-01-02T03:04:05.000Z');
    expect(await ensureDemoClient(clients, 'off')).toEqual({ state: 'off', clientId: demoClient.clientId, stillAccepted: false });
  });
});
