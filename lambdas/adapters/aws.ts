/**
 * The AWS SDK clients of a process: one DynamoDB client (with its document client) and one SQS
 * client, built once and shared, on kept-alive connections, with the SDK's standard retry mode
 * and every attempt bounded (`awsCalls` in lib/definitions.ts). Region, endpoints and
 * credentials come from the SDK's own chain: on Lambda its environment, locally the local
 * stack's (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS), for the CLIs a profile too.
 *
 * ```ts
 * const aws = awsClients();
 * await aws.documents.send(new GetCommand({ TableName, Key: { pk, sk } }));
 * await aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }));
 * ```
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import type { SdkError } from '@smithy/types';
import { awsCalls } from '../../lib/definitions.ts';

export interface AwsClients {
  dynamodb: DynamoDBClient;
  /** The document client on `dynamodb`: plain values in, plain values out. */
  documents: DynamoDBDocumentClient;
  sqs: SQSClient;
}

export interface AwsClientsOptions {
  region?: string;
  /** Per service, for a local stack's servers; default: the SDK's (environment, then AWS's). */
  endpoints?: { dynamodb?: string; sqs?: string };
  /** Bound on each attempt's answer (default awsCalls.requestTimeoutMs); a long poll needs more. */
  requestTimeoutMs?: number;
}

/** The configuration both clients share: kept-alive sockets, bounded attempts, standard retries. */
/** The terms every SDK client of ours is made on (bounded attempts, standard retries, kept-alive sockets). */
export function clientConfig(options: AwsClientsOptions = {}) {
  const agent = { keepAlive: true, maxSockets: 64 };
  return {
    ...(options.region ? { region: options.region } : {}),
    maxAttempts: awsCalls.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: awsCalls.connectionTimeoutMs,
      requestTimeout: options.requestTimeoutMs ?? awsCalls.requestTimeoutMs,
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
    },
  } as const;
}

/** Undefined values are left out of items, as the core leaves optional fields unset. */
export const documentOptions = { marshallOptions: { removeUndefinedValues: true } } as const;

export function awsClients(options: AwsClientsOptions = {}): AwsClients {
  const dynamodb = new DynamoDBClient({ ...clientConfig(options), ...(options.endpoints?.dynamodb ? { endpoint: options.endpoints.dynamodb } : {}) });
  const sqsEndpoint = options.endpoints?.sqs ?? process.env['AWS_ENDPOINT_URL_SQS'];
  const sqs = new SQSClient({
    ...clientConfig(options),
    ...(options.endpoints?.sqs ? { endpoint: options.endpoints.sqs } : {}),
    // A local SQS names its queues by URLs that need not be where it listens: call the endpoint.
    ...(sqsEndpoint ? { useQueueUrlAsEndpoint: false } : {}),
  });
  return { dynamodb, documents: DynamoDBDocumentClient.from(dynamodb, documentOptions), sqs };
}

/** Closes the clients' kept-alive sockets (a CLI or a stopping local stack). */
export function closeAwsClients(clients: AwsClients): void {
  clients.dynamodb.destroy();
  clients.sqs.destroy();
}

/**
 * Whether a failed SDK call means the service is unavailable for now — unreachable, timed out,
 * throttled, or failing on its side — rather than a mistake in the call: the API then answers
 * 503 with Retry-After, and the client may try again. The SDK's own classification decides, as
 * it does for its retries.
 */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const failed = error as SdkError;
  return isThrottlingError(failed) || isTransientError(failed) || isServerError(failed);
}
