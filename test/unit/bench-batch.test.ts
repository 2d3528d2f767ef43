/**
 * The bench's batched heavy load (`npm run bench -- --batch N`): the submitter of
 * POST /v1/jobs/batch against a scripted server, how a batched phase's API requests and api
 * invocations are spread over its jobs, and issue 12's target for batches of 100.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { estimateCost, prices } from '../../bench/cost.ts';
import { BatchSubmitter, batchSizes } from '../../bench/load.ts';
import type { MeterSnapshot } from '../../bench/meter.ts';
import type { Snapshot } from '../../bench/protocol.ts';
import { operationStats } from '../support/meter.ts';
import { batchCostVerdicts, targets } from '../../bench/report.ts';
import { atScale, diffPhase, usagePerJob } from '../../bench/usage.ts';

const demo = { clientId: '66666666666668', verifyToken: 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a' };
const job = { service: 'http://127.0.0.1:1/service', callback: 'http://127.0.0.1:2/callback', data: { id: 'evt_1', amount: 12 } };

/** A server that answers every request with `status` and `body`, and keeps what it was sent. */
async function scripted(status: number, body: (sent: { jobs: unknown[] }) => unknown) {
  const received: Array<{ path: string; headers: IncomingHttpHeaders; body: string }> = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      received.push({ path: request.url ?? '', headers: request.headers, body: text });
      const answer = JSON.stringify(body(JSON.parse(text) as { jobs: unknown[] }));
      response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('the batch submitter', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const each of open.splice(0)) await each.close();
  });

  it('posts N of the heavy load\'s job in v1\'s names, and gives each job its batch\'s times, a refused one its problem\'s detail', async () => {
    const server = await scripted(200, ({ jobs }) => ({
      results: jobs.map((_, i) =>
        i === 1
          ? { error: { type: 'urn:waas:problem:unavailable', title: 'The service is unavailable for a moment', status: 503, detail: 'could not store and queue the job; nothing was kept, try again' } }
          : { job_id: `job-${i}`, created: '2026-12-02T00:00:00.000Z', status: 'accepted' },
      ),
    }));
    const submitter = new BatchSubmitter(server.url, 2, job, demo);
    open.push(server, submitter);
    const submissions = await submitter.submit(3);
    expect(server.received).toHaveLength(1);
    const [sent] = server.received;
    expect(sent?.path).toBe('/v1/jobs/batch');
    expect(sent?.headers.authorization).toBe(`Basic ${Buffer.from(`${demo.clientId}:${demo.verifyToken}`).toString('base64')}`);
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({ jobs: Array.from({ length: 3 }, () => ({ url: job.service, method: 'POST', callback: job.callback, body: job.data })) });
    expect(submitter.requestBytes(3)).toBe(Buffer.byteLength(sent?.body ?? ''));
    expect(submissions.map((s) => s.jobId)).toEqual(['job-0', undefined, 'job-2']);
    expect(submissions[1]?.error).toBe('a job of a batch refused: 503 The service is unavailable for a moment: could not store and queue the job; nothing was kept, try again');
    expect(submissions[1]?.status).toBe(503);
    // One request: every job's submission starts and ends with it.
    expect(new Set(submissions.map((s) => `${s.start}-${s.end}`)).size).toBe(1);
  });

  it('counts every job of a batch the API refused as a whole as a submit error', async () => {
    const server = await scripted(413, () => ({ type: 'urn:waas:problem:payload-too-large', status: 413, detail: 'too large' }));
    const submitter = new BatchSubmitter(server.url, 1, job, demo);
    open.push(server, submitter);
    const submissions = await submitter.submit(4);
    expect(submissions).toHaveLength(4);
    for (const s of submissions) expect(s).toMatchObject({ status: 413, error: expect.stringMatching(/^POST \/v1\/jobs\/batch answered 413: .*too large/) });
  });

  it('cuts the heavy load into full batches and what is left', () => {
    expect(batchSizes(250, 100)).toEqual([100, 100, 50]);
    expect(batchSizes(2000, 100)).toHaveLength(20);
    expect(batchSizes(7, 10)).toEqual([7]);
  });
});

describe('a batched phase, per job', () => {
  const stats = (operation: string, counts: Partial<MeterSnapshot[string]>): MeterSnapshot[string] => operationStats('SQS', operation, 'waas-jobs', 'handlers', counts);
  const snapshot = (meter: MeterSnapshot, invocations: Snapshot['invocations']): Snapshot => ({ meter, invocations, logBytes: 0, errors: 0, hrtimeUs: 0 });
  const empty = snapshot({}, {});

  it('counts an API request and an api invocation per batch, billed by the batch request\'s 512 KB units', () => {
    // 200 jobs in batches of 100: two requests, two api invocations of 400 ms; 20 SendMessageBatch.
    const after = snapshot({ send: stats('SendMessageBatch', { calls: 20, billedRequests: 20, messages: 200 }) }, { api: { invocations: 2, totalMs: 800, billedMs: 800, maxMs: 400 } });
    const small = usagePerJob(diffPhase(empty, after), 200, 130 * 1024);
    expect(small.usage.apiGateway).toEqual({ requests: 0.01, billedRequests: 0.01 });
    expect(small.usage.lambda).toEqual([{ fn: 'api', invocations: 0.01, billedMs: 4, memoryMb: 512 }]);
    expect(small.usage.sqs).toEqual([{ item: 'SendMessageBatch waas-jobs', calls: 0.1, billedRequests: 0.1 }]);
    // A batch of 600 KB is two of API Gateway's units.
    expect(usagePerJob(diffPhase(empty, after), 200, 600 * 1024).usage.apiGateway).toEqual({ requests: 0.01, billedRequests: 0.02 });
    // $1 per million requests: a hundredth of a request a job is $0.01 per million jobs.
    expect(estimateCost(small.usage, prices).byService['API Gateway']).toBeCloseTo(0.01, 10);
  });

  it('takes the api\'s time per batch at scale from the batch probe, the other functions\' from light load', () => {
    const heavy = usagePerJob(diffPhase(empty, snapshot({}, { api: { invocations: 20, totalMs: 60_000, billedMs: 60_000, maxMs: 4_000 }, execute: { invocations: 200, totalMs: 400_000, billedMs: 400_000, maxMs: 3_000 } })), 2000, 130 * 1024);
    const light = usagePerJob(diffPhase(empty, snapshot({}, { api: { invocations: 40, totalMs: 800, billedMs: 800, maxMs: 30 }, execute: { invocations: 40, totalMs: 4_800, billedMs: 4_800, maxMs: 130 } })), 40, 1300);
    const probe = usagePerJob(diffPhase(empty, snapshot({}, { api: { invocations: 3, totalMs: 900, billedMs: 900, maxMs: 310 }, execute: { invocations: 30, totalMs: 9_000, billedMs: 9_000, maxMs: 400 } })), 300, 130 * 1024);
    // api: a hundredth of an invocation a job, 300 ms each (the probe's), not light load's 20 ms;
    // execute: a tenth of one a job, 120 ms each (light load's).
    expect(atScale(heavy, light, { api: probe }).lambda).toEqual([
      { fn: 'api', invocations: 0.01, billedMs: 3, memoryMb: 512 },
      { fn: 'execute', invocations: 0.1, billedMs: 12, memoryMb: 512 },
    ]);
  });
});

describe('issue 12\'s target for batches', () => {
  const run = { defaultBody: true, body: '1024 B event', onDemand: 3.1, provisioned: 1.9 };

  it('is checked, on demand and provisioned at 70%, only with batches of 100 and the default body', () => {
    expect(targets).toMatchObject({ batchSize: 100, batchCostOnDemand: 3.25, batchCostProvisioned: 2.0 });
    const [met] = batchCostVerdicts({ ...run, batch: 100 });
    expect(met?.target).toBe('cost per million jobs submitted in batches of 100 ≤ $3.25 on demand, ≤ $2.00 provisioned at 70%, default body (at scale)');
    expect(met).toMatchObject({ pass: true, value: '$3.100 on demand PASS, $1.900 provisioned at 70% PASS' });
    expect(batchCostVerdicts({ ...run, batch: 100, provisioned: 2.01 })[0]).toMatchObject({ pass: false, value: '$3.100 on demand PASS, $2.010 provisioned at 70% FAIL' });
    expect(batchCostVerdicts({ ...run, batch: 100, onDemand: 3.26 })[0]?.pass).toBe(false);
  });

  it('is n/a, with its figures and why, in other runs', () => {
    expect(batchCostVerdicts({ ...run, batch: undefined })[0]).toMatchObject({ pass: undefined, value: expect.stringContaining('an unbatched run') });
    expect(batchCostVerdicts({ ...run, batch: 10 })[0]).toMatchObject({ pass: undefined, value: expect.stringContaining('batches of 10: not this target') });
    expect(batchCostVerdicts({ ...run, batch: 100, defaultBody: false, body: '1024 B random' })[0]).toMatchObject({ pass: undefined, value: '$3.100 on demand, $1.900 provisioned at 70%: a 1024 B random body: not this target' });
  });
});
