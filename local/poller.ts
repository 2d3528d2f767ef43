/**
 * The local stand-in for Lambda's SQS event source mapping: long-polls a queue, hands each batch
 * to the queue's function as an SQS event, deletes what the function did not report as failed,
 * and leaves the rest to reappear after its visibility timeout (or the delay the handler set),
 * and to be redriven to the dead-letter queue by SQS itself after maxReceiveCount receives. It
 * receives in as many loops as the mapping's maximum concurrency: while batches run, the others
 * keep receiving and start more invocations, as Lambda scales its pollers out. A timed-out
 * invocation (the runtime abandons it) counts as failed: nothing of its batch is deleted.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

/** An invocation of the queue's function (a LocalFunction's `invoke`). */
export type InvokeFunction = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

/** A received message, as ReceiveMessage answers it. */
export type SqsMessage = Pick<Message, 'MessageId' | 'ReceiptHandle' | 'Body' | 'MD5OfBody' | 'Attributes'>;

export interface PollerOptions {
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  queueArn: string;
  invoke: InvokeFunction;
  batchSize: number;
  waitSeconds: number;
  /** Batches in flight at most: the event source mapping's maximum concurrency. */
  concurrency: number;
  /** Receive loops (default: `startingPollers`, or fewer if the concurrency is lower). */
  pollers?: number;
  onError?: (error: unknown) => void;
}

export function toRecord(message: SqsMessage, queueArn: string): SQSRecord {
  return {
    messageId: message.MessageId ?? '',
    receiptHandle: message.ReceiptHandle ?? '',
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
      SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
      SenderId: message.Attributes?.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: message.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? 'us-east-1',
  };
}

/**
 * Lambda's SQS event source mapping starts with five pollers and adds more while messages keep
 * coming; five, each receiving again as soon as it has handed a batch on, keep twenty local
 * invocations busy. More would only be more long polls in hand, each answered (empty) whenever
 * any message arrives (the local SQS wakes every waiting receive).
 */
export const startingPollers = 5;

/** What a wait cut short by stop() resolves to. */
const stopped = Symbol('stopped');

export class QueuePoller {
  private running = false;
  private loops: Promise<void>[] = [];
  /** Batches being delivered (handed over, then deleted). */
  private readonly deliveries = new Set<Promise<void>>();
  /** Waits in hand (long polls, pauses, waits for a slot) that stop() ends at once. */
  private readonly waits = new Set<() => void>();
  /** Slots taken: receives in hand and batches being delivered, at most the concurrency. */
  private taken = 0;
  /** Pollers waiting for a slot. */
  private readonly slotWaiters: Array<() => void> = [];
  /** Batches handed to the handler and not yet finished. */
  inFlight = 0;

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    this.running = true;
    const pollers = Math.max(1, Math.min(this.options.concurrency, this.options.pollers ?? startingPollers));
    for (let i = 0; i < pollers; i++) this.loops.push(this.loop());
  }

  /**
   * Stops receiving and waits for the batches in hand to finish. A long poll in hand is not
   * waited for (the client cannot abort a call): should it still bring messages, they are not
   * handed over and reappear after their visibility timeout, as after a crash.
   */
  async stop(): Promise<void> {
    this.running = false;
    for (const end of this.waits) end();
    this.waits.clear();
    await Promise.allSettled(this.loops);
    this.loops = [];
    await Promise.allSettled([...this.deliveries]);
  }

  /**
   * `promise`'s value, or `stopped` if stop() comes first (a later failure of `promise` is then
   * dropped). Not Promise.race with one promise for the poller's life: each race would leave it a
   * reaction, a leak over a long run.
   */
  private untilStopped<T>(promise: Promise<T>): Promise<T | typeof stopped> {
    return new Promise((resolve, reject) => {
      const end = () => resolve(stopped);
      if (!this.running) end();
      else this.waits.add(end);
      promise.then(
        (value) => {
          this.waits.delete(end);
          resolve(value);
        },
        (error: unknown) => {
          this.waits.delete(end);
          reject(error);
        },
      );
    });
  }

  /** A slot for one more batch: at once while fewer than the concurrency are taken, else when one is given back. */
  private async slot(): Promise<boolean> {
    while (this.taken >= this.options.concurrency) {
      const freed = await this.untilStopped(new Promise<void>((resolve) => this.slotWaiters.push(resolve)));
      if (freed === stopped) return false;
    }
    this.taken++;
    return true;
  }

  private giveBack(): void {
    this.taken--;
    this.slotWaiters.shift()?.();
  }

  private async loop(): Promise<void> {
    const { sqs, queueUrl, batchSize, waitSeconds } = this.options;
    while (this.running) {
      if (!(await this.slot())) return;
      let messages: SqsMessage[];
      try {
        const received = await this.untilStopped(
          sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: batchSize,
              WaitTimeSeconds: waitSeconds,
              // The records' ApproximateReceiveCount and SentTimestamp, as Lambda's event source gives them.
              MessageSystemAttributeNames: ['All'],
            }),
          ),
        );
        if (received === stopped) return this.giveBack();
        messages = received.Messages ?? [];
      } catch (error) {
        this.giveBack();
        if (!this.running) return;
        this.options.onError?.(error);
        await this.untilStopped(new Promise((resolve) => setTimeout(resolve, 250)));
        continue;
      }
      if (messages.length === 0) {
        this.giveBack();
        continue;
      }
      // Handed on, not waited for: the poller receives again while the batch runs.
      const delivery = this.deliver(messages).finally(() => {
        this.deliveries.delete(delivery);
        this.giveBack();
      });
      this.deliveries.add(delivery);
    }
  }

  private async deliver(messages: SqsMessage[]): Promise<void> {
    const { sqs, queueUrl, queueArn, invoke } = this.options;
    const event: SQSEvent = { Records: messages.map((message) => toRecord(message, queueArn)) };
    let failed: Set<string>;
    this.inFlight++;
    try {
      const response = await invoke(event);
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (error) {
      // As on Lambda: a failed or timed-out invocation deletes nothing; the batch comes back.
      this.options.onError?.(error);
      failed = new Set(messages.map((message) => message.MessageId ?? ''));
    } finally {
      this.inFlight--;
    }
    const done = messages.filter((message) => !failed.has(message.MessageId ?? ''));
    if (done.length === 0) return;
    try {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle ?? '' })),
        }),
      );
    } catch (error) {
      // Undeleted messages come back and are recognised as done by their job's state.
      this.options.onError?.(error);
    }
  }
}
