/**
 * Lambda: one run of a schedule. EventBridge Scheduler invokes it with `{"schedule_id",
 * "scheduled_time"}` at each time the schedule's cron matches (locally, the stack's timer does,
 * for each run due). It makes the run's job once however often it is invoked for that time
 * (core/schedules.ts); a failure throws, and EventBridge Scheduler invokes it again (its retry
 * policy), then hands the run to its dead-letter queue.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { ScheduleRunEvent } from './adapters/scheduler.ts';
import { tracing } from './adapters/tracing.ts';
import { logger, metrics, services, submitDeps } from './adapters/wiring.ts';
import { runSchedule, type RunOutcome, type ScheduleRunDeps } from './core/schedules.ts';

let deps: ScheduleRunDeps | undefined;

function runDeps(): ScheduleRunDeps {
  const s = services();
  deps ??= { ...submitDeps(s), schedules: s.schedules, clients: s.clients };
  return deps;
}

/** The event's fields, or an error that names what is wrong (it goes to the dead-letter queue: no retry mends it). */
function readEvent(event: Partial<ScheduleRunEvent>): { scheduleId: string; scheduledTime: number } {
  const scheduledTime = Date.parse(String(event.scheduled_time));
  if (typeof event.schedule_id !== 'string' || Number.isNaN(scheduledTime)) throw new Error('the event must be {"schedule_id": string, "scheduled_time": ISO-8601}');
  return { scheduleId: event.schedule_id, scheduledTime };
}

export const handler = middy<Partial<ScheduleRunEvent>, RunOutcome, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use(tracing())
  .use(metrics.publishing ? logMetrics(metrics) : [])
  .handler(async (event) => {
    const { scheduleId, scheduledTime } = readEvent(event);
    logger.appendKeys({ scheduleId });
    const outcome = await runSchedule(runDeps(), scheduleId, scheduledTime);
    if (outcome.made === 'nothing') logger.warn('the schedule\'s run made no job', { scheduledTime: new Date(scheduledTime).toISOString(), reason: outcome.reason });
    return outcome;
  });
