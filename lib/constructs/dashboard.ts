/**
 * One CloudWatch dashboard for the deployment, read top to bottom as a job goes: what came in
 * and how it ended, the queues that carry it, what was given up on, the functions that ran it
 * (errors, throttles, durations, concurrency), the API in front, and the sweeper's safety net.
 */
import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import { Dashboard, GraphWidget, type IMetric, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterQueueNames, metricNames, workQueueNames, type FunctionName, type MetricName, type QueueName } from '../definitions.ts';
import { waasMetric } from './metrics.ts';

export interface OperationsDashboardProps {
  queues: Readonly<Record<QueueName, Queue>>;
  functions: Readonly<Record<FunctionName, IFunction>>;
  api: HttpApi;
  service: string;
}

const period = Duration.minutes(1);
const width = 8;

export class OperationsDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const ours = (names: MetricName[], statistic = 'Sum') => names.map((name) => waasMetric(props.service, name, { period, statistic }));
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) => new GraphWidget({ title, left, right, width, height: 6 });
    const perFunction = (metric: (fn: IFunction, name: FunctionName) => IMetric) =>
      (Object.entries(props.functions) as Array<[FunctionName, IFunction]>).map(([name, fn]) => metric(fn, name));
    const q = props.queues;

    this.dashboard = new Dashboard(this, 'Dashboard', { dashboardName: `${props.service}-operations`, defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new TextWidget({ markdown: `# waas: ${props.service}\nRunbook: the README's "Runbook" section, one entry per alarm.`, width: 24, height: 2 }),
    );
    this.dashboard.addWidgets(
      graph('Jobs', ours([metricNames.jobsAccepted, metricNames.jobsCompleted, metricNames.jobsFailed, metricNames.jobsCancelled])),
      graph('Retries and callbacks', ours([metricNames.retriesScheduled, metricNames.callbacksDelivered, metricNames.callbackFailures, metricNames.callbacksAbandoned])),
      graph('Service call duration (ms)', ours([metricNames.attemptDuration], 'p50').concat(ours([metricNames.attemptDuration], 'p99'))),
    );
    this.dashboard.addWidgets(
      graph(
        'Queue depth',
        workQueueNames.flatMap((name) => [
          q[name].metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: `${name} waiting` }),
          q[name].metricApproximateNumberOfMessagesNotVisible({ period, statistic: 'Maximum', label: `${name} in flight or delayed` }),
        ]),
      ),
      graph('Age of oldest message (s)', [...workQueueNames, ...deadLetterQueueNames].map((name) => q[name].metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum', label: name }))),
      graph(
        'Dead letters',
        deadLetterQueueNames.map((name) => q[name].metricNumberOfMessagesReceived({ period, statistic: 'Sum', label: `${name} received` })),
        ours([metricNames.deadLettersSettled]),
      ),
    );
    this.dashboard.addWidgets(
      graph('Function errors', perFunction((fn, name) => fn.metricErrors({ period, statistic: 'Sum', label: name }))),
      graph('Function throttles', perFunction((fn, name) => fn.metricThrottles({ period, statistic: 'Sum', label: name }))),
      graph('Function duration p99 (ms)', perFunction((fn, name) => fn.metricDuration({ period, statistic: 'p99', label: name }))),
    );
    this.dashboard.addWidgets(
      graph('Concurrency', perFunction((fn, name) => fn.metric('ConcurrentExecutions', { period, statistic: 'Maximum', label: name }))),
      graph(
        'API',
        [props.api.metricCount({ period, statistic: 'Sum', label: 'requests' }), props.api.metricClientError({ period, statistic: 'Sum', label: '4xx' }), props.api.metricServerError({ period, statistic: 'Sum', label: '5xx' })],
        [props.api.metricLatency({ period, statistic: 'p99', label: 'latency p99 (ms)' })],
      ),
      graph(
        'Sweeper, release and failures',
        ours([metricNames.sweeps, metricNames.sweptJobs, metricNames.sweptCallbacks, metricNames.sweepSkipped, metricNames.sweepUnfinished, metricNames.sweepResumed, metricNames.jobsReleased, metricNames.releaseUnfinished]),
        ours([metricNames.messagesFailed]),
      ),
      graph('Sweeper and failures', ours([metricNames.sweeps, metricNames.sweptJobs, metricNames.sweptCallbacks, metricNames.sweepSkipped, metricNames.sweepUnfinished, metricNames.sweepResumed, metricNames.scheduleRuns]), ours([metricNames.messagesFailed])),
    );
  }
}
