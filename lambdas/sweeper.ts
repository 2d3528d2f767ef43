/**
 * Lambda, on a schedule: re-queues work that lost its message — a job or callback that nothing
 * has touched well past the moment it was due — and counts what it found (SweptJobs,
 * SweptCallbacks), so a stall is seen, not silent. It holds the sweeper's lease while it runs
 * (SweepSkipped: another run held it) and stops short of its timeout, saving where; the next
 * run goes on from there (SweepUnfinished: this run stopped so; SweepResumed: it went on from
 * such a stop).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { metricNames, sweep, sweeperLeaseMs, type MetricName } from '../lib/definitions.ts';
import { tracing } from './adapters/tracing.ts';
import { logger, metrics, services } from './adapters/wiring.ts';
import { scheduledSweep, type ScheduledSweepReport } from './core/sweep.ts';

export const handler = middy<unknown, ScheduledSweepReport, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(tracing())
  .use(metrics.publishing ? logMetrics(metrics) : [])
  .handler(async (_event, context) => {
    const deps = services();
    const report = await scheduledSweep(deps, {
      idleMs: sweep.idleMs,
      deadline: deps.clock.now() + context.getRemainingTimeInMillis() - sweep.stopBeforeTimeoutMs,
      run: context.awsRequestId,
      leaseMs: sweeperLeaseMs,
    });
    const counts: Array<[MetricName, number]> = [
      [metricNames.sweeps, 1],
      [metricNames.sweptJobs, report.jobs],
      [metricNames.sweptCallbacks, report.callbacks],
      [metricNames.sweepSkipped, report.skipped ? 1 : 0],
      [metricNames.sweepUnfinished, report.unfinished ? 1 : 0],
      [metricNames.sweepResumed, report.resumed ? 1 : 0],
    ];
    for (const [name, value] of counts) deps.telemetry.count(name, value);
    if (report.skipped) logger.warn('another sweeper run holds the lease: this one does nothing', { ...report });
    if (report.unfinished) logger.warn('the sweep stopped before its timeout; the next run goes on from where it stopped', { ...report });
    if (report.leaseLost) logger.warn('the sweeper lease ran out during the run: where it stopped was not saved', { ...report });
    if (report.jobs + report.callbacks > 0) logger.warn('re-queued work that had lost its message', { ...report });
    return report;
  });
