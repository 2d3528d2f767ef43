/**
 * `npm run bench`: how fast a job goes from submit to callback, how many jobs the local stack
 * carries, what a million jobs cost on AWS, and how heavy each function is to start.
 *
 *   1. cold start: every function bundled as the CDK stack bundles it; size and fresh-process
 *      import time, against a minimal handler;
 *   2. the local stack in a child process (bench/stack-child.ts), metered; its CPU and memory
 *      at rest, right after it started;
 *   3. light load (one job at a time, submit then wait for its callback), then heavy load
 *      (--concurrency submitters, --jobs jobs; with --batch N, N jobs per POST /v1/jobs/batch,
 *      after a few batches one at a time that time the api's batch uncontended), each measured
 *      and its AWS usage metered; then the stack at rest again;
 *   4. the ceiling: the same target called directly at the same concurrency;
 *   5. the summary on stdout, bench/results/<time>.json and latest.json, latest.svg.
 *
 * Progress goes to stderr. Flags: --jobs --concurrency --batch --latency-ms --payload-bytes
 * --light-jobs --idle-s --settle-s --out --profile (see --help).
 */
import { cpus, totalmem } from 'node:os';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultRetentionDays, functions, jobLimits } from '../lib/definitions.ts';
import { batchLimits } from '../lambdas/core/schemas.ts';
import { measureColdStart, type ColdStart } from './bundles.ts';
import { apiGatewayBilledRequests, estimateCost, prices, storageCostPerMillion } from './cost.ts';
import { BatchSubmitter, batchSizes, bodyOf, CallbackReceiver, directLoad, runConcurrently, startTarget, Submitter, type BodyKind, type DirectResult, type Submission, type Target } from './load.ts';
import { findProfile, readProfile, summarizeProfile, type ProfileSummary } from './profile.ts';
import { Progress } from './progress.ts';
import type { Snapshot } from './protocol.ts';
import { readPeakRss, resetPeakRss, StackProcess, type IdleResult } from './stack-process.ts';
import { rounded, summarize } from './stats.ts';
import { batchCostVerdicts, idleCpuPass, report, targets, type LoadResult, type Options, type PhaseCost, type ScaleCost, type Verdict } from './report.ts';
import { cdfChart } from './svg.ts';
import { fixed, kib, mb, usd } from './table.ts';
import { atScale, diffPhase, usagePerJob } from './usage.ts';

const root = resolve(import.meta.dirname, '..');
const demo = { clientId: '66666666666668', verifyToken: 'd7811aa4852d7c021df3da133f8d3e11ad1e5c42d3ed0a1a' };

const usage = `npm run bench -- [flags]

  --jobs N            heavy load: jobs in total (default 1000)
  --concurrency N     heavy load: concurrent submitters; also the ceiling's concurrency (default 32)
  --batch N           heavy load: N jobs per POST /v1/jobs/batch (${batchLimits.min}–${batchLimits.max}), each submitter
                      posting a batch at a time; absent: one job per POST /webhook
  --delay-s N         with --batch: each batched job delayed N s (v1's delay_s, 0–20), its message
                      held by the queue (DelaySeconds); its submit→service latency includes the delay
  --light-jobs N      light load: jobs, one at a time (default 40)
  --latency-ms N      the target's fixed service latency (default 100)
  --payload-bytes N   size of the job's JSON data and of the target's response body (default 1024)
  --body event|random what they hold: an order event, as services send (default), or random
                      letters and digits, which no compression shrinks (the worst case for cost)
  --import-runs N     fresh-process imports per bundle; the median counts (default 5)
  --idle-s N          at rest, after start and after heavy load: seconds the stack's idle CPU
                      and memory are measured over; 0 leaves them out (default 10)
  --settle-s N        at rest: seconds the stack is left alone before that, for what start-up
                      and the load leave behind (GC, V8's memory reducer) to pass (default 20)
  --out DIR           where results go (default bench/results)
  --profile           CPU-profile the stack process; print the top self-time functions of the heavy run
`;

function readOptions(argv = process.argv.slice(2)): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      jobs: { type: 'string' },
      concurrency: { type: 'string' },
      batch: { type: 'string' },
      'delay-s': { type: 'string' },
      'latency-ms': { type: 'string' },
      'payload-bytes': { type: 'string' },
      body: { type: 'string' },
      'light-jobs': { type: 'string' },
      'import-runs': { type: 'string' },
      'idle-s': { type: 'string' },
      'settle-s': { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(usage);
    process.exit(0);
  }
  const int = (name: string, raw: string | undefined, fallback: number, min: number, max: number) => {
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${raw}`);
    return value;
  };
  return {
    jobs: int('jobs', values.jobs, 1000, 1, 1_000_000),
    concurrency: int('concurrency', values.concurrency, 32, 1, 1024),
    batch: values.batch === undefined ? undefined : int('batch', values.batch, 0, batchLimits.min, batchLimits.max),
    ...(values['delay-s'] === undefined ? {} : { delayS: delaySeconds(values['delay-s'], values.batch) }),
    latencyMs: int('latency-ms', values['latency-ms'], 100, 0, 60_000),
    payloadBytes: int('payload-bytes', values['payload-bytes'], 1024, 12, 200 * 1024),
    body: bodyKind(values.body),
    lightJobs: int('light-jobs', values['light-jobs'], 40, 1, 100_000),
    importRuns: int('import-runs', values['import-runs'], 5, 1, 100),
    idleS: int('idle-s', values['idle-s'], 10, 0, 3600),
    settleS: int('settle-s', values['settle-s'], 20, 0, 3600),
    out: resolve(values.out ?? join(root, 'bench', 'results')),
    profile: values.profile ?? false,
  };
}

class UsageError extends Error {}

/** --delay-s: v1's delay_s on each job of a batched run, short enough to wait for (a callback stall of 30 s is an error). */
function delaySeconds(raw: string, batch: string | undefined): number {
  if (batch === undefined) throw new UsageError('--delay-s needs --batch: a delay is a v1 field, and the unbatched heavy load goes through POST /webhook');
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 20) throw new UsageError(`--delay-s must be an integer from 0 to 20 (a longer wait reads as a stall), got ${raw}`);
  return value;
}

function bodyKind(raw: string | undefined): BodyKind {
  if (raw === undefined) return 'event';
  if (raw === 'event' || raw === 'random') return raw;
  throw new UsageError(`--body must be event or random, got ${raw}`);
}

/** A path as the user would type it: relative inside the project, absolute outside it. */
const shown = (path: string) => (path.startsWith(`${root}/`) ? relative(root, path) : path);

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

// ---- measuring a load phase ------------------------------------------------------------------

/**
 * Measures a phase from its submissions and what the target and receiver saw. `known`: every
 * job id an answer accepted so far (warm-ups and earlier phases too): a service request of any
 * other job is one that was answered refused but runs all the same.
 */
function measure(name: string, concurrency: number, submissions: Submission[], target: Target, receiver: CallbackReceiver, known: ReadonlySet<string>): LoadResult {
  const toService: number[] = [];
  const toCallback: number[] = [];
  const overhead: number[] = [];
  const submit: number[] = [];
  const acceptedToService: number[] = [];
  const service: number[] = [];
  const serviceToCallback: number[] = [];
  let failedJobs = 0;
  let extra = 0;
  let calledBack = 0;
  let lastCallback = 0;
  const accepted = submissions.filter((s) => s.jobId);
  for (const s of accepted) {
    submit.push(s.end - s.start);
    const arrival = target.arrivals.get(s.jobId ?? '');
    const callback = receiver.arrivals.get(s.jobId ?? '');
    if (arrival) {
      toService.push(arrival.arrived - s.start);
      acceptedToService.push(arrival.arrived - s.end);
      if (Number.isFinite(arrival.answered)) service.push(arrival.answered - arrival.arrived);
      extra += arrival.attempts - 1;
    }
    if (callback) {
      calledBack++;
      lastCallback = Math.max(lastCallback, callback.at);
      toCallback.push(callback.at - s.start);
      if (callback.status !== 'completed') failedJobs++;
      if (arrival && Number.isFinite(arrival.answered)) {
        overhead.push(callback.at - s.start - (arrival.answered - arrival.arrived));
        serviceToCallback.push(callback.at - arrival.answered);
      }
    }
  }
  const first = Math.min(...submissions.map((s) => s.start));
  const lastAccepted = Math.max(...accepted.map((s) => s.end));
  return {
    name,
    concurrency,
    submitted: submissions.length,
    accepted: accepted.length,
    calledBack,
    failedJobs,
    extraServiceCalls: extra,
    unacceptedRuns: [...target.arrivals.keys()].filter((id) => !known.has(id)).length,
    submitErrors: [...new Set(submissions.filter((s) => s.error).map((s) => s.error ?? ''))].slice(0, 5),
    durationS: (lastCallback - first) / 1000,
    submitRate: accepted.length / ((lastAccepted - first) / 1000),
    jobsPerSecond: calledBack / ((lastCallback - first) / 1000),
    latency: {
      submit: summarize(submit),
      toService: summarize(toService),
      toCallback: summarize(toCallback),
      overhead: summarize(overhead),
      acceptedToService: summarize(acceptedToService),
      service: summarize(service),
      serviceToCallback: summarize(serviceToCallback),
    },
    samples: { toService, toCallback },
    peakRss: { stackSinceStart: false },
  };
}

/** A job's callback, or an error as soon as the stack process died or the time is up. */
async function waitForCallback(receiver: CallbackReceiver, jobId: string, stack: StackProcess, timeoutMs: number): Promise<void> {
  const arrived = receiver.wait(jobId, timeoutMs).then(() => true);
  // Handled here too, so a timeout after the stack died is not an unhandled rejection.
  arrived.catch(() => undefined);
  while (!(await Promise.race([arrived, sleep(200).then(() => false)]))) stack.assertAlive();
}

/** Batches the probe submits one at a time, in a batched run, for the api's uncontended time per batch. */
const probeBatches = 3;

/** One batch, then each of its jobs' callbacks; a job refused is an error here (warm-up, probe). Its jobs, added to `accepted`. */
async function submitBatchAndWait(batches: BatchSubmitter, count: number, receiver: CallbackReceiver, stack: StackProcess, phase: string, accepted: Set<string>): Promise<number> {
  const submissions = await batches.submit(count);
  for (const s of submissions) if (s.jobId) accepted.add(s.jobId);
  const refused = submissions.find((s) => !s.jobId);
  if (refused) throw new Error(`${phase}: ${refused.error}`);
  for (const s of submissions) await waitForCallback(receiver, s.jobId ?? '', stack, 30_000);
  return submissions.length;
}

/** Waits until the stack has been quiet for a moment (the last job's final write done), bounded. */
async function settle(stack: StackProcess, quietMs = 300, limitMs = 10_000): Promise<Snapshot> {
  const activity = (snapshot: Snapshot) =>
    Object.values(snapshot.invocations).reduce((sum, stats) => sum + stats.invocations, 0) +
    Object.values(snapshot.meter)
      .filter((stats) => !(stats.operation === 'ReceiveMessage' && stats.detail.endsWith('(empty)')))
      .reduce((sum, stats) => sum + stats.calls, 0);
  const deadline = performance.now() + limitMs;
  let last = await stack.snapshot();
  while (performance.now() < deadline) {
    await sleep(quietMs);
    const next = await stack.snapshot();
    if (activity(next) === activity(last)) return next;
    last = next;
  }
  return last;
}

/** The idle target: every window's total CPU of the stack's processes. */
function idleVerdict(idle: { afterStart?: IdleResult; afterHeavy?: IdleResult }, options: Options): Verdict {
  const target = `at rest: the stack's processes' CPU ≤ ${targets.idleCpuPercent}% of a core in total, ${options.idleS} s after ${options.settleS} s alone, after start and after heavy load`;
  const windows = [
    ['after start', idle.afterStart],
    ['after heavy load', idle.afterHeavy],
  ] as const;
  const measured = windows.flatMap(([name, result]) => (result?.cpuPercent.total !== undefined ? [{ name, cpu: result.cpuPercent }] : []));
  if (measured.length === 0) return { target, value: options.idleS === 0 ? 'not measured (--idle-s 0)' : 'not measured (no /proc)', pass: undefined };
  return {
    target,
    value: measured.map(({ name, cpu }) => `${name} ${fixed(cpu.total, 2)}% (stack ${fixed(cpu.stack, 2)}%, storage ${fixed(cpu.storage, 2)}%, others ${fixed(cpu.others, 2)}%)`).join('; '),
    pass: measured.every(({ cpu }) => idleCpuPass(cpu)),
  };
}

// ---- the run ---------------------------------------------------------------------------------

function costOf(delta: ReturnType<typeof diffPhase>, jobs: number, requestBytes: number): PhaseCost {
  const usage = usagePerJob(delta, jobs, requestBytes);
  return {
    usage,
    onDemand: estimateCost(usage.usage, prices, { dynamo: 'onDemand' }),
    provisioned: estimateCost(usage.usage, prices, { dynamo: 'provisioned', utilisation: 0.7 }),
  };
}

async function main(): Promise<number> {
  const options = readOptions();
  const progress = new Progress();
  const startedAt = new Date();
  mkdirSync(options.out, { recursive: true });
  const profileDir = options.profile ? join(options.out, 'profile') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });

  let stack: StackProcess | undefined;
  const tempDirs = new Set<string>();
  const onSignal = () => {
    progress.note('interrupted: stopping the stack process');
    stack?.killNow();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const closers: Array<() => Promise<void>> = [];
  const stackErrors: string[] = [];

  try {
    // 1. Cold start first, while nothing else runs.
    const entries = Object.keys(functions).length + 1;
    progress.start(`cold start: ${entries} bundles × ${options.importRuns} imports`, entries * (options.importRuns + 1));
    const cold: ColdStart = await measureColdStart(root, options.importRuns, (done) => progress.update(done), (dir) => tempDirs.add(dir));
    progress.done(`${cold.functions.map((f) => `${f.name} ${kib(f.bytes)} ${fixed(f.importMedianMs, 0)} ms`).join(', ')}; minimal ${fixed(cold.minimal.importMedianMs, 0)} ms`);

    // 2. Target, callback receiver, the stack.
    const body = bodyOf(options.body, options.payloadBytes);
    const target = await startTarget(options.latencyMs, body);
    closers.push(target.close);
    const receiver = new CallbackReceiver();
    await receiver.start();
    closers.push(() => receiver.close());
    progress.start('starting the local stack (child process)');
    stack = new StackProcess({ root, ...(profileDir ? { profileDir } : {}), onError: (message) => stackErrors.push(message) });
    await stack.start();
    progress.done(`${stack.url} (${stack.processes().map(({ role, pid }) => `${role} pid ${pid}`).join(', ')})`);
    const idle: { afterStart?: IdleResult; afterHeavy?: IdleResult } = {};
    const rest = async (name: keyof typeof idle, what: string) => {
      if (!stack || options.idleS === 0) return;
      progress.start(`at rest ${what}: ${options.settleS} s left alone, then ${options.idleS} s measured`);
      const result = await stack.idle(options.idleS * 1000, options.settleS * 1000);
      idle[name] = result;
      const cpu = result.cpuPercent;
      progress.done(`CPU ${fixed(cpu.total, 2)}% of a core (stack ${fixed(cpu.stack, 2)}%, storage ${fixed(cpu.storage, 2)}%, others ${fixed(cpu.others, 2)}%), RSS ${mb(result.rss.total)}`);
    };
    await rest('afterStart', 'right after start');
    const job = { service: `${target.url}/service`, callback: `${receiver.url}/callback`, data: body };
    const single = new Submitter(stack.url, 1, job, demo);
    const many = new Submitter(stack.url, options.concurrency, job, demo);
    const batches = options.batch === undefined ? undefined : new BatchSubmitter(stack.url, options.concurrency, { ...job, ...(options.delayS !== undefined ? { delayS: options.delayS } : {}) }, demo);
    closers.push(() => single.close(), () => many.close());
    if (batches) {
      closers.push(() => batches.close());
      const bytes = batches.requestBytes(options.batch ?? 1);
      if (bytes > jobLimits.requestBodyBytes) throw new UsageError(`--batch ${options.batch}: a batch of ${options.batch} of this job is ${bytes} B, over the API's ${jobLimits.requestBodyBytes} B request limit; a smaller --batch or --payload-bytes`);
    }

    // Every job id an answer accepted: a job that reaches the service without one was answered refused.
    const accepted = new Set<string>();
    // Warm-up: JIT, connections, the credential cache. Not measured.
    progress.start('warm-up', 8);
    for (let i = 0; i < 8; i++) {
      const s = await single.submit();
      if (!s.jobId) throw new Error(`warm-up: ${s.error}`);
      accepted.add(s.jobId);
      await waitForCallback(receiver, s.jobId, stack, 30_000);
      progress.update(i + 1);
    }
    progress.done();
    if (batches && options.batch !== undefined) {
      progress.start(`warm-up: a batch of ${options.batch}`);
      await submitBatchAndWait(batches, options.batch, receiver, stack, 'warm-up', accepted);
      progress.done();
    }

    // 3a. Light load: one job at a time.
    const lightBefore = await settle(stack);
    const lightRssReset = stack.resetPeakRss();
    resetPeakRss('self');
    progress.start('light load: one job at a time', options.lightJobs);
    const lightSubmissions: Submission[] = [];
    for (let i = 0; i < options.lightJobs; i++) {
      const s = await single.submit();
      lightSubmissions.push(s);
      if (s.jobId) accepted.add(s.jobId);
      if (!s.jobId) throw new Error(`light load, job ${i + 1}: ${s.error}`);
      await waitForCallback(receiver, s.jobId, stack, 30_000).catch((error: unknown) => {
        const served = target.arrivals.has(s.jobId ?? '');
        throw new Error(`light load: ${(error as Error).message} (the service was ${served ? '' : 'not '}called)`);
      });
      progress.update(i + 1);
    }
    const lightAfter = await settle(stack);
    const light = measure('light', 1, lightSubmissions, target, receiver, accepted);
    light.peakRss = { ...stack.peakRss(), bench: readPeakRss('self'), stackSinceStart: !lightRssReset };
    progress.done(`p50 submit→callback ${fixed(light.latency.toCallback.p50)} ms, ${fixed(light.jobsPerSecond)} jobs/s`);

    // 3b. Batched runs: a few batches one at a time, each after the previous one's callbacks,
    // so the api's time for a batch is known uncontended, as light load knows a job's.
    let probe: { before: Snapshot; after: Snapshot; jobs: number } | undefined;
    if (batches && options.batch !== undefined) {
      progress.start(`batch probe: ${probeBatches} batches of ${options.batch}, one at a time`, probeBatches);
      const before = await settle(stack);
      let jobs = 0;
      for (let i = 0; i < probeBatches; i++) {
        jobs += await submitBatchAndWait(batches, options.batch, receiver, stack, 'batch probe', accepted);
        progress.update(i + 1);
      }
      probe = { before, after: await settle(stack), jobs };
      const api = probe.after.invocations['api'];
      const earlier = probe.before.invocations['api'];
      progress.done(api ? `api ${fixed((api.totalMs - (earlier?.totalMs ?? 0)) / Math.max(1, api.invocations - (earlier?.invocations ?? 0)))} ms a batch` : undefined);
    }

    // 3c. Heavy load: many submitters, then every callback.
    const heavyRssReset = stack.resetPeakRss();
    resetPeakRss('self');
    const heavyBefore = await stack.snapshot();
    progress.start(`heavy load: ${options.concurrency} submitters${options.batch === undefined ? '' : `, batches of ${options.batch}`}`, options.jobs);
    const heavySubmissions: Submission[] = new Array<Submission>(options.jobs);
    let submitted = 0;
    const sizes = options.batch === undefined ? [] : batchSizes(options.jobs, options.batch);
    const submitting = batches
      ? runConcurrently(sizes.length, options.concurrency, async (index) => {
          const count = sizes[index] ?? 0;
          const from = index * (options.batch ?? 1);
          for (const [n, submission] of (await batches.submit(count)).entries()) heavySubmissions[from + n] = submission;
          submitted += count;
        })
      : runConcurrently(options.jobs, options.concurrency, async (index) => {
          heavySubmissions[index] = await many.submit();
          submitted++;
        });
    let lastCount = -1;
    let lastChange = performance.now();
    let submitDone = false;
    void submitting.then(() => (submitDone = true), () => (submitDone = true));
    const stallMs = 30_000;
    for (;;) {
      const acceptedIds = submitDone ? heavySubmissions.filter((s) => s?.jobId).map((s) => s.jobId as string) : [];
      const count = heavySubmissions.reduce((sum, s) => sum + (s?.jobId && receiver.arrivals.has(s.jobId) ? 1 : 0), 0);
      progress.update(count, `called back · ${submitted} submitted`);
      if (submitDone && count >= acceptedIds.length) break;
      stack.assertAlive();
      if (count !== lastCount) {
        lastCount = count;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > stallMs) {
        const served = heavySubmissions.filter((s) => s?.jobId && target.arrivals.has(s.jobId)).length;
        throw new Error(
          `heavy load stalled: no callback for ${stallMs / 1000} s — ${submitted} submitted, ${heavySubmissions.filter((s) => s?.jobId).length} accepted, ` +
            `${served} reached the service, ${count} called back${stackErrors.length ? `; stack errors: ${stackErrors.slice(0, 3).join(' | ')}` : ''}`,
        );
      }
      await sleep(100);
    }
    await submitting;
    const heavyAfter = await settle(stack);
    for (const s of heavySubmissions) if (s?.jobId) accepted.add(s.jobId);
    const heavy = measure('heavy', options.concurrency, heavySubmissions, target, receiver, accepted);
    heavy.peakRss = { ...stack.peakRss(), bench: readPeakRss('self'), stackSinceStart: !heavyRssReset };
    if (heavy.accepted === 0) throw new Error(`heavy load: no job was accepted: ${heavy.submitErrors.join(' | ')}`);
    progress.done(`${fixed(heavy.jobsPerSecond)} jobs/s end to end, ${fixed(heavy.submitRate)} submits/s`);
    await rest('afterHeavy', 'after heavy load');

    // Item sizes of a finished job, for the storage estimate and the reading of write units.
    const sampleIds = heavySubmissions.filter((s) => s?.jobId).slice(0, 3).map((s) => s.jobId as string);
    const items = await stack.itemSizes(sampleIds).catch(() => []);

    // The stack is done: stop it (a profile is written on a graceful exit).
    progress.start('stopping the local stack');
    const stackPid = stack.pid;
    await stack.stop();
    stack = undefined;
    progress.done();

    // 4. The ceiling: the same target, directly, at each load's concurrency.
    const lightCeilingCount = Math.min(options.lightJobs, 20);
    progress.start('ceiling: direct requests', lightCeilingCount + options.jobs);
    const lightCeiling = await directLoad(target.url, lightCeilingCount, 1, body, (done) => progress.update(done));
    const heavyCeiling = await directLoad(target.url, options.jobs, options.concurrency, body, (done) => progress.update(lightCeilingCount + done));
    const ceilingRate = (result: DirectResult) => result.latencies.length / ((result.finished - result.started) / 1000);
    progress.done(`${fixed(ceilingRate(lightCeiling))} jobs/s at 1, ${fixed(ceilingRate(heavyCeiling))} jobs/s at ${options.concurrency}`);

    // Profile of the heavy run.
    let profile: ProfileSummary | undefined;
    if (profileDir) {
      const file = findProfile(profileDir, stackPid);
      if (file) profile = summarizeProfile(readProfile(file), root, { fromUs: heavyBefore.hrtimeUs, toUs: heavyAfter.hrtimeUs, file: shown(file) });
      else progress.note(`no .cpuprofile for pid ${stackPid} in ${profileDir}`);
    }

    // 5. Costs, results, report. A batched heavy load's API requests are its batches, each
    // billed by its size; the api's time per batch, at scale, is the probe's.
    const requestBytes = batches ? batches.requestBytes(options.batch ?? 1) : many.requestBytes;
    const lightCost = costOf(diffPhase(lightBefore, lightAfter), light.calledBack, many.requestBytes);
    const heavyCost = costOf(diffPhase(heavyBefore, heavyAfter), heavy.calledBack, requestBytes);
    const probeCost = probe ? costOf(diffPhase(probe.before, probe.after), probe.jobs, requestBytes) : undefined;
    const scaleUsage = atScale(heavyCost.usage, lightCost.usage, probeCost ? { api: probeCost.usage } : {});
    const scaleCost: ScaleCost = {
      usage: scaleUsage,
      onDemand: estimateCost(scaleUsage, prices, { dynamo: 'onDemand' }),
      provisioned: estimateCost(scaleUsage, prices, { dynamo: 'provisioned', utilisation: 0.7 }),
    };
    const jobItem = items.filter((item) => item.sk === 'job');
    const requestItem = items.filter((item) => item.sk === 'request');
    const average = (list: Array<{ bytes: number }>) => (list.length ? list.reduce((sum, item) => sum + item.bytes, 0) / list.length : 0);
    const itemBytes = { job: Math.round(average(jobItem)), request: Math.round(average(requestItem)) };
    const storage = items.length ? storageCostPerMillion([itemBytes.job, itemBytes.request], defaultRetentionDays) : undefined;

    const ceiling = {
      light: { concurrency: 1, requests: lightCeilingCount, errors: lightCeiling.errors, jobsPerSecond: ceilingRate(lightCeiling), latency: summarize(lightCeiling.latencies) },
      heavy: { concurrency: options.concurrency, requests: options.jobs, errors: heavyCeiling.errors, jobsPerSecond: ceilingRate(heavyCeiling), latency: summarize(heavyCeiling.latencies) },
    };
    const slowestImport = cold.functions.reduce((a, b) => (b.importMedianMs > a.importMedianMs ? b : a));
    const heavyRatio = heavy.jobsPerSecond / ceiling.heavy.jobsPerSecond;
    const instant = options.latencyMs === 0;
    const defaultBody = options.body === 'event' && options.payloadBytes === 1024;
    const batched = options.batch === undefined ? '' : `: a batched run (--batch ${options.batch}), not this target`;
    const verdicts: Verdict[] = [
      {
        target: `light load: waas overhead p50 ≤ ${targets.lightOverheadP50Ms} ms (submit→callback minus the ${options.latencyMs} ms service)`,
        value: `${fixed(light.latency.overhead.p50)} ms (submit→callback p50 ${fixed(light.latency.toCallback.p50)} ms)`,
        pass: light.latency.overhead.p50 <= targets.lightOverheadP50Ms,
      },
      {
        target: `heavy load, instant target (--latency-ms 0): ≥ ${targets.instantJobsPerSecond} jobs/s end to end`,
        value: `${fixed(heavy.jobsPerSecond)} jobs/s${instant ? batched : ` with a ${options.latencyMs} ms service: not this target`}`,
        pass: instant && !batched ? heavy.jobsPerSecond >= targets.instantJobsPerSecond : undefined,
      },
      {
        target: `heavy load, a ${instant ? 'slow' : `${options.latencyMs} ms`} service (default 100 ms): ≥ ${fixed(targets.ceilingRatio, 2)} of the direct ceiling`,
        value: `${fixed(heavyRatio, 2)}× (${fixed(heavy.jobsPerSecond)} of ${fixed(ceiling.heavy.jobsPerSecond)} jobs/s)${instant ? ': an instant target has no ceiling to keep up with' : batched}`,
        pass: instant || batched ? undefined : heavyRatio >= targets.ceilingRatio,
      },
      {
        target: `cost per million jobs with callback, default body, ≤ $${targets.costOnDemand.toFixed(2)} (DynamoDB on demand, at scale)`,
        value: `${usd(scaleCost.onDemand.total)} (measured light: ${usd(lightCost.onDemand.total)}, heavy: ${usd(heavyCost.onDemand.total)}; provisioned at 70%: ${usd(scaleCost.provisioned.total)})${defaultBody ? batched : ` with a ${options.payloadBytes} B ${options.body} body: not this target`}`,
        pass: defaultBody && !batched ? scaleCost.onDemand.total <= targets.costOnDemand : undefined,
      },
      ...batchCostVerdicts({ batch: options.batch, defaultBody, body: `${options.payloadBytes} B ${options.body}`, onDemand: scaleCost.onDemand.total, provisioned: scaleCost.provisioned.total }),
      idleVerdict(idle, options),
      {
        target: `each cold import ≤ ${targets.coldImportMs} ms, the SDK bundled (median of ${options.importRuns}, node ${process.version})`,
        value: `slowest: ${slowestImport.name} ${fixed(slowestImport.importMedianMs)} ms (minimal handler ${fixed(cold.minimal.importMedianMs)} ms)`,
        pass: cold.functions.every((f) => f.importMedianMs <= targets.coldImportMs),
      },
    ];

    const finishedAt = new Date();
    const strip = (result: LoadResult) => {
      const { samples: _samples, latency, ...rest } = result;
      return { ...rest, latency: Object.fromEntries(Object.entries(latency).map(([name, summary]) => [name, rounded(summary)])) };
    };
    const results = {
      version: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      machine: { node: process.version, platform: `${process.platform} ${process.arch}`, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '?', memoryBytes: totalmem() },
      options: { ...options, out: shown(options.out) },
      load: { light: strip(light), heavy: strip(heavy) },
      idle: { note: 'each window: left alone settleS, then CPU in percent of one core over windowS, RSS (bytes) at its end; by role (others: tsx\'s esbuild service)', targetCpuPercent: targets.idleCpuPercent, ...idle },
      ceiling: {
        light: { ...ceiling.light, latency: rounded(ceiling.light.latency), ratio: light.jobsPerSecond / ceiling.light.jobsPerSecond },
        heavy: { ...ceiling.heavy, latency: rounded(ceiling.heavy.latency), ratio: heavy.jobsPerSecond / ceiling.heavy.jobsPerSecond },
      },
      cost: {
        prices: { region: prices.region, currency: prices.currency, file: 'bench/prices.json' },
        note: 'USD per million jobs with a callback; request-driven charges (DynamoDB reads and writes, SQS requests, Lambda, API Gateway, CloudWatch Logs ingestion, an estimate); storage apart.',
        light: { onDemand: lightCost.onDemand, provisioned: lightCost.provisioned },
        heavy: { onDemand: heavyCost.onDemand, provisioned: heavyCost.provisioned },
        atScale: {
          note: `heavy load calls, units and invocations per job with light load (uncontended) handler durations${probeCost ? `; the api's per batch of ${options.batch} from the batch probe (${probeBatches} batches one at a time)` : ''}`,
          onDemand: scaleCost.onDemand,
          provisioned: scaleCost.provisioned,
        },
        batch: options.batch === undefined ? null : { jobsPerRequest: options.batch, requestBytes, apiGatewayBilledPerRequest: apiGatewayBilledRequests(requestBytes) },
        storage: { itemBytes, retentionDays: defaultRetentionDays, usdPerMillionJobs: storage ?? null },
        // A finished job's item, attribute by attribute, as DynamoDB counts it (the first sampled).
        jobItem: jobItem[0] ?? null,
      },
      usagePerJob: { light: lightCost.usage, heavy: heavyCost.usage, ...(probeCost ? { batchProbe: probeCost.usage } : {}) },
      coldStart: cold,
      profile: profile ?? null,
      targets: verdicts,
      stackErrors,
    };
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    const json = `${JSON.stringify(results, null, 2)}\n`;
    writeFileSync(join(options.out, `${stamp}.json`), json);
    writeFileSync(join(options.out, 'latest.json'), json);
    writeFileSync(
      join(options.out, 'latest.svg'),
      cdfChart(
        `waas latency — ${options.latencyMs} ms service, ${options.payloadBytes} B ${options.body} payload, ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
        [
          { label: 'light: submit → service', values: light.samples.toService, color: '#60a5fa' },
          { label: 'light: submit → callback', values: light.samples.toCallback, color: '#1d4ed8' },
          { label: `heavy (${options.concurrency}): submit → service`, values: heavy.samples.toService, color: '#fb923c' },
          { label: `heavy (${options.concurrency}): submit → callback`, values: heavy.samples.toCallback, color: '#c2410c' },
          { label: `ceiling (${options.concurrency}): direct request`, values: heavyCeiling.latencies, color: '#6b7280', dashed: true },
        ],
        { marks: [{ at: options.latencyMs, label: 'service latency' }] },
      ),
    );

    process.stdout.write(
      report({ options, startedAt, light, heavy, ceiling, idle, lightCost, heavyCost, ...(probeCost ? { probeCost } : {}), requestBytes, scaleCost, storage, itemBytes, ...(jobItem[0] ? { jobItem: jobItem[0] } : {}), cold, profile, verdicts, stackErrors, files: [`${stamp}.json`, 'latest.json', 'latest.svg'].map((name) => shown(join(options.out, name))) }),
    );
    return 0;
  } finally {
    if (stack) await stack.stop().catch(() => stack?.killNow());
    for (const close of closers.reverse()) await close().catch(() => undefined);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) process.stderr.write(`${error.message}\n\n${usage}`);
    else process.stderr.write(`\n[bench] failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
