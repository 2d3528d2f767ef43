/** Lambda: the jobs queue. One message, one attempt of the job's service call, or of its callback once the job is final. */
import { queueFunction } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runJobAttempt } from './core/deliver.ts';

export const handler = queueFunction({
  label: 'job attempt',
  run: (message, facts) => runJobAttempt(services(), message.jobId, { ...facts, ...(message.leaseMs ? { leaseMs: message.leaseMs } : {}) }),
  queueUrl: () => services().config.jobsQueueUrl,
});
