/**
 * The SQS side of a queue-consuming Lambda, written once: each record's message goes to the
 * core, records run concurrently, and one whose attempt must wait is postponed by its
 * visibility and reported as a batch item failure, so SQS hands it out again when it is due.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { Outcome } from '../core/deliver.ts';
import type { QueueMessage } from '../core/ports.ts';
import { parseMessage, postpone } from './sqs.ts';
import { logger, services } from './wiring.ts';

/** Thrown for a record that is not done yet: the batch processor reports it as failed. */
export class NotYet extends Error {
  override name = 'NotYet';
}

export function queueHandler(
  run: (message: QueueMessage) => Promise<Outcome>,
  queueUrl: (record: SQSRecord) => string,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  const handleRecord = async (record: SQSRecord): Promise<void> => {
    const message = parseMessage(record.body);
    if (!message) {
      // Not ours: retrying cannot help, so it is dropped (and said so).
      logger.error('dropping an unreadable queue message', { messageId: record.messageId });
      return;
    }
    const outcome = await run(message);
    if (outcome.done) return;
    await postpone(services().sqs, queueUrl(record), record.receiptHandle, outcome.retryAfterMs);
    throw new NotYet(`job ${message.jobId} is due again in ${outcome.retryAfterMs} ms`);
  };
  return async (event, context) =>
    processPartialResponse(event, handleRecord, processor, { context, throwOnFullBatchFailure: false });
}

/** A queue of delivery attempts: each message one attempt, its outcome logged (never its content). */
export function attemptHandler(label: string, run: (jobId: string) => Promise<Outcome>, queueUrl: () => string) {
  return queueHandler(async (message) => {
    const outcome = await run(message.jobId);
    logger.debug(label, { jobId: message.jobId, ...outcome });
    return outcome;
  }, queueUrl);
}
