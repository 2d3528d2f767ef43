/**
 * Lambda: both dead-letter queues. A message SQS gave up on settles its job (failed, then its
 * callback) or its callback (notification failed), so nothing waits forever unseen.
 */
import { metricNames } from '../lib/definitions.ts';
import { queueFunction } from './adapters/queue-handler.ts';
import { logger, services } from './adapters/wiring.ts';
import { settleDeadLetter } from './core/deliver.ts';

export const handler = queueFunction({
  label: 'dead letter settled',
  run: async (message) => {
    logger.warn('settling a dead-lettered message', { kind: message.kind, jobId: message.jobId });
    await settleDeadLetter(services(), message.kind, message.jobId);
    // What the dead-letter alarms count: a dead-letter queue this function drains shows no depth.
    services().telemetry.count(metricNames.deadLettersSettled);
    return { done: true };
  },
  // A message whose settling threw goes back to the dead-letter queue it came from, soon.
  queueUrl: (record) => services().config.deadLetterQueueUrl(record.eventSourceARN),
});
