/** Lambda: the jobs queue. One message, one attempt of the job's service call, or of its callback once the job is final. */
import { queueFunction } from './adapters/queue-handler.ts';
import { services } from './adapters/wiring.ts';
import { runJobAttempt } from './core/deliver.ts';

export const handler = queueFunction({
  label: 'job attempt',
  run: (message, facts) => {
    const { leaseMs, flow, held } = message;
    return runJobAttempt(services(), message.jobId, { ...facts, ...(leaseMs ? { leaseMs } : {}), ...(flow ? { flow } : {}), ...(held ? { held } : {}) });
  },
  queueUrl: () => services().config.jobsQueueUrl,
});
