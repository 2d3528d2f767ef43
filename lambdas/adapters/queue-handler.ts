/**
 * The SQS side of a queue-consuming Lambda, written once: each record's message goes to the
 * core, records run concurrently, and one whose attempt must wait is postponed by its
 * visibility and reported as a batch item failure, so SQS hands it out again when it is due.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Outcome } from '../core/deliver.ts';
import type { DeliveryFacts, QueueMessage } from '../core/ports.ts';
import { parseMessage, postpone } from './sqs.ts';
import { logger, services } from './wiring.ts';

/** Thrown for a record that is not done yet: the batch processor reports it as failed. */
export class NotYet extends Error {
  override name = 'NotYet';
}

/** Makes a received message reappear after `delayMs` (its visibility). */
export type Postpone = (queueUrl: string, receiptHandle: string, delayMs: number) => Promise<void>;

export function queueHandler(
  run: (message: QueueMessage, facts: DeliveryFacts) => Promise<Outcome>,
  queueUrl: (record: SQSRecord) => string,
  postponed: Postpone = (url, handle, delayMs) => postpone(services().sqs, url, handle, delayMs),
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const handleRecord = async (record: SQSRecord): Promise<void> => {
    const message = parseMessage(record.body);
    if (!message) {
      // Not ours: retrying cannot help, so it is dropped (and said so).
      logger.error('dropping an unreadable queue message', { messageId: record.messageId });
      return;
    }
    let outcome: Outcome;
    try {
      outcome = await run(message, deliveryFacts(record));
    } catch (error) {
      // Reported, never swallowed: the message comes back when its visibility timeout runs out.
      logger.error('a queue message failed', { jobId: message.jobId, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
      throw error;
    }
    if (outcome.done) return;
    try {
      await postponed(queueUrl(record), record.receiptHandle, outcome.retryAfterMs);
    } catch (error) {
      // The message still comes back, only later: when its visibility timeout runs out.
      logger.warn('could not postpone a message', { jobId: message.jobId, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    }
    throw new NotYet(`job ${message.jobId} is due again in ${outcome.retryAfterMs} ms`);
  };
  // A processor per invocation: it keeps the batch's outcomes while it runs, and the local
  // stack's pollers invoke one handler module concurrently (one Lambda environment never does).
  return async (event, context) =>
    processPartialResponse(event, handleRecord, new BatchProcessor(EventType.SQS), { context, throwOnFullBatchFailure: false });
}

/** The record's attributes SQS fills in: when it was sent, how often it was received. */
function deliveryFacts(record: SQSRecord): DeliveryFacts {
  const sentAt = Number(record.attributes?.SentTimestamp);
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount);
  return {
    ...(Number.isFinite(sentAt) && sentAt > 0 ? { sentAt } : {}),
    ...(Number.isInteger(receiveCount) && receiveCount > 0 ? { receiveCount } : {}),
  };
}

/** A queue of delivery attempts: each message one attempt, its outcome logged (never its content). */
export function attemptHandler(label: string, run: (message: QueueMessage, facts: DeliveryFacts) => Promise<Outcome>, queueUrl: () => string) {
  return queueHandler(async (message, facts) => {
    const outcome = await run(message, facts);
    logger.debug(label, { jobId: message.jobId, ...outcome });
    return outcome;
  }, queueUrl);
}
