/**
 * The local stack fails loudly and stops cleanly: a storage process that dies makes /health and
 * submissions answer 503 until it is back (then the work resumes), and Ctrl-C lets the attempts
 * in flight finish before the storage stops, so a restart repeats none of them.
 */
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { basic, call, childPids, clients, demo, removeDir, root, startStack, startTarget, tempDataDir, waitFor, type RunningStack, type Target } from './harness.ts';

const auth = basic(demo.clientId, demo.verifyToken);
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Takes LevelDB's lock of `path` (as soon as it is free, within a bound) in a process of its
 * own, and keeps it until released: whatever else opens the database meanwhile must wait.
 */
async function holdDatabase(path: string): Promise<{ release(): Promise<void> }> {
  const script = `
    const { ClassicLevel } = require('classic-level');
    (async () => {
      for (const deadline = Date.now() + 2000; ; ) {
        const db = new ClassicLevel(process.argv[1]);
        try { await db.open(); process.stdout.write('held\\n'); process.stdin.on('end', () => db.close().then(() => process.exit(0))); process.stdin.resume(); return; }
        catch (error) { if (Date.now() > deadline) { console.error(String(error)); process.exit(1); } }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();`;
  const holder = spawn(process.execPath, ['-e', script, path], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  let holding = false;
  holder.stdout?.on('data', (chunk: Buffer) => (holding ||= chunk.toString().includes('held')));
  await waitFor(() => (holder.exitCode !== null ? Promise.reject(new Error('could not take the lock')) : holding ? true : undefined), 5_000, 'the database lock');
  return {
    release: async () => {
      holder.stdin?.end();
      await exited;
    },
  };
}

async function world(respond?: Parameters<typeof startTarget>[0]) {
  const dataDir = tempDataDir();
  const target: Target = await startTarget(respond);
  let stack: RunningStack = await startStack({ dataDir });
  cleanups.push(() => removeDir(dataDir), () => target.close(), () => stack.stop());
  const submit = () => call(stack.url, 'POST', '/webhook', { service: `${target.url}/work`, callback: `${target.url}/cb` }, auth);
  const status = async (jobId: string) => (await call(stack.url, 'GET', `/status?job_id=${jobId}`, undefined, auth)).body;
  return {
    dataDir,
    target,
    get stack() {
      return stack;
    },
    restart: async () => {
      stack = await startStack({ dataDir });
    },
    submit,
    status,
  };
}

it('a storage process that dies: /health and submissions answer 503 with Retry-After until it is back, then accepted work completes', async () => {
  const w = await world();
  const before = await w.submit();
  expect(before.status).toBe(202);
  const [storagePid] = childPids(w.stack.child.pid ?? 0);
  expect(storagePid).toBeDefined();

  // Kill it, and keep its database locked for a while, so that the restart has to wait. The
  // stack is paused meanwhile: on a busy machine its restart (a second later) could otherwise
  // take the lock before the holder has started.
  const stackPid = w.stack.child.pid ?? 0;
  process.kill(stackPid, 'SIGSTOP');
  let db: { release(): Promise<void> };
  try {
    process.kill(storagePid ?? 0, 'SIGKILL');
    db = await holdDatabase(join(w.dataDir, 'dynamodb'));
  } finally {
    process.kill(stackPid, 'SIGCONT');
  }
  cleanups.push(() => db.release());

  const health = await waitFor(async () => {
    const response = await fetch(`${w.stack.url}/health`);
    return response.status === 503 ? response : undefined;
  }, 10_000, '/health to answer 503');
  expect(health.headers.get('retry-after')).toBe('1');
  const refused = await fetch(`${w.stack.url}/webhook`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ service: `${w.target.url}/refused` }) });
  expect(refused.status).toBe(503);
  expect(refused.headers.get('retry-after')).toBe('1');
  expect(await refused.json()).toMatchObject({ status: 'failed' });

  // Let the restart through: the stack is healthy again, and old and new work completes.
  await db.release();
  await waitFor(async () => ((await fetch(`${w.stack.url}/health`)).status === 200 ? true : undefined), 30_000, '/health to answer 200 again');
  const after = await w.submit();
  expect(after.status).toBe(202);
  for (const answer of [before, after]) {
    const jobId = String(answer.body['job_id']);
    await waitFor(async () => ((await w.status(jobId))['notified'] === 'true' ? true : undefined), 30_000, `job ${jobId} to be called back`);
  }
  expect(w.target.received.filter((r) => r.url === '/refused')).toEqual([]);
  expect(w.stack.output()).toMatch(/the storage process exited .*starting it again/);
}, 90_000);

it('Ctrl-C lets the attempts in flight finish and be recorded before the storage stops: a restart repeats none', async () => {
  const slow = 1_500;
  const w = await world((request, response) => setTimeout(() => response.end('done'), request.url === '/work' ? slow : 0));
  const jobIds: string[] = [];
  for (let i = 0; i < 20; i++) jobIds.push(String((await w.submit()).body['job_id']));
  await waitFor(() => (w.target.received.filter((r) => r.url === '/work').length === jobIds.length ? true : undefined), 20_000, 'every service call to be under way');

  await w.stack.stop();
  expect(w.stack.child.exitCode).toBe(0);
  expect(w.stack.output()).toMatch(/waas is stopping: \d+ invocations in flight finish first/);
  expect(w.stack.output()).not.toMatch(/\[waas\]/);

  await w.restart();
  for (const jobId of jobIds) await waitFor(async () => ((await w.status(jobId))['notified'] === 'true' ? true : undefined), 30_000, `job ${jobId}`);
  // Every service call answered before the stop, and was recorded: none ran again.
  expect(w.target.received.filter((r) => r.url === '/work')).toHaveLength(jobIds.length);
}, 90_000);

it('targets that never answer hold up nobody else: while their attempts wait out their timeout, other jobs run and call back', async () => {
  const w = await world((request, response) => {
    if (request.url === '/hang') return; // never answers
    response.end('ok');
  });
  const hanging: string[] = [];
  for (let i = 0; i < 12; i++) {
    const answer = await call(w.stack.url, 'POST', '/webhook', { service: `${w.target.url}/hang`, timeout_ms: 15_000, max_attempts: 1 }, auth);
    hanging.push(String(answer.body['job_id']));
  }
  await waitFor(() => (w.target.received.filter((r) => r.url === '/hang').length === hanging.length ? true : undefined), 20_000, 'every hanging call to be under way');
  const started = Date.now();
  const fast: string[] = [];
  for (let i = 0; i < 20; i++) fast.push(String((await w.submit()).body['job_id']));
  for (const jobId of fast) await waitFor(async () => ((await w.status(jobId))['notified'] === 'true' ? true : undefined), 20_000, `fast job ${jobId}`);
  // Well before the hanging attempts time out (15 s), every fast job is done.
  expect(Date.now() - started).toBeLessThan(10_000);
  for (const jobId of hanging) expect((await w.status(jobId))['status']).toBe('started');
}, 90_000);

it('a revoked demo client stays revoked across restarts, and WAAS_DEMO_CLIENT=off starts without one', async () => {
  const w = await world();
  expect(clients(w.dataDir, 'revoke', demo.clientId).status).toBe(0);
  await w.stack.stop();
  await w.restart();
  expect(w.stack.output()).toMatch(/demo client 66666666666668 is revoked \(since .*\) and stays so/);
  expect((await call(w.stack.url, 'GET', '/webhook', undefined, auth)).status).toBe(401);

  const fresh = tempDataDir();
  cleanups.push(() => removeDir(fresh));
  const off = await startStack({ dataDir: fresh, env: { WAAS_DEMO_CLIENT: 'off' } });
  cleanups.push(() => off.stop());
  expect(off.output()).toMatch(/demo client off \(WAAS_DEMO_CLIENT=off\)/);
  expect(off.output()).not.toMatch(/demo verify_token/);
  expect((await call(off.url, 'GET', '/webhook', undefined, auth)).status).toBe(401);
}, 90_000);
