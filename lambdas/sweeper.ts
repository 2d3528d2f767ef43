/**
 * Lambda, on a schedule: re-queues work that lost its message — a job or callback that nothing
 * has touched well past the moment it was due — and counts what it found (SweptJobs,
 * SweptCallbacks), so a stall is seen, not silent.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { sweep } from '../lib/definitions.ts';
import { logger, metrics, services } from './adapters/wiring.ts';
import { requeueUnsettled, type SweepReport } from './core/sweep.ts';

export const handler = middy<unknown, SweepReport>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(metrics.publishing ? logMetrics(metrics) : [])
  .handler(async () => {
    const report = await requeueUnsettled(services(), { idleMs: sweep.idleMs });
    metrics.addMetric('SweptJobs', MetricUnit.Count, report.jobs);
    metrics.addMetric('SweptCallbacks', MetricUnit.Count, report.callbacks);
    if (report.jobs + report.callbacks > 0) logger.warn('re-queued work that had lost its message', { ...report });
    return report;
  });
