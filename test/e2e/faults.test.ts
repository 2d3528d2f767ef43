/**
 * The fault matrix: each row a real misbehaving HTTP target on 127.0.0.1, run through the real
 * local stack. What each job's record shows at the end is the product's answer to the fault.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, call, demo, removeDir, startStack, startTarget, waitForJob, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack;
let target: Target;
const auth = basic(demo.clientId, demo.verifyToken);
const matrix: Record<string, unknown> = {};

const attemptsOf = (key: string) => target.received.filter((r) => r.headers['idempotency-key'] === key);

beforeAll(async () => {
  stack = await startStack();
  target = await startTarget(async (request, response) => {
    const key = String(request.headers['idempotency-key'] ?? '');
    const attempt = attemptsOf(key).length;
    switch (request.url) {
      case '/503-then-200':
        response.writeHead(attempt === 1 ? 503 : 200);
        return void response.end(attempt === 1 ? 'busy' : 'fine');
      case '/429-retry-after':
        response.writeHead(attempt === 1 ? 429 : 200, attempt === 1 ? { 'retry-after': '2' } : {});
        return void response.end(attempt === 1 ? 'slow down' : 'fine');
      case '/reset-mid-response':
        if (attempt === 1) {
          response.writeHead(200, { 'content-length': '1000' });
          response.write('partial');
          return void setTimeout(() => response.socket?.destroy(), 20);
        }
        return void response.end('fine');
      case '/never-answers':
        return; // holds the connection open; the attempt's timeout must end it
      case '/huge': {
        // 100 MB, streamed lazily: the capture keeps 64 KiB and counts the rest.
        const chunk = Buffer.alloc(1024 * 1024, 'a');
        let sent = 0;
        response.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(100 * chunk.length) });
        const pump = () => {
          while (sent < 100) {
            sent++;
            if (!response.write(chunk)) return void response.once('drain', pump);
          }
          response.end();
        };
        return pump();
      }
      default:
        response.writeHead(200);
        return void response.end('fine');
    }
  });
});

afterAll(async () => {
  await stack?.stop();
  await target?.close();
  if (stack) removeDir(stack.dataDir);
  console.log(JSON.stringify({ faultMatrix: matrix }, null, 1));
});

async function run(body: Record<string, unknown>, settled = (job: Record<string, unknown>) => job['status'] === 'completed' || job['status'] === 'failed') {
  const answer = await call(stack.url, 'POST', '/webhook', body, auth);
  expect(answer.status).toBe(202);
  const jobId = String(answer.body['job_id']);
  return { jobId, job: await waitForJob(stack.url, jobId, settled, demo, 30_000) };
}

/** The local stack's peak resident set size so far, in KiB (Linux). */
const peakRssKb = () => Number(readFileSync(`/proc/${stack.child.pid}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)?.[1]);
const output = (job: Record<string, unknown>) => job['output'] as Record<string, unknown>;
const history = (job: Record<string, unknown>) => job['history'] as Array<Record<string, unknown>>;

describe('fault matrix', () => {
  it('5xx then success: retried, completed on attempt 2', async () => {
    const { job } = await run({ service: `${target.url}/503-then-200` });
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    expect(history(job).map((h) => h['statusCode'])).toEqual([503, 200]);
    matrix['5xx then success'] = { status: job['status'], attempts: job['attempts'] };
  });

  it('429 with Retry-After: 2 waits at least 2 seconds before the retry', async () => {
    const { jobId, job } = await run({ service: `${target.url}/429-retry-after` });
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    const [first, second] = attemptsOf(jobId);
    const gap = (second?.at ?? 0) - (first?.at ?? 0);
    expect(gap).toBeGreaterThanOrEqual(1_900);
    matrix['429 Retry-After: 2'] = { status: job['status'], attempts: job['attempts'], gapMs: gap };
  });

  it('connection reset mid-response: the attempt is an error and is retried', async () => {
    const { job } = await run({ service: `${target.url}/reset-mid-response` });
    expect(job).toMatchObject({ status: 'completed', attempts: 2 });
    expect(history(job)[0]?.['error']).toBeTruthy();
    matrix['reset mid-response'] = { status: job['status'], attempts: job['attempts'], firstError: history(job)[0]?.['error'] };
  });

  it('a target that never answers: "timeout", retried, then failed', async () => {
    const { job } = await run({ service: `${target.url}/never-answers`, timeout_ms: 300, max_attempts: 2 });
    expect(job).toMatchObject({ status: 'failed', attempts: 2 });
    expect(output(job)['error']).toBe('timeout');
    matrix['never answers'] = { status: job['status'], attempts: job['attempts'], error: output(job)['error'] };
  });

  it('a 100 MB response: 64 KiB kept, the full size counted, memory flat', async () => {
    const peakBefore = peakRssKb();
    const { job } = await run({ service: `${target.url}/huge`, timeout_ms: 60_000 });
    expect(job['status']).toBe('completed');
    expect(output(job)).toMatchObject({ truncated: true, bodyBytes: 100 * 1024 * 1024 });
    expect(String(output(job)['body']).length).toBe(64 * 1024);
    // The stack's peak resident memory grew by far less than the 100 MB it streamed through.
    const growthKb = peakRssKb() - peakBefore;
    // (Holding the body would grow it past 100 MB; V8 lets discarded socket buffers pile up
    // to tens of MB before it collects them, hence the margin.)
    expect(growthKb).toBeLessThan(80 * 1024);
    matrix['100 MB response'] = {
      status: job['status'],
      bodyBytes: output(job)['bodyBytes'],
      kept: String(output(job)['body']).length,
      stackPeakRssMb: Math.round(peakRssKb() / 1024),
      peakGrowthMb: Math.round(growthKb / 1024),
    };
  });

  it('DNS failure: the error names DNS, retried, then failed', async () => {
    const { job } = await run({ service: 'http://nosuch.invalid/x', max_attempts: 2 });
    expect(job).toMatchObject({ status: 'failed', attempts: 2 });
    expect(String(output(job)['error'])).toMatch(/^dns: /);
    matrix['DNS failure'] = { status: job['status'], attempts: job['attempts'], error: output(job)['error'] };
  });

  it('a callback target that is down: retried, then "notification failed"', async () => {
    const down = await startTarget();
    const url = down.url;
    await down.close();
    const { job } = await run({ service: `${target.url}/ok`, callback: `${url}/cb`, callback_max_attempts: 2 }, (j) => j['notified'] !== 'no');
    expect(job).toMatchObject({ status: 'completed', notified: 'notification failed', notify_attempts: 2 });
    expect(String(job['notifyoutput'])).toMatch(/ECONNREFUSED/);
    matrix['callback down'] = { status: job['status'], notified: job['notified'], notifyoutput: job['notifyoutput'] };
  });
});
