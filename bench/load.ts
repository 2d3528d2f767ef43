/**
 * The load side, in the bench process: a target with a fixed service latency that records when
 * each job's request arrived (by its Idempotency-Key, the job id), a callback receiver that
 * records when each job's callback arrived (by webhook-id), and the submitters — one at a time
 * (light) or many at once (heavy), a job per POST /webhook or N per POST /v1/jobs/batch. The
 * ceiling is the same target called directly.
 *
 * Every time is performance.now() of this process, so arrival and submit times compare.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

export interface Arrival {
  arrived: number;
  answered: number;
  attempts: number;
}

const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** What the job's data and the target's answer look like (--body). */
export type BodyKind = 'event' | 'random';

/** A deterministic stream of pseudo-random numbers, so every run sends the same bodies. */
function lcg(seed = 0x9e3779b9): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state;
  };
}

function letters(next: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[next() >>> 26] ?? 'x';
  return text;
}

/**
 * A JSON value whose text is exactly `bytes` bytes long (at least the 12 of its frame), padded
 * with pseudo-random letters and digits: the worst case for a store that compresses bodies.
 */
export function paddedJson(bytes: number): { pad: string } {
  return { pad: letters(lcg(), Math.max(0, bytes - JSON.stringify({ pad: '' }).length)) };
}

const products = ['Trail running shoe', 'Merino wool socks', 'Waterproof shell jacket', 'Insulated bottle 750 ml', 'Headlamp 400 lm', 'Packable daypack'];

/**
 * A webhook event as services send them, about `bytes` long and then padded to exactly that:
 * an order with its customer and line items — random ids, amounts and timestamps, the keys and
 * words that repeat in real JSON. Brotli packs it to about half (real events often do better).
 */
export function eventJson(bytes: number): Record<string, unknown> {
  const next = lcg();
  const id = (prefix: string, length: number) => `${prefix}_${letters(next, length)}`;
  const created = new Date(Date.UTC(2026, 10, 1) + (next() % 2_592_000) * 1000).toISOString();
  const items: Array<Record<string, unknown>> = [];
  const event = {
    id: id('evt', 24),
    type: 'order.created',
    created,
    livemode: false,
    data: {
      object: {
        id: id('ord', 18),
        status: 'paid',
        currency: 'eur',
        customer: { id: id('cus', 14), email: `${letters(next, 8).toLowerCase()}@example.com`, country: 'DE' },
        items,
        amount_total: 0,
        metadata: { channel: 'web', ref: '' },
      },
    },
  };
  const size = () => Buffer.byteLength(JSON.stringify(event));
  for (;;) {
    const item = { id: id('li', 14), sku: `SKU-${10_000 + (next() % 90_000)}`, name: products[next() % products.length] ?? 'Item', quantity: 1 + (next() % 4), unit_amount: 500 + (next() % 20_000) };
    items.push(item);
    if (size() > bytes) {
      items.pop();
      break;
    }
    event.data.object.amount_total += item.quantity * item.unit_amount;
  }
  event.data.object.metadata.ref = letters(next, Math.max(0, bytes - size()));
  return event;
}

/** The job's data and the target's answer, `bytes` long. */
export const bodyOf = (kind: BodyKind, bytes: number): Record<string, unknown> => (kind === 'event' ? eventJson(bytes) : paddedJson(bytes));

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function drain(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

export interface Target {
  url: string;
  /** Job id → when its service request arrived and was answered. */
  arrivals: Map<string, Arrival>;
  close(): Promise<void>;
}

/** The service: answers every request after `latencyMs` with `data` as its JSON body. */
export async function startTarget(latencyMs: number, data: Record<string, unknown>): Promise<Target> {
  const arrivals = new Map<string, Arrival>();
  const body = Buffer.from(JSON.stringify(data));
  const answer = (response: ServerResponse, then: () => void) =>
    setTimeout(() => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
      then();
    }, latencyMs);
  const server = createServer((request, response) => {
    const arrived = performance.now();
    void drain(request).then(() => {
      const key = request.headers['idempotency-key'];
      if (request.url?.startsWith('/service') && typeof key === 'string') {
        const entry = arrivals.get(key);
        if (entry) entry.attempts++;
        else arrivals.set(key, { arrived, answered: Number.NaN, attempts: 1 });
        answer(response, () => {
          const recorded = arrivals.get(key);
          if (recorded && Number.isNaN(recorded.answered)) recorded.answered = performance.now();
        });
      } else answer(response, () => undefined);
    });
  });
  server.keepAliveTimeout = 30_000;
  const url = await listen(server);
  return { url, arrivals, close: () => close(server) };
}

export interface CallbackArrival {
  at: number;
  status: string;
  count: number;
}

/** Receives callbacks; `wait` resolves when a job's callback has arrived. */
export class CallbackReceiver {
  readonly arrivals = new Map<string, CallbackArrival>();
  private readonly waiters = new Map<string, () => void>();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      const at = performance.now();
      void drain(request).then((raw) => {
        response.writeHead(204).end();
        const id = request.headers['webhook-id'];
        if (typeof id !== 'string') return;
        const seen = this.arrivals.get(id);
        if (seen) {
          seen.count++;
          return;
        }
        let status = '?';
        try {
          status = String((JSON.parse(raw.toString()) as { status?: unknown }).status);
        } catch {
          // counted as not completed
        }
        this.arrivals.set(id, { at, status, count: 1 });
        this.waiters.get(id)?.();
        this.waiters.delete(id);
      });
    });
    this.server.keepAliveTimeout = 30_000;
    this.url = await listen(this.server);
  }

  /** Resolves when the job's callback arrived; rejects after `timeoutMs`. */
  wait(jobId: string, timeoutMs: number): Promise<CallbackArrival> {
    const arrived = this.arrivals.get(jobId);
    if (arrived) return Promise.resolve(arrived);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(jobId);
        reject(new Error(`job ${jobId}: no callback within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      this.waiters.set(jobId, () => {
        clearTimeout(timer);
        resolve(this.arrivals.get(jobId) as CallbackArrival);
      });
    });
  }

  async close(): Promise<void> {
    if (this.server) await close(this.server);
  }
}

export interface Submission {
  jobId?: string;
  status: number;
  /** When the request was started, and when its answer was read. */
  start: number;
  end: number;
  error?: string;
}

/** POST /webhook with the demo client's credentials, over a keep-alive pool. */
export class Submitter {
  private readonly pool: Pool;
  private readonly body: string;
  private readonly headers: Record<string, string>;

  constructor(stackUrl: string, connections: number, job: { service: string; callback: string; data: Record<string, unknown> }, credentials: { clientId: string; verifyToken: string }) {
    this.pool = new Pool(stackUrl, { connections, keepAliveTimeout: 10_000, pipelining: 1 });
    this.body = JSON.stringify({ service: job.service, methodtype: 'POST', callback: job.callback, data: job.data });
    this.headers = {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${credentials.clientId}:${credentials.verifyToken}`).toString('base64')}`,
    };
  }

  /** Bytes of one POST /webhook body (API Gateway meters requests by size). */
  get requestBytes(): number {
    return Buffer.byteLength(this.body);
  }

  async submit(timeoutMs = 30_000): Promise<Submission> {
    const start = performance.now();
    try {
      const response = await this.pool.request({ path: '/webhook', method: 'POST', headers: this.headers, body: this.body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const text = await response.body.text();
      const end = performance.now();
      if (response.statusCode !== 202) return { status: response.statusCode, start, end, error: `POST /webhook answered ${response.statusCode}: ${text.slice(0, 200)}` };
      const jobId = (JSON.parse(text) as { job_id?: string }).job_id;
      return jobId ? { jobId, status: 202, start, end } : { status: 202, start, end, error: `202 without a job_id: ${text.slice(0, 200)}` };
    } catch (error) {
      return { status: 0, start, end: performance.now(), error: `POST /webhook failed: ${error instanceof Error ? error.message : String(error)}` };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** One result of POST /v1/jobs/batch: the job accepted, or its problem (RFC 9457). */
type BatchResult = { job_id?: string; error?: { status?: number; title?: string; detail?: string } };

/**
 * POST /v1/jobs/batch with the demo client's credentials, over a keep-alive pool: the same job
 * as `Submitter`'s in v1's field names (`url`, `method`, `callback`, `body`), `count` of it in
 * one request. Each job's submission is its batch request's: the same start and end; a job the
 * answer refuses is a submission with its problem as the error, as is every job of a request
 * that failed as a whole.
 */
export class BatchSubmitter {
  private readonly pool: Pool;
  private readonly job: string;
  private readonly headers: Record<string, string>;

  constructor(stackUrl: string, connections: number, job: { service: string; callback: string; data: Record<string, unknown>; delayS?: number }, credentials: { clientId: string; verifyToken: string }) {
    this.pool = new Pool(stackUrl, { connections, keepAliveTimeout: 10_000, pipelining: 1 });
    this.job = JSON.stringify({ url: job.service, method: 'POST', callback: job.callback, body: job.data, ...(job.delayS !== undefined ? { delay_s: job.delayS } : {}) });
    this.headers = {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${credentials.clientId}:${credentials.verifyToken}`).toString('base64')}`,
    };
  }

  /** The body of a batch of `count` jobs. */
  private body(count: number): string {
    return `{"jobs":[${Array.from({ length: count }, () => this.job).join(',')}]}`;
  }

  /** Bytes of a POST /v1/jobs/batch body of `count` jobs (API Gateway meters requests by size). */
  requestBytes(count: number): number {
    return Buffer.byteLength(this.body(count));
  }

  async submit(count: number, timeoutMs = 60_000): Promise<Submission[]> {
    const start = performance.now();
    const all = (status: number, error: string): Submission[] => Array.from({ length: count }, () => ({ status, start, end: performance.now(), error }));
    try {
      const response = await this.pool.request({ path: '/v1/jobs/batch', method: 'POST', headers: this.headers, body: this.body(count), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const text = await response.body.text();
      const end = performance.now();
      if (response.statusCode !== 200) return all(response.statusCode, `POST /v1/jobs/batch answered ${response.statusCode}: ${text.slice(0, 200)}`);
      const results = (JSON.parse(text) as { results?: BatchResult[] }).results;
      if (!Array.isArray(results) || results.length !== count) return all(200, `POST /v1/jobs/batch answered ${Array.isArray(results) ? results.length : 'no'} results for ${count} jobs: ${text.slice(0, 200)}`);
      return results.map((result): Submission => {
        if (typeof result.job_id === 'string') return { jobId: result.job_id, status: 200, start, end };
        const problem = result.error;
        const detail = problem ? `${problem.status ?? '?'} ${problem.title ?? ''}: ${problem.detail ?? ''}` : JSON.stringify(result).slice(0, 200);
        return { status: problem?.status ?? 200, start, end, error: `a job of a batch refused: ${detail}` };
      });
    } catch (error) {
      return all(0, `POST /v1/jobs/batch failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** How `jobs` jobs go out in batches of `size`: full batches, the last one what is left. */
export function batchSizes(jobs: number, size: number): number[] {
  return Array.from({ length: Math.ceil(jobs / size) }, (_, i) => Math.min(size, jobs - i * size));
}

/** Runs `count` tasks with at most `concurrency` at once; `task(i)` for i in [0, count). */
export async function runConcurrently(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < count; index = next++) await task(index);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

export interface DirectResult {
  latencies: number[];
  started: number;
  finished: number;
  errors: number;
}

/** The ceiling: the same requests straight to the target, `concurrency` at a time, keep-alive. */
export async function directLoad(targetUrl: string, count: number, concurrency: number, data: Record<string, unknown>, onDone?: (done: number) => void): Promise<DirectResult> {
  const pool = new Pool(targetUrl, { connections: concurrency, keepAliveTimeout: 10_000, pipelining: 1 });
  const body = JSON.stringify(data);
  const latencies: number[] = [];
  let errors = 0;
  let done = 0;
  const started = performance.now();
  try {
    await runConcurrently(count, concurrency, async (index) => {
      const start = performance.now();
      try {
        const response = await pool.request({
          path: '/direct',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `direct-${index}` },
          body,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        await response.body.text();
        if (response.statusCode === 200) latencies.push(performance.now() - start);
        else errors++;
      } catch {
        errors++;
      }
      onDone?.(++done);
    });
  } finally {
    await pool.close();
  }
  return { latencies, started, finished: performance.now(), errors };
}
