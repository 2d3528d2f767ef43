/** Lambda: the jobs queue. One message, one attempt of the job's service call. */
import { queueHandler } from './adapters/queue-handler.ts';
import { logger, services } from './adapters/wiring.ts';
import { runJobAttempt } from './core/deliver.ts';

export const handler = queueHandler(
  async (message) => {
    const outcome = await runJobAttempt(services(), message.jobId);
    logger.debug('job attempt', { jobId: message.jobId, ...outcome });
    return outcome;
  },
  () => services().config.jobsQueueUrl,
);
