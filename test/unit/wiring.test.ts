/** The functions' configuration, read once from the environment the stack (or the local stack) sets. */
import { describe, expect, it } from 'vitest';
import { queueUrlForArn, readConfig } from '../../lambdas/adapters/wiring.ts';
import { env } from '../../lib/definitions.ts';

const base = {
  [env.jobsTable]: 'jobs',
  [env.clientsTable]: 'clients',
  [env.limitsTable]: 'limits',
  [env.schedulesTable]: 'schedules',
  [env.jobsQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Waas-JobsQueue-AB12',
  [env.callbacksQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Waas-CallbacksQueue-CD34',
};

describe('the configuration', () => {
  it('names the variable that is missing', () => {
    expect(() => readConfig({ ...base, [env.jobsTable]: '' })).toThrow(`${env.jobsTable} is not set`);
  });

  it('finds the dead-letter queue a record came from by its event source ARN, so a failed settling is handed back there', () => {
    const config = readConfig({
      ...base,
      [env.jobsDeadLetterQueueUrl]: 'https://sqs.eu-west-1.amazonaws.com/123456789012/Waas-JobsDeadLetterQueue-EF56',
      [env.callbacksDeadLetterQueueUrl]: 'http://127.0.0.1:4566/000000000000/waas-callbacks-dead-letter',
    });
    expect(config.deadLetterQueueUrl('arn:aws:sqs:eu-west-1:123456789012:Waas-JobsDeadLetterQueue-EF56')).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/Waas-JobsDeadLetterQueue-EF56');
    expect(config.deadLetterQueueUrl('arn:aws:sqs:us-east-1:000000000000:waas-callbacks-dead-letter')).toBe('http://127.0.0.1:4566/000000000000/waas-callbacks-dead-letter');
    // Neither: the message comes back after its visibility timeout, as before.
    expect(config.deadLetterQueueUrl('arn:aws:sqs:eu-west-1:123456789012:Waas-JobsQueue-AB12')).toBeUndefined();
    expect(config.deadLetterQueueUrl(undefined)).toBeUndefined();
  });

  it('knows no dead-letter queue where none is set', () => {
    expect(readConfig(base).deadLetterQueueUrl('arn:aws:sqs:eu-west-1:123456789012:Waas-JobsDeadLetterQueue-EF56')).toBeUndefined();
    expect(queueUrlForArn([undefined], 'arn:aws:sqs:eu-west-1:1:x')).toBeUndefined();
  });

  it('gives schedules EventBridge Scheduler timers where the stack names their group (AWS), and none where it does not (the local stack)', () => {
    expect(readConfig(base).timers).toBeUndefined();
    const targets = { group: 'waas', targetArn: 'arn:run', roleArn: 'arn:role', deadLetterArn: 'arn:dlq' };
    expect(readConfig({ ...base, SCHEDULE_GROUP: 'waas', SCHEDULE_RUN_ARN: 'arn:run', SCHEDULER_ROLE_ARN: 'arn:role', SCHEDULE_DEAD_LETTER_ARN: 'arn:dlq' }).timers).toEqual(targets);
    expect(() => readConfig({ ...base, SCHEDULE_GROUP: 'waas' })).toThrow('SCHEDULE_RUN_ARN is not set');
  });
});
