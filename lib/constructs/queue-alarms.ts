/** Alarms on the queues: a dead letter is a job nobody will finish; an old message is a stuck worker. */
import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { queues, retryTiming, type QueueName } from '../definitions.ts';

/**
 * A message may legitimately wait out the longest retry delay (or Retry-After) once; twice that
 * means its consumer is not keeping up or keeps failing.
 */
const oldestMessageAlarmSeconds = (2 * Math.max(retryTiming.maxDelayMs, retryTiming.maxRetryAfterMs)) / 1000;

export interface QueueAlarmsProps {
  queues: Readonly<Record<QueueName, Queue>>;
}

export class QueueAlarms extends Construct {
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: QueueAlarmsProps) {
    super(scope, id);
    for (const [name, queue] of Object.entries(props.queues) as Array<[QueueName, Queue]>) {
      const isDeadLetter = !('deadLetter' in queues[name]);
      this.alarms.push(isDeadLetter ? this.anyMessage(name, queue) : this.oldMessage(name, queue));
    }
  }

  private anyMessage(name: QueueName, queue: Queue): Alarm {
    return new Alarm(this, `${name}HasMessages`, {
      alarmDescription: `A message reached the ${name} dead-letter queue: a job or callback the workers gave up on.`,
      metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }

  private oldMessage(name: QueueName, queue: Queue): Alarm {
    return new Alarm(this, `${name}OldestMessage`, {
      alarmDescription: `A message has waited in the ${name} queue for over ${oldestMessageAlarmSeconds} s: its consumer is stuck or failing.`,
      metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: oldestMessageAlarmSeconds,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
