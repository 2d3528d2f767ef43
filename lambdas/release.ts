/**
 * Lambda, on a schedule: sends the delayed jobs that wait in the store (due beyond SQS's 15
 * minutes) once they come within the queue's reach, each held by the queue for what is left of
 * its wait (core/release.ts), and counts them (JobsReleased). It stops short of its timeout; the
 * next run goes on from the first minute it did not finish (ReleaseUnfinished).
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { metricNames, release } from '../lib/definitions.ts';
import { tracing } from './adapters/tracing.ts';
import { logger, metrics, services } from './adapters/wiring.ts';
import { releaseDue, type ReleaseReport } from './core/release.ts';

export const handler = middy<unknown, ReleaseReport, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(tracing())
  .use(metrics.publishing ? logMetrics(metrics) : [])
  .handler(async (_event, context) => {
    const deps = services();
    const report = await releaseDue(deps, { deadline: deps.clock.now() + context.getRemainingTimeInMillis() - release.stopBeforeTimeoutMs });
    deps.telemetry.count(metricNames.jobsReleased, report.released);
    deps.telemetry.count(metricNames.releaseUnfinished, report.unfinished ? 1 : 0);
    if (report.unfinished) logger.warn('the release stopped before its timeout; the next run goes on from the first minute it did not finish', { ...report });
    return report;
  });
