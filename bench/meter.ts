/**
 * Meters AWS calls: an observer on each AwsClient that counts each call by operation (and the
 * table, queue or item it touches), asks DynamoDB for the capacity it consumed
 * (ReturnConsumedCapacity: TOTAL) and adds it up, and counts SQS requests in the 64 KiB chunks
 * SQS bills. Runs inside the stack process; its snapshot goes to the bench over IPC.
 *
 * ```ts
 * const meter = new CallMeter({ indexKeys: { 'waas-jobs': { unsettled: 'sweep' } } });
 * onAwsClient((client) => meter.attach(client, 'handlers'));
 * meter.snapshot(); // { 'DynamoDB GetItem waas-jobs sk=job': { calls, capacityUnits, ... }, ... }
 * ```
 *
 * The meter sees calls as they go on the wire: DynamoDB keys and items as attribute values
 * (`{ sk: { S: 'job' } }`), and attributes by their stored names (a job's status is `s`, see
 * lambdas/adapters/job-items.ts), which is what the labels show.
 */
import type { AwsClient } from '../lambdas/adapters/aws/client.ts';
import { sqsBatchBilledRequests, sqsBilledRequests } from './cost.ts';

/** What the meter needs of a client: which service it calls, and a way to watch its calls. */
export type MeterableClient = Pick<AwsClient, 'service' | 'observe'>;

export interface OperationStats {
  service: 'DynamoDB' | 'SQS';
  operation: string;
  /** What it touched: table and item kind, or queue. */
  detail: string;
  /** Who called: the handlers' clients, or the event source mapping's poller. */
  caller: string;
  calls: number;
  failures: number;
  /** DynamoDB: read (RRU) or write (WRU) units consumed, from ConsumedCapacity. */
  capacityUnits: number;
  /** DynamoDB: units assumed for calls that returned no ConsumedCapacity (failed conditional writes). */
  estimatedUnits: number;
  /** SQS: requests as billed (64 KiB chunks). */
  billedRequests: number;
  /** SQS: messages sent or received. */
  messages: number;
  /** Items or messages returned (Query pages, receives). */
  returned: number;
}

export type MeterSnapshot = Record<string, OperationStats>;

export interface CallMeterOptions {
  /** Per table, the GSIs and their partition-key attribute: a write that sets or removes it also writes the index. */
  indexKeys?: Record<string, Record<string, string>>;
}

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
]);
const readOperations = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);

type Input = Record<string, unknown>;
interface Capacity {
  CapacityUnits?: number;
  TableName?: string;
}

function queueName(url: unknown): string {
  return typeof url === 'string' ? (url.split('/').pop() ?? url) : '?';
}

/** A key attribute's string: `{ S: 'job' }` on the wire. */
function keyString(item: unknown, name: string): string | undefined {
  const value = item && typeof item === 'object' ? (item as Record<string, unknown>)[name] : undefined;
  const text = value && typeof value === 'object' ? (value as { S?: unknown }).S : undefined;
  return typeof text === 'string' ? text : undefined;
}

/** An item's identity by its key attributes (`pk`, and `sk` if any), as the jobs table has them. */
function itemId(item: unknown): string {
  const fields = item && typeof item === 'object' ? (item as Record<string, unknown>) : {};
  return JSON.stringify([fields['pk'] ?? null, fields['sk'] ?? null]);
}

function tableOf(input: Input): string {
  if (typeof input['TableName'] === 'string') return input['TableName'];
  const items = input['RequestItems'];
  if (items && typeof items === 'object') return Object.keys(items).join(',');
  return '?';
}

/** A short, stable description of what a DynamoDB call touched, to tell its calls apart. */
export function describeDynamoCall(operation: string, input: Input): string {
  const table = tableOf(input);
  const keySk = keyString(input['Key'], 'sk');
  const sk = keySk === undefined ? '' : ` sk=${keySk}`;
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
      return `${table}${sk}`;
    case 'PutItem': {
      const itemSk = keyString(input['Item'], 'sk');
      return `${table}${itemSk === undefined ? '' : ` sk=${itemSk}`}`;
    }
    case 'UpdateItem':
      return `${table}${sk} ${describeUpdate(String(input['UpdateExpression'] ?? ''), (input['ExpressionAttributeNames'] ?? {}) as Record<string, string>)}`;
    case 'Query':
    case 'Scan':
      return `${table}${typeof input['IndexName'] === 'string' ? ` index ${input['IndexName']}` : ''}`;
    case 'BatchWriteItem': {
      const requests = Object.values((input['RequestItems'] ?? {}) as Record<string, Array<Record<string, { Item?: Record<string, unknown>; Key?: Record<string, unknown> }>>>).flat();
      const parts = requests.map((request) => {
        const [kind, body] = Object.entries(request)[0] ?? ['?', {}];
        const itemSk = keyString(body.Item ?? body.Key, 'sk');
        return `${kind === 'PutRequest' ? 'put' : 'delete'}${itemSk === undefined ? '' : ` ${itemSk}`}`;
      });
      return `${table} ${parts.join('+')}`;
    }
    default:
      return table;
  }
}

/** "SET a,b REMOVE c" → "set a,b −c": which attributes an update changes, in a few characters. */
export function describeUpdate(expression: string, names: Record<string, string>): string {
  const resolve = (token: string) => names[token] ?? token;
  const sets: string[] = [];
  const removes: string[] = [];
  let mode: 'set' | 'remove' | undefined;
  for (const clause of expression.split(/\b(SET|REMOVE|ADD|DELETE)\b/i)) {
    const upper = clause.trim().toUpperCase();
    if (upper === 'SET') mode = 'set';
    else if (upper === 'REMOVE') mode = 'remove';
    else if (upper === 'ADD' || upper === 'DELETE') mode = 'set';
    else if (mode && clause.trim()) {
      for (const part of clause.split(',')) {
        const target = part.split('=')[0]?.trim();
        if (target) (mode === 'set' ? sets : removes).push(resolve(target));
      }
    }
  }
  return [sets.length ? `set ${sets.sort().join(',')}` : '', removes.length ? `−${removes.sort().join(',−')}` : ''].filter(Boolean).join(' ');
}

/** Names an update sets or removes (resolved through ExpressionAttributeNames). */
function updatedAttributes(input: Input): { set: Set<string>; removed: Set<string> } {
  const names = (input['ExpressionAttributeNames'] ?? {}) as Record<string, string>;
  const described = describeUpdate(String(input['UpdateExpression'] ?? ''), names);
  const set = new Set<string>();
  const removed = new Set<string>();
  for (const word of described.split(' ')) {
    if (word === 'set') continue;
    for (const name of word.split(',')) {
      if (name.startsWith('−')) removed.add(name.slice(1));
      else if (name) set.add(name);
    }
  }
  return { set, removed };
}

function sumCapacity(consumed: unknown): number | undefined {
  if (consumed === undefined || consumed === null) return undefined;
  const list = (Array.isArray(consumed) ? consumed : [consumed]) as Capacity[];
  return list.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
}

function messageBytes(entry: Record<string, unknown>): number {
  let bytes = Buffer.byteLength(String(entry['MessageBody'] ?? entry['Body'] ?? ''));
  for (const [name, attribute] of Object.entries((entry['MessageAttributes'] ?? {}) as Record<string, { StringValue?: string; DataType?: string }>)) {
    bytes += Buffer.byteLength(name) + Buffer.byteLength(attribute.DataType ?? '') + Buffer.byteLength(attribute.StringValue ?? '');
  }
  return bytes;
}

export class CallMeter {
  private stats = new Map<string, OperationStats>();
  private readonly attached = new WeakSet<object>();
  private readonly indexKeys: Record<string, Record<string, string>>;
  /** Per table, index key and item: whether the item has the key (see recordIndexWrites). */
  private readonly hasIndexKey = new Map<string, boolean>();

  constructor(options: CallMeterOptions = {}) {
    this.indexKeys = options.indexKeys ?? {};
  }

  /** True once `attach` has been called with this client. */
  has(client: object): boolean {
    return this.attached.has(client);
  }

  /** Watches the client's calls (once per client); `caller` labels them. */
  attach(client: MeterableClient, caller = 'handlers'): void {
    if (this.attached.has(client)) return;
    this.attached.add(client);
    const service = client.service === 'sqs' ? 'SQS' : 'DynamoDB';
    client.observe({
      before: (operation, input) => {
        // The client sends its own copy of the input: the caller's object is left as it was.
        if (service === 'DynamoDB' && capacityOperations.has(operation) && input['ReturnConsumedCapacity'] === undefined) {
          input['ReturnConsumedCapacity'] = 'TOTAL';
        }
      },
      after: (operation, input, output) => this.record(service, operation, caller, input, output, undefined),
      failed: (operation, input, error) => this.record(service, operation, caller, input, undefined, error),
    });
  }

  /** Counts one call (exposed for tests; the observer calls it). */
  record(service: 'DynamoDB' | 'SQS', operation: string, caller: string, input: Input, output: Input | undefined, error: unknown): void {
    if (service === 'SQS') return this.recordSqs(operation, caller, input, output, error);
    const detail = describeDynamoCall(operation, input);
    const stats = this.entry('DynamoDB', operation, detail, caller);
    stats.calls++;
    if (error !== undefined) {
      stats.failures++;
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
    if (!readOperations.has(operation)) this.recordIndexWrites(operation, input);
  }

  /**
   * GSI writes: dynalite leaves them out of ConsumedCapacity, AWS bills them. A sparse index is
   * written only for items that have its key before or after the write, so the meter keeps, per
   * item it saw written, whether it has the key: removing a key the item never had (a job's
   * final write removes `sweep` whether or not a retry set it) writes no index entry. For an
   * item it has not seen written (from before the meter started), a removal is billed.
   */
  private recordIndexWrites(operation: string, input: Input): void {
    const table = tableOf(input);
    const indexes = this.indexKeys[table];
    if (!indexes) return;
    for (const [index, attribute] of Object.entries(indexes)) {
      const state = (item: unknown) => `${table}\u0000${attribute}\u0000${itemId(item)}`;
      /** Index entries written (put or deleted) by writing `item` whole, or deleting it (undefined). */
      const replaced = (key: unknown, item: Input | undefined): number => {
        const had = this.hasIndexKey.get(state(key));
        const has = item?.[attribute] !== undefined;
        if (has) this.hasIndexKey.set(state(key), true);
        else if (item) this.hasIndexKey.set(state(key), false);
        else this.hasIndexKey.delete(state(key));
        return has || had === true ? 1 : 0;
      };
      let writes = 0;
      if (operation === 'PutItem') writes = replaced(input['Item'], input['Item'] as Input | undefined);
      else if (operation === 'DeleteItem') writes = replaced(input['Key'], undefined);
      else if (operation === 'UpdateItem') {
        const { set, removed } = updatedAttributes(input);
        const id = state(input['Key']);
        // Setting the key puts an index entry (a changed key would also delete the old one:
        // not a write the service makes); removing it deletes the entry, if there was one.
        if (set.has(attribute)) {
          writes += 1;
          this.hasIndexKey.set(id, true);
        } else if (removed.has(attribute)) {
          if (this.hasIndexKey.get(id) !== false) writes += 1;
          this.hasIndexKey.set(id, false);
        }
      } else if (operation === 'BatchWriteItem') {
        const requests = (input['RequestItems'] as Record<string, Array<{ PutRequest?: { Item?: Input }; DeleteRequest?: { Key?: Input } }>> | undefined)?.[table] ?? [];
        for (const request of requests) {
          if (request.PutRequest?.Item) writes += replaced(request.PutRequest.Item, request.PutRequest.Item);
          else if (request.DeleteRequest?.Key) writes += replaced(request.DeleteRequest.Key, undefined);
        }
      }
      if (writes > 0) {
        // A keys-only index entry is far below 1 KB: one unit per entry written or deleted.
        const stats = this.entry('DynamoDB', 'index write', `${table} index ${index} (${operation})`, 'handlers');
        stats.calls += writes;
        stats.capacityUnits += writes;
      }
    }
  }

  private recordSqs(operation: string, caller: string, input: Input, output: Input | undefined, error: unknown): void {
    const queue = queueName(input['QueueUrl']);
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
    } else if (operation === 'DeleteMessageBatch' || operation === 'ChangeMessageVisibilityBatch') {
      messages = ((input['Entries'] ?? []) as unknown[]).length;
    }
    const stats = this.entry('SQS', operation, detail, caller);
    stats.calls++;
    if (error !== undefined) stats.failures++;
    stats.billedRequests += billed;
    stats.messages += messages;
    stats.returned += returned;
  }

  private entry(service: 'DynamoDB' | 'SQS', operation: string, detail: string, caller: string): OperationStats {
    const key = `${service} ${operation} ${detail}${caller === 'handlers' ? '' : ` [${caller}]`}`;
    let stats = this.stats.get(key);
    if (!stats) {
      stats = { service, operation, detail, caller, calls: 0, failures: 0, capacityUnits: 0, estimatedUnits: 0, billedRequests: 0, messages: 0, returned: 0 };
      this.stats.set(key, stats);
    }
    return stats;
  }

  snapshot(): MeterSnapshot {
    return Object.fromEntries([...this.stats].map(([key, stats]) => [key, { ...stats }]));
  }
}

/** What happened between two snapshots. */
export function diffSnapshots(before: MeterSnapshot, after: MeterSnapshot): MeterSnapshot {
  const result: MeterSnapshot = {};
  for (const [key, stats] of Object.entries(after)) {
    const earlier = before[key];
    const delta: OperationStats = {
      ...stats,
      calls: stats.calls - (earlier?.calls ?? 0),
      failures: stats.failures - (earlier?.failures ?? 0),
      capacityUnits: stats.capacityUnits - (earlier?.capacityUnits ?? 0),
      estimatedUnits: stats.estimatedUnits - (earlier?.estimatedUnits ?? 0),
      billedRequests: stats.billedRequests - (earlier?.billedRequests ?? 0),
      messages: stats.messages - (earlier?.messages ?? 0),
      returned: stats.returned - (earlier?.returned ?? 0),
    };
    if (delta.calls > 0) result[key] = delta;
  }
  return result;
}

export function isReadOperation(operation: string): boolean {
  return readOperations.has(operation);
}
