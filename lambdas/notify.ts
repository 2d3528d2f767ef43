/** Lambda: the callbacks queue. One message, one attempt of a settled job's callback. */
import { queueHandler } from './adapters/queue-handler.ts';
import { logger, services } from './adapters/wiring.ts';
import { runCallbackAttempt } from './core/deliver.ts';

export const handler = queueHandler(
  async (message) => {
    const outcome = await runCallbackAttempt(services(), message.jobId);
    logger.debug('callback attempt', { jobId: message.jobId, ...outcome });
    return outcome;
  },
  () => services().config.callbacksQueueUrl,
);
