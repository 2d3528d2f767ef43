/**
 * As hard as AWS: 1,000 jobs through the local stack in fault mode, where DynamoDB and SQS
 * throttle, fail, reset connections, lose answers of writes that landed, leave parts of batches
 * unprocessed and answer slowly, at the rates below. A client submits each job with an
 * Idempotency-Key and tries again on a 503 or 409, as the contract tells it to. Every job that
 * got a 202 must reach a final state and its callback; no 202 may name a job that was not stored
 * and queued; duplicates are bounded and reported.
 */
import { afterAll, expect, it } from 'vitest';
import { basic, call, demo, duplicates, startStack, startTarget, tearDown, tempDataDir, waitFor, type RunningStack, type Target } from './harness.ts';

/** The fault rates of this run: probabilities per DynamoDB or SQS call the handlers make. */
export const chaosFaults = 'throttle=0.04,error=0.03,reset=0.02,lost=0.02,unprocessed=0.2,slow=0.03:20-300,seed=11';
const jobCount = 1_000;
const submitters = 16;

let stack: RunningStack | undefined;
let service: Target | undefined;
let callbacks: Target | undefined;
const dataDir = tempDataDir();

afterAll(() => tearDown(dataDir, stack, service, callbacks));

it(`every accepted job completes and calls back through DynamoDB and SQS faults (${jobCount} jobs; ${chaosFaults})`, async () => {
  service = await startTarget((_, response) => response.end('ok'));
  callbacks = await startTarget((_, response) => response.end('ok'));
  stack = await startStack({ dataDir, env: { WAAS_FAULTS: chaosFaults } });
  expect(stack.output()).toMatch(/fault mode \(WAAS_FAULTS\)/);
  const auth = basic(demo.clientId, demo.verifyToken);

  const jobOfKey = new Map<string, string>();
  const answers: Record<string, number> = {};
  let next = 0;
  const started = Date.now();
  const submitter = async () => {
    while (next < jobCount) {
      const key = `chaos-${next++}`;
      for (let attempt = 1; ; attempt++) {
        let status = 0;
        try {
          const answer = await call(stack!.url, 'POST', '/webhook', { service: `${service!.url}/work`, callback: `${callbacks!.url}/cb`, data: { key } }, { ...auth, 'idempotency-key': key });
          status = answer.status;
          if (status === 202) {
            const jobId = String(answer.body['job_id']);
            // A repeat answers with the first 202: one key, one job.
            expect(jobOfKey.get(key) ?? jobId).toBe(jobId);
            jobOfKey.set(key, jobId);
          }
        } catch {
          status = -1;
        }
        answers[status] = (answers[status] ?? 0) + 1;
        if (status === 202) break;
        // The contract's 503 and 409 come with Retry-After; a patient client comes back.
        expect([503, 409, 429, -1]).toContain(status);
        if (attempt > 30) throw new Error(`${key} was never accepted`);
        await new Promise((resolve) => setTimeout(resolve, 50 * Math.min(attempt, 10)));
      }
    }
  };
  await Promise.all(Array.from({ length: submitters }, submitter));
  const submittedMs = Date.now() - started;
  const accepted = new Set(jobOfKey.values());
  expect(accepted.size).toBe(jobCount);

  const calledBack = () => new Set(callbacks!.received.map((r) => String(r.headers['webhook-id'])).filter((id) => accepted.has(id)));
  await waitFor(() => (calledBack().size === accepted.size ? true : undefined), 300_000, 'every accepted job to be called back');
  const drainMs = Date.now() - started;

  // Every 202 named a job that was stored and ran to its end.
  const statuses: Record<string, number> = {};
  const unread = [...accepted];
  await Promise.all(
    Array.from({ length: submitters }, async () => {
      for (let jobId = unread.pop(); jobId !== undefined; jobId = unread.pop()) {
        const id = jobId;
        const record = await waitFor(async () => {
          const found = await call(stack!.url, 'GET', `/status?job_id=${id}`, undefined, auth);
          return found.status === 200 && found.body['notified'] === 'true' ? found.body : undefined;
        }, 60_000, `job ${id} to be settled`);
        statuses[String(record['status'])] = (statuses[String(record['status'])] ?? 0) + 1;
      }
    }),
  );
  const serviceKeys = service.received.map((r) => String(r.headers['idempotency-key']));
  const callbackIds = callbacks.received.map((r) => String(r.headers['webhook-id']));
  // A job the client never heard of (a 503'd submit whose write landed and could not be taken back).
  const unaccepted = new Set(serviceKeys.filter((id) => !accepted.has(id))).size;
  await stack.stop();
  const injected = [...stack.output().matchAll(/faults injected into (\w+) calls: (\{.*\})/g)].map(([, where, counts]) => ({ where, counts: JSON.parse(counts ?? '{}') as Record<string, number> }));
  const report = {
    jobs: jobCount,
    faults: chaosFaults,
    submitAnswers: answers,
    accepted: accepted.size,
    final: statuses,
    calledBack: calledBack().size,
    serviceCalls: serviceKeys.length,
    serviceDuplicates: duplicates(serviceKeys),
    callbackDuplicates: duplicates(callbackIds),
    unacceptedJobsRun: unaccepted,
    submittedMs,
    drainMs,
    injected: injected.map(({ where, counts }) => ({ where, ...Object.fromEntries(Object.entries(counts).filter(([kind]) => !kind.includes(':'))) })),
  };
  console.log(JSON.stringify({ chaos: report }));

  expect(statuses).toEqual({ completed: jobCount });
  expect(calledBack().size).toBe(jobCount);
  // The faults were really there.
  expect(injected).toHaveLength(2);
  for (const { counts } of injected) expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBeGreaterThan(50);
  // At least once, but bounded: a lost answer or a retried write repeats a call now and then.
  expect(report.serviceDuplicates).toBeLessThan(jobCount * 0.1);
  expect(report.callbackDuplicates).toBeLessThan(jobCount * 0.1);
  expect(unaccepted).toBeLessThan(jobCount * 0.01);
}, 480_000);
