/**
 * The local stack's fault mode: an HTTP proxy on 127.0.0.1 in front of dynalite or fauxqs that,
 * at configured rates, answers or breaks a call the way AWS does, so that the SDK's retries and
 * the code around them meet on a laptop what they meet on AWS. Off unless `WAAS_FAULTS` is set.
 *
 * ```bash
 * WAAS_FAULTS=throttle=0.05,error=0.02,slow=0.05:50-400,reset=0.01,lost=0.01,unprocessed=0.1,seed=42 npm start
 * ```
 *
 * The variable is a comma-separated list of `key=value`; every key is optional, a rate is a
 * probability per request from 0 to 1:
 *
 * - `throttle=RATE` — answers a throttling error without forwarding (nothing is written), as
 *   the service does under load. DynamoDB item operations: HTTP 400
 *   `com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException` with
 *   `ThrottlingReasons` (`TableReadKeyRangeThroughputExceeded` / `TableWriteKeyRangeThroughputExceeded`:
 *   a hot partition, what an on-demand table answers); DynamoDB control-plane operations: HTTP 400
 *   `com.amazon.coral.availability#ThrottlingException` ("Rate of requests exceeds the allowed
 *   throughput"). SQS message operations: HTTP 403 with `x-amzn-query-error: RequestThrottled;Sender`
 *   and `com.amazonaws.sqs#RequestThrottled` (the model's code and status); SQS queue operations:
 *   HTTP 400 with `x-amzn-query-error: ThrottlingException;Sender` (SQS's common error). The SDK
 *   classifies all of them as throttling (@smithy/core retry: THROTTLING_ERROR_CODES) and retries
 *   after its throttling backoff (1 s base); the last attempt's error is the SDK's own class
 *   (`ProvisionedThroughputExceededException`, `ThrottlingException`, `RequestThrottled`).
 * - `error=RATE` — answers a server error without forwarding: DynamoDB HTTP 500 `InternalServerError`
 *   or `com.amazon.coral.service#InternalFailure`, or HTTP 503 `ServiceUnavailableException`; SQS
 *   HTTP 500 `InternalError` or HTTP 503 `ServiceUnavailable` (with `x-amzn-query-error: …;Receiver`).
 *   Transient: the SDK retries 5xx after its ordinary backoff (50 ms base).
 * - `reset=RATE` — resets the connection (TCP RST) once the request has arrived, before
 *   forwarding: the call never reached the service. The SDK sees ECONNRESET and retries.
 * - `lost=RATE` — forwards the request, lets the service answer, then resets the connection
 *   instead of passing the answer on: the write landed but its answer is lost. The SDK retries,
 *   so a conditional write (`attribute_not_exists(pk)`, a version check) then fails its condition
 *   on its own first write, and a ReceiveMessage's messages stay invisible until their
 *   visibility timeout: exactly what a lost answer does on AWS.
 * - `slow=RATE:MIN-MAX` (or `RATE:MS`) — the call takes MIN–MAX ms longer. The delay is split at
 *   a random point around the forwarding, as a slow service commits somewhere within a slow call:
 *   with the SDK's request timeout (`awsCalls` in lib/definitions.ts) the call may time out and be
 *   retried, and the timed-out attempt may still land, before or after its retry. The request is
 *   forwarded even when the client has given up (AWS does not cancel a request it received).
 * - `unprocessed=RATE` — batch operations only: about half the entries (at least one) are held
 *   back; only the rest is forwarded. BatchWriteItem answers the held-back requests in
 *   `UnprocessedItems`, BatchGetItem the held-back keys in `UnprocessedKeys` (with the table's
 *   ConsistentRead and projection, as DynamoDB does); when every entry is held back DynamoDB
 *   answers ProvisionedThroughputExceededException instead, as AWS does when nothing of a batch
 *   could be processed (so a one-entry batch always meets that throttle). SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch
 *   report the held-back entries in `Failed` (`SenderFault: false`, `InternalError`), the rest
 *   as the service answered them (all held back: HTTP 200 with every entry in `Failed`).
 * - `seed=N` — a deterministic pseudo-random sequence (0 to 4294967295): the same calls, one at a
 *   time, meet the same faults. Concurrent calls meet them in the order they arrive.
 * - `max=N` — at most N requests are faulted, then everything is forwarded (`lost=1,max=1`: the
 *   first call's answer is lost, its retry goes through).
 * - `ops=data|all|Op1|Op2…` — which operations may be faulted. `data` (the default): the data
 *   plane, which the handlers call — DynamoDB GetItem, PutItem, UpdateItem, DeleteItem, Query, Scan,
 *   BatchGetItem, BatchWriteItem, the transactions and PartiQL; SQS SendMessage(Batch),
 *   ReceiveMessage, DeleteMessage(Batch), ChangeMessageVisibility(Batch). The control plane
 *   (CreateTable, DescribeTable, CreateQueue, GetQueueAttributes…) is what CloudFormation does on
 *   AWS, not the handlers, and is left alone unless `all` or named. A list names operations
 *   separated by `|` (`ops=PutItem|UpdateItem`).
 *
 * Every fault may hit every chosen operation (`unprocessed` the batches alone), ReceiveMessage
 * long polls included: on AWS they are throttled, fail and get slow like any call (a slow long
 * poll adds its delay to the wait; the event source's client allows the wait plus 5 s). The
 * rates of throttle, error, reset, lost and unprocessed are exclusive outcomes of one draw and
 * add up to at most 1; `slow` is drawn on its own and delays whatever is forwarded (a lost answer
 * or a partial batch too). Throttles and errors answer at once, as AWS answers them.
 *
 * The SDK's standard retry mode also keeps a retry budget per client, as on AWS: 500 tokens, a
 * transient retry costs 14 and a throttled one 5, a call that succeeds gives back what its retry
 * cost (1 if it needed none). High rates can exhaust it, and a client then fails calls at their
 * first error without retrying.
 *
 * One proxy stands in front of one server; the local stack starts one per service, from the same
 * spec (each has its own sequence of the seed). `injected()` counts what each one did.
 *
 * A batch's forwarded part is re-serialised, so its SigV4 signature no longer matches: dynalite
 * and fauxqs check none. The proxy keeps connections alive on both sides, bounds every wait
 * (receiving a request 30 s, 35 s of silence from the upstream, an idle upstream socket 4 s) and
 * `close()` destroys every socket and wakes every delay.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { crc32 } from 'node:zlib';

/** The environment variable the local stack reads. */
export const faultsEnvName = 'WAAS_FAULTS';

export type FaultKind = 'throttle' | 'error' | 'slow' | 'reset' | 'lost' | 'unprocessed';

export interface FaultSpec {
  /** Probability per request of a throttling answer (nothing forwarded). */
  throttle?: number;
  /** Probability per request of a 5xx answer (nothing forwarded). */
  error?: number;
  /** Probability per request of a connection reset before forwarding. */
  reset?: number;
  /** Probability per request of a connection reset after the upstream answered. */
  lost?: number;
  /** Probability per batch request of part of its entries being answered unprocessed. */
  unprocessed?: number;
  /** Probability per request of an extra delay of minMs–maxMs. */
  slow?: { rate: number; minMs: number; maxMs: number };
  /** A deterministic pseudo-random sequence; absent: Math.random. */
  seed?: number;
  /** At most this many requests faulted in all. */
  max?: number;
  /** Operations the faults may hit: 'data' (default), 'all', or their names. */
  operations?: 'data' | 'all' | readonly string[];
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT, to give the SDK client as its endpoint. */
  endpoint: string;
  /** Faults injected so far: by kind (`throttle`) and by kind and operation (`throttle:PutItem`). */
  injected(): Record<string, number>;
  /** Stops listening and destroys every socket, both sides. */
  close(): Promise<void>;
}

const dynamodbData = [
  'GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'Scan', 'BatchGetItem', 'BatchWriteItem',
  'TransactGetItems', 'TransactWriteItems', 'ExecuteStatement', 'BatchExecuteStatement', 'ExecuteTransaction',
];
const dynamodbControl = [
  'CreateTable', 'DeleteTable', 'DescribeTable', 'UpdateTable', 'ListTables', 'DescribeTimeToLive', 'UpdateTimeToLive',
  'TagResource', 'UntagResource', 'ListTagsOfResource', 'DescribeEndpoints', 'DescribeLimits', 'DescribeContinuousBackups',
  'UpdateContinuousBackups', 'CreateBackup', 'DeleteBackup', 'DescribeBackup', 'ListBackups', 'RestoreTableFromBackup',
  'RestoreTableToPointInTime', 'CreateGlobalTable', 'DescribeGlobalTable', 'ListGlobalTables', 'UpdateGlobalTable',
  'DescribeKinesisStreamingDestination', 'DescribeContributorInsights', 'ListContributorInsights', 'UpdateContributorInsights',
  'ExportTableToPointInTime', 'DescribeExport', 'ListExports', 'ImportTable', 'DescribeImport', 'ListImports',
  'GetResourcePolicy', 'PutResourcePolicy', 'DeleteResourcePolicy', 'UpdateTableReplicaAutoScaling', 'DescribeTableReplicaAutoScaling',
];
const sqsData = ['SendMessage', 'SendMessageBatch', 'ReceiveMessage', 'DeleteMessage', 'DeleteMessageBatch', 'ChangeMessageVisibility', 'ChangeMessageVisibilityBatch'];
const sqsControl = [
  'CreateQueue', 'DeleteQueue', 'GetQueueUrl', 'GetQueueAttributes', 'SetQueueAttributes', 'ListQueues', 'PurgeQueue',
  'ListQueueTags', 'TagQueue', 'UntagQueue', 'ListDeadLetterSourceQueues', 'AddPermission', 'RemovePermission',
  'StartMessageMoveTask', 'CancelMessageMoveTask', 'ListMessageMoveTasks',
];
const dataPlane = new Set([...dynamodbData, ...sqsData]);
const knownOperations = new Set([...dataPlane, ...dynamodbControl, ...sqsControl]);
const batchOperations = new Set(['BatchWriteItem', 'BatchGetItem', 'SendMessageBatch', 'DeleteMessageBatch', 'ChangeMessageVisibilityBatch']);
const dynamodbReads = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems', 'ExecuteStatement', 'BatchExecuteStatement']);

/** The longest `slow` delay accepted: every wait stays bounded. */
const maxSlowMs = 120_000;
const maxBodyBytes = 32 * 1024 * 1024;
const upstreamTimeoutMs = 35_000;
const upstreamIdleMs = 4_000;

const rateKeys = ['throttle', 'error', 'reset', 'lost', 'unprocessed'] as const;
const knownKeys = [...rateKeys, 'slow', 'seed', 'max', 'ops'];

function fail(message: string): never {
  throw new Error(`${faultsEnvName}: ${message}`);
}

function isRate(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1;
}

/** Refuses a spec no proxy can honour, naming the key and the rule. */
function checkSpec(spec: FaultSpec): void {
  for (const key of rateKeys) {
    const value = spec[key];
    if (value !== undefined && !isRate(value)) fail(`${key} must be a probability from 0 to 1, got ${String(value)}`);
  }
  const exclusive = rateKeys.reduce((sum, key) => sum + (spec[key] ?? 0), 0);
  if (exclusive > 1 + 1e-9) fail(`throttle, error, reset, lost and unprocessed are exclusive outcomes and must add up to at most 1, got ${Number(exclusive.toFixed(6))}`);
  if (spec.slow) {
    const { rate, minMs, maxMs } = spec.slow;
    if (!isRate(rate)) fail(`slow's rate must be a probability from 0 to 1, got ${String(rate)}`);
    for (const [name, ms] of [['minimum', minMs], ['maximum', maxMs]] as const) {
      if (!Number.isSafeInteger(ms) || ms < 0 || ms > maxSlowMs) fail(`slow's ${name} delay must be whole milliseconds from 0 to ${maxSlowMs}, got ${String(ms)}`);
    }
    if (minMs > maxMs) fail(`slow's delay range must run from the smaller to the larger, got ${minMs}-${maxMs}`);
  }
  if (spec.seed !== undefined && (!Number.isSafeInteger(spec.seed) || spec.seed < 0 || spec.seed > 0xffff_ffff)) fail(`seed must be an integer from 0 to 4294967295, got ${String(spec.seed)}`);
  if (spec.max !== undefined && (!Number.isSafeInteger(spec.max) || spec.max < 0)) fail(`max must be a whole number of requests, got ${String(spec.max)}`);
  const ops = spec.operations;
  if (ops !== undefined && ops !== 'data' && ops !== 'all') {
    if (!Array.isArray(ops) || ops.length === 0) fail(`ops must be data, all, or operation names separated by |`);
    for (const name of ops) if (!knownOperations.has(name)) fail(`ops names an unknown operation ${JSON.stringify(name)} (DynamoDB and SQS operations, e.g. PutItem|SendMessage)`);
  }
}

const ratePattern = /^(?:0|1|0?\.\d+|[01]\.\d*)$/;
const msPattern = /^\d{1,9}$/;

function parseRate(key: string, value: string): number {
  const rate = ratePattern.test(value) ? Number(value) : Number.NaN;
  if (!isRate(rate)) fail(`${key} must be a probability from 0 to 1 (e.g. ${key}=0.05), got ${JSON.stringify(value)}`);
  return rate;
}

/**
 * The fault mode the variable asks for; undefined when it is unset, empty or `off`. Throws an
 * Error naming the key and its rule on anything else it cannot read.
 */
export function faultsFromEnv(value: string | undefined): FaultSpec | undefined {
  const text = value?.trim() ?? '';
  if (text === '' || text === 'off') return undefined;
  const spec: FaultSpec = {};
  const seen = new Set<string>();
  for (const part of text.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) fail(`${JSON.stringify(item)} is not key=value (keys: ${knownKeys.join(', ')})`);
    const key = item.slice(0, eq).trim();
    const raw = item.slice(eq + 1).trim();
    if (!knownKeys.includes(key)) fail(`unknown key ${JSON.stringify(key)} (keys: ${knownKeys.join(', ')})`);
    if (seen.has(key)) fail(`${key} is given twice`);
    seen.add(key);
    switch (key) {
      case 'slow': {
        const match = /^([^:]+):(\d+)(?:-(\d+))?$/.exec(raw);
        if (!match?.[1] || !match[2]) fail(`slow must be RATE:MIN-MAX or RATE:MS in milliseconds (e.g. slow=0.05:50-400), got ${JSON.stringify(raw)}`);
        const rate = parseRate('slow', match[1]);
        if (!msPattern.test(match[2]) || (match[3] !== undefined && !msPattern.test(match[3]))) fail(`slow's delays must be whole milliseconds up to ${maxSlowMs}, got ${JSON.stringify(raw)}`);
        spec.slow = { rate, minMs: Number(match[2]), maxMs: Number(match[3] ?? match[2]) };
        break;
      }
      case 'seed':
      case 'max': {
        if (!/^\d{1,10}$/.test(raw)) fail(`${key} must be a whole number, got ${JSON.stringify(raw)}`);
        spec[key] = Number(raw);
        break;
      }
      case 'ops': {
        if (raw === 'data' || raw === 'all') spec.operations = raw;
        else spec.operations = raw.split('|').map((name) => name.trim());
        break;
      }
      default:
        spec[key as (typeof rateKeys)[number]] = parseRate(key, raw);
    }
  }
  checkSpec(spec);
  return spec;
}

/** mulberry32: a small, fast, seedable generator of numbers in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Service = 'dynamodb' | 'sqs';
interface Operation {
  service: Service;
  name: string;
}

interface Answer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: Buffer;
}

type Outcome = 'pass' | 'throttle' | 'error' | 'reset' | 'lost' | 'unprocessed';
interface Plan {
  outcome: Outcome;
  /** Extra delay, split around the forwarding. */
  slowMs: number;
  slowBeforeMs: number;
}

type Json = Record<string, unknown>;

function operationOf(headers: IncomingHttpHeaders): Operation | undefined {
  const target = headers['x-amz-target'];
  if (typeof target !== 'string') return undefined;
  const dot = target.indexOf('.');
  if (dot < 0) return undefined;
  const prefix = target.slice(0, dot);
  const name = target.slice(dot + 1);
  if (prefix.startsWith('DynamoDB_')) return { service: 'dynamodb', name };
  if (prefix === 'AmazonSQS') return { service: 'sqs', name };
  return undefined;
}

function regionOf(headers: IncomingHttpHeaders): string {
  const auth = headers['authorization'];
  const match = typeof auth === 'string' ? /Credential=[^/]+\/\d{8}\/([a-z0-9-]+)\//.exec(auth) : null;
  return match?.[1] ?? 'us-east-1';
}

function jsonAnswer(service: Service, status: number, payload: unknown, extra: OutgoingHttpHeaders = {}): Answer {
  const body = Buffer.from(JSON.stringify(payload));
  const headers: OutgoingHttpHeaders = {
    'content-type': 'application/x-amz-json-1.0',
    'x-amzn-requestid': service === 'dynamodb' ? randomBytes(39).toString('base64').toUpperCase().replace(/[+/=]/g, '0') : randomUUID(),
    date: new Date().toUTCString(),
    ...extra,
  };
  if (service === 'dynamodb') headers['x-amz-crc32'] = String(crc32(body));
  return { status, headers, body };
}

function parseJson(body: Buffer): Json | undefined {
  try {
    const value: unknown = JSON.parse(body.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Json) : undefined;
  } catch {
    return undefined;
  }
}

function firstTable(operation: string, request: Json | undefined): string {
  if (!request) return 'unknown';
  if (typeof request['TableName'] === 'string') return request['TableName'];
  const items = request['RequestItems'];
  if (items && typeof items === 'object') {
    const [table] = Object.keys(items);
    if (table) return table;
  }
  const transact = request['TransactItems'];
  if (Array.isArray(transact)) {
    for (const entry of transact as Json[]) {
      for (const inner of Object.values(entry ?? {})) {
        const table = (inner as Json | undefined)?.['TableName'];
        if (typeof table === 'string') return table;
      }
    }
  }
  return operation.includes('Statement') || operation === 'ExecuteTransaction' ? 'partiql' : 'unknown';
}

function throttleAnswer(op: Operation, request: Json | undefined, headers: IncomingHttpHeaders): Answer {
  if (op.service === 'dynamodb') {
    if (!dataPlane.has(op.name)) {
      return jsonAnswer('dynamodb', 400, { __type: 'com.amazon.coral.availability#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' });
    }
    const table = firstTable(op.name, request);
    return jsonAnswer('dynamodb', 400, {
      __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
      message:
        'Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table or index so please try again shortly. If exceptions persist, check if you have a hot key: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html',
      ThrottlingReasons: [
        {
          reason: dynamodbReads.has(op.name) ? 'TableReadKeyRangeThroughputExceeded' : 'TableWriteKeyRangeThroughputExceeded',
          resource: `arn:aws:dynamodb:${regionOf(headers)}:000000000000:table/${table}`,
        },
      ],
    });
  }
  if (sqsData.includes(op.name)) {
    return jsonAnswer('sqs', 403, { __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Request is throttled.' }, { 'x-amzn-query-error': 'RequestThrottled;Sender' });
  }
  return jsonAnswer('sqs', 400, { __type: 'com.amazon.coral.availability#ThrottlingException', message: 'Rate exceeded' }, { 'x-amzn-query-error': 'ThrottlingException;Sender' });
}

function errorAnswer(op: Operation, pick: number): Answer {
  if (op.service === 'dynamodb') {
    const variants = [
      [500, 'com.amazonaws.dynamodb.v20120810#InternalServerError', 'Internal server error'],
      [500, 'com.amazon.coral.service#InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.'],
      [503, 'com.amazon.coral.availability#ServiceUnavailableException', 'The service is currently unavailable or busy.'],
    ] as const;
    const [status, type, message] = variants[Math.floor(pick * variants.length)] ?? variants[0];
    return jsonAnswer('dynamodb', status, { __type: type, message });
  }
  const variants = [
    [500, 'InternalError', 'We encountered an internal error. Please try again.'],
    [503, 'ServiceUnavailable', 'The request has failed due to a temporary failure of the server.'],
  ] as const;
  const [status, code, message] = variants[Math.floor(pick * variants.length)] ?? variants[0];
  return jsonAnswer('sqs', status, { __type: `com.amazonaws.sqs#${code}`, message }, { 'x-amzn-query-error': `${code};Receiver` });
}

/** What a partial batch forwards, and how its answer is completed with what was held back. */
interface BatchSplit {
  /** The request with the processed entries alone; absent when every entry was held back. */
  forward?: Json;
  /** The upstream's 200 answer, completed with the held-back entries. */
  complete(upstream: Json): Json;
  /** The answer when nothing was forwarded. */
  whole: Answer;
}

/** About half the entries held back, at least one: a mask of the held-back ones. */
function holdBack(count: number, random: () => number): boolean[] {
  const mask = Array.from({ length: count }, () => random() < 0.5);
  if (!mask.includes(true)) mask[Math.floor(random() * count)] = true;
  return mask;
}

function splitBatch(op: Operation, request: Json, headers: IncomingHttpHeaders, random: () => number): BatchSplit | undefined {
  if (op.name === 'BatchWriteItem' || op.name === 'BatchGetItem') {
    const items = request['RequestItems'];
    if (!items || typeof items !== 'object') return undefined;
    const isGet = op.name === 'BatchGetItem';
    const entries: { table: string; entry: unknown }[] = [];
    for (const [table, value] of Object.entries(items as Json)) {
      const list = isGet ? (value as Json | undefined)?.['Keys'] : value;
      if (!Array.isArray(list)) return undefined;
      for (const entry of list) entries.push({ table, entry });
    }
    if (entries.length === 0) return undefined;
    const mask = holdBack(entries.length, random);
    const group = (held: boolean): Json => {
      const out: Json = {};
      entries.forEach(({ table, entry }, i) => {
        if (mask[i] !== held) return;
        if (isGet) {
          const spec = (out[table] ??= { ...((items as Json)[table] as Json), Keys: [] }) as { Keys: unknown[] };
          spec.Keys.push(entry);
        } else {
          ((out[table] ??= []) as unknown[]).push(entry);
        }
      });
      return out;
    };
    const kept = group(false);
    const heldBack = group(true);
    const field = isGet ? 'UnprocessedKeys' : 'UnprocessedItems';
    return {
      ...(Object.keys(kept).length > 0 ? { forward: { ...request, RequestItems: kept } } : {}),
      complete: (upstream) => {
        const merged: Json = { ...((upstream[field] as Json | undefined) ?? {}) };
        for (const [table, value] of Object.entries(heldBack)) {
          const before = merged[table];
          if (isGet) {
            const held = value as { Keys: unknown[] };
            merged[table] = before ? { ...(before as Json), Keys: [...(((before as Json)['Keys'] as unknown[] | undefined) ?? []), ...held.Keys] } : held;
          } else {
            merged[table] = [...((before as unknown[] | undefined) ?? []), ...(value as unknown[])];
          }
        }
        return { ...upstream, [field]: merged };
      },
      whole: throttleAnswer(op, request, headers),
    };
  }
  const list = request['Entries'];
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const mask = holdBack(list.length, random);
  const failed = list
    .filter((_, i) => mask[i])
    .map((entry) => ({ Id: (entry as Json)['Id'], SenderFault: false, Code: 'InternalError', Message: 'We encountered an internal error. Please try again.' }));
  const kept = list.filter((_, i) => !mask[i]);
  return {
    ...(kept.length > 0 ? { forward: { ...request, Entries: kept } } : {}),
    complete: (upstream) => ({ ...upstream, Successful: (upstream['Successful'] as unknown[] | undefined) ?? [], Failed: [...((upstream['Failed'] as unknown[] | undefined) ?? []), ...failed] }),
    whole: jsonAnswer('sqs', 200, { Successful: [], Failed: failed }),
  };
}

/** Headers of one connection, not of the call; the proxy sets its own content-length (and answers any Expect itself). */
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect']);

function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  return out;
}

/** A connection reset, as a network failure or a dropped load-balancer connection looks. */
function reset(socket: Socket | null): void {
  if (!socket || socket.destroyed) return;
  if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
  else socket.destroy();
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        req.destroy();
        reject(new Error('request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('the client went away'));
    });
  });
}

/**
 * Starts a proxy on 127.0.0.1 (a free port, or `port`) in front of `upstream` (http://host:port),
 * faulting what `spec` asks for. Requests that are not DynamoDB's or SQS's JSON protocol pass untouched.
 */
export async function startFaultProxy(upstream: string, spec: FaultSpec, port = 0): Promise<FaultProxy> {
  checkSpec(spec);
  const target = new URL(upstream);
  if (target.protocol !== 'http:') throw new Error(`the fault proxy forwards to http:// endpoints, not ${upstream}`);
  const upstreamHost = target.hostname.replace(/^\[|\]$/g, '');
  const upstreamPort = Number(target.port || 80);
  const random = spec.seed === undefined ? Math.random : seeded(spec.seed);
  const rates = { throttle: spec.throttle ?? 0, error: spec.error ?? 0, reset: spec.reset ?? 0, lost: spec.lost ?? 0, unprocessed: spec.unprocessed ?? 0 };
  const slow = spec.slow ?? { rate: 0, minMs: 0, maxMs: 0 };
  const operations = spec.operations ?? 'data';
  const chosen = operations === 'data' ? dataPlane : operations === 'all' ? undefined : new Set(operations);
  const budget = spec.max ?? Number.POSITIVE_INFINITY;

  const counts = new Map<string, number>();
  let faulted = 0;
  let closed = false;
  const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: upstreamIdleMs });
  const inflight = new Set<ClientRequest>();
  const sleepers = new Set<() => void>();

  const count = (kind: FaultKind, op: Operation) => {
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const key = `${kind}:${op.name}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  };

  const pass: Plan = { outcome: 'pass', slowMs: 0, slowBeforeMs: 0 };
  const decide = (op: Operation): Plan => {
    if (chosen && !chosen.has(op.name)) return pass;
    if (faulted >= budget) return pass;
    const draw = random();
    const slowDraw = random();
    let outcome: Outcome = 'pass';
    let edge = 0;
    for (const kind of rateKeys) {
      if (kind === 'unprocessed' && !batchOperations.has(op.name)) continue;
      edge += rates[kind];
      if (draw < edge) {
        outcome = kind;
        break;
      }
    }
    const forwards = outcome === 'pass' || outcome === 'lost' || outcome === 'unprocessed';
    let slowMs = 0;
    let slowBeforeMs = 0;
    if (forwards && slowDraw < slow.rate) {
      slowMs = slow.minMs + Math.floor(random() * (slow.maxMs - slow.minMs + 1));
      slowBeforeMs = Math.floor(random() * (slowMs + 1));
    }
    if (outcome !== 'pass' || slowMs > 0) faulted++;
    return { outcome, slowMs, slowBeforeMs };
  };

  const sleep = (ms: number): Promise<void> => {
    if (ms <= 0 || closed) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  };

  const forwardOnce = (req: IncomingMessage, body: Buffer): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const outgoing = httpRequest({
        agent,
        host: upstreamHost,
        port: upstreamPort,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), 'content-length': body.length },
      });
      inflight.add(outgoing);
      outgoing.setTimeout(upstreamTimeoutMs, () => outgoing.destroy(new Error(`the upstream did not answer within ${upstreamTimeoutMs} ms`)));
      outgoing.once('response', (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () => {
          inflight.delete(outgoing);
          resolve({ status: response.statusCode ?? 502, headers: endToEnd(response.headers), body: Buffer.concat(chunks) });
        });
        response.once('error', (error) => {
          inflight.delete(outgoing);
          reject(error);
        });
      });
      outgoing.once('error', (error: NodeJS.ErrnoException) => {
        inflight.delete(outgoing);
        // A kept-alive socket the upstream closed as we picked it: nothing reached it, try a fresh one.
        Object.assign(error, { retryable: outgoing.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') });
        reject(error);
      });
      outgoing.end(body);
    });

  const forward = async (req: IncomingMessage, body: Buffer): Promise<Answer> => {
    try {
      return await forwardOnce(req, body);
    } catch (error) {
      if ((error as { retryable?: boolean }).retryable && !closed) return forwardOnce(req, body);
      throw error;
    }
  };

  const send = (res: ServerResponse, answer: Answer) => {
    if (closed || res.destroyed || !res.socket || res.socket.destroyed) return;
    res.writeHead(answer.status, { ...answer.headers, 'content-length': answer.body.length });
    res.end(answer.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    if (closed) return;
    const op = operationOf(req.headers);
    const plan = op ? decide(op) : pass;
    if (!op || plan === pass) {
      send(res, await forward(req, body));
      return;
    }
    if (plan.outcome === 'throttle') {
      count('throttle', op);
      send(res, throttleAnswer(op, parseJson(body), req.headers));
      return;
    }
    if (plan.outcome === 'error') {
      count('error', op);
      send(res, errorAnswer(op, random()));
      return;
    }
    if (plan.outcome === 'reset') {
      count('reset', op);
      reset(req.socket);
      return;
    }
    let forwardBody = body;
    let split: BatchSplit | undefined;
    if (plan.outcome === 'unprocessed') {
      const request = parseJson(body);
      split = request ? splitBatch(op, request, req.headers, random) : undefined;
      if (split) {
        count('unprocessed', op);
        if (!split.forward) {
          send(res, split.whole);
          return;
        }
        forwardBody = Buffer.from(JSON.stringify(split.forward));
      }
    }
    if (plan.slowMs > 0) count('slow', op);
    await sleep(plan.slowBeforeMs);
    if (closed) return;
    let answer = await forward(req, forwardBody);
    await sleep(plan.slowMs - plan.slowBeforeMs);
    if (closed) return;
    if (plan.outcome === 'lost') {
      count('lost', op);
      reset(req.socket);
      return;
    }
    if (split && answer.status === 200) {
      const upstreamAnswer = parseJson(answer.body);
      if (upstreamAnswer) {
        const bodyOut = Buffer.from(JSON.stringify(split.complete(upstreamAnswer)));
        const headers = { ...answer.headers };
        if (headers['x-amz-crc32'] !== undefined) headers['x-amz-crc32'] = String(crc32(bodyOut));
        answer = { status: 200, headers, body: bodyOut };
      }
    }
    send(res, answer);
  };

  const server = createServer({ keepAlive: true, requestTimeout: 30_000, headersTimeout: 10_000 });
  server.keepAliveTimeout = 60_000;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => reset(req.socket));
  });
  // A client that vanishes mid-request is no concern of ours.
  server.on('clientError', (_error, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const listening = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${listening}`,
    injected: () => Object.fromEntries(counts),
    close: () =>
      (closing ??= (async () => {
        closed = true;
        for (const wake of [...sleepers]) wake();
        for (const outgoing of inflight) outgoing.destroy();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        agent.destroy();
        await stopped;
      })()),
  };
}
