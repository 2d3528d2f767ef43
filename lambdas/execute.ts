/** Lambda: the jobs queue. One message, one attempt of the job's service call. */
import { queueHandler } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runJobAttempt } from './core/deliver.ts';

export const handler = queueHandler(
  (message) => runJobAttempt(services(), message.jobId),
  () => services().config.jobsQueueUrl,
);
