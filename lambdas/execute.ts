/** Lambda: the jobs queue. One message, one attempt of the job's service call (and its first callback). */
import { attemptHandler } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runJobAttempt } from './core/deliver.ts';

export const handler = attemptHandler('job attempt', (message, facts) => runJobAttempt(services(), message.jobId, { ...facts, leaseMs: message.leaseMs }), () => services().config.jobsQueueUrl);
