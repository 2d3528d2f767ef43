/** The SQS queues, shaped by `queues` in definitions.ts: each work queue with its dead-letter queue. */
import { Duration } from 'aws-cdk-lib';
import { Queue, QueueEncryption, type QueueProps } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  deadLetterRetentionDays,
  queues,
  visibilityTimeoutSeconds,
  type QueueName,
  type QueueSpec,
} from '../definitions.ts';

export class WorkQueues extends Construct {
  readonly byName: Readonly<Record<QueueName, Queue>>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const byName: Partial<Record<QueueName, Queue>> = {};
    const entries = Object.entries(queues) as Array<[QueueName, QueueSpec]>;

    // Dead-letter queues first: a work queue's redrive policy points at one. They have no
    // dead-letter queue of their own, and need no cdk-nag acknowledgment for it: AwsSolutions-SQS3
    // recognises a queue that another queue's redrive policy targets.
    for (const [name, spec] of entries.filter(([, spec]) => spec.deadLetter === undefined)) {
      byName[name] = this.queue(spec.id, name, { retentionPeriod: Duration.days(deadLetterRetentionDays) });
    }
    for (const [name, spec] of entries) {
      if (spec.deadLetter === undefined) continue;
      const deadLetterQueue = byName[spec.deadLetter.queue];
      if (!deadLetterQueue) throw new Error(`queue ${name}: dead-letter queue ${spec.deadLetter.queue} is not a dead-letter queue`);
      byName[name] = this.queue(spec.id, name, {
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: spec.deadLetter.maxReceiveCount },
      });
    }
    this.byName = byName as Record<QueueName, Queue>;
  }

  private queue(id: string, name: QueueName, props: QueueProps): Queue {
    return new Queue(this, id, {
      ...props,
      visibilityTimeout: Duration.seconds(visibilityTimeoutSeconds(name)),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
  }
}
