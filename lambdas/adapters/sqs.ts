/**
 * The work queues on SQS: a job's attempts go to the jobs queue, its callback's to the
 * callbacks queue. Retry timing rides on the message's visibility.
 */
import type { AwsCaller } from './aws/client.ts';
import type { QueueMessage, WorkQueue } from '../core/ports.ts';

/** SQS delays a new message by 15 minutes at most; a later one is held back by the job's own due time. */
const maxDelaySeconds = 900;

/** SQS refuses a visibility timeout beyond 12 hours. */
const maxVisibilitySeconds = 12 * 60 * 60;

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: AwsCaller,
    private readonly urls: { job: string; callback: string },
  ) {}

  async send(message: QueueMessage, delayMs = 0): Promise<void> {
    const delay = Math.min(maxDelaySeconds, Math.max(0, Math.ceil(delayMs / 1000)));
    await this.sqs.call('SendMessage', { QueueUrl: this.urls[message.kind], MessageBody: JSON.stringify(message), ...(delay > 0 ? { DelaySeconds: delay } : {}) });
  }

  /** Ten to a request, per queue; an entry SQS refuses is sent again on its own. */
  async sendMany(messages: QueueMessage[]): Promise<void> {
    for (const kind of ['job', 'callback'] as const) {
      const ofKind = messages.filter((message) => message.kind === kind);
      for (let i = 0; i < ofKind.length; i += 10) {
        const chunk = ofKind.slice(i, i + 10);
        const result = await this.sqs.call<{ Failed?: Array<{ Id: string }> }>('SendMessageBatch', {
          QueueUrl: this.urls[kind],
          Entries: chunk.map((message, n) => ({ Id: String(n), MessageBody: JSON.stringify(message) })),
        });
        for (const failed of result.Failed ?? []) {
          const message = chunk[Number(failed.Id)];
          if (message) await this.send(message);
        }
      }
    }
  }
}

/** Makes a received message reappear after `delayMs`, rounded up to whole seconds. */
export async function postpone(sqs: AwsCaller, queueUrl: string, receiptHandle: string, delayMs: number): Promise<void> {
  const seconds = Math.min(maxVisibilitySeconds, Math.max(0, Math.ceil(delayMs / 1000)));
  await sqs.call('ChangeMessageVisibility', { QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds });
}

/** The queue message in a record body; a body we did not write is reported, not retried. */
export function parseMessage(body: string): QueueMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<QueueMessage>;
    if ((value.kind === 'job' || value.kind === 'callback') && typeof value.jobId === 'string') {
      const { leaseMs } = value;
      const hint = typeof leaseMs === 'number' && Number.isSafeInteger(leaseMs) && leaseMs > 0 ? { leaseMs } : {};
      return { kind: value.kind, jobId: value.jobId, ...hint };
    }
  } catch {
    // fall through
  }
  return undefined;
}
