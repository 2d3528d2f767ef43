/**
 * The summary the bench prints on stdout: load, per-job usage and cost, cold start, profile and
 * the issue's targets, as plain-text tables.
 */
import type { BodyKind } from './load.ts';
import { cpus } from 'node:os';
import { defaultRetentionDays } from '../lib/definitions.ts';
import type { ColdStart } from './bundles.ts';
import { apiGatewayBilledRequests, type CostEstimate, type JobUsage, type Service } from './cost.ts';
import type { ProfileSummary } from './profile.ts';
import type { ItemSize } from './protocol.ts';
import type { IdleResult, PerProcess } from './stack-process.ts';
import type { Summary } from './stats.ts';
import { fixed, kib, mark, mb, renderTable, triple, usd } from './table.ts';
import type { OperationPerJob, PhaseUsage } from './usage.ts';

/** The issues' targets (issues 9, 10 and 12), printed beside the figures. */
export const targets = {
  /** Light load: submit → callback minus the service's own time, p50. */
  lightOverheadP50Ms: 15,
  /** Heavy load against an instant target (`--latency-ms 0`), end to end. */
  instantJobsPerSecond: 400,
  /** Heavy load against a slower target (the default 100 ms): a share of the direct ceiling. */
  ceilingRatio: 0.8,
  /** Per million jobs with a callback, the default body, DynamoDB on demand, at scale. */
  costOnDemand: 4.5,
  /**
   * Issue 12: per million jobs submitted through POST /v1/jobs/batch in batches of `batchSize`,
   * the default body, at scale: on demand, and with DynamoDB provisioned at 70%.
   */
  batchSize: 100,
  batchCostOnDemand: 3.25,
  batchCostProvisioned: 2.0,
  /** Each function's median fresh-process import, the SDK bundled. */
  coldImportMs: 100,
  /** At rest (issue 10): the stack's and its storage's CPU together, percent of one core, in every idle window. */
  idleCpuPercent: 0.3,
} as const;

/** A target checked against this run; `pass` is undefined where the run's settings do not test it. */
export interface Verdict {
  target: string;
  value: string;
  pass: boolean | undefined;
}

export interface Options {
  jobs: number;
  concurrency: number;
  /** Heavy load: jobs per POST /v1/jobs/batch; undefined: one job per POST /webhook. */
  batch: number | undefined;
  /** With `batch`: each batched job's v1 delay_s. */
  delayS?: number;
  latencyMs: number;
  payloadBytes: number;
  /** What the job's data and the target's answer hold (see bench/load.ts). */
  body: BodyKind;
  lightJobs: number;
  importRuns: number;
  /** Seconds measured at rest, after start and after heavy load; 0: not measured. */
  idleS: number;
  /** Seconds left alone before each of those windows. */
  settleS: number;
  out: string;
  profile: boolean;
}

export interface LoadResult {
  name: string;
  concurrency: number;
  submitted: number;
  accepted: number;
  calledBack: number;
  /** Jobs whose callback said something other than "completed". */
  failedJobs: number;
  /** Service requests beyond the first per job (retries, redeliveries). */
  extraServiceCalls: number;
  /**
   * Jobs that reached the service although no answer of the phase accepted them (a batch, or a
   * job, answered refused or cut off after some of its jobs were stored and queued): what must
   * be 0 for "nothing half-accepted". Counted by the end of the phase.
   */
  unacceptedRuns: number;
  submitErrors: string[];
  durationS: number;
  submitRate: number;
  jobsPerSecond: number;
  latency: { submit: Summary; toService: Summary; toCallback: Summary; overhead: Summary; acceptedToService: Summary; service: Summary; serviceToCallback: Summary };
  samples: { toService: number[]; toCallback: number[] };
  /** Each process's peak in the phase (VmHWM); total: the stack's and the storage's added. */
  peakRss: PerProcess & { bench?: number; stackSinceStart: boolean };
}

export interface PhaseCost {
  usage: PhaseUsage;
  onDemand: CostEstimate;
  provisioned: CostEstimate;
}

/** Heavy load's calls and batching, light load's uncontended handler durations (see atScale). */
export interface ScaleCost {
  usage: JobUsage;
  onDemand: CostEstimate;
  provisioned: CostEstimate;
}

export interface ReportInput {
  options: Options;
  startedAt: Date;
  light: LoadResult;
  heavy: LoadResult;
  ceiling: Record<'light' | 'heavy', { concurrency: number; requests: number; errors: number; jobsPerSecond: number; latency: Summary }>;
  /** The stack at rest, right after it started and after heavy load (absent with --idle-s 0). */
  idle: { afterStart?: IdleResult; afterHeavy?: IdleResult };
  lightCost: PhaseCost;
  heavyCost: PhaseCost;
  /** Batched runs: the batches submitted one at a time (the api's uncontended time per batch). */
  probeCost?: PhaseCost;
  /** Bytes of one heavy-load request: a POST /webhook, or a POST /v1/jobs/batch of `options.batch` jobs. */
  requestBytes: number;
  scaleCost: ScaleCost;
  storage: number | undefined;
  itemBytes: { job: number; request: number };
  /** A finished job's item (after its callback), attribute by attribute. */
  jobItem?: ItemSize;
  cold: ColdStart;
  profile: ProfileSummary | undefined;
  verdicts: Verdict[];
  stackErrors: string[];
  files: string[];
}

/** An operation's label, shorter: the local tables' and queues' common prefix dropped. */
const brief = (item: string) => item.replace(/waas-/g, '').replace(/ sk=/g, ' #');

export function report(input: ReportInput): string {
  const { options, light, heavy, ceiling, lightCost, heavyCost, cold, profile } = input;
  const out: string[] = [];
  const cpu = cpus();
  out.push(
    `waas bench · ${input.startedAt.toISOString().slice(0, 19).replace('T', ' ')} UTC · node ${process.version} · ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}`,
    `service latency ${options.latencyMs} ms · payload ${options.payloadBytes} B (request data and response body) · demo client, Basic auth`,
    options.batch === undefined
      ? `heavy load: one job per POST /webhook (${input.requestBytes} B a request)`
      : `BATCHED heavy load: ${options.batch} jobs per POST /v1/jobs/batch (${kib(input.requestBytes)} a request, ${apiGatewayBilledRequests(input.requestBytes)} × 512 KB API Gateway unit); light load: one job per POST /webhook`,
    '',
  );

  // Load.
  const since = (r: LoadResult) => (r.peakRss.stackSinceStart ? '*' : '');
  const rssCell = (r: LoadResult) => `${mb(r.peakRss.stack)} + ${mb(r.peakRss.storage)} + ${mb(r.peakRss.others)} = ${mb(r.peakRss.total)}${since(r)} / ${mb(r.peakRss.bench)}`;
  out.push(
    renderTable(
      ['LOAD', 'light (1 at a time)', `heavy (${options.concurrency} submitters${options.batch === undefined ? '' : ` × batches of ${options.batch}`})`],
      [
        ['jobs submitted / accepted / called back', `${light.submitted} / ${light.accepted} / ${light.calledBack}`, `${heavy.submitted} / ${heavy.accepted} / ${heavy.calledBack}`],
        [options.batch === undefined ? 'submit rate (202s/s)' : 'submit rate (jobs accepted/s)', fixed(light.submitRate), fixed(heavy.submitRate)],
        ['end to end (jobs/s, submit → callback)', fixed(light.jobsPerSecond), fixed(heavy.jobsPerSecond)],
        ['ceiling: direct to the target (jobs/s)', `${fixed(ceiling.light.jobsPerSecond)} at 1`, `${fixed(ceiling.heavy.jobsPerSecond)} at ${ceiling.heavy.concurrency}`],
        ['ratio to the ceiling', `${fixed(light.jobsPerSecond / ceiling.light.jobsPerSecond, 2)}×`, `${fixed(heavy.jobsPerSecond / ceiling.heavy.jobsPerSecond, 2)}×`],
        ['latency p50 / p95 / p99 (ms)', '', ''],
        ['  submit → service', triple(light.latency.toService), triple(heavy.latency.toService)],
        ['  submit → callback', triple(light.latency.toCallback), triple(heavy.latency.toCallback)],
        [`  waas overhead (callback − the service's time)`, triple(light.latency.overhead), triple(heavy.latency.overhead)],
        [options.batch === undefined ? '  where it goes: submit → 202' : '  where it goes: submit → 202 (heavy: its batch\'s 200)', triple(light.latency.submit), triple(heavy.latency.submit)],
        ['                 202 → service request', triple(light.latency.acceptedToService), triple(heavy.latency.acceptedToService)],
        ['                 the service itself', triple(light.latency.service), triple(heavy.latency.service)],
        ['                 service answer → callback', triple(light.latency.serviceToCallback), triple(heavy.latency.serviceToCallback)],
        ['  ceiling: direct request', triple(ceiling.light.latency), triple(ceiling.heavy.latency)],
        ['peak RSS: stack + storage + others = total / bench', rssCell(light), rssCell(heavy)],
        ['failed jobs · extra service calls', `${light.failedJobs} · ${light.extraServiceCalls}`, `${heavy.failedJobs} · ${heavy.extraServiceCalls}`],
        ['jobs run though answered refused (should be 0)', String(light.unacceptedRuns), String(heavy.unacceptedRuns)],
      ],
    ),
  );
  const handlerTimes = (cost: PhaseCost) => cost.usage.lambda.map((fn) => `${fn.fn} ${fixed(fn.avgMs)} ms × ${fixed(fn.invocations, 2)}`).join(', ');
  out.push(
    `handler time per invocation × invocations per job — light: ${handlerTimes(lightCost)}; ${input.probeCost ? `batch probe (a batch at a time): ${handlerTimes(input.probeCost)}; ` : ''}heavy: ${handlerTimes(heavyCost)}`,
  );
  if (light.peakRss.stackSinceStart || heavy.peakRss.stackSinceStart) out.push('* peak since the stack started (clear_refs not permitted)');
  if (input.stackErrors.length) out.push(`stack errors (${input.stackErrors.length}): ${input.stackErrors.slice(0, 3).join(' | ')}`);
  if (heavy.submitErrors.length) out.push(`submit errors: ${heavy.submitErrors.join(' | ')}`);
  out.push('');

  // At rest.
  const windows = (['afterStart', 'afterHeavy'] as const).flatMap((name) => (input.idle[name] ? [{ name, result: input.idle[name] }] : []));
  if (windows.length) {
    const heading = { afterStart: 'right after start', afterHeavy: 'after heavy load' };
    const percent = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(2)}%`);
    const restCpuCell = ({ cpuPercent: cpu }: IdleResult) => `${percent(cpu.stack)} + ${percent(cpu.storage)} + ${percent(cpu.others)} = ${percent(cpu.total)} ${mark(idleCpuPass(cpu))}`;
    const restRssCell = ({ rss }: IdleResult) => `${mb(rss.stack)} + ${mb(rss.storage)} + ${mb(rss.others)} = ${mb(rss.total)}`;
    out.push(
      renderTable(
        [`AT REST (left alone ${fixed(windows[0]?.result.settleS, 0)} s, then measured ${fixed(windows[0]?.result.windowS, 0)} s)`, ...windows.map(({ name }) => heading[name])],
        [
          ['CPU, % of one core: stack + storage + others = total', ...windows.map(({ result }) => restCpuCell(result))],
          ['RSS at the end: stack + storage + others = total', ...windows.map(({ result }) => restRssCell(result))],
        ],
      ),
    );
    out.push(
      `CPU: each thread's run time (/proc schedstat) over the wall time; target ≤ ${targets.idleCpuPercent}% in total. others: the stack's other descendants (tsx's esbuild service). \`npm start\` adds npm's own wrapper process, not here.`,
    );
    out.push('');
  }

  // Per-job usage and cost, itemised: heavy load's calls, priced at scale.
  const rows: string[][] = [];
  const h = heavyCost;
  const scale = input.scaleCost;
  const lineCost = (estimate: CostEstimate, service: Service, item: string) => estimate.lines.filter((line) => line.service === service && line.item === item).reduce((sum, line) => sum + line.usdPerMillionJobs, 0);
  rows.push(['#DynamoDB']);
  const bytes = (op: OperationPerJob) => (op.requestBytesPerCall || op.responseBytesPerCall ? `${fixed(op.requestBytesPerCall, 0)} / ${fixed(op.responseBytesPerCall, 0)}` : '');
  const failed = (op: OperationPerJob) => (op.failures > 0 ? fixed(op.failures, 3) : '');
  for (const op of h.usage.operations.filter((o) => o.service === 'DynamoDB')) {
    rows.push([`  ${brief(op.item)}`, fixed(op.calls, 2), `${fixed(op.units, 2)} ${op.unit}`, fixed(op.unitsPerCall, 2), bytes(op), failed(op), usd(lineCost(scale.onDemand, 'DynamoDB', op.item)), usd(lineCost(scale.provisioned, 'DynamoDB', op.item))]);
  }
  rows.push(['#SQS (64 KiB chunks)']);
  for (const op of h.usage.operations.filter((o) => o.service === 'SQS')) {
    rows.push([`  ${brief(op.item)}`, fixed(op.calls, 2), `${fixed(op.units, 2)} req`, fixed(op.unitsPerCall, 2), bytes(op), failed(op), usd(lineCost(scale.onDemand, 'SQS', op.item)), usd(lineCost(scale.provisioned, 'SQS', op.item))]);
  }
  rows.push([
    `#Lambda (arm64): invocations as under heavy load, each as long as under light load (uncontended)${input.probeCost ? `; the api's a batch of ${options.batch} at a time` : ''}`,
  ]);
  for (const fn of scale.usage.lambda) {
    const probed = fn.fn === 'api' ? input.probeCost?.usage.lambda.find((l) => l.fn === fn.fn) : undefined;
    const light = probed ?? lightCost.usage.lambda.find((l) => l.fn === fn.fn);
    const loaded = h.usage.lambda.find((l) => l.fn === fn.fn);
    const perJob = (estimate: CostEstimate) => estimate.lines.filter((line) => line.service === 'Lambda' && line.item.startsWith(`${fn.fn} `)).reduce((sum, line) => sum + line.usdPerMillionJobs, 0);
    rows.push([
      `  ${fn.fn} (${fn.memoryMb} MB): ${fixed(light?.avgMs)} ms per ${probed ? `batch of ${options.batch}` : 'invocation'} (${fixed(loaded?.avgMs, 0)} ms under local load)`,
      fixed(fn.invocations, 2),
      `${fixed(fn.billedMs, 1)} ms`,
      '',
      '',
      '',
      usd(perJob(scale.onDemand)),
      usd(perJob(scale.provisioned)),
    ]);
  }
  rows.push([`#API Gateway (HTTP API)${options.batch === undefined ? '' : `: a request per batch of ${options.batch}, ${kib(input.requestBytes)} (512 KB units)`}`]);
  rows.push(['  requests', fixed(scale.usage.apiGateway.requests, 2), `${fixed(scale.usage.apiGateway.billedRequests, 2)} req`, '', '', '', usd(scale.onDemand.byService['API Gateway']), usd(scale.provisioned.byService['API Gateway'])]);
  rows.push(['#CloudWatch Logs (estimate: Lambda platform lines + API access log + measured app logs)']);
  rows.push(['  ingestion', '', `${fixed(scale.usage.logs.bytes, 0)} B`, '', '', '', usd(scale.onDemand.byService['CloudWatch Logs']), usd(scale.provisioned.byService['CloudWatch Logs'])]);
  rows.push([`TOTAL per million jobs with callback${options.batch === undefined ? '' : `, submitted in batches of ${options.batch}`}`, '', '', '', '', '', usd(scale.onDemand.total), usd(scale.provisioned.total)]);
  out.push(renderTable([`PER JOB at scale (heavy load, ${heavy.calledBack} jobs${options.batch === undefined ? '' : `, BATCHED: ${options.batch} per POST /v1/jobs/batch`})`, 'calls/job', 'units/job', 'units/call', 'bytes out / in', 'failed/job', '$/M on-demand', '$/M prov. 70%'], rows));
  const failures = h.usage.operations.filter((op) => op.failures > 0).map((op) => `${brief(op.item)}: ${Object.entries(op.errors).map(([name, count]) => `${name} × ${count}`).join(', ')}`);
  if (failures.length) out.push(`failed calls (heavy phase), by error: ${failures.join('; ')}`);
  out.push('bytes out / in: request and response bodies per call, as the SDK sent and received them (dynalite and fauxqs answer as AWS would, near enough)');
  if (h.usage.background.calls.length || h.usage.background.sweeperInvocations) {
    out.push(
      `background, not per job (heavy phase): sweeper ran ${h.usage.background.sweeperInvocations}×; ${h.usage.background.calls.map((c) => `${brief(c.item)}: ${c.calls} calls`).join('; ')}`,
    );
  }
  out.push('');

  const services: Service[] = ['DynamoDB', 'SQS', 'Lambda', 'API Gateway', 'CloudWatch Logs'];
  // Unbatched, the target is on demand and provisioned capacity is priced beside it, unjudged;
  // batched (light load is still a job per POST /webhook), issue 12's targets judge both.
  const batchedTargets = options.batch === targets.batchSize;
  const heavyLimits: [number | undefined, number | undefined] =
    options.batch === undefined ? [targets.costOnDemand, undefined] : batchedTargets ? [targets.batchCostOnDemand, targets.batchCostProvisioned] : [undefined, undefined];
  const columns: Array<[string, CostEstimate, number | undefined]> = [
    [options.batch === undefined ? 'light' : 'light, unbatched', lightCost.onDemand, targets.costOnDemand],
    [options.batch === undefined ? 'light 70%' : 'light, unbatched 70%', lightCost.provisioned, undefined],
    ['heavy', heavyCost.onDemand, heavyLimits[0]],
    ['heavy 70%', heavyCost.provisioned, heavyLimits[1]],
    ['at scale', scale.onDemand, heavyLimits[0]],
    ['at scale 70%', scale.provisioned, heavyLimits[1]],
  ];
  const costRows = services.map((service) => [service, ...columns.map(([, estimate]) => usd(estimate.byService[service]))]);
  costRows.push(['total', ...columns.map(([, estimate, limit]) => (limit === undefined ? usd(estimate.total) : `${usd(estimate.total)} ${mark(estimate.total <= limit)}`))]);
  costRows.push(['target', ...columns.map(([, , limit]) => (limit === undefined ? '' : `≤ $${limit.toFixed(2)}`))]);
  out.push(
    renderTable([`COST per million jobs, us-east-1 (70% = provisioned DynamoDB at 70%)${options.batch === undefined ? '' : `; heavy: batches of ${options.batch}`}`, ...columns.map(([name]) => name)], costRows),
  );
  out.push(
    'light and heavy: as measured in each phase (light: batches of one; heavy: Lambda durations stretched by the local stack\'s saturated event loop);',
    'at scale: heavy load\'s calls, units and batching with light load\'s uncontended handler durations — the estimate the targets are checked against.',
  );
  if (input.probeCost) {
    out.push(
      `batched: API Gateway and the api function count a request per batch (${fixed(scale.usage.apiGateway.requests, 3)} a job), the api's time per batch from the batch probe (a batch at a time, uncontended); everything else as metered.`,
    );
  }
  if (input.storage !== undefined) {
    out.push(
      `not in the totals: DynamoDB storage for ${defaultRetentionDays} days ≈ ${usd(input.storage)} per million jobs (job item ${input.itemBytes.job} B + request item ${input.itemBytes.request} B, +100 B overhead each)`,
    );
  }
  if (input.jobItem) {
    const top = input.jobItem.attributes.filter((part) => !part.attribute.includes('.'));
    const inner = (name: string) => input.jobItem?.attributes.filter((part) => part.attribute.startsWith(`${name}.`)) ?? [];
    const cell = ({ attribute, bytes }: { attribute: string; bytes: number }) => {
      const parts = inner(attribute);
      return `${attribute} ${bytes}${parts.length ? ` (${parts.map((part) => `${part.attribute.slice(attribute.length + 1)} ${part.bytes}`).join(', ')})` : ''}`;
    };
    out.push(`a finished job's item, as DynamoDB counts it (name + value, B): ${input.jobItem.bytes} B = ${top.map(cell).join(' + ')}`);
  }
  out.push('');

  // Cold start.
  const coldRows = [...cold.functions, cold.minimal].map((f) => [
    f.name,
    f.entry,
    kib(f.bytes),
    kib(f.gzipBytes),
    `${fixed(f.importMedianMs)} ms${f.name === 'minimal' ? '' : f.importMedianMs <= targets.coldImportMs ? '' : ' ✗'}`,
    f.name === 'minimal' ? '' : `+${fixed(f.importMedianMs - cold.minimal.importMedianMs)} ms`,
    f.name === 'minimal' ? '' : f.largest.slice(0, 3).map((l) => `${l.module} ${kib(l.bytes)}`).join(', '),
  ]);
  out.push(renderTable(['COLD START', 'entry', 'bundle', 'gzipped', 'import', 'vs minimal', 'largest parts'], coldRows, ['left', 'left', 'right', 'right', 'right', 'right', 'left']));
  out.push(`bundled as lib/constructs/functions.ts bundles them; import: median of ${cold.runs} fresh \`node\` processes (${cold.node}) timing \`await import()\`; the AWS SDK bundled in; ✗: over ${targets.coldImportMs} ms`);
  out.push('');

  if (profile) {
    out.push(
      renderTable(
        [`PROFILE: stack process, ${profile.windowed ? 'heavy run only' : 'whole run'} (${fixed(profile.busyMs / 1000)} s busy, ${fixed(profile.idleMs / 1000)} s idle)`, 'self ms', '% busy', 'where'],
        profile.functions.map((f) => [f.name, fixed(f.selfMs), fixed(f.percent), f.location]),
        ['left', 'right', 'right', 'left'],
      ),
    );
    out.push(`by package (built-ins charged to their caller): ${profile.packages.map((p) => `${p.package} ${fixed(p.percent)}%`).join(', ')}`);
    out.push(`by role: ${profile.roles.map((r) => `${r.role} ${fixed(r.percent)}%`).join(', ')}`);
    out.push(`profile: ${profile.file}`);
    out.push('');
  }

  out.push('TARGETS (issues 9, 10 and 12)');
  for (const verdict of input.verdicts) out.push(`  ${mark(verdict.pass)}  ${verdict.target}: ${verdict.value}`);
  out.push('', `results: ${input.files.join(', ')}`, '');
  return out.join('\n');
}

/**
 * Issue 12's target for batch submission: the at-scale cost per million jobs, on demand and
 * provisioned at 70%, checked only in a run with batches of `targets.batchSize` and the default
 * body (n/a otherwise, the figures shown all the same).
 */
export function batchCostVerdicts(run: { batch: number | undefined; defaultBody: boolean; body: string; onDemand: number; provisioned: number }): Verdict[] {
  const { batchSize, batchCostOnDemand, batchCostProvisioned } = targets;
  const checked = run.batch === batchSize && run.defaultBody;
  const why = run.batch === undefined ? 'an unbatched run (--batch absent): not this target' : run.batch !== batchSize ? `batches of ${run.batch}: not this target` : `a ${run.body} body: not this target`;
  return [
    {
      target: `cost per million jobs submitted in batches of ${batchSize} ≤ $${batchCostOnDemand.toFixed(2)} on demand, ≤ $${batchCostProvisioned.toFixed(2)} provisioned at 70%, default body (at scale)`,
      value: `${usd(run.onDemand)} on demand${checked ? ` ${mark(run.onDemand <= batchCostOnDemand)}` : ''}, ${usd(run.provisioned)} provisioned at 70%${checked ? ` ${mark(run.provisioned <= batchCostProvisioned)}` : ''}${checked ? '' : `: ${why}`}`,
      pass: checked ? run.onDemand <= batchCostOnDemand && run.provisioned <= batchCostProvisioned : undefined,
    },
  ];
}

/** The idle target, for one window: undefined where the total is not known. */
export function idleCpuPass(cpu: PerProcess): boolean | undefined {
  return cpu.total === undefined ? undefined : cpu.total <= targets.idleCpuPercent;
}
