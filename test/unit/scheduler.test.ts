/**
 * The EventBridge Scheduler adapter (adapters/scheduler.ts), against the SDK's client mocked with
 * aws-sdk-client-mock: the schedule it makes (expression, time zone, target and its input, role,
 * group, retry policy, dead-letter queue), and what it takes as done.
 */
import { ConflictException, CreateScheduleCommand, DeleteScheduleCommand, ResourceNotFoundException, SchedulerClient, ValidationException } from '@aws-sdk/client-scheduler';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { EventBridgeTimers } from '../../lambdas/adapters/scheduler.ts';
import type { Schedule } from '../../lambdas/core/schedule.ts';
import { scheduleRuns } from '../../lib/definitions.ts';

const scheduler = mockClient(SchedulerClient);
afterAll(() => scheduler.restore());
beforeEach(() => scheduler.reset());

const targets = {
  group: 'waas-schedules',
  targetArn: 'arn:aws:lambda:eu-west-1:123456789012:function:waas-scheduleRun',
  roleArn: 'arn:aws:iam::123456789012:role/waas-scheduler',
  deadLetterArn: 'arn:aws:sqs:eu-west-1:123456789012:waas-runs-dlq',
};
const timers = new EventBridgeTimers(new SchedulerClient({ region: 'eu-west-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), targets);
const schedule: Schedule = {
  scheduleId: '0a000000-0000-4000-8000-000000000000',
  clientId: '11111111111111',
  cron: '*/15 9-17 * * 1-5',
  timezone: 'Europe/Paris',
  expression: 'cron(0/15 9-17 ? * 2,3,4,5,6 *)',
  job: { url: 'https://service.example.com/' },
  nextRun: Date.parse('2026-12-02T09:15:00.000Z'),
  created: '2026-12-02T09:01:00.000Z',
};

describe('EventBridgeTimers', () => {
  it("makes one schedule in the stack's group, named by the id, that invokes schedule-run with the run's time", async () => {
    scheduler.on(CreateScheduleCommand).resolves({ ScheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/waas-schedules/x' });
    await timers.create(schedule);
    const [call] = scheduler.commandCalls(CreateScheduleCommand);
    expect(call?.args[0].input).toEqual({
      Name: schedule.scheduleId,
      GroupName: 'waas-schedules',
      ScheduleExpression: 'cron(0/15 9-17 ? * 2,3,4,5,6 *)',
      ScheduleExpressionTimezone: 'Europe/Paris',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Description: 'waas schedule of client 11111111111111',
      Target: {
        Arn: targets.targetArn,
        RoleArn: targets.roleArn,
        Input: JSON.stringify({ schedule_id: schedule.scheduleId, scheduled_time: '<aws.scheduler.scheduled-time>' }),
        RetryPolicy: { MaximumRetryAttempts: scheduleRuns.maximumRetryAttempts, MaximumEventAgeInSeconds: scheduleRuns.maximumEventAgeSeconds },
        DeadLetterConfig: { Arn: targets.deadLetterArn },
      },
      ClientToken: schedule.scheduleId,
    });
    // EventBridge Scheduler's bounds on a retry policy.
    expect(scheduleRuns.maximumRetryAttempts).toBeLessThanOrEqual(185);
    expect(scheduleRuns.maximumEventAgeSeconds).toBeGreaterThanOrEqual(60);
    expect(scheduleRuns.maximumEventAgeSeconds).toBeLessThanOrEqual(86_400);
  });

  it('takes a schedule of its name already there as this create, landed before; any other failure is thrown', async () => {
    scheduler.on(CreateScheduleCommand).rejects(new ConflictException({ message: 'exists', Message: 'exists', $metadata: {} }));
    await expect(timers.create(schedule)).resolves.toBeUndefined();
    scheduler.on(CreateScheduleCommand).rejects(new ValidationException({ message: 'bad expression', Message: 'bad expression', $metadata: {} }));
    await expect(timers.create(schedule)).rejects.toThrow(ValidationException);
  });

  it('deletes the schedule of its group; one already gone is deleted', async () => {
    scheduler.on(DeleteScheduleCommand).resolves({});
    await timers.remove(schedule.scheduleId);
    expect(scheduler.commandCalls(DeleteScheduleCommand)[0]?.args[0].input).toEqual({ Name: schedule.scheduleId, GroupName: 'waas-schedules', ClientToken: schedule.scheduleId });
    scheduler.on(DeleteScheduleCommand).rejects(new ResourceNotFoundException({ message: 'gone', Message: 'gone', $metadata: {} }));
    await expect(timers.remove(schedule.scheduleId)).resolves.toBeUndefined();
  });
});
