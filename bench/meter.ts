/**
 * Meters AWS calls from outside the product: SDK v3 middleware that the bench adds to a client's
 * middleware stack. Each call is counted by operation and by what it touched (table and item
 * kind, the attributes an update sets and removes, the queue), with its failures by error name,
 * the bytes it sent and received, the DynamoDB capacity it consumed (the meter asks for it:
 * ReturnConsumedCapacity TOTAL) and the SQS requests it is billed as (64 KiB chunks). Runs
 * inside the stack process; its snapshot goes to the bench over IPC.
 *
 * ```ts
 * const meter = new CallMeter({ indexKeys: { 'waas-jobs': indexKeysOf(tables.jobs) } }); // unsettled (sweep), due (due)
 * meter.attach(services().aws.dynamodb); // the document client shares this client's stack
 * meter.attach(stack.eventSource, 'event source');
 * meter.snapshot(); // { 'DynamoDB GetItem waas-jobs sk=job': { calls, capacityUnits, ... }, ... }
 * ```
 *
 * Where the middleware sits, and what it sees there:
 * - initialize (outermost): the command's input as the caller wrote it — for the document client
 *   plain values (`{ sk: 'job' }`), for a bare DynamoDBClient attribute values (`{ sk: { S:
 *   'job' } }`); both are read. The output comes back here after every retry, unmarshalled,
 *   or the error the caller gets. One call is counted here.
 * - finalizeRequest (innermost, so inside the retry middleware): each attempt's HTTP request,
 *   its body serialised and its content-length set.
 * - deserialize (innermost, next to the HTTP handler): each attempt's raw HTTP response.
 */
import type { HandlerExecutionContext, HttpRequest, HttpResponse, MiddlewareStack } from '@smithy/types';
import { tables } from '../lib/definitions.ts';
import { sqsBatchBilledRequests, sqsBilledRequests } from './cost.ts';

/** What the meter needs of a client: its middleware stack (a DynamoDBClient, an SQSClient). */
export interface MeterableClient {
  // Any client's: its commands' input and output types do not matter here.
  middlewareStack: MiddlewareStack<any, any>;
}

export type MeteredService = 'DynamoDB' | 'SQS';

export interface OperationStats {
  service: MeteredService;
  operation: string;
  /** What it touched: table and item kind, or queue. */
  detail: string;
  /** Who called: the handlers' clients, or the event source mapping's poller. */
  caller: string;
  calls: number;
  failures: number;
  /** Failures by the error's name (ConditionalCheckFailedException, ...). */
  errors: Record<string, number>;
  /** HTTP attempts, retries included (SQS bills each one). */
  attempts: number;
  /** Bytes of the request bodies sent, every attempt. */
  requestBytes: number;
  /** Bytes of the response bodies received (their content-length), every attempt. */
  responseBytes: number;
  /** DynamoDB: read (RRU) or write (WRU) units consumed, from ConsumedCapacity. */
  capacityUnits: number;
  /** DynamoDB: units assumed for calls that returned no ConsumedCapacity (failed conditional writes). */
  estimatedUnits: number;
  /** SQS: requests as billed (64 KiB chunks). */
  billedRequests: number;
  /** SQS: messages sent, received, deleted or made visible later. */
  messages: number;
  /** Items or messages returned (Query pages, BatchGetItem, receives). */
  returned: number;
}

export type MeterSnapshot = Record<string, OperationStats>;

/**
 * A GSI as the meter bills it: its partition-key attribute (a write that sets or removes it
 * writes the index), its sort key if it has one (an item is in the index only with both), and
 * the non-key attributes it projects (a write that changes one of them, or the sort key, of an
 * item that has the key writes the index too). A keys-only index projects nothing more: only
 * its keys, and the table's, which no update changes.
 */
export type IndexKey = string | { key: string; sortKey?: string; projected: readonly string[] };

/** A global secondary index as lib/definitions.ts describes one. */
interface IndexDefinition {
  name: string;
  partitionKey: string;
  sortKey?: string;
  projected?: readonly string[];
}

const isIndexDefinition = (value: unknown): value is IndexDefinition =>
  typeof value === 'object' && value !== null && typeof (value as IndexDefinition).name === 'string' && typeof (value as IndexDefinition).partitionKey === 'string';

/**
 * Every GSI of a table's definition (lib/definitions.ts: each entry with a `name` and a
 * `partitionKey`, such as `tables.jobs.unsettledIndex` and `dueIndex`), by index name, as the
 * meter bills them: a new index there is metered without a change here.
 */
export function indexKeysOf(table: Readonly<Record<string, unknown>>): Record<string, IndexKey> {
  const indexes: Record<string, IndexKey> = {};
  for (const value of Object.values(table)) {
    if (!isIndexDefinition(value)) continue;
    indexes[value.name] = { key: value.partitionKey, ...(value.sortKey !== undefined ? { sortKey: value.sortKey } : {}), projected: [...(value.projected ?? [])] };
  }
  return indexes;
}

export interface CallMeterOptions {
  /** Per table, the GSIs and what makes a write write them. */
  indexKeys?: Record<string, Record<string, IndexKey>>;
  /**
   * Whether an item the meter has not seen written has the index key, for billing its removal
   * or a change of a projected attribute (default true: it came from before the meter started, and may). One meter of several, each
   * seeing only its own environment's writes, says false: the others wrote the item, and the
   * bench's load gives no job the key when it is made.
   */
  unseenItemsIndexed?: boolean;
}

/** The operations that take ReturnConsumedCapacity. */
const capacityOperations = new Set([
  'GetItem',
  'PutItem',
  'UpdateItem',
  'DeleteItem',
  'Query',
  'Scan',
  'BatchWriteItem',
  'BatchGetItem',
  'TransactWriteItems',
  'TransactGetItems',
  'ExecuteStatement',
  'BatchExecuteStatement',
  'ExecuteTransaction',
]);
const readOperations = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);

type Input = Record<string, unknown>;
interface Capacity {
  CapacityUnits?: number;
}

/** One call in flight, carried in the SDK's handler context from step to step. */
interface CallSizes {
  attempts: number;
  requestBytes: number;
  responseBytes: number;
}

/** What one call was, once it is over. */
export interface MeteredCall extends CallSizes {
  service: MeteredService;
  operation: string;
  caller: string;
  input: Input;
  output: Input | undefined;
  error: unknown;
}

function queueName(url: unknown): string {
  return typeof url === 'string' ? (url.split('/').pop() ?? url) : '?';
}

/** A string attribute, plain (document client: `'job'`) or as an attribute value (`{ S: 'job' }`). */
function stringValue(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  const text = value && typeof value === 'object' ? (value as { S?: unknown }).S : undefined;
  return typeof text === 'string' ? text : undefined;
}

function keyString(item: unknown, name: string): string | undefined {
  return item && typeof item === 'object' ? stringValue((item as Input)[name]) : undefined;
}

/** An item's identity by its key attributes (`pk`, and `sk` if any), as the jobs table has them. */
function itemId(item: unknown): string {
  return JSON.stringify([keyString(item, 'pk') ?? null, keyString(item, 'sk') ?? null]);
}

function tableOf(input: Input): string {
  if (typeof input['TableName'] === 'string') return input['TableName'];
  const items = input['RequestItems'];
  if (items && typeof items === 'object') return Object.keys(items).join(',');
  return '?';
}

/** A partition key of a client's listing entries (lib/definitions.ts `tables.jobs.listing`). */
const isListing = (pk: string | undefined) => pk?.startsWith(tables.jobs.listing.prefix) === true;

/**
 * A short, stable description of what a DynamoDB call touched, to tell its calls apart. A
 * listing entry (its sort key is an instant and a job id, one of its own per entry) is
 * `#listing`, whether written or read by its Query.
 */
export function describeDynamoCall(operation: string, input: Input): string {
  const table = tableOf(input);
  const sk = (item: unknown) => {
    if (isListing(keyString(item, 'pk'))) return ' #listing';
    const value = keyString(item, 'sk');
    return value === undefined ? '' : ` sk=${value}`;
  };
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
      return `${table}${sk(input['Key'])}`;
    case 'PutItem':
      return `${table}${sk(input['Item'])}`;
    case 'UpdateItem':
      return `${table}${sk(input['Key'])} ${describeUpdate(String(input['UpdateExpression'] ?? ''), (input['ExpressionAttributeNames'] ?? {}) as Record<string, string>)}`;
    case 'Query':
    case 'Scan': {
      const listing = isListing(keyString(input['ExpressionAttributeValues'], ':pk')) ? ' #listing' : '';
      return `${table}${typeof input['IndexName'] === 'string' ? ` index ${input['IndexName']}` : ''}${listing}`;
    }
    default:
      return table;
  }
}

/** "SET a = :a, b = :b REMOVE c" → "set a,b −c": which attributes an update changes, in a few characters. */
export function describeUpdate(expression: string, names: Record<string, string>): string {
  const { set, removed } = updatedAttributes(expression, names);
  return [set.length ? `set ${set.join(',')}` : '', removed.length ? `−${removed.join(',−')}` : ''].filter(Boolean).join(' ');
}

/** Names an update sets (or adds to) and removes, resolved through ExpressionAttributeNames, sorted. */
function updatedAttributes(expression: string, names: Record<string, string>): { set: string[]; removed: string[] } {
  const resolve = (token: string) => names[token] ?? token;
  const set: string[] = [];
  const removed: string[] = [];
  let mode: 'set' | 'remove' | undefined;
  for (const clause of expression.split(/\b(SET|REMOVE|ADD|DELETE)\b/i)) {
    const upper = clause.trim().toUpperCase();
    if (upper === 'SET' || upper === 'ADD' || upper === 'DELETE') mode = 'set';
    else if (upper === 'REMOVE') mode = 'remove';
    else if (mode && clause.trim()) {
      // SET a = if_not_exists(b, :x), c = :c: split on the commas outside parentheses.
      let depth = 0;
      let part = '';
      const parts: string[] = [];
      for (const char of clause) {
        if (char === '(') depth++;
        else if (char === ')') depth--;
        if (char === ',' && depth === 0) {
          parts.push(part);
          part = '';
        } else part += char;
      }
      parts.push(part);
      for (const each of parts) {
        const target = each.trim().split(/[\s=]/)[0]?.trim();
        if (target) (mode === 'set' ? set : removed).push(resolve(target));
      }
    }
  }
  return { set: set.sort(), removed: removed.sort() };
}

function sumCapacity(consumed: unknown): number | undefined {
  if (consumed === undefined || consumed === null) return undefined;
  const list = (Array.isArray(consumed) ? consumed : [consumed]) as Capacity[];
  return list.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
}

/** A message's payload as SQS bills it: its body and its attributes' names, types and values. */
function messageBytes(entry: Input): number {
  let bytes = Buffer.byteLength(String(entry['MessageBody'] ?? entry['Body'] ?? ''));
  for (const [name, attribute] of Object.entries((entry['MessageAttributes'] ?? {}) as Record<string, { StringValue?: string; DataType?: string }>)) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType ?? '') + Buffer.byteLength(attribute.StringValue ?? '');
  }
  return bytes;
}

/** A body's size: its content-length when set, else its bytes. */
function bodyBytes(message: { headers?: Record<string, string | undefined>; body?: unknown }): number {
  const header = message.headers?.['content-length'] ?? message.headers?.['Content-Length'];
  if (header !== undefined && Number.isFinite(Number(header))) return Number(header);
  const body = message.body;
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (ArrayBuffer.isView(body)) return body.byteLength;
  return 0;
}

/** The operation of a command, from the handler context the SDK gives middleware ('GetItemCommand' → 'GetItem'). */
function operationOf(context: HandlerExecutionContext): string {
  return String(context.commandName ?? '?').replace(/Command$/, '');
}

function serviceOf(context: HandlerExecutionContext): MeteredService | undefined {
  if (context.clientName === 'DynamoDBClient') return 'DynamoDB';
  if (context.clientName === 'SQSClient') return 'SQS';
  return undefined;
}

let meters = 0;

export class CallMeter {
  private stats = new Map<string, OperationStats>();
  private readonly attached = new WeakSet<object>();
  private readonly indexKeys: Record<string, Record<string, IndexKey>>;
  /** Per table, index key and item: whether the item has the key (see recordIndexWrites). */
  private readonly hasIndexKey = new Map<string, boolean>();
  /** This meter's middleware names and its slot in the SDK's handler context. */
  private readonly name = `benchCallMeter${++meters}`;

  private readonly unseenItemsIndexed: boolean;
  /** Calls counted so far: a snapshot is new only if this has moved. */
  recorded = 0;

  constructor(options: CallMeterOptions = {}) {
    this.indexKeys = options.indexKeys ?? {};
    this.unseenItemsIndexed = options.unseenItemsIndexed ?? true;
  }

  /** True once `attach` has been called with this client (or one that shares its stack). */
  has(client: MeterableClient): boolean {
    return this.attached.has(client.middlewareStack);
  }

  /**
   * Adds the meter's middleware to the client's stack (once per stack: a DynamoDBDocumentClient
   * shares its DynamoDBClient's); `caller` labels its calls. Calls of services other than
   * DynamoDB and SQS pass through uncounted.
   */
  attach(client: MeterableClient, caller = 'handlers'): void {
    const stack = client.middlewareStack;
    if (this.attached.has(stack)) return;
    this.attached.add(stack);
    const slot = this.name;
    const sizes = (context: HandlerExecutionContext) => context[slot] as CallSizes | undefined;

    stack.add(
      (next, context) => async (args) => {
        const service = serviceOf(context);
        if (!service) return next(args);
        const operation = operationOf(context);
        const call: CallSizes = { attempts: 0, requestBytes: 0, responseBytes: 0 };
        context[slot] = call;
        let input = args.input as Input;
        // A copy: the caller's command keeps the input it was given.
        if (service === 'DynamoDB' && capacityOperations.has(operation) && input['ReturnConsumedCapacity'] === undefined) input = { ...input, ReturnConsumedCapacity: 'TOTAL' };
        try {
          const result = await next({ ...args, input });
          this.record({ service, operation, caller, input, output: result.output as Input, error: undefined, ...call });
          return result;
        } catch (error) {
          this.record({ service, operation, caller, input, output: undefined, error, ...call });
          throw error;
        }
      },
      { step: 'initialize', priority: 'high', name: `${slot}Call`, override: true },
    );
    stack.add(
      (next, context) => async (args) => {
        const call = sizes(context);
        if (call) {
          call.attempts++;
          call.requestBytes += bodyBytes(args.request as HttpRequest);
        }
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: `${slot}Request`, override: true },
    );
    stack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const call = sizes(context);
        if (call) call.responseBytes += bodyBytes(result.response as HttpResponse);
        return result;
      },
      { step: 'deserialize', priority: 'low', name: `${slot}Response`, override: true },
    );
  }

  /** Counts one call (exposed for tests; the middleware calls it). */
  record(call: MeteredCall): void {
    this.recorded++;
    const { service, operation, caller, input, output, error } = call;
    const detail = service === 'SQS' ? queueName(input['QueueUrl']) : describeDynamoCall(operation, input);
    if (service === 'SQS') return this.recordSqs(call, detail);
    const stats = this.count(this.entry('DynamoDB', operation, detail, caller), call);
    if (error !== undefined) {
      // A failed conditional write still consumes write capacity (at least one unit); no
      // ConsumedCapacity comes back with the error, so one unit is assumed.
      if (!readOperations.has(operation)) stats.estimatedUnits += 1;
      return;
    }
    const consumed = sumCapacity(output?.['ConsumedCapacity']);
    if (consumed === undefined) stats.estimatedUnits += 1;
    else stats.capacityUnits += consumed;
    const items = output?.['Items'];
    if (Array.isArray(items)) stats.returned += items.length;
    const responses = output?.['Responses'];
    if (operation === 'BatchGetItem' && responses && typeof responses === 'object') {
      stats.returned += Object.values(responses as Record<string, unknown[]>).reduce((sum, list) => sum + (Array.isArray(list) ? list.length : 0), 0);
    }
    if (!readOperations.has(operation)) this.recordIndexWrites(operation, input, caller);
  }

  /** Calls, failures by name, attempts and bytes: what every call has. */
  private count(stats: OperationStats, call: MeteredCall): OperationStats {
    stats.calls++;
    stats.attempts += call.attempts;
    stats.requestBytes += call.requestBytes;
    stats.responseBytes += call.responseBytes;
    if (call.error !== undefined) {
      stats.failures++;
      const name = call.error instanceof Error ? call.error.name : typeof call.error;
      stats.errors[name] = (stats.errors[name] ?? 0) + 1;
    }
    return stats;
  }

  /**
   * GSI writes: dynalite leaves them out of ConsumedCapacity, AWS bills them. An index is
   * written only for items that have its key before or after the write, so the meter keeps, per
   * item it saw written, whether it has the key: removing a key the item never had (a job's
   * final write removes `sweep` whether or not a retry set it) writes no index entry. For an
   * item it has not seen written, a removal is billed if `unseenItemsIndexed`. An update that
   * changes a projected attribute of an item with the key rewrites its entry.
   */
  private recordIndexWrites(operation: string, input: Input, caller: string): void {
    const table = tableOf(input);
    const indexes = this.indexKeys[table];
    if (!indexes) return;
    for (const [index, spec] of Object.entries(indexes)) {
      const { key: attribute, sortKey, projected } = typeof spec === 'string' ? { key: spec, sortKey: undefined, projected: [] } : spec;
      // What rewrites an indexed item's entry: its sort key (never changed by the handlers) and what it projects.
      const rewritten = sortKey === undefined ? projected : [sortKey, ...projected];
      const state = (item: unknown) => `${table}\u0000${index}\u0000${itemId(item)}`;
      let writes = 0;
      if (operation === 'PutItem' || operation === 'DeleteItem') {
        // A whole item written, or deleted: an entry is written if it has the key now or had it.
        const key = operation === 'PutItem' ? input['Item'] : input['Key'];
        const item = operation === 'PutItem' ? (input['Item'] as Input | undefined) : undefined;
        const had = this.hasIndexKey.get(state(key));
        // An item is in the index only with every key attribute of it.
        const has = item?.[attribute] !== undefined && (sortKey === undefined || item[sortKey] !== undefined);
        if (item) this.hasIndexKey.set(state(key), has);
        else this.hasIndexKey.delete(state(key));
        writes = has || had === true ? 1 : 0;
      } else if (operation === 'UpdateItem') {
        const { set, removed } = updatedAttributes(String(input['UpdateExpression'] ?? ''), (input['ExpressionAttributeNames'] ?? {}) as Record<string, string>);
        const id = state(input['Key']);
        // Setting the key puts an index entry (a changed key would also delete the old one:
        // not a write the service makes); removing it deletes the entry, if there was one.
        if (set.includes(attribute)) {
          writes = 1;
          this.hasIndexKey.set(id, true);
        } else if (removed.includes(attribute)) {
          if (this.hasIndexKey.get(id) ?? this.unseenItemsIndexed) writes = 1;
          this.hasIndexKey.set(id, false);
        } else if (rewritten.some((name) => set.includes(name) || removed.includes(name)) && (this.hasIndexKey.get(id) ?? this.unseenItemsIndexed)) {
          writes = 1;
        }
      }
      if (writes > 0) {
        // An entry of keys and a few projected attributes is far below 1 KB: one unit per entry written or deleted.
        const stats = this.entry('DynamoDB', 'index write', `${table} index ${index} (${operation})`, caller);
        stats.calls += writes;
        stats.capacityUnits += writes;
      }
    }
  }

  private recordSqs(call: MeteredCall, queue: string): void {
    const { operation, input, output } = call;
    let detail = queue;
    let billed = 1;
    let messages = 0;
    let returned = 0;
    if (operation === 'SendMessage') {
      billed = sqsBilledRequests(messageBytes(input));
      messages = 1;
    } else if (operation === 'SendMessageBatch') {
      const entries = (input['Entries'] ?? []) as Input[];
      billed = sqsBatchBilledRequests(entries.map(messageBytes));
      messages = entries.length;
    } else if (operation === 'ReceiveMessage') {
      const received = (output?.['Messages'] ?? []) as Input[];
      returned = received.length;
      messages = received.length;
      billed = sqsBatchBilledRequests(received.map(messageBytes));
      // Empty receives are the poller idling: on AWS a fixed cost per poller, not per job.
      if (received.length === 0) detail = `${queue} (empty)`;
    } else if (operation === 'DeleteMessage' || operation === 'ChangeMessageVisibility') {
      messages = 1;
    } else if (operation === 'DeleteMessageBatch' || operation === 'ChangeMessageVisibilityBatch') {
      messages = ((input['Entries'] ?? []) as unknown[]).length;
    }
    const stats = this.count(this.entry('SQS', operation, detail, call.caller), call);
    // Each attempt is a request SQS bills, a retried one too.
    stats.billedRequests += billed * Math.max(1, call.attempts);
    stats.messages += messages;
    stats.returned += returned;
  }

  private entry(service: MeteredService, operation: string, detail: string, caller: string): OperationStats {
    const key = `${service} ${operation} ${detail}${caller === 'handlers' ? '' : ` [${caller}]`}`;
    let stats = this.stats.get(key);
    if (!stats) {
      stats = { service, operation, detail, caller, calls: 0, failures: 0, errors: {}, attempts: 0, requestBytes: 0, responseBytes: 0, capacityUnits: 0, estimatedUnits: 0, billedRequests: 0, messages: 0, returned: 0 };
      this.stats.set(key, stats);
    }
    return stats;
  }

  snapshot(): MeterSnapshot {
    return Object.fromEntries([...this.stats].map(([key, stats]) => [key, { ...stats, errors: { ...stats.errors } }]));
  }
}

const counters = ['calls', 'failures', 'attempts', 'requestBytes', 'responseBytes', 'capacityUnits', 'estimatedUnits', 'billedRequests', 'messages', 'returned'] as const;

/** Several meters' snapshots as one: their counts added up, call by call. */
export function mergeSnapshots(snapshots: MeterSnapshot[]): MeterSnapshot {
  const result: MeterSnapshot = {};
  for (const snapshot of snapshots) {
    for (const [key, stats] of Object.entries(snapshot)) {
      const sum = result[key];
      if (!sum) {
        result[key] = { ...stats, errors: { ...stats.errors } };
        continue;
      }
      for (const counter of counters) sum[counter] += stats[counter];
      for (const [name, count] of Object.entries(stats.errors)) sum.errors[name] = (sum.errors[name] ?? 0) + count;
    }
  }
  return result;
}

/** What happened between two snapshots. */
export function diffSnapshots(before: MeterSnapshot, after: MeterSnapshot): MeterSnapshot {
  const result: MeterSnapshot = {};
  for (const [key, stats] of Object.entries(after)) {
    const earlier = before[key];
    const delta: OperationStats = { ...stats, errors: {} };
    for (const counter of counters) delta[counter] = stats[counter] - (earlier?.[counter] ?? 0);
    for (const [name, count] of Object.entries(stats.errors)) {
      const more = count - (earlier?.errors[name] ?? 0);
      if (more > 0) delta.errors[name] = more;
    }
    if (delta.calls > 0) result[key] = delta;
  }
  return result;
}

export function isReadOperation(operation: string): boolean {
  return readOperations.has(operation);
}
