/**
 * A schedule through a crash, end to end: made over HTTP on `npm start`'s local stack, the stack
 * killed -9 before its first run and kept down past it, then started again on the same
 * DATA_DIR: the missed run is made after the restart, exactly once, as a job whose record names
 * the schedule. The wait is the cron's next minute at most, on an observable condition.
 */
import { afterAll, expect, it } from 'vitest';
import { basic, call, demo, startStack, startTarget, tearDown, tempDataDir, waitFor, type RunningStack, type Target } from './harness.ts';

let stack: RunningStack | undefined;
let service: Target;
const dataDir = tempDataDir();
const auth = basic(demo.clientId, demo.verifyToken);

afterAll(() => tearDown(dataDir, stack, service));

/** The demo client's jobs whose record names `scheduleId`. */
async function scheduled(url: string, scheduleId: string): Promise<Array<Record<string, unknown>>> {
  const page = await call(url, 'GET', '/v1/jobs?limit=100', undefined, auth);
  return (page.body['jobs'] as Array<Record<string, unknown>>).filter((job) => job['schedule_id'] === scheduleId);
}

it('makes a run missed while the stack was down (kill -9) after the restart, exactly once, with its schedule_id', async () => {
  service = await startTarget((_, response) => response.end('ran'));
  stack = await startStack({ dataDir });

  // What EventBridge Scheduler could not run is refused, naming the rule.
  const refused = await call(stack.url, 'POST', '/v1/schedules', { cron: '0 9 1 * MON', job: { url: `${service.url}/run` } }, auth);
  expect(refused.status).toBe(400);
  expect(refused.body['detail']).toMatch(/day-of-month and day-of-week cannot both be restricted/);

  const made = await call(stack.url, 'POST', '/v1/schedules', { cron: '* * * * *', timezone: 'Europe/Paris', job: { url: `${service.url}/run`, method: 'POST', body: { from: 'schedule' } } }, auth);
  expect(made.status).toBe(201);
  const scheduleId = String(made.body['schedule_id']);
  const nextRun = Date.parse(String(made.body['next_run']));
  expect(nextRun % 60_000).toBe(0);
  const read = await call(stack.url, 'GET', `/v1/schedules/${scheduleId}`, undefined, auth);
  expect(read.body).toMatchObject({ schedule_id: scheduleId, cron: '* * * * *', timezone: 'Europe/Paris', schedule_expression: 'cron(* * * * ? *)', next_run: made.body['next_run'], last_run: null });
  expect(((await call(stack.url, 'GET', '/v1/schedules', undefined, auth)).body['schedules'] as unknown[]).length).toBe(1);

  await stack.crash();
  // Down over the run's time: nothing can run it until the restart.
  await waitFor(() => (Date.now() > nextRun + 1_000 ? true : undefined), 70_000, 'the run time to pass while the stack is down');
  expect(service.received).toHaveLength(0);
  stack = await startStack({ dataDir });

  const [job] = await waitFor(async () => {
    const jobs = await scheduled(stack!.url, scheduleId);
    return jobs.length > 0 && jobs.every((found) => found['status'] === 'completed') ? jobs : undefined;
  }, 20_000, 'the missed run to be made and to run');
  expect(job).toMatchObject({ schedule_id: scheduleId, service: `${service.url}/run`, status: 'completed' });
  // The schedule moved on past the run it made, and names the job.
  const after = await call(stack.url, 'GET', `/v1/schedules/${scheduleId}`, undefined, auth);
  expect(after.body).toMatchObject({ last_run: new Date(nextRun).toISOString(), last_job_id: job?.['jobId'] });
  expect(Date.parse(String(after.body['next_run']))).toBeGreaterThan(nextRun);

  // Deleted before its next run: no run starts after the answer.
  expect((await call(stack.url, 'DELETE', `/v1/schedules/${scheduleId}`, undefined, auth)).status).toBe(200);
  expect((await call(stack.url, 'GET', `/v1/schedules/${scheduleId}`, undefined, auth)).status).toBe(404);
  // Once, not twice: the one run's job alone, and one call of the target.
  const jobs = await scheduled(stack.url, scheduleId);
  // The missed run's job is made at the restart, well within the minute after it (the next run's comes at that minute's end, at the earliest).
  const forRun = jobs.filter((found) => Date.parse(String(found['created'])) < nextRun + 60_000);
  expect(forRun).toHaveLength(1);
  expect(service.received.filter((received) => received.headers['idempotency-key'] === job?.['jobId'])).toHaveLength(1);
  expect(service.received[0]?.body).toBe('{"from":"schedule"}');
}, 150_000);
