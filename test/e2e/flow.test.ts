/**
 * Flow control end to end: the local stack (its twenty concurrent batches of the jobs queue, as
 * on AWS), real targets on 127.0.0.1 that count the requests in flight and note when each
 * arrives. One key's jobs never exceed its parallelism nor its rate in any one-second window at
 * the target, every one of them completes with one attempt, and jobs without the key run at
 * full speed meanwhile; a 429 with Retry-After holds back its key's other jobs, not another key's.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demo, removeDir, startStack, startTarget, waitFor, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack;
const targets: Target[] = [];
const authorization = `Basic ${Buffer.from(`${demo.clientId}:${demo.verifyToken}`).toString('base64')}`;

async function v1(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await request(`${stack.url}${path}`, { reset: true, method, headers: { authorization, 'content-type': 'application/json' }, body: body === undefined ? null : JSON.stringify(body) });
  return (await response.body.json()) as Record<string, unknown>;
}

/** Submits `jobs` a hundred to a batch; their ids, in order. */
async function submitAll(jobs: Array<Record<string, unknown>>): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < jobs.length; from += 100) {
    const { results } = (await v1('POST', '/v1/jobs/batch', { jobs: jobs.slice(from, from + 100) })) as { results: Array<{ job_id?: string; error?: unknown }> };
    for (const result of results) {
      if (!result.job_id) throw new Error(`a job was refused: ${JSON.stringify(result.error)}`);
      ids.push(result.job_id);
    }
  }
  return ids;
}

/** The records of these jobs once every one is final (read a page of 100 at a time, newest first). */
async function finalRecords(ids: string[], timeoutMs: number): Promise<Map<string, Record<string, unknown>>> {
  const wanted = new Set(ids);
  return waitFor(
    async () => {
      const found = new Map<string, Record<string, unknown>>();
      let cursor: string | null = null;
      do {
        const page = (await v1('GET', `/v1/jobs?limit=100${cursor ? `&cursor=${cursor}` : ''}`)) as { jobs: Array<Record<string, unknown>>; next_cursor: string | null };
        for (const job of page.jobs) if (wanted.has(String(job['jobId']))) found.set(String(job['jobId']), job);
        cursor = page.next_cursor;
      } while (cursor);
      const final = [...found.values()].filter((job) => ['completed', 'failed', 'cancelled'].includes(String(job['status'])));
      return final.length === wanted.size ? found : undefined;
    },
    timeoutMs,
    `${ids.length} jobs to be final`,
  );
}

/** The most arrivals in any window [t, t + ms) that starts at an arrival. */
const mostInWindow = (arrivals: number[], ms: number) => {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let most = 0;
  for (let from = 0, to = 0; from < sorted.length; from++) {
    while (to < sorted.length && (sorted[to] as number) < (sorted[from] as number) + ms) to++;
    most = Math.max(most, to - from);
  }
  return most;
};

async function target(respond: Parameters<typeof startTarget>[0]): Promise<Target> {
  const started = await startTarget(respond);
  targets.push(started);
  return started;
}

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.stop();
  for (const each of targets) await each.close();
  if (stack) removeDir(stack.dataDir);
});

describe('flow control on the local stack', () => {
  it('keeps 200 jobs of one key to flow_parallelism 3 and flow_rate 20 at the target, each completed in one attempt, while jobs without the key run at full speed', async () => {
    let inFlight = 0;
    let mostInFlight = 0;
    // 150 ms a request: three at a time would allow 20 a second, so both limits are met at once.
    const limited = await target((_, response) => {
      mostInFlight = Math.max(mostInFlight, ++inFlight);
      setTimeout(() => {
        inFlight--;
        response.end('ok');
      }, 150);
    });
    const free = await target((_, response) => response.end('ok'));

    const began = Date.now();
    const keyed = await submitAll(Array.from({ length: 200 }, (_, n) => ({ url: `${limited.url}/job/${n}`, flow_key: 'load-test', flow_parallelism: 3, flow_rate: 20 })));
    const unkeyed = await submitAll(Array.from({ length: 40 }, (_, n) => ({ url: `${free.url}/job/${n}` })));
    const records = await finalRecords([...keyed, ...unkeyed], 90_000);

    const arrivals = limited.received.map((each) => each.at);
    const mostPerSecond = mostInWindow(arrivals, 1_000);
    const spanS = (Math.max(...arrivals) - Math.min(...arrivals)) / 1_000;
    console.log(
      `flow key under load: ${arrivals.length} starts over ${spanS.toFixed(1)} s (${((arrivals.length - 1) / spanS).toFixed(1)}/s), at most ${mostInFlight} in flight, ` +
        `at most ${mostPerSecond} in any 1 s window; jobs without the key: all ${free.received.length} arrived within ${((Math.max(...free.received.map((each) => each.at)) - began) / 1_000).toFixed(2)} s of the first submit`,
    );
    const first = Math.min(...arrivals);
    console.log(`per second: ${Array.from({ length: Math.ceil(spanS) + 1 }, (_, s) => arrivals.filter((at) => at >= first + s * 1000 && at < first + (s + 1) * 1000).length).join(" ")}`);
    expect(mostInFlight).toBeLessThanOrEqual(3);
    expect(mostPerSecond).toBeLessThanOrEqual(20);
    expect(limited.received).toHaveLength(200);
    for (const id of keyed) expect(records.get(id), id).toMatchObject({ status: 'completed', attempts: 1, flow_key: 'load-test' });
    for (const id of unkeyed) expect(records.get(id), id).toMatchObject({ status: 'completed', attempts: 1 });
    // The key's line holds none of the others up: they were all done before half the key's jobs had started.
    expect(Math.max(...free.received.map((each) => each.at))).toBeLessThan([...arrivals].sort((a, b) => a - b)[100] as number);
  });

  it("holds back every job of a key for a 429's Retry-After: 2, and no job of another key", async () => {
    const slowed = await target((request, response) => {
      if (request.url === '/first') {
        response.writeHead(429, { 'retry-after': '2' });
        return void response.end('slow down');
      }
      response.end('ok');
    });
    const other = await target((_, response) => response.end('ok'));
    const [first] = await submitAll([{ url: `${slowed.url}/first`, flow_key: 'paused', flow_parallelism: 10, max_attempts: 1 }]);
    // Once its 429 is recorded, its key's pause is written (before the record).
    await waitFor(async () => ((await v1('GET', `/v1/jobs/${String(first)}`))['status'] === 'failed' ? true : undefined), 20_000, 'the 429 to be recorded');
    const answeredAt = (slowed.received[0] as { at: number }).at;

    const held = await submitAll(Array.from({ length: 3 }, (_, n) => ({ url: `${slowed.url}/held/${n}`, flow_key: 'paused', flow_parallelism: 10 })));
    const free = await submitAll(Array.from({ length: 3 }, (_, n) => ({ url: `${other.url}/free/${n}`, flow_key: 'not-paused', flow_parallelism: 10 })));
    const records = await finalRecords([...held, ...free], 30_000);

    const heldArrivals = slowed.received.slice(1).map((each) => each.at);
    const freeArrivals = other.received.map((each) => each.at);
    console.log(`Retry-After 2 s: the key's other jobs started ${((Math.min(...heldArrivals) - answeredAt) / 1_000).toFixed(2)} s after the 429; another key's within ${((Math.max(...freeArrivals) - answeredAt) / 1_000).toFixed(2)} s`);
    // The pause runs from the worker's receipt of the answer, after the target sent it.
    for (const at of heldArrivals) expect(at - answeredAt).toBeGreaterThanOrEqual(2_000);
    expect(Math.max(...freeArrivals)).toBeLessThan(Math.min(...heldArrivals));
    for (const id of [...held, ...free]) expect(records.get(id), id).toMatchObject({ status: 'completed', attempts: 1 });
  });
});
