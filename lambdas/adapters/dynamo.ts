/**
 * The job and client stores on DynamoDB. A job is an item under its partition (`job`: its state,
 * rewritten at each transition, with its request beside it when both fit in a write unit) and,
 * for a larger request, a `request` item written once; job-items.ts has the layout.
 */
import { DynamoDocuments } from './aws/attributes.ts';
import { AwsError } from './aws/client.ts';
import { sweepShards, tables } from '../../lib/definitions.ts';
import type { Job, JobRequest } from '../core/job.ts';
import { ConditionFailed, type Client, type ClientStore, type JobChanges, type JobCondition, type JobStore } from '../core/ports.ts';
import { firstLayoutRequest, isFirstLayout, JOB, jobFromItem, newJobItems, REQUEST, requestFromItem, storedChanges, storedName } from './job-items.ts';

const IDEMPOTENCY = 'idem';

/** What the stores need of a document client. */
export type Documents = Pick<DynamoDocuments, 'send'>;

type Item = Record<string, unknown>;

/** The output fields the stores read, as the document layer returns them. */
interface Output {
  Item?: Item;
  Items?: Item[];
  Attributes?: Item;
  LastEvaluatedKey?: Item;
  Responses?: Record<string, Item[]>;
  UnprocessedItems?: Record<string, Item[]>;
  UnprocessedKeys?: Record<string, { Keys: Item[] }>;
}

async function conditional<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof AwsError && error.name === 'ConditionalCheckFailedException') {
      throw new ConditionFailed('the condition of the write did not hold', { cause: error });
    }
    throw error;
  }
}

/** Builds an UpdateExpression and its condition from the core's change and condition objects. */
export function updateParts(changes: JobChanges, condition: JobCondition) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  // Placeholders by the stored name: a field and its short name are one attribute.
  const name = (field: string) => {
    const attribute = storedName(field);
    names[`#${attribute}`] = attribute;
    return `#${attribute}`;
  };
  const stored = storedChanges(changes);
  const sets: string[] = [];
  for (const [attribute, value] of Object.entries(stored.set)) {
    values[`:set_${attribute}`] = value;
    sets.push(`${name(attribute)} = :set_${attribute}`);
  }
  const removes = stored.remove.map(name);
  const clauses = ['attribute_exists(pk)'];
  for (const [field, value] of Object.entries(condition.expect ?? {})) {
    if (value === undefined) clauses.push(`attribute_not_exists(${name(field)})`);
    else {
      values[`:expect_${field}`] = value;
      clauses.push(`${name(field)} = :expect_${field}`);
    }
  }
  if (condition.statusIn) {
    const options = condition.statusIn.map((status, i) => {
      values[`:status_${i}`] = status;
      return `:status_${i}`;
    });
    clauses.push(`${name('status')} IN (${options.join(', ')})`);
  }
  if (condition.leaseFree) {
    const lease = name(condition.leaseFree.lease);
    values[':now'] = condition.leaseFree.now;
    clauses.push(`(attribute_not_exists(${lease}) OR ${lease} <= :now)`);
  }
  const expression = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  return {
    UpdateExpression: expression,
    ConditionExpression: clauses.join(' AND '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
  };
}

export class DynamoJobStore implements JobStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  async create(job: Job, request: JobRequest): Promise<void> {
    const items = newJobItems(job, request);
    if (items.length === 1) await this.db.send<Output>('PutItem', { TableName: this.table, Item: items[0] });
    else await this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  async remove(jobId: string): Promise<void> {
    await this.batchWrite([{ DeleteRequest: { Key: { pk: jobId, sk: JOB } } }, { DeleteRequest: { Key: { pk: jobId, sk: REQUEST } } }]);
  }

  /** One round trip for both items; what DynamoDB leaves unprocessed is sent again. */
  private async batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    let pending = requests;
    for (let round = 0; pending.length > 0; round++) {
      if (round >= 8) throw new Error('DynamoDB left writes unprocessed after 8 rounds');
      const result = await this.db.send<Output>('BatchWriteItem', { RequestItems: { [this.table]: pending } });
      pending = result.UnprocessedItems?.[this.table] ?? [];
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** round));
    }
  }

  async get(jobId: string): Promise<Job | undefined> {
    const result = await this.db.send<Output>('GetItem', { TableName: this.table, Key: { pk: jobId, sk: JOB }, ConsistentRead: true });
    return result.Item ? jobFromItem(result.Item) : undefined;
  }

  async update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void> {
    await this.write(jobId, changes, condition, 'NONE');
  }

  async lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job> {
    return jobFromItem(await this.write(jobId, changes, condition, 'ALL_NEW'));
  }

  /** The lease's write returns the item, the request beside the state with it; a request of its own is read after. */
  async take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }> {
    const item = await this.write(jobId, changes, condition, 'ALL_NEW');
    const job = jobFromItem(item);
    const beside = requestFromItem(item, job);
    if (beside) return { job, request: beside };
    const own = await this.db.send<Output>('GetItem', { TableName: this.table, Key: { pk: jobId, sk: REQUEST }, ConsistentRead: true });
    const request = own.Item ? requestFromItem(own.Item, job) : undefined;
    return request ? { job, request } : { job };
  }

  /** One conditional UpdateItem on the job item; the item as written comes back only when asked for. */
  private async write(jobId: string, changes: JobChanges, condition: JobCondition, returning: 'ALL_NEW' | 'NONE'): Promise<Record<string, unknown>> {
    const result = await conditional(
      this.db.send<Output>('UpdateItem', { TableName: this.table, Key: { pk: jobId, sk: JOB }, ...updateParts(changes, condition), ReturnValues: returning }),
    );
    return result.Attributes ?? {};
  }

  /** Walks the sparse unsettled index, shard by shard; reads each job itself consistently. */
  async *unsettled(): AsyncIterable<Job> {
    const index = tables.jobs.unsettledIndex;
    for (const shard of sweepShards) {
      let start: Record<string, unknown> | undefined;
      do {
        const page = await this.db.send<Output>('Query', {
          TableName: this.table,
          IndexName: index.name,
          KeyConditionExpression: '#shard = :shard',
          ExpressionAttributeNames: { '#shard': index.partitionKey },
          ExpressionAttributeValues: { ':shard': shard },
          ExclusiveStartKey: start,
        });
        const ids = (page.Items ?? []).map((key) => String(key['pk']));
        for (let i = 0; i < ids.length; i += 100) yield* await this.getMany(ids.slice(i, i + 100));
        start = page.LastEvaluatedKey;
      } while (start);
    }
  }

  /** Up to 100 jobs in one consistent BatchGetItem (what DynamoDB leaves unprocessed is asked again). */
  private async getMany(jobIds: string[]): Promise<Job[]> {
    const found: Job[] = [];
    let keys = jobIds.map((jobId) => ({ pk: jobId, sk: JOB }));
    for (let round = 0; keys.length > 0; round++) {
      if (round >= 8) throw new Error('DynamoDB left reads unprocessed after 8 rounds');
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** round));
      const result = await this.db.send<Output>('BatchGetItem', { RequestItems: { [this.table]: { Keys: keys, ConsistentRead: true } } });
      for (const item of result.Responses?.[this.table] ?? []) found.push(isFirstLayout(item) ? await this.upgrade(item) : jobFromItem(item));
      keys = (result.UnprocessedKeys?.[this.table]?.Keys ?? []) as typeof keys;
    }
    return found;
  }

  /** Rewrites a job of the first layout in today's, its request beside it or in its own item. */
  private async upgrade(item: Item): Promise<Job> {
    const job = jobFromItem(item);
    const own = await this.db.send<Output>('GetItem', { TableName: this.table, Key: { pk: job.jobId, sk: REQUEST }, ConsistentRead: true });
    const request = firstLayoutRequest(own.Item, job);
    // Without its request the job keeps none: its next attempt fails, saying the record is missing.
    const items = newJobItems(job, request ?? { url: job.service, method: job.methodtype, headers: {}, body: null });
    const [state = {}] = items;
    if (!request) delete state['request'];
    for (const written of request ? items : [state]) await this.db.send<Output>('PutItem', { TableName: this.table, Item: written });
    return job;
  }

  async rememberIdempotent(clientId: string, key: string, jobId: string, answer: string, expiresAt: number, now: number): Promise<string | undefined> {
    const pk = `idem#${clientId}#${key}`;
    // The earlier holder of the key may vanish between our put and our read (it expired, or
    // its submit failed and let go): then the key is ours to claim again.
    for (let round = 0; round < 3; round++) {
      try {
        await conditional(
          this.db.send<Output>('PutItem', {
            TableName: this.table,
            Item: { pk, sk: IDEMPOTENCY, jobId, answer, expiresAt },
            // TTL deletes lazily: an expired key counts as absent.
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
            ExpressionAttributeValues: { ':now': Math.floor(now / 1000) },
          }),
        );
        return undefined;
      } catch (error) {
        if (!(error instanceof ConditionFailed)) throw error;
        const found = await this.db.send<Output>('GetItem', { TableName: this.table, Key: { pk, sk: IDEMPOTENCY }, ConsistentRead: true });
        const earlier = found.Item?.['answer'];
        if (typeof earlier === 'string') return earlier;
      }
    }
    throw new Error(`Idempotency-Key ${key} is contended; try again`);
  }

  async forgetIdempotent(clientId: string, key: string): Promise<void> {
    await this.db.send<Output>('DeleteItem', { TableName: this.table, Key: { pk: `idem#${clientId}#${key}`, sk: IDEMPOTENCY } });
  }
}

export class DynamoClientStore implements ClientStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  async get(clientId: string): Promise<Client | undefined> {
    const result = await this.db.send<Output>('GetItem', { TableName: this.table, Key: { clientId }, ConsistentRead: true });
    return result.Item as Client | undefined;
  }

  async put(client: Client): Promise<void> {
    await this.db.send<Output>('PutItem', { TableName: this.table, Item: client });
  }

  async list(): Promise<Client[]> {
    const clients: Client[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send<Output>('Scan', { TableName: this.table, ExclusiveStartKey: start });
      clients.push(...((page.Items ?? []) as unknown as Client[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return clients;
  }

  async revoke(clientId: string, at: string): Promise<boolean> {
    try {
      await conditional(
        this.db.send<Output>('UpdateItem', {
          TableName: this.table,
          Key: { clientId },
          UpdateExpression: 'SET revoked = :at',
          ConditionExpression: 'attribute_exists(clientId)',
          ExpressionAttributeValues: { ':at': at },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }
}
