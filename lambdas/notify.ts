/** Lambda: the callbacks queue. One message, one attempt of a settled job's callback. */
import { queueHandler } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runCallbackAttempt } from './core/deliver.ts';

export const handler = queueHandler(
  (message) => runCallbackAttempt(services(), message.jobId),
  () => services().config.callbacksQueueUrl,
);
