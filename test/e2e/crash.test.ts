/**
 * No lost jobs: kill -9 the whole local stack mid-run, start it again on the same DATA_DIR, and
 * every job that got a 202 completes and is called back. Duplicated deliveries are counted
 * (at-least-once allows them; the Idempotency-Key and webhook-id let receivers drop them).
 */
import { afterAll, expect, it } from 'vitest';
import { attemptLeaseMs } from '../../lambdas/core/job.ts';
import { jobLimits } from '../../lib/definitions.ts';
import { basic, call, demo, duplicates, removeDir, startStack, startTarget, tearDown, tempDataDir, waitFor, type RunningStack, type Target } from './harness.ts';

const jobCount = 300;
let service: Target;
let callbacks: Target;
let stack: RunningStack | undefined;
const dataDir = tempDataDir();

afterAll(() => tearDown(dataDir, stack, service, callbacks));

it(`completes and calls back every accepted job across a kill -9 (${jobCount} jobs)`, async () => {
  service = await startTarget((_, response) => {
    // Slow enough that the crash finds work queued, in flight and being called back.
    setTimeout(() => response.end('ok'), 300);
  });
  callbacks = await startTarget((_, response) => response.end('ok'));
  stack = await startStack({ dataDir });
  const auth = basic(demo.clientId, demo.verifyToken);

  const accepted: string[] = [];
  let next = 0;
  let crashed = false;
  const submitter = async () => {
    while (next < jobCount && !crashed) {
      next++;
      try {
        const answer = await call(stack!.url, 'POST', '/webhook', { service: `${service.url}/work`, callback: `${callbacks.url}/cb` }, auth);
        if (answer.status === 202) accepted.push(String(answer.body['job_id']));
      } catch {
        // The stack died under this request: it was not accepted.
      }
    }
  };
  const submitting = Promise.all(Array.from({ length: 10 }, submitter));
  // Crash while jobs are being submitted, queued, running, and called back.
  await waitFor(() => (service.received.length >= jobCount / 3 ? true : undefined), 60_000, 'a third of the jobs to run');
  await stack.crash();
  crashed = true;
  await submitting;
  const beforeCrash = { service: service.received.length, callbacks: callbacks.received.length, submitted: next };
  const restartedAt = Date.now();
  stack = await startStack({ dataDir });
  // Recovery is timed from the restarted stack's readiness: its boot (a process, its storage,
  // the tables checked) is the machine's speed, not how recovery treats the leases.
  const readyAt = Date.now();
  const acceptedSet = new Set(accepted);
  const calledBack = () => new Set(callbacks.received.map((r) => String(r.headers['webhook-id'])).filter((id) => acceptedSet.has(id)));
  await waitFor(() => (calledBack().size === acceptedSet.size ? true : undefined), 60_000, 'every accepted job to be called back');
  const recoveryMs = Date.now() - readyAt;
  const restartMs = readyAt - restartedAt;

  // A callback received before the crash may not have been recorded: its job calls back again.
  const settled = async () => {
    let count = 0;
    for (const jobId of accepted) {
      const record = await call(stack!.url, 'GET', `/status?job_id=${jobId}`, undefined, auth);
      if (record.body['status'] === 'completed' && record.body['notified'] === 'true') count++;
    }
    return count;
  };
  const completed = await waitFor(async () => {
    const count = await settled();
    return count === accepted.length ? count : undefined;
  }, 60_000, 'every accepted job to be settled');
  const serviceDuplicates = duplicates(service.received.map((r) => String(r.headers['idempotency-key'])));
  const callbackDuplicates = duplicates(callbacks.received.map((r) => String(r.headers['webhook-id'])));
  console.log(
    JSON.stringify({
      crashTest: {
        submitted: beforeCrash.submitted,
        accepted: accepted.length,
        serviceCallsBeforeCrash: beforeCrash.service,
        callbacksBeforeCrash: beforeCrash.callbacks,
        completed,
        calledBack: calledBack().size,
        serviceDuplicates,
        callbackDuplicates,
        restartMs,
        recoveryMs,
      },
    }),
  );
  // The crash came while submissions were still arriving: some never got an answer.
  expect(beforeCrash.submitted).toBeLessThan(jobCount);
  expect(accepted.length).toBeGreaterThan(jobCount / 3);
  expect(beforeCrash.callbacks).toBeLessThan(accepted.length);
  expect(completed).toBe(accepted.length);
  expect(calledBack().size).toBe(accepted.length);
  // Well under a lease's length: recovery does not wait the leases taken before the crash out.
  expect(recoveryMs).toBeLessThan(attemptLeaseMs({ timeoutMs: jobLimits.timeoutMs.default }) / 2);
}, 180_000);

it('a crash while the callbacks are slow repeats no service call that answered: each answer is recorded before its callback', async () => {
  const slowJobs = 30;
  const slowService = await startTarget((_, response) => response.end('answered'));
  // Each callback takes 2.5 s: the crash comes while every one of them is in flight.
  const slowCallbacks = await startTarget((_, response) => setTimeout(() => response.end('ok'), 2_500));
  const dir = tempDataDir();
  let running: RunningStack | undefined = await startStack({ dataDir: dir });
  const auth = basic(demo.clientId, demo.verifyToken);
  try {
    const jobIds: string[] = [];
    for (let i = 0; i < slowJobs; i++) {
      const answer = await call(running.url, 'POST', '/webhook', { service: `${slowService.url}/once`, callback: `${slowCallbacks.url}/cb` }, auth);
      jobIds.push(String(answer.body['job_id']));
    }
    // Every service call has answered, and is recorded; the crash comes while callbacks are out.
    const records = async (stack: RunningStack) => Promise.all(jobIds.map(async (jobId) => (await call(stack.url, 'GET', `/status?job_id=${jobId}`, undefined, auth)).body));
    await waitFor(async () => ((await records(running!)).every((job) => job['status'] === 'completed') ? true : undefined), 30_000, 'every answer recorded');
    const atCrash = await records(running);
    await running.crash();
    // While a callback was still out, /status already showed the answer.
    const calling = atCrash.filter((job) => job['notified'] === 'no');
    expect(calling.length).toBeGreaterThan(0);
    for (const job of calling) expect(job['output']).toMatchObject({ statusCode: 200, body: 'answered' });

    running = await startStack({ dataDir: dir });
    await waitFor(async () => ((await records(running!)).every((job) => job['notified'] === 'true') ? true : undefined), 30_000, 'every callback after the restart');
    expect(slowService.received).toHaveLength(slowJobs);
    expect(new Set(slowService.received.map((r) => String(r.headers['idempotency-key']))).size).toBe(slowJobs);
  } finally {
    await running?.stop();
    await slowService.close();
    await slowCallbacks.close();
    removeDir(dir);
  }
}, 120_000);
