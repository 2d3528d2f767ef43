/**
 * X-Ray tracing through Powertools Tracer, where the stack's `tracing` context flag turns it on
 * (it sets POWERTOOLS_TRACE_ENABLED=true and active tracing on every function). Elsewhere the
 * Tracer is not even loaded: X-Ray's SDK would add to every cold start for nothing.
 *
 * Traces are kept like logs, so they hold no more than logs may: the functions' responses (job
 * records, with their targets' answers) are not captured, nor outgoing HTTP requests (a target's
 * URL may carry a client's secret in its query); the SDK's calls to DynamoDB and SQS are.
 *
 * ```ts
 * middy(handler).use(tracing());
 * ```
 */
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { MiddlewareObj } from '@middy/core';
import type { AwsClients } from './aws.ts';

export const tracingEnabled = process.env['POWERTOOLS_TRACE_ENABLED'] === 'true';

const loaded = tracingEnabled
  ? await Promise.all([import('@aws-lambda-powertools/tracer'), import('@aws-lambda-powertools/tracer/middleware')])
  : undefined;

export const tracer: Tracer | undefined = loaded
  ? // Its service is POWERTOOLS_SERVICE_NAME, which the stack sets (the stack's name), as for logs and metrics.
    new loaded[0].Tracer({ captureHTTPsRequests: false })
  : undefined;

/** The handler's segment (cold start annotated, errors captured, the response not); none where tracing is off. */
export function tracing(): MiddlewareObj[] {
  return tracer && loaded ? [loaded[1].captureLambdaHandler(tracer, { captureResponse: false }) as MiddlewareObj] : [];
}

/** Every DynamoDB and SQS call as a subsegment of the handler's (the document client shares its client's middleware). */
export function traceClients(clients: AwsClients): void {
  if (!tracer) return;
  tracer.captureAWSv3Client(clients.dynamodb);
  tracer.captureAWSv3Client(clients.sqs);
}
