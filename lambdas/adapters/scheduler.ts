/**
 * Schedules' timers on AWS: one EventBridge Scheduler schedule per waas schedule, in the
 * stack's schedule group, named by the schedule's id, firing the schedule-run function with
 * `{"schedule_id", "scheduled_time"}` (the time EventBridge Scheduler meant to fire it, which the
 * run's key is made of: a retry of the same run has the same key). Retries and the dead-letter
 * queue are lib/definitions.ts `scheduleRuns`.
 *
 * ```ts
 * const timers = new EventBridgeTimers(new SchedulerClient({}), { group, targetArn, roleArn, deadLetterArn });
 * await timers.create(schedule);
 * ```
 */
import { ConflictException, CreateScheduleCommand, DeleteScheduleCommand, ResourceNotFoundException, SchedulerClient } from '@aws-sdk/client-scheduler';
import { scheduleRuns } from '../../lib/definitions.ts';
import { clientConfig } from './aws.ts';
import { noTimers, type ScheduleTimers } from '../core/ports.ts';
import type { Schedule } from '../core/schedule.ts';

export interface TimerTargets {
  /** The stack's schedule group. */
  group: string;
  /** The schedule-run function. */
  targetArn: string;
  /** The role EventBridge Scheduler assumes to invoke it (and to send to the dead-letter queue). */
  roleArn: string;
  deadLetterArn: string;
}

/** What the schedule-run function is given: EventBridge Scheduler fills in the scheduled time. */
export interface ScheduleRunEvent {
  schedule_id: string;
  scheduled_time: string;
}

export class EventBridgeTimers implements ScheduleTimers {
  constructor(
    private readonly scheduler: Pick<SchedulerClient, 'send'>,
    private readonly targets: TimerTargets,
  ) {}

  async create(schedule: Schedule): Promise<void> {
    try {
      await this.scheduler.send(
        new CreateScheduleCommand({
          Name: schedule.scheduleId,
          GroupName: this.targets.group,
          ScheduleExpression: schedule.expression,
          ScheduleExpressionTimezone: schedule.timezone,
          // Exactly at its time: the contract's runs are the cron's, not a window around them.
          FlexibleTimeWindow: { Mode: 'OFF' },
          State: 'ENABLED',
          Description: `waas schedule of client ${schedule.clientId}`,
          Target: {
            Arn: this.targets.targetArn,
            RoleArn: this.targets.roleArn,
            Input: JSON.stringify({ schedule_id: schedule.scheduleId, scheduled_time: '<aws.scheduler.scheduled-time>' } satisfies ScheduleRunEvent),
            RetryPolicy: { MaximumRetryAttempts: scheduleRuns.maximumRetryAttempts, MaximumEventAgeInSeconds: scheduleRuns.maximumEventAgeSeconds },
            DeadLetterConfig: { Arn: this.targets.deadLetterArn },
          },
          // A create the SDK retries after a lost answer is the same create.
          ClientToken: schedule.scheduleId,
        }),
      );
    } catch (error) {
      // Its name is the schedule's id, new and ours: one there already is this create, landed before.
      if (!(error instanceof ConflictException)) throw error;
    }
  }

  async remove(scheduleId: string): Promise<void> {
    try {
      await this.scheduler.send(new DeleteScheduleCommand({ Name: scheduleId, GroupName: this.targets.group, ClientToken: scheduleId }));
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }
}

/**
 * The api function's timers: EventBridge Scheduler's where the stack names its targets (AWS),
 * none locally (the local stack's own timer reads the schedules table). Only lambdas/api.ts
 * imports this module, so that the Scheduler client is bundled into the api function alone.
 */
export function scheduleTimers(targets: TimerTargets | undefined): ScheduleTimers {
  return targets ? new EventBridgeTimers(new SchedulerClient(clientConfig()), targets) : noTimers;
}
