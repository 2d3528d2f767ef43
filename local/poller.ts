/**
 * The local stand-in for Lambda's SQS event source mapping: long-polls a queue, hands each batch
 * to the queue's handler as an SQS event, deletes what the handler did not report as failed, and
 * leaves the rest to reappear after its visibility timeout (or the delay the handler set), and to
 * be redriven to the dead-letter queue by SQS itself after maxReceiveCount receives.
 */
import { randomUUID } from 'node:crypto';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { FunctionName } from '../lib/definitions.ts';
import { invoke } from './invocations.ts';

export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | void>;

/** A received message, as ReceiveMessage answers it. */
export type SqsMessage = Pick<Message, 'MessageId' | 'ReceiptHandle' | 'Body' | 'MD5OfBody' | 'Attributes'>;

export interface PollerOptions {
  sqs: Pick<SQSClient, 'send'>;
  queueUrl: string;
  queueArn: string;
  functionName: FunctionName;
  handler: SqsHandler;
  batchSize: number;
  waitSeconds: number;
  /** Like Lambda's timeout: a batch still running then counts as failed (nothing is deleted). */
  timeoutSeconds: number;
  /** Concurrent receive loops: how far Lambda would scale out. */
  concurrency: number;
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

export function lambdaContext(functionName: string, timeoutSeconds: number): Context {
  const deadline = Date.now() + timeoutSeconds * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** What a wait cut short by stop() resolves to. */
const stopped = Symbol('stopped');

export class QueuePoller {
  private running = false;
  private loops: Promise<void>[] = [];
  /** Waits in hand (long polls, pauses) that stop() ends at once. */
  private readonly waits = new Set<() => void>();
  /** Batches handed to the handler and not yet finished. */
  inFlight = 0;

  constructor(private readonly options: PollerOptions) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.options.concurrency; i++) this.loops.push(this.loop());
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

  private async loop(): Promise<void> {
    const { sqs, queueUrl, batchSize, waitSeconds } = this.options;
    while (this.running) {
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
        if (received === stopped) return;
        messages = received.Messages ?? [];
      } catch (error) {
        if (!this.running) return;
        this.options.onError?.(error);
        await this.untilStopped(new Promise((resolve) => setTimeout(resolve, 250)));
        continue;
      }
      if (messages.length > 0) await this.deliver(messages);
    }
  }

  private async deliver(messages: SqsMessage[]): Promise<void> {
    const { sqs, queueUrl, queueArn, handler, functionName, timeoutSeconds } = this.options;
    const event: SQSEvent = { Records: messages.map((message) => toRecord(message, queueArn)) };
    let failed: Set<string>;
    this.inFlight++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${functionName} timed out after ${timeoutSeconds} s`)), timeoutSeconds * 1000);
      });
      const response = await Promise.race([invoke(functionName, handler, event, lambdaContext(functionName, timeoutSeconds)), timeout]);
      failed = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch (error) {
      // As on Lambda: a failed invocation deletes nothing; the batch comes back.
      this.options.onError?.(error);
      failed = new Set(messages.map((message) => message.MessageId ?? ''));
    } finally {
      clearTimeout(timer);
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
