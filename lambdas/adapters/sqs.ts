/**
 * The work queues on SQS, through the AWS SDK: a job's attempts go to the jobs queue, the
 * callback work the sweeper and the dead-letter settle find to the callbacks queue. A retry
 * is the message in hand made visible again later (`postpone`); SQS's limits live here alone.
 */
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { FlowTicket } from '../core/flow.ts';
import type { QueueMessage, WorkQueue } from '../core/ports.ts';

/** What the queue adapters need of an SQS client. */
export type Sqs = Pick<SQSClient, 'send'>;

/** SQS refuses a visibility timeout beyond 12 hours. */
const maxVisibilitySeconds = 12 * 60 * 60;

/** SQS delays a message by 15 minutes at most. */
const maxDelaySeconds = 15 * 60;

/** SendMessageBatch takes ten entries at most. */
const maxBatchEntries = 10;

export class SqsWorkQueue implements WorkQueue {
  constructor(
    private readonly sqs: Sqs,
    private readonly urls: { job: string; callback: string },
  ) {}

  async send(message: QueueMessage): Promise<void> {
    await this.sqs.send(new SendMessageCommand({ QueueUrl: this.urls[message.kind], ...outgoing(message) }));
  }

  /** Ten to a request, per queue; an entry SQS refuses is sent again on its own. */
  async sendMany(messages: QueueMessage[]): Promise<void> {
    const byKind = [...messages.filter((message) => message.kind === 'job'), ...messages.filter((message) => message.kind === 'callback')];
    for (const { kind, entries } of chunksOf(byKind)) {
      const { Failed = [] } = await this.sendChunk(kind, entries);
      for (const failed of Failed) {
        const message = entries[Number(failed.Id)];
        if (message) await this.send(message);
      }
    }
  }

  /**
   * The chunks side by side; an entry SQS refused (its `Failed`), or a chunk whose request
   * failed after the SDK's retries, is reported unsent. A chunk whose answer was lost may have
   * been sent: its messages then find no job and are dropped (core/deliver.ts, `missing`).
   */
  async sendBatch(messages: QueueMessage[]): Promise<boolean[]> {
    const sent = messages.map(() => false);
    await Promise.all(
      chunksOf(messages).map(async ({ from, kind, entries }) => {
        try {
          const { Successful = [] } = await this.sendChunk(kind, entries);
          for (const ok of Successful) if (ok.Id !== undefined) sent[from + Number(ok.Id)] = true;
        } catch {
          // Every entry of the chunk stays unsent.
        }
      }),
    );
    return sent;
  }

  /** One SendMessageBatch; each entry's id is its place in `entries`. */
  private sendChunk(kind: QueueMessage['kind'], entries: QueueMessage[]) {
    return this.sqs.send(new SendMessageBatchCommand({ QueueUrl: this.urls[kind], Entries: entries.map((message, n) => ({ Id: String(n), ...outgoing(message) })) }));
  }
}

/** A wait in SQS's unit: whole seconds, rounded up (never sooner than asked), from 0 to `max`. */
const wholeSeconds = (ms: number, max: number): number => Math.min(max, Math.max(0, Math.ceil(ms / 1000)));

/**
 * A message as SendMessage (or a batch entry) takes it: its body, and its delay as DelaySeconds,
 * rounded up to whole seconds so that it never arrives before its work is due, at most SQS's 15
 * minutes (core/delay.ts keeps longer waits in the store). The delay is not in the body.
 */
export function outgoing(message: QueueMessage): { MessageBody: string; DelaySeconds?: number } {
  const { delayMs, ...body } = message;
  const seconds = delayMs === undefined ? 0 : wholeSeconds(delayMs, maxDelaySeconds);
  return { MessageBody: JSON.stringify(body), ...(seconds > 0 ? { DelaySeconds: seconds } : {}) };
}

/** `messages` as SendMessageBatch requests, in order: each a run of one kind (one queue), ten at most. */
function chunksOf(messages: QueueMessage[]): Array<{ from: number; kind: QueueMessage['kind']; entries: QueueMessage[] }> {
  const chunks: Array<{ from: number; kind: QueueMessage['kind']; entries: QueueMessage[] }> = [];
  for (let from = 0; from < messages.length; ) {
    const kind = (messages[from] as QueueMessage).kind;
    let end = from;
    while (end < messages.length && end - from < maxBatchEntries && messages[end]?.kind === kind) end++;
    chunks.push({ from, kind, entries: messages.slice(from, end) });
    from = end;
  }
  return chunks;
}

/** Makes a received message reappear after `delayMs`, rounded up to whole seconds (SQS's unit). */
export async function postpone(sqs: Sqs, queueUrl: string, receiptHandle: string, delayMs: number): Promise<void> {
  const seconds = wholeSeconds(delayMs, maxVisibilitySeconds);
  await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
}

/** Sends `body` again to its queue, due after `delayMs` (whole seconds, at most SQS's 15 minutes). */
export async function sendLater(sqs: Sqs, queueUrl: string, body: string, delayMs: number): Promise<void> {
  const seconds = wholeSeconds(delayMs, maxDelaySeconds);
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, ...(seconds > 0 ? { DelaySeconds: seconds } : {}) }));
}

/** The queue message in a record body; a body we did not write is reported, not retried. */
export function parseMessage(body: string): QueueMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<QueueMessage>;
    if ((value.kind === 'job' || value.kind === 'callback') && typeof value.jobId === 'string') {
      const { leaseMs, held } = value;
      const hint = typeof leaseMs === 'number' && Number.isSafeInteger(leaseMs) && leaseMs > 0 ? { leaseMs } : {};
      const flow = flowTicket(value.flow);
      const times = typeof held === 'number' && Number.isSafeInteger(held) && held > 0 ? { held } : {};
      return { kind: value.kind, jobId: value.jobId, ...hint, ...(flow ? { flow } : {}), ...times };
    }
  } catch {
    // fall through
  }
  return undefined;
}

/** A message's flow ticket (core/flow.ts), if it has a well-formed one: else the worker reads the job's. */
function flowTicket(value: unknown): FlowTicket | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { clientId, key, created, rate, parallelism } = value as Record<string, unknown>;
  if (typeof clientId !== 'string' || typeof key !== 'string' || typeof created !== 'string') return undefined;
  const positive = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n > 0;
  if ((rate !== undefined && !positive(rate)) || (parallelism !== undefined && !positive(parallelism))) return undefined;
  return { clientId, key, created, ...(rate !== undefined ? { rate } : {}), ...(parallelism !== undefined ? { parallelism } : {}) };
}
