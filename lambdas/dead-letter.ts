/**
 * Lambda: both dead-letter queues. A message SQS gave up on settles its job (failed, then its
 * callback) or its callback (notification failed), so nothing waits forever unseen.
 */
import { queueHandler } from './adapters/queue-handler.ts';
import { logger, services } from './adapters/wiring.ts';
import { settleDeadLetter } from './core/deliver.ts';

export const handler = queueHandler(
  async (message) => {
    logger.warn('settling a dead-lettered message', { kind: message.kind, jobId: message.jobId });
    await settleDeadLetter(services(), message.kind, message.jobId);
    return { done: true };
  },
  // Never postponed: settling is done in one go.
  () => '',
);
