/**
 * Lambda: both dead-letter queues. A message SQS gave up on settles its job (failed, then its
 * callback) or its callback (notification failed), so nothing waits forever unseen.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { queueFunction } from './adapters/queue-handler.ts';
import { logger, metrics, services } from './adapters/wiring.ts';
import { settleDeadLetter } from './core/deliver.ts';

export const handler = queueFunction({
  label: 'dead letter settled',
  run: async (message) => {
    logger.warn('settling a dead-lettered message', { kind: message.kind, jobId: message.jobId });
    await settleDeadLetter(services(), message.kind, message.jobId);
    metrics.addMetric('DeadLettersSettled', MetricUnit.Count, 1);
    return { done: true };
  },
  // No queue to hand back to: a message whose settling threw comes back after its visibility timeout.
});
