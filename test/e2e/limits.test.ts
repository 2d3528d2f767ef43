/**
 * The failure limit holds for the whole service, not for one function instance: on the real
 * local stack, a guesser's failures are counted in the limits table, where every environment of
 * the api function reads them. Its failures go in at once (several invocations in flight, every
 * one of them counted), then the stack is stopped and started again on the same DATA_DIR: a new
 * process, new environments, nothing of the old ones' memory. The limit still holds there, for
 * that client id from that address alone, and the counts are in the table as an operator reads
 * them.
 *
 * Windows are fixed, by the clock: a run that a window's turn cuts through proves nothing, so
 * it is told apart (the clock read before and after it) and made again, with clients of its own.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { request } from 'undici';
import { afterAll, expect, it } from 'vitest';
import { defaultFailureLimits } from '../../lambdas/core/auth.ts';
import { openStore } from '../../scripts/store.ts';
import { basic, clients, startStack, tearDown, tempDataDir, type RunningStack } from './harness.ts';

const { perClient, windowMs } = defaultFailureLimits;
const windowOf = (ms: number) => Math.floor(ms / windowMs) * windowMs;
/** Runs that a window's turn may cut before the test gives up. */
const maxRuns = 4;

let stack: RunningStack | undefined;
const dataDir = tempDataDir();
afterAll(() => tearDown(dataDir, stack));

interface Reply {
  status: number;
  retryAfter: string | undefined;
  sent: number;
  answered: number;
}

/** GET /webhook, the seed's credential check, with HTTP Basic credentials. */
async function check(clientId: string, token: string): Promise<Reply> {
  const sent = Date.now();
  // A connection of its own, as the harness's calls have (see `call`).
  const response = await request(`${stack!.url}/webhook`, { method: 'GET', headers: basic(clientId, token), reset: true });
  await response.body.dump();
  const retryAfter = response.headers['retry-after'];
  return { status: response.statusCode, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, sent, answered: Date.now() };
}

function newClient(): { clientId: string; token: string } {
  const made = clients(dataDir, 'create');
  const json = made.json as { client_id?: string; verify_token?: string } | undefined;
  if (made.status !== 0 || !json?.client_id || !json.verify_token) throw new Error(`clients create failed: ${made.stderr}`);
  return { clientId: json.client_id, token: json.verify_token };
}

/** The limits table's items of the window, read as an operator would, through the store the CLIs open. */
async function itemsOf(window: number): Promise<Array<Record<string, unknown>>> {
  const store = await openStore({ 'data-dir': dataDir }, 'limits');
  try {
    const { Items } = await store.documents.send(new ScanCommand({ TableName: store.table }));
    return (Items ?? []).filter((item) => item['windowStart'] === new Date(window).toISOString());
  } finally {
    await store.close();
  }
}

it(`answers the ${perClient + 1}th failure for a client id from one address 429, across the api's environments and a restart, and slows no other id`, async () => {
  stack = await startStack({ dataDir });
  for (let run = 1; ; run++) {
    const victim = newClient();
    const bystander = newClient();
    const started = Date.now();

    // The guesses at once: invocations in flight together, each failure counted, none lost.
    const guesses = await Promise.all(Array.from({ length: perClient }, (_, i) => check(victim.clientId, `guess-${run}-${i}`)));
    // New environments, in a new process, with the same table.
    await stack.stop();
    stack = await startStack({ dataDir });
    const afterRestart = {
      guess: await check(victim.clientId, 'one-more-guess'),
      right: await check(victim.clientId, victim.token),
      bystanderGuess: await check(bystander.clientId, 'a-guess'),
      bystanderRight: await check(bystander.clientId, bystander.token),
    };
    const window = windowOf(started);
    if (windowOf(Date.now()) !== window) {
      // The window turned mid-run: the counts started again. A run takes seconds (more on a
      // loaded machine: the restart is most of it), a window a minute, so few runs are cut.
      if (run === maxRuns) throw new Error(`${maxRuns} runs in a row were cut by a window's turn`);
      continue;
    }

    expect(guesses.map((reply) => reply.status)).toEqual(Array(perClient).fill(401));
    expect(Object.fromEntries(Object.entries(afterRestart).map(([what, reply]) => [what, reply.status]))).toEqual({ guess: 429, right: 429, bystanderGuess: 401, bystanderRight: 200 });
    // Retry-After: the seconds left in the window when it was answered.
    const { guess } = afterRestart;
    expect(Number(guess.retryAfter)).toBeGreaterThanOrEqual(Math.max(1, Math.ceil((window + windowMs - guess.answered) / 1000)));
    expect(Number(guess.retryAfter)).toBeLessThanOrEqual(Math.ceil((window + windowMs - guess.sent) / 1000));

    // One item for the address in the window, in plain words: the 429s counted nothing.
    const items = (await itemsOf(window)).filter((item) => `client ${victim.clientId}` in item);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ source: expect.any(String), [`client ${victim.clientId}`]: perClient, [`client ${bystander.clientId}`]: 1 });
    // Every failure from the address: this run's, and those of a run cut short in this window.
    if (run === 1) expect(items[0]?.['failures']).toBe(perClient + 1);
    else expect(items[0]?.['failures']).toBeGreaterThanOrEqual(perClient + 1);
    // Forgotten by TTL once the window is over, not before.
    expect(items[0]?.['expiresAt']).toBeGreaterThan((window + windowMs) / 1000);
    return;
  }
  // Each run restarts the stack: on a loaded machine, up to half a minute.
}, maxRuns * 45_000);
