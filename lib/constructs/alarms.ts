/**
 * The alarms, each to one SNS topic that reaches someone (an email subscription when context
 * gives an address; anything else an operator subscribes). Every alarm names its runbook entry:
 * the README's "Runbook" has a section per alarm under the same name, saying what it means, what
 * to look at and what to do.
 *
 * A dead-letter queue that a function drains is almost never visible, so its depth says little:
 * the alarm counts what the dead-letter consumer receives (SQS's own metric, so it fires even
 * when the consumer fails before it can count anything), and a second alarm catches a consumer
 * that does not drain at all.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Alarm, ComparisonOperator, MathExpression, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterQueueNames, metricNames, retryTiming, workQueueNames, type FunctionName, type QueueName } from '../definitions.ts';
import { waasMetric } from './metrics.ts';

/**
 * A message may legitimately wait out the longest retry delay (or Retry-After) once; twice that
 * means its consumer is not keeping up or keeps failing.
 */
export const oldestMessageAlarmSeconds = (2 * Math.max(retryTiming.maxDelayMs, retryTiming.maxRetryAfterMs)) / 1000;

/** The alarms by runbook name: the README's runbook has a section for each. */
export const runbook = {
  deadLetters: 'waas-dead-letters',
  deadLettersStuck: 'waas-dead-letters-stuck',
  queueBacklog: 'waas-queue-backlog',
  functionErrors: 'waas-function-errors',
  apiThrottled: 'waas-api-throttled',
  apiServerErrors: 'waas-api-5xx',
  storageFailing: 'waas-storage-failing',
  lostMessages: 'waas-lost-messages',
} as const;

export interface AlarmsProps {
  queues: Readonly<Record<QueueName, Queue>>;
  functions: Readonly<Record<FunctionName, IFunction>>;
  api: HttpApi;
  /** The `service` dimension of waas's own metrics: the stack's name. */
  service: string;
  email: string | undefined;
}

export class Alarms extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Topic', { displayName: 'waas alarms', enforceSSL: true });
    if (props.email !== undefined) this.topic.addSubscription(new EmailSubscription(props.email));
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'The topic carries CloudWatch alarm notifications only (alarm names, states and metric values; no job data nor credentials). ' +
        'CloudWatch can publish to an encrypted topic only with a customer-managed KMS key, a monthly cost for data that is not sensitive; ' +
        'the email it is delivered to is not encrypted either.',
    });

    const q = props.queues;
    const minutes = (n: number) => Duration.minutes(n);
    for (const name of deadLetterQueueNames) {
      this.add(`${name}Received`, runbook.deadLetters, `A message reached the ${name} queue: a job or callback was given up on after maxReceiveCount receives, and settled as failed.`, {
        metric: q[name].metricNumberOfMessagesReceived({ period: minutes(5), statistic: 'Sum' }),
        threshold: 0,
      });
      this.add(`${name}Stuck`, runbook.deadLettersStuck, `Messages wait in the ${name} queue: its consumer is not settling them.`, {
        metric: q[name].metricApproximateAgeOfOldestMessage({ period: minutes(5), statistic: 'Maximum' }),
        threshold: 15 * 60,
      });
    }
    for (const name of workQueueNames) {
      this.add(`${name}OldestMessage`, runbook.queueBacklog, `A message has waited in the ${name} queue for over ${oldestMessageAlarmSeconds} s: its consumer is stuck, failing or at its maximum concurrency.`, {
        metric: q[name].metricApproximateAgeOfOldestMessage({ period: minutes(5), statistic: 'Maximum' }),
        threshold: oldestMessageAlarmSeconds,
      });
    }
    for (const [name, fn] of Object.entries(props.functions) as Array<[FunctionName, IFunction]>) {
      // The queue functions report a record's failure in the batch response, not as an error:
      // an error here is an invocation cut off (its timeout) or a crash.
      this.add(`${name}Errors`, runbook.functionErrors, `The ${name} function failed invocations (timeouts or crashes) in 3 of the last 5 minutes.`, {
        metric: fn.metricErrors({ period: minutes(1), statistic: 'Sum' }),
        threshold: 0,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
      });
    }
    this.add('apiThrottles', runbook.apiThrottled, 'The api function was throttled: submissions were refused at its reserved concurrency.', {
      metric: props.functions.api.metricThrottles({ period: minutes(5), statistic: 'Sum' }),
      threshold: 0,
    });
    this.add('api5xx', runbook.apiServerErrors, 'Over 1% of API requests were answered 5xx in 3 of the last 5 minutes (503s included: the store or queue unavailable).', {
      metric: new MathExpression({
        expression: 'IF(requests >= 20, 100 * errors / requests, 0)',
        usingMetrics: {
          errors: props.api.metricServerError({ period: minutes(1), statistic: 'Sum' }),
          requests: props.api.metricCount({ period: minutes(1), statistic: 'Sum' }),
        },
        period: minutes(1),
        label: '5xx %',
      }),
      threshold: 1,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    this.add('storageFailing', runbook.storageFailing, 'Queue messages kept failing to be handled (the store or the queue failing or throttled) for 3 of the last 5 minutes.', {
      metric: waasMetric(props.service, metricNames.messagesFailed, { period: minutes(1) }),
      threshold: 10,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
    });
    this.add('lostMessages', runbook.lostMessages, 'The sweeper found work that had lost its message and queued it again.', {
      metric: new MathExpression({
        expression: 'jobs + callbacks',
        usingMetrics: {
          jobs: waasMetric(props.service, metricNames.sweptJobs, { period: minutes(15) }),
          callbacks: waasMetric(props.service, metricNames.sweptCallbacks, { period: minutes(15) }),
        },
        period: minutes(15),
        label: 'swept',
      }),
      threshold: 0,
    });
  }

  private add(id: string, entry: string, what: string, options: { metric: IMetric; threshold: number; evaluationPeriods?: number; datapointsToAlarm?: number }): void {
    const alarm = new Alarm(this, id, {
      alarmDescription: `${what} Runbook: README, "${entry}".`,
      metric: options.metric,
      threshold: options.threshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: options.evaluationPeriods ?? 1,
      ...(options.datapointsToAlarm !== undefined ? { datapointsToAlarm: options.datapointsToAlarm } : {}),
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const action = new SnsAction(this.topic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.push(alarm);
  }
}
