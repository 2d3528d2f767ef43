/** Lambda: the callbacks queue. One message, one attempt of a settled job's callback (work the sweeper or a dead letter handed over). */
import { queueFunction } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runCallbackAttempt } from './core/deliver.ts';

export const handler = queueFunction({
  label: 'callback attempt',
  run: (message, facts) => runCallbackAttempt(services(), message.jobId, facts),
  queueUrl: () => services().config.callbacksQueueUrl,
});
