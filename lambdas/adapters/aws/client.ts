/**
 * A small client for the AWS JSON protocol (DynamoDB, SQS) on node:http(s) and our own SigV4:
 * what the Lambda handlers need of the AWS SDK v3, without the ~135 ms its import costs a cold
 * start, nor its per-call middleware.
 *
 * ```ts
 * const dynamodb = new AwsClient({ service: 'dynamodb' });
 * const { Item } = await dynamodb.call('GetItem', { TableName: 'jobs', Key: { pk: { S: 'job#1' } } });
 * const sqs = new AwsClient({ service: 'sqs' });
 * await sqs.call('SendMessage', { QueueUrl, MessageBody: '{}' });
 * ```
 *
 * A call is one `POST` of the operation's input, as the API reference spells it, to the
 * endpoint; the answer's JSON is returned as it is (use DynamoDocuments from ./attributes.ts for
 * plain values instead of attribute values). Binary values are base64 strings on this wire.
 * Failures: the service's error answer is an AwsError; no answer at all (refused, reset, timed
 * out) is an AwsNetworkError once the attempts are used up; missing credentials is an
 * AwsCredentialsError. Retries follow the SDK's standard mode: up to `maxAttempts`, on 5xx,
 * 429, throttling and transient errors and network failures, after a backoff with full jitter.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { sign, type Credentials } from './sigv4.ts';

export type { Credentials } from './sigv4.ts';

export type AwsService = 'dynamodb' | 'sqs';

export interface AwsClientOptions {
  service: AwsService;
  /** Default: AWS_REGION, then AWS_DEFAULT_REGION, then 'us-east-1'. */
  region?: string;
  /**
   * Default: AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL_SQS, then AWS_ENDPOINT_URL (both
   * ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is 'true'), then the service's public
   * endpoint `https://{service}.{region}.amazonaws.com`. A path in the URL is kept.
   */
  endpoint?: string;
  /**
   * Default: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, read at each call
   * (Lambda sets them). A function is asked once per call, so it should cache.
   */
  credentials?: Credentials | (() => Promise<Credentials>);
  /** Attempts per call, the first included (default 3, as the SDK's standard retry mode). */
  maxAttempts?: number;
  /**
   * Bound on one attempt, from sending to the last byte of the answer (default 30 s); a timed
   * out attempt is retried. A ReceiveMessage's WaitTimeSeconds is added to it, so a long poll
   * is not cut short.
   */
  timeoutMs?: number;
  /** Waits between attempts (default: setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  /** The jitter's random source, in [0, 1) (default Math.random). */
  random?: () => number;
  /** The signing clock (default: the system clock). */
  now?: () => Date;
}

export interface CallSizes {
  /** Bytes of the request body (the JSON input). */
  requestBytes: number;
  /** Bytes of the last attempt's response body. */
  responseBytes: number;
}

/** Watches calls: the benchmark meters them through one. */
export interface CallObserver {
  /** May add fields to the input (the benchmark adds ReturnConsumedCapacity); they are sent. */
  before?(operation: string, input: Record<string, unknown>): void;
  after?(operation: string, input: Record<string, unknown>, output: Record<string, unknown>, sizes: CallSizes): void;
  /** The call failed for good (after its retries): an AwsError, AwsNetworkError or AwsCredentialsError. */
  failed?(operation: string, input: Record<string, unknown>, error: Error, sizes: CallSizes): void;
}

const defaults = {
  region: 'us-east-1',
  maxAttempts: 3,
  timeoutMs: 30_000,
  /** Full jitter: the n-th retry waits random() * min(cap, base * 2^(n-1)). */
  backoffBaseMs: 100,
  backoffCapMs: 20_000,
  /** Sockets per client, as the SDK's default agent. */
  maxSockets: 50,
};

const targetPrefix: Record<AwsService, string> = { dynamodb: 'DynamoDB_20120810', sqs: 'AmazonSQS' };
const userAgent = 'waas-aws/0.1';

/** Error codes the SDK retries as throttling or transient (its standard retry mode's lists). */
const retryableCodes = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottledException',
  'RequestThrottled',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);

/** Failures to get an answer that another attempt may not meet. */
const retryableNetworkCodes = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'TimeoutError',
]);

/** The service answered a call with an error. */
export class AwsError extends Error {
  /** The short error code: 'ConditionalCheckFailedException', 'QueueDoesNotExist', ... */
  override readonly name: string;
  readonly statusCode: number;
  readonly retryable: boolean;
  readonly operation: string;
  /** The parsed error body: DynamoDB puts `Item` here for ReturnValuesOnConditionCheckFailure. */
  readonly details: Record<string, unknown>;

  constructor(fields: { name: string; message: string; statusCode: number; retryable: boolean; operation: string; details: Record<string, unknown> }) {
    super(fields.message);
    this.name = fields.name;
    this.statusCode = fields.statusCode;
    this.retryable = fields.retryable;
    this.operation = fields.operation;
    this.details = fields.details;
  }
}

/** No answer came: the connection failed or the attempts timed out, as many times as allowed. */
export class AwsNetworkError extends Error {
  override readonly name = 'AwsNetworkError';
  /** The last attempt's failure: 'ECONNREFUSED', 'ECONNRESET', 'TimeoutError', ... */
  readonly code: string;
  readonly operation: string;
  readonly attempts: number;

  constructor(operation: string, attempts: number, cause: Error & { code?: string }) {
    super(`${operation}: no answer after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${cause.message}`, { cause });
    this.code = cause.code ?? 'UnknownNetworkError';
    this.operation = operation;
    this.attempts = attempts;
  }
}

/** No credentials to sign with. */
export class AwsCredentialsError extends Error {
  override readonly name = 'AwsCredentialsError';
}

/** One attempt took longer than `timeoutMs`. */
class AttemptTimeout extends Error {
  override readonly name = 'AttemptTimeout';
  readonly code = 'TimeoutError';
}

interface Answer {
  statusCode: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** What most callers need of a client: its one method. Tests stand a small fake in for it. */
export type AwsCaller = Pick<AwsClient, 'call'>;

export class AwsClient {
  readonly service: AwsService;
  readonly region: string;
  readonly endpoint: string;

  private readonly url: URL;
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly send: typeof httpRequest;
  private readonly credentials: () => Promise<Credentials>;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;
  private readonly now: () => Date;
  private readonly observers: CallObserver[] = [];

  constructor(options: AwsClientOptions) {
    this.service = options.service;
    this.region = options.region ?? env('AWS_REGION') ?? env('AWS_DEFAULT_REGION') ?? defaults.region;
    this.endpoint = options.endpoint ?? defaultEndpoint(this.service, this.region);
    this.url = new URL(this.endpoint);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') throw new TypeError(`the endpoint ${this.endpoint} is neither http: nor https:`);
    if (this.url.search) throw new TypeError(`the endpoint ${this.endpoint} has a query string; the JSON protocol sends none`);
    const agentOptions = { keepAlive: true, maxSockets: defaults.maxSockets };
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    const given = options.credentials;
    this.credentials = typeof given === 'function' ? given : given ? async () => given : async () => credentialsFromEnv();
    this.maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? defaults.maxAttempts));
    this.timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.random = options.random ?? Math.random;
    this.now = options.now ?? (() => new Date());
  }

  observe(observer: CallObserver): void {
    this.observers.push(observer);
  }

  /** One operation: `call('PutItem', {...})` — the JSON body as the API reference spells it. */
  async call<O = Record<string, unknown>>(operation: string, input: Record<string, unknown>): Promise<O> {
    // The caller's object stays as it was; observers add to this copy.
    const sent = { ...input };
    for (const observer of this.observers) observer.before?.(operation, sent);
    const body = Buffer.from(JSON.stringify(sent));
    const sizes: CallSizes = { requestBytes: body.length, responseBytes: 0 };
    try {
      const credentials = await this.credentials();
      const timeoutMs = this.timeoutMs + (operation === 'ReceiveMessage' && typeof sent['WaitTimeSeconds'] === 'number' ? sent['WaitTimeSeconds'] * 1000 : 0);
      for (let attempt = 1; ; attempt++) {
        let answer: Answer;
        try {
          answer = await this.attempt(operation, body, credentials, timeoutMs);
        } catch (error) {
          const failure = error as Error & { code?: string };
          if (attempt < this.maxAttempts && isRetryableNetworkError(failure)) {
            await this.sleep(this.backoff(attempt));
            continue;
          }
          throw new AwsNetworkError(operation, attempt, failure);
        }
        sizes.responseBytes = answer.body.length;
        if (answer.statusCode >= 200 && answer.statusCode < 300) {
          const output = parseOutput(operation, answer);
          for (const observer of this.observers) observer.after?.(operation, sent, output, sizes);
          return output as O;
        }
        const failure = toAwsError(operation, answer, credentials);
        if (failure.retryable && attempt < this.maxAttempts) {
          await this.sleep(this.backoff(attempt));
          continue;
        }
        throw failure;
      }
    } catch (error) {
      for (const observer of this.observers) observer.failed?.(operation, sent, error as Error, sizes);
      throw error;
    }
  }

  /** Closes kept-alive sockets (tests, process end). */
  destroy(): void {
    this.agent.destroy();
  }

  /** Full jitter after the `attempt`-th failure: uniform in [0, min(cap, base * 2^(attempt-1))). */
  private backoff(attempt: number): number {
    return this.random() * Math.min(defaults.backoffCapMs, defaults.backoffBaseMs * 2 ** (attempt - 1));
  }

  private attempt(operation: string, body: Buffer, credentials: Credentials, timeoutMs: number): Promise<Answer> {
    const host = this.url.host;
    const path = this.url.pathname || '/';
    const unsigned: Record<string, string> = {
      host,
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(body.length),
      'x-amz-target': `${targetPrefix[this.service]}.${operation}`,
      'user-agent': userAgent,
    };
    // As the SDK: SQS's JSON protocol then also names the query protocol's error code in x-amzn-query-error.
    if (this.service === 'sqs') unsigned['x-amzn-query-mode'] = 'true';
    // Signed afresh for each attempt: a retry may come after the previous date's signature expired.
    const headers: OutgoingHttpHeaders = sign(
      { method: 'POST', host, path, headers: unsigned, body },
      { credentials, region: this.region, service: this.service, date: this.now() },
    );
    const requestOptions: RequestOptions = {
      method: 'POST',
      hostname: this.url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: this.url.port || undefined,
      path,
      headers,
      agent: this.agent,
    };
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | undefined, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(answer as Answer);
      };
      const request = this.send(requestOptions, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => finish(error));
        response.on('aborted', () => finish(Object.assign(new Error('the response was cut short'), { code: 'ECONNRESET' })));
        response.on('end', () => {
          if (!response.complete) return finish(Object.assign(new Error('the response was cut short'), { code: 'ECONNRESET' }));
          finish(undefined, { statusCode: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
        });
      });
      const timer = setTimeout(() => {
        const timeout = new AttemptTimeout(`no answer within ${timeoutMs} ms`);
        finish(timeout);
        request.destroy(timeout);
      }, timeoutMs);
      request.on('error', (error) => finish(error));
      request.end(body);
    });
  }
}

function env(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

function defaultEndpoint(service: AwsService, region: string): string {
  if (env('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS')?.toLowerCase() !== 'true') {
    const configured = env(service === 'dynamodb' ? 'AWS_ENDPOINT_URL_DYNAMODB' : 'AWS_ENDPOINT_URL_SQS') ?? env('AWS_ENDPOINT_URL');
    if (configured) return configured;
  }
  return `https://${service}.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

function credentialsFromEnv(): Credentials {
  const accessKeyId = env('AWS_ACCESS_KEY_ID');
  const secretAccessKey = env('AWS_SECRET_ACCESS_KEY');
  const missing = [accessKeyId ? undefined : 'AWS_ACCESS_KEY_ID', secretAccessKey ? undefined : 'AWS_SECRET_ACCESS_KEY'].filter(Boolean);
  if (!accessKeyId || !secretAccessKey) {
    throw new AwsCredentialsError(`no AWS credentials: ${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} not set (or pass options.credentials)`);
  }
  const sessionToken = env('AWS_SESSION_TOKEN');
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

function isRetryableNetworkError(error: Error & { code?: string }): boolean {
  return (error.code !== undefined && retryableNetworkCodes.has(error.code)) || /socket hang up/i.test(error.message);
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return {};
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function parseOutput(operation: string, answer: Answer): Record<string, unknown> {
  const output = parseJson(answer.body);
  if (output) return output;
  throw new AwsError({
    name: 'UnparseableResponse',
    message: `${operation}: the ${answer.statusCode} answer's body is not a JSON object (${answer.body.length} bytes)`,
    statusCode: answer.statusCode,
    retryable: false,
    operation,
    details: {},
  });
}

/** `com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException` → `ConditionalCheckFailedException`. */
function shortCode(code: string): string {
  return code.slice(code.lastIndexOf('#') + 1).split(':')[0]!.trim();
}

function toAwsError(operation: string, answer: Answer, credentials: Credentials): AwsError {
  const details = parseJson(answer.body) ?? {};
  // SQS's query-protocol code, e.g. "AWS.SimpleQueueService.NonExistentQueue;Sender": a fallback
  // name only, as the JSON protocol's own code (QueueDoesNotExist) is what the SDK names errors by.
  const queryHeader = answer.headers['x-amzn-query-error'];
  const queryCode = typeof queryHeader === 'string' && queryHeader ? queryHeader.split(';')[0]!.replace(/^AWS\.SimpleQueueService\./, '') : undefined;
  const typed = details['__type'] ?? details['code'] ?? details['Code'];
  const headerType = answer.headers['x-amzn-errortype'];
  const name =
    typeof typed === 'string' && typed ? shortCode(typed) : typeof headerType === 'string' && headerType ? shortCode(headerType) : (queryCode ?? `Http${answer.statusCode}`);
  const retryable = answer.statusCode >= 500 || answer.statusCode === 429 || retryableCodes.has(name) || (queryCode !== undefined && retryableCodes.has(queryCode));
  const said = details['message'] ?? details['Message'];
  const text = typeof said === 'string' && said ? said : parseJson(answer.body) ? 'no message' : `a ${answer.body.length}-byte answer that is not JSON`;
  // A signature error's message quotes the canonical request, session token included.
  const message = redact(`${operation}: ${name} (${answer.statusCode}): ${text}`, credentials);
  for (const key of ['message', 'Message'] as const) {
    if (typeof details[key] === 'string') details[key] = redact(details[key], credentials);
  }
  return new AwsError({ name, message, statusCode: answer.statusCode, retryable, operation, details });
}

function redact(text: string, credentials: Credentials): string {
  let clean = text;
  for (const secret of [credentials.secretAccessKey, credentials.sessionToken, credentials.accessKeyId]) {
    if (secret && secret.length >= 8 && clean.includes(secret)) clean = clean.split(secret).join('[redacted]');
  }
  return clean;
}
