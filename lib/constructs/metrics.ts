/** waas's own CloudWatch metrics, as the functions publish them (lambdas/adapters/wiring.ts). */
import { Duration } from 'aws-cdk-lib';
import { Metric, type MetricOptions } from 'aws-cdk-lib/aws-cloudwatch';
import { metricsNamespace, type MetricName } from '../definitions.ts';

/** One of waas's metrics: Powertools publishes each under the `service` dimension, the stack's name. */
export function waasMetric(service: string, name: MetricName, options: MetricOptions = {}): Metric {
  return new Metric({
    namespace: metricsNamespace,
    metricName: name,
    dimensionsMap: { service },
    statistic: 'Sum',
    period: Duration.minutes(1),
    ...options,
  });
}
