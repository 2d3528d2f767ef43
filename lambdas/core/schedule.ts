/**
 * The Schedule: a cron in a time zone, and the v1 job each of its runs submits. It is a record
 * of its own (the schedules table), its client's alone; each run makes one job whose record
 * carries its `schedule_id` (core/schedules.ts).
 */
import type { V1JobRequest } from './schemas.ts';

export interface Schedule {
  scheduleId: string;
  clientId: string;
  /** Five fields, as the client wrote them (spaces made single). */
  cron: string;
  /** An IANA time zone name. */
  timezone: string;
  /** EventBridge Scheduler's expression of the cron (core/cron.ts), as the AWS stack runs it. */
  expression: string;
  /** The v1 job each run submits, as POST /v1/jobs validated it. */
  job: V1JobRequest;
  /** Epoch ms of the next run; absent when the cron matches no later time. */
  nextRun?: number;
  created: string;
  /** Epoch ms of the last run made, and the job it made (none: the run made no job). */
  lastRun?: number;
  lastJobId?: string;
}

/** How many schedules a client may have: GET /v1/schedules answers them all, on one page. */
export const scheduleLimits = { perClient: 100 } as const;

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

/** The schedule as the API shows it: its own fields under the names the API takes them by. */
export function publicSchedule(schedule: Schedule): Record<string, unknown> {
  return {
    schedule_id: schedule.scheduleId,
    cron: schedule.cron,
    timezone: schedule.timezone,
    schedule_expression: schedule.expression,
    job: schedule.job,
    next_run: iso(schedule.nextRun),
    created: schedule.created,
    last_run: iso(schedule.lastRun),
    last_job_id: schedule.lastJobId ?? null,
  };
}
