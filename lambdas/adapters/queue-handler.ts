/**
 * A queue-consuming function as middy composes it, written once: Powertools puts the request id
 * and cold start in every log line and publishes the batch's metrics; Powertools' batch
 * processor runs the records concurrently and reports those not done as batch item failures.
 * Each record's message goes to the core with what SQS tells of it and the function's deadline;
 * a record whose work must wait, or whose handling threw, is handed back to its queue, due after
 * the wait (core/retry.ts decides how long), so SQS hands it out again then.
 *
 * ```ts
 * export const handler = queueFunction({ label: 'job attempt', run: (message, facts) => ..., queueUrl: () => url });
 * ```
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { metricNames } from '../../lib/definitions.ts';
import type { Outcome } from '../core/deliver.ts';
import type { DeliveryFacts, QueueMessage } from '../core/ports.ts';
import { afterFailureMs } from '../core/retry.ts';
import { parseMessage, postpone, sendLater } from './sqs.ts';
import { tracing } from './tracing.ts';
import { logger, metrics, services, type WaasMetrics } from './wiring.ts';

/** Thrown for a record that is not done yet: the batch processor reports it as failed. */
export class NotYet extends Error {
  override name = 'NotYet';
}

/** Makes a received message reappear after `delayMs` (its visibility). */
export type Postpone = (queueUrl: string, receiptHandle: string, delayMs: number) => Promise<void>;

/** Sends a copy of a message, due after `delayMs`. */
export type Resend = (queueUrl: string, body: string, delayMs: number) => Promise<void>;

export interface QueueFunctionOptions {
  /** How a record's outcome is logged, at DEBUG. */
  label: string;
  run: (message: QueueMessage, facts: DeliveryFacts) => Promise<Outcome>;
  /** The queue a record is handed back to; absent, one not done returns after its visibility timeout. */
  queueUrl?: (record: SQSRecord) => string | undefined;
  /** Default: SQS's ChangeMessageVisibility on the services' client. */
  postpone?: Postpone;
  /** Default: SQS's SendMessage with a delay, on the services' client. */
  resend?: Resend;
  /** Default: the services' Powertools Metrics. */
  metrics?: WaasMetrics;
}

const describe = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/** The record's attributes SQS fills in, and the deadline its function runs to. */
function deliveryFacts(record: SQSRecord, context: Context): DeliveryFacts {
  const sentAt = Number(record.attributes?.SentTimestamp);
  const receiveCount = Number(record.attributes?.ApproximateReceiveCount);
  const remaining = typeof context.getRemainingTimeInMillis === 'function' ? context.getRemainingTimeInMillis() : undefined;
  return {
    ...(Number.isFinite(sentAt) && sentAt > 0 ? { sentAt } : {}),
    ...(Number.isInteger(receiveCount) && receiveCount > 0 ? { receiveCount } : {}),
    ...(remaining !== undefined && Number.isFinite(remaining) ? { deadline: Date.now() + remaining } : {}),
  };
}

export function queueFunction(options: QueueFunctionOptions): middy.MiddyfiedHandler<SQSEvent, SQSBatchResponse, Error, Context> {
  const handBack: Postpone = options.postpone ?? ((url, handle, delayMs) => postpone(services().aws.sqs, url, handle, delayMs));
  const resend: Resend = options.resend ?? ((url, body, delayMs) => sendLater(services().aws.sqs, url, body, delayMs));
  const counts = options.metrics ?? metrics;

  const handleRecord = async (record: SQSRecord, context: Context): Promise<void> => {
    const message = parseMessage(record.body);
    if (!message) {
      // Not ours: retrying cannot help, so it is dropped (and said so).
      logger.error('dropping an unreadable queue message', { messageId: record.messageId });
      return;
    }
    // Every line about this record names its job (a child logger, made only for a line to write).
    let child: Logger | undefined;
    const log = () => (child ??= logger.createChild({ persistentKeys: { jobId: message.jobId } }));
    const facts = deliveryFacts(record, context);
    let outcome: Outcome;
    try {
      outcome = await options.run(message, facts);
      if (logger.getLevelName() === 'DEBUG') log().debug(options.label, { ...outcome });
    } catch (error) {
      // Reported, never swallowed; back soon, not after the whole visibility timeout.
      log().error('a queue message failed', { error: describe(error) });
      counts.addMetric(metricNames.messagesFailed, MetricUnit.Count, 1);
      outcome = { done: false, retryAfterMs: afterFailureMs(facts.receiveCount ?? 1) };
    }
    if (outcome.done) return;
    const queueUrl = options.queueUrl?.(record);
    if (queueUrl !== undefined && outcome.resend) {
      // Sent afresh (a job held back by its flow key), this one done: its waits spend no receives.
      try {
        await resend(queueUrl, JSON.stringify(outcome.resend), outcome.retryAfterMs);
        return;
      } catch (error) {
        log().warn('could not send a held-back message afresh; handing it back instead', { error: describe(error) });
      }
    }
    if (queueUrl !== undefined) {
      try {
        await handBack(queueUrl, record.receiptHandle, outcome.retryAfterMs);
      } catch (error) {
        log().warn('could not hand a message back; sending a copy of it instead', { error: describe(error) });
        try {
          // Not the queue's whole visibility timeout for a wait of a second: a copy, due then,
          // and this one done (a copy too many finds the work leased or settled).
          await resend(queueUrl, record.body, outcome.retryAfterMs);
          return;
        } catch (failure) {
          // The message still comes back, only later: when its visibility timeout runs out.
          log().warn('could not send a copy either', { error: describe(failure) });
        }
      }
    }
    throw new NotYet(`job ${message.jobId} is due again in ${outcome.retryAfterMs} ms`);
  };

  return middy<SQSEvent, SQSBatchResponse, Error, Context>({
    // The deadline is the core's to keep (DeliveryFacts.deadline): it starts no attempt that
    // could not be recorded in time, and the batch's outcomes are always reported.
    timeoutEarlyInMillis: 0,
  })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(tracing())
    // Where metrics are off (the local stack) nothing is published: there, the pollers invoke
    // one module at once, which a process's one metrics buffer could not keep apart.
    .use(counts.publishing ? logMetrics(counts) : [])
    .handler(async (event, context) => {
      counts.addMetric(metricNames.messagesReceived, MetricUnit.Count, event.Records.length);
      // A processor per invocation: it keeps the batch's outcomes while it runs, and the local
      // stack's pollers invoke one handler module concurrently (one Lambda environment never does).
      return processPartialResponse(event, (record: SQSRecord) => handleRecord(record, context), new BatchProcessor(EventType.SQS), {
        context,
        throwOnFullBatchFailure: false,
      });
    });
}
