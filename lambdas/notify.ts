/** Lambda: the callbacks queue. One message, one retry of a settled job's callback. */
import { attemptHandler } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runCallbackAttempt } from './core/deliver.ts';

export const handler = attemptHandler('callback attempt', (message) => runCallbackAttempt(services(), message.jobId), () => services().config.callbacksQueueUrl);
