/**
 * Meters AWS SDK calls: an SDK middleware that counts each call by operation (and the table,
 * queue or item it touches), asks DynamoDB for the capacity it consumed
 * (ReturnConsumedCapacity: TOTAL) and adds it up, and counts SQS requests in the 64 KiB chunks
 * SQS bills. Runs inside the stack process; its snapshot goes to the bench over IPC.
 *
 * ```ts
 * const meter = new SdkMeter({ indexKeys: { 'waas-jobs': { unsettled: 'sweep' } } });
 * onAwsClient((client) => meter.attach(client));
 * meter.snapshot(); // { 'DynamoDB GetItem waas-jobs sk=job': { calls, capacityUnits, ... }, ... }
 * ```
 */
import { sqsBatchBilledRequests, sqsBilledRequests } from './cost.ts';

/** The one call of an SDK client's middleware stack that the meter uses. */
export interface MeterableClient {
  middlewareStack: { add(middleware: never, options: { step: 'initialize'; name: string; override?: boolean }): void };
}

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

export interface SdkMeterOptions {
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

function tableOf(input: Input): string {
  if (typeof input['TableName'] === 'string') return input['TableName'];
  const items = input['RequestItems'];
  if (items && typeof items === 'object') return Object.keys(items).join(',');
  return '?';
}

/** A short, stable description of what a DynamoDB call touched, to tell its calls apart. */
export function describeDynamoCall(operation: string, input: Input): string {
  const table = tableOf(input);
  const key = input['Key'] as Record<string, unknown> | undefined;
  const sk = key && typeof key['sk'] === 'string' ? ` sk=${key['sk']}` : '';
  switch (operation) {
    case 'GetItem':
    case 'DeleteItem':
      return `${table}${sk}`;
    case 'PutItem': {
      const item = input['Item'] as Record<string, unknown> | undefined;
      return `${table}${item && typeof item['sk'] === 'string' ? ` sk=${item['sk']}` : ''}`;
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
        const item = body.Item ?? body.Key ?? {};
        return `${kind === 'PutRequest' ? 'put' : 'delete'}${typeof item['sk'] === 'string' ? ` ${item['sk']}` : ''}`;
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

export class SdkMeter {
  private stats = new Map<string, OperationStats>();
  private readonly attached = new WeakSet<object>();
  private readonly indexKeys: Record<string, Record<string, string>>;

  constructor(options: SdkMeterOptions = {}) {
    this.indexKeys = options.indexKeys ?? {};
  }

  /** True once `attach` has been called with this client. */
  has(client: object): boolean {
    return this.attached.has(client);
  }

  /** Adds the metering middleware to the client (once); `caller` labels its calls. */
  attach(client: MeterableClient, caller = 'handlers'): void {
    if (this.attached.has(client)) return;
    this.attached.add(client);
    const middleware =
      (next: (args: { input: Input }) => Promise<{ output: Input }>, context: { commandName?: string; clientName?: string }) =>
      async (args: { input: Input }) => {
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const service = /sqs/i.test(context.clientName ?? '') ? 'SQS' : 'DynamoDB';
        let input = args.input;
        if (service === 'DynamoDB' && capacityOperations.has(operation) && input['ReturnConsumedCapacity'] === undefined) {
          input = { ...input, ReturnConsumedCapacity: 'TOTAL' };
        }
        try {
          const result = await next({ ...args, input });
          this.record(service, operation, caller, input, result.output, undefined);
          return result;
        } catch (error) {
          this.record(service, operation, caller, input, undefined, error);
          throw error;
        }
      };
    client.middlewareStack.add(middleware as never, { step: 'initialize', name: 'benchSdkMeter', override: true });
  }

  /** Counts one call (exposed for tests; the middleware calls it). */
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

  /** GSI writes: dynalite leaves them out of ConsumedCapacity, AWS bills them. */
  private recordIndexWrites(operation: string, input: Input): void {
    const table = tableOf(input);
    const indexes = this.indexKeys[table];
    if (!indexes) return;
    for (const [index, attribute] of Object.entries(indexes)) {
      let writes = 0;
      if (operation === 'PutItem') writes = (input['Item'] as Input | undefined)?.[attribute] !== undefined ? 1 : 0;
      else if (operation === 'UpdateItem') {
        const { set, removed } = updatedAttributes(input);
        // Setting the key puts an index entry (a changed key would also delete the old one:
        // not a write the service makes); removing it deletes the entry.
        writes = (set.has(attribute) ? 1 : 0) + (removed.has(attribute) ? 1 : 0);
      } else if (operation === 'BatchWriteItem') {
        const requests = ((input['RequestItems'] as Record<string, Array<{ PutRequest?: { Item?: Input } }>> | undefined)?.[table] ?? []);
        writes = requests.filter((request) => request.PutRequest?.Item?.[attribute] !== undefined).length;
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
