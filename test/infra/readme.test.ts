/**
 * The README tells operators and users numbers they rely on. Each is read from the README's own
 * words and checked against the definitions the code runs on, so neither can change alone.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { afterFailureTiming, earlyMessageRereadsMs, missingJobRetryMs } from '../../lambdas/core/retry.ts';
import {
  awsCalls,
  awsCallWorstCaseMs,
  credentialCacheMs,
  defaultRetentionDays,
  functions,
  jobLimits,
  leaseMarginMs,
  queues,
  submitWriteWindowMs,
  sweep,
} from '../../lib/definitions.ts';
import { batchedWorkload, costTable, defaultQuotas, planFor, scaleCost, scaleModel, scaleTable } from '../../lib/scale.ts';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8').replace(/\s+/g, ' ');

/** The number the README states where `pattern` (with one capture) matches, once and only once. */
function stated(pattern: RegExp): number {
  const found = [...readme.matchAll(new RegExp(pattern.source, 'g'))];
  expect(found, `${pattern} in the README`).toHaveLength(1);
  return Number(found[0]?.[1]?.replace(/,/g, ''));
}

describe('the README states the numbers the code runs on', () => {
  it('the lease margin', () => {
    expect(stated(/a conditional write on the job record with an expiry \(the attempt's timeout plus (\d+) s\)/) * 1_000).toBe(leaseMarginMs);
    expect(stated(/takes the callback's own lease \(its \d+ s timeout plus (\d+) s\)/) * 1_000).toBe(leaseMarginMs);
    expect(stated(/takes the callback's own lease \(its (\d+) s timeout/) * 1_000).toBe(jobLimits.callbackTimeoutMs);
  });

  it('the submit write window', () => {
    expect(stated(/\(`submitWriteWindowMs`, (\d+) s\)/) * 1_000).toBe(submitWriteWindowMs);
  });

  it('the receives before a message is dead-lettered', () => {
    const count = stated(/dead-lettered after (\d+) receives/);
    for (const queue of [queues.jobs, queues.callbacks]) expect(queue.deadLetter.maxReceiveCount).toBe(count);
  });

  it('the credential cache\'s lifetime, within the contract\'s 10 seconds', () => {
    expect(stated(/A revoked client is refused within (\d+) seconds \(the credential cache's lifetime\)/) * 1_000).toBe(credentialCacheMs);
    expect(credentialCacheMs).toBeLessThanOrEqual(10_000);
  });

  it('the retention', () => {
    expect(stated(/A job is kept (\d+) days after it was created/)).toBe(defaultRetentionDays);
  });

  it('the sweeper\'s idle window', () => {
    expect(stated(/nothing has touched for (\d+) minutes past the moment it was due/) * 60_000).toBe(sweep.idleMs);
  });

  it('the waits of a message that came before its job, and after a failure', () => {
    const rereads = readme.match(/is read again after (\d+) and (\d+) ms, then handed back for (\d+), (\d+), (\d+), (\d+) s/);
    expect(rereads?.slice(1, 3).map(Number)).toEqual([...earlyMessageRereadsMs]);
    expect(rereads?.slice(3, 7).map((seconds) => Number(seconds) * 1_000)).toEqual([1, 2, 3, 4].map(missingJobRetryMs));
    const failure = readme.match(/comes back after (\d+) s, growing to (\d+) minutes/);
    expect(Number(failure?.[1]) * 1_000).toBe(afterFailureTiming.minDelayMs);
    expect(Number(failure?.[2]) * 60_000).toBe(afterFailureTiming.maxDelayMs);
  });

  it('the bounds of an AWS call, which end within the lease margin', () => {
    const bounds = readme.match(/the SDK's standard retry mode \((\d+) attempts\), each attempt bounded \(([\d.]+) s to connect, ([\d.]+) s to answer\)/);
    expect(Number(bounds?.[1])).toBe(awsCalls.maxAttempts);
    expect(Number(bounds?.[2]) * 1_000).toBe(awsCalls.connectionTimeoutMs);
    expect(Number(bounds?.[3]) * 1_000).toBe(awsCalls.requestTimeoutMs);
    expect(awsCallWorstCaseMs).toBeLessThanOrEqual(leaseMarginMs);
  });

  it('the function deadlines', () => {
    expect(stated(/\((\d+) s for execute: a \d+ s call, a \d+ s callback, the writes\)/)).toBe(functions.execute.timeoutSeconds);
    expect(stated(/\(\d+ s for execute: a (\d+) s call/) * 1_000).toBe(jobLimits.timeoutMs.max);
    expect(stated(/The api function answers 503 a second before its (\d+) s timeout/)).toBe(functions.api.timeoutSeconds);
  });

  it('the scale model\'s tables, as lib/scale.ts works them out, and the plan\'s deploy command', () => {
    const plan = planFor(5_000);
    const flat = (text: string) => text.replace(/\s+/g, ' ');
    expect(readme).toContain(flat(scaleTable([{ title: 'defaults', model: scaleModel() }, { title: '5,000 jobs/s plan', model: plan.model }])));
    expect(readme).toContain(flat(costTable(plan.cost, scaleCost(plan.wanted, batchedWorkload))));
    expect(readme).toContain(flat(plan.deployCommand.replace(' -c jobsMaxConcurrency', ' \\ -c jobsMaxConcurrency')));
    // The prose's per-job write units and one client's ceiling, as the model has them.
    const profile = scaleModel().profile;
    expect(stated(/batches of about 6 messages, ([\d.]+) write units/)).toBe(profile.writeUnits.total);
    expect(stated(/one client submits at most ([\d,]+) jobs a second, whatever is raised/)).toBe(defaultQuotas.dynamoPartition.writeUnits / profile.listingWrites);
  });
});
