/**
 * The job and client stores on DynamoDB, through the AWS SDK's document client. A job is an item
 * under its partition (`job`: its state, rewritten at each transition), its request in a
 * `request` item written before it (an older job may have it beside its state instead), and an `attempt#NNNN` item for each attempt followed by a retry; job-items.ts has the layout.
 * Idempotency-Keys are items of their own in the same table. A client's jobs are listed through
 * its listing entries, items of the same table (job-listing.ts), never by a scan.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  GetCommand,
  paginateQuery,
  paginateScan,
  PutCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  type QueryCommandInput,
  type ScanCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { tables } from '../../lib/definitions.ts';
import { conditionHolds, withChanges } from '../core/conditions.ts';
import { attemptsOf, type Attempt, type Job, type JobRequest } from '../core/job.ts';
import {
  ConditionFailed,
  type Client,
  type ClientStore,
  type IdempotencyRecord,
  type IndexMark,
  type JobChanges,
  type JobCondition,
  type JobPage,
  type JobStore,
  type ListQuery,
  type UnsettledJob,
} from '../core/ports.ts';
import {
  ATTEMPT,
  attemptFromItem,
  attemptItem,
  JOB,
  hasSubmittedState,
  jobFromItem,
  jobItem,
  newJobItems,
  REQUEST,
  requestFromItem,
  storedChanges,
  storedConditionValue,
  storedName,
  unsettledAttributes,
  unsettledFromItem,
} from './job-items.ts';
import { dynamoEntries, listPage, putListing } from './job-listing.ts';

const IDEMPOTENCY = 'idem';

/** What the stores need of a document client. */
/** The document client the stores call (a whole client: the SDK's paginators ask for one). */
export type Documents = DynamoDBDocumentClient;

/** Every item a Query finds, page after page (the SDK's paginator). */
export async function queryItems(db: Documents, input: QueryCommandInput): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const page of paginateQuery({ client: db }, input)) items.push(...(page.Items ?? []));
  return items;
}

/** Every item a Scan finds, page after page (the SDK's paginator). */
export async function scanItems(db: Documents, input: ScanCommandInput): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const page of paginateScan({ client: db }, input)) items.push(...(page.Items ?? []));
  return items;
}

type Item = Record<string, unknown>;

/** A conditional write's refusal, as the core names it. */
async function conditional<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) throw new ConditionFailed('the condition of the write did not hold', { cause: error });
    throw error;
  }
}

/** Builds an UpdateExpression and its condition from the core's change and condition objects. */
export function updateParts(changes: JobChanges, condition: JobCondition) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  // Placeholders by the stored name: STATUS and friends are reserved words.
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
      values[`:expect_${field}`] = storedConditionValue(field, value);
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
    values[':now'] = storedConditionValue(condition.leaseFree.lease, condition.leaseFree.now);
    clauses.push(`(attribute_not_exists(${lease}) OR ${lease} <= :now)`);
  }
  if (condition.dueBy !== undefined) {
    const next = name('nextAttemptAt');
    values[':due_by'] = storedConditionValue('nextAttemptAt', condition.dueBy);
    clauses.push(`(attribute_not_exists(${next}) OR ${next} <= :due_by)`);
  }
  const expression = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  return {
    UpdateExpression: expression,
    ConditionExpression: clauses.join(' AND '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
  };
}

/** An unsettled job's attributes as a ProjectionExpression, each by a placeholder of its own name. */
const unsettledProjection = {
  expression: unsettledAttributes.map((attribute) => `#${attribute}`).join(', '),
  names: Object.fromEntries(unsettledAttributes.map((attribute) => [`#${attribute}`, attribute])),
};

/** How a BatchGetItem's unprocessed keys (DynamoDB throttled part of it) are asked for again: a few times, after a growing wait. */
export const unprocessedRetries = { attempts: 5, firstWaitMs: 25 } as const;

const timerSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface JobStoreOptions {
  /** Waits `ms` between BatchGetItem's retries of unprocessed keys (default: a timer); tests inject one. */
  sleep?: (ms: number) => Promise<void>;
}

export class DynamoJobStore implements JobStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
    private readonly options: JobStoreOptions = {},
  ) {}

  /**
   * Item by item, in order: a request of its own lands before the job that points to it. Each
   * only where none is: an attempt of the put that timed out and lands after its retry (or
   * after a worker took the job already) must not write the new job over the job's progress.
   * An item that is there already is this job's own (job ids are random UUIDs): a put whose
   * answer was lost, retried.
   */
  async create(job: Job, request: JobRequest): Promise<void> {
    for (const Item of newJobItems(job, request)) {
      try {
        await this.db.send(new PutCommand({ TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' }));
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
      }
    }
  }

  /** The job first, so that no worker finds a job whose request is gone. */
  async remove(jobId: string): Promise<void> {
    for (const sk of [JOB, REQUEST]) await this.db.send(new DeleteCommand({ TableName: this.table, Key: { pk: jobId, sk } }));
  }

  /** The state item; for a job not yet tried (no state item), the state its request item was submitted with. */
  async get(jobId: string): Promise<Job | undefined> {
    for (const sk of [JOB, REQUEST]) {
      const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk: jobId, sk }, ConsistentRead: true }));
      if (Item && (sk === JOB || hasSubmittedState(Item))) return jobFromItem(Item);
    }
    return undefined;
  }

  /** The job's state item and its request's, as one consistent Query reads the two (the state sorts before the request). */
  private async stateAndRequest(jobId: string): Promise<{ state?: Item; own?: Item }> {
    const items = await queryItems(this.db, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :job AND :request',
      ExpressionAttributeValues: { ':pk': jobId, ':job': JOB, ':request': REQUEST },
      ConsistentRead: true,
    });
    const state = items.find((item) => item['sk'] === JOB);
    const own = items.find((item) => item['sk'] === REQUEST);
    return { ...(state ? { state } : {}), ...(own ? { own } : {}) };
  }

  /** The job (its state item, or its request item's submitted state) and its request: one consistent Query of the two items. */
  async getWithRequest(jobId: string): Promise<{ job: Job; request?: JobRequest } | undefined> {
    const { state, own } = await this.stateAndRequest(jobId);
    return withRequest(state ?? (hasSubmittedState(own) ? own : undefined), own);
  }

  async update(jobId: string, changes: JobChanges, condition: JobCondition): Promise<void> {
    await this.write(jobId, changes, condition, 'NONE');
  }

  async lease(jobId: string, changes: JobChanges, condition: JobCondition): Promise<Job> {
    return jobFromItem(await this.write(jobId, changes, condition, 'ALL_NEW'));
  }

  /**
   * The job's state and request, read first in one consistent Query (the attempt sends the
   * request), then the lease's write: an UpdateItem of the state item, or, for a job not yet
   * tried, the put that makes it (`firstState`). A job with neither item (its message came before
   * it, or after its submit failed) is a lost condition, with nothing written.
   */
  async take(jobId: string, changes: JobChanges, condition: JobCondition): Promise<{ job: Job; request?: JobRequest }> {
    const { state, own } = await this.stateAndRequest(jobId);
    let written: Item;
    if (state) written = await this.write(jobId, changes, condition, 'ALL_NEW', true);
    else if (hasSubmittedState(own)) written = await this.firstState(jobId, own, changes, condition);
    else throw new ConditionFailed('the job is not there');
    return withRequest(written, own) ?? { job: jobFromItem(written) };
  }

  /**
   * One conditional UpdateItem on the job item; the item as written comes back only when asked
   * for. Refused, it may be a job not yet tried, whose state item its first write makes: its two
   * items are read (`known`: the caller has just read them, and found the state item) and, where
   * only the request item is there, `firstState` makes it.
   */
  private async write(jobId: string, changes: JobChanges, condition: JobCondition, returning: 'ALL_NEW' | 'NONE', known = false): Promise<Item> {
    // The history's last line may be stored as a reference to the output (job-items.ts): a new
    // output is written with the history, read back first when the change has none. The core
    // always writes the two together; only a caller that does not (a test) pays the read.
    if (changes.output !== undefined && changes.history === undefined) {
      const current = await this.get(jobId);
      if (current) changes = { ...changes, history: current.history };
    }
    try {
      const result = await conditional(
        this.db.send(new UpdateCommand({ TableName: this.table, Key: { pk: jobId, sk: JOB }, ...updateParts(changes, condition), ReturnValues: returning })),
      );
      return result.Attributes ?? {};
    } catch (error) {
      if (!(error instanceof ConditionFailed) || known) throw error;
      const { state, own } = await this.stateAndRequest(jobId);
      if (state || !hasSubmittedState(own)) throw error;
      return this.firstState(jobId, own, changes, condition);
    }
  }

  /**
   * The first write of a job not yet tried: its state item made, from the state its request
   * item was submitted with and `changes`, where `condition` holds of that state (judged here, as
   * DynamoDB would judge it of the item: core/conditions.ts). A put that only lands where no
   * state item is yet: another first write that came between (a duplicate message, a cancel)
   * made it, and this write is made again as an update of it, on its own condition.
   */
  private async firstState(jobId: string, own: Item, changes: JobChanges, condition: JobCondition): Promise<Item> {
    const submitted = jobFromItem(own);
    if (!conditionHolds(submitted, condition)) {
      // Judged of the state the request item holds; a state item made since is judged by DynamoDB.
      return this.write(jobId, changes, condition, 'ALL_NEW', true);
    }
    const Item = jobItem(withChanges(submitted, changes));
    try {
      await this.db.send(new PutCommand({ TableName: this.table, Item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return Item;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      return this.write(jobId, changes, condition, 'ALL_NEW', true);
    }
  }

  /**
   * One shard of the sparse unsettled index, page by page, reading only the attributes the
   * index projects (ProjectionExpression): no job is read whole. An entry without them (a
   * keys-only index, as a local DATA_DIR of an earlier version has it until local/upgrade.ts
   * makes its table again) is read from its job item, for those attributes alone.
   */
  async *unsettled(shard: string, range: { after?: IndexMark; upTo?: IndexMark } = {}): AsyncIterable<UnsettledJob> {
    const index = tables.jobs.unsettledIndex;
    const { after, upTo } = range;
    const start: Item | undefined = after ? { pk: after.jobId, sk: JOB, [index.partitionKey]: shard, [index.sortKey]: after.created } : undefined;
    const pages = paginateQuery(
      { client: this.db, ...(start ? { startingToken: start } : {}) },
      {
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: `#shard = :shard${upTo ? ` AND #${index.sortKey} <= :upTo` : ''}`,
        ProjectionExpression: unsettledProjection.expression,
        ExpressionAttributeNames: { '#shard': index.partitionKey, ...unsettledProjection.names },
        ExpressionAttributeValues: { ':shard': shard, ...(upTo ? { ':upTo': upTo.created } : {}) },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const job = unsettledFromItem(item) ?? (await this.unsettledJob(String(item['pk'])));
        if (job) yield job;
        // Entries of the same instant come in no order we know: `upTo`'s own ends the range.
        if (upTo && item['pk'] === upTo.jobId) return;
      }
    }
  }

  /** A job's unsettled fields, read consistently from its item (nothing else of it). */
  private async unsettledJob(jobId: string): Promise<UnsettledJob | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: jobId, sk: JOB },
        ConsistentRead: true,
        ProjectionExpression: unsettledProjection.expression,
        ExpressionAttributeNames: unsettledProjection.names,
      }),
    );
    return Item ? unsettledFromItem(Item) : undefined;
  }

  /** One PutItem, unconditional: the same attempt run again (a takeover) writes the same item again. */
  async keepAttempt(jobId: string, attempt: Attempt, expiresAt: number): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: attemptItem(jobId, attempt, expiresAt) }));
  }

  /**
   * One consistent Query of the partition from its first `attempt#` item to the request item
   * (`job` sorts after the attempts, `request` after it): the kept attempts and the job's own
   * output, in one round trip, paged (twenty attempts at their limits are more than a Query's
   * megabyte). A job not yet tried has no attempt, and its state is its request item's.
   */
  async attempts(jobId: string): Promise<Attempt[]> {
    const items = await queryItems(this.db, {
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :first AND :request',
      ExpressionAttributeValues: { ':pk': jobId, ':first': ATTEMPT, ':request': REQUEST },
      ConsistentRead: true,
    });
    const state = items.find((item) => item['sk'] === JOB) ?? items.find(hasSubmittedState);
    if (!state) return [];
    const kept = items.filter((item) => String(item['sk']).startsWith(ATTEMPT)).map(attemptFromItem);
    return attemptsOf(jobFromItem(state), kept);
  }

  /** The listing entry: one PutItem (job-listing.ts has its layout). */
  async enlist(clientId: string, created: string, jobIds: string[], expiresAt: number): Promise<void> {
    await putListing(this.db, this.table, clientId, created, jobIds, expiresAt);
  }

  /**
   * A page of the client's jobs: its listing entries read newest first, then the jobs they name
   * read whole by BatchGetItem, kept in the entries' order (job-listing.ts walks them). Both
   * reads are eventually consistent: a job listed a moment after a change may show the one before.
   */
  async list(clientId: string, query: ListQuery): Promise<JobPage> {
    return listPage(dynamoEntries(this.db, this.table, clientId), (ids) => this.batchGetJobs(ids), clientId, query);
  }

  /**
   * The jobs of `ids`, read eventually consistent, by id: their state items in one BatchGetItem
   * (at most 100 keys), then, for those without one, their request items, whose submitted state
   * is the state of a job not yet tried. Unprocessed keys are asked for again a few times.
   */
  private async batchGetJobs(ids: string[]): Promise<Map<string, Job>> {
    const unique = [...new Set(ids)];
    const found = await this.batchGet(unique.map((pk) => ({ pk, sk: JOB })));
    const untried = unique.filter((id) => !found.has(id));
    if (untried.length > 0) {
      for (const [id, item] of await this.batchGet(untried.map((pk) => ({ pk, sk: REQUEST })))) if (hasSubmittedState(item)) found.set(id, item);
    }
    return new Map([...found].map(([id, item]) => [id, jobFromItem(item)]));
  }

  /** The items of `keys` (at most 100), by id, in one BatchGetItem and its retries of unprocessed keys. */
  private async batchGet(keys: Item[]): Promise<Map<string, Item>> {
    const found = new Map<string, Item>();
    for (let round = 0; keys.length > 0; round++) {
      if (round === unprocessedRetries.attempts) throw new Error(`BatchGetItem left ${keys.length} jobs unprocessed after ${round} tries: the table is throttling reads`);
      if (round > 0) await (this.options.sleep ?? timerSleep)(unprocessedRetries.firstWaitMs * 2 ** (round - 1));
      const answer = await this.db.send(new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }));
      for (const item of answer.Responses?.[this.table] ?? []) found.set(String(item['pk']), item);
      keys = answer.UnprocessedKeys?.[this.table]?.Keys ?? [];
    }
    return found;
  }

  async claimIdempotent(clientId: string, key: string, claim: IdempotencyRecord, now: number, replacing?: string): Promise<IdempotencyRecord | undefined> {
    const pk = idempotencyPk(clientId, key);
    // Ours when no live claim holds the key: none, an expired one (TTL deletes lazily), our own
    // (a retried write whose first answer was lost), or the abandoned one we were told to replace.
    const clauses = ['attribute_not_exists(pk)', 'expiresAt < :now', 'jobId = :jobId'];
    const values: Item = { ':now': Math.floor(now / 1000), ':jobId': claim.jobId };
    if (replacing !== undefined) {
      clauses.push('(jobId = :replacing AND #state = :pending)');
      Object.assign(values, { ':replacing': replacing, ':pending': 'pending' });
    }
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk, sk: IDEMPOTENCY, ...storedClaim(claim) },
          ConditionExpression: clauses.join(' OR '),
          ...(replacing !== undefined ? { ExpressionAttributeNames: { '#state': 'state' } } : {}),
          ExpressionAttributeValues: values,
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return undefined;
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      if (error.Item) return claimFrom(unmarshall(error.Item));
      // Without the item in the refusal, read it; gone meanwhile (expired and swept): claim again.
      const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { pk, sk: IDEMPOTENCY }, ConsistentRead: true }));
      return Item ? claimFrom(Item) : this.claimIdempotent(clientId, key, claim, now, replacing);
    }
  }

  async settleIdempotent(clientId: string, key: string, jobId: string): Promise<void> {
    await this.ifStillOurs(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: idempotencyPk(clientId, key), sk: IDEMPOTENCY },
        UpdateExpression: 'SET #state = :done',
        ConditionExpression: 'jobId = :jobId',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':done': 'done', ':jobId': jobId },
      }),
    );
  }

  async releaseIdempotent(clientId: string, key: string, jobId: string): Promise<void> {
    await this.ifStillOurs(
      new DeleteCommand({
        TableName: this.table,
        Key: { pk: idempotencyPk(clientId, key), sk: IDEMPOTENCY },
        ConditionExpression: 'jobId = :jobId AND #state = :pending',
        ExpressionAttributeNames: { '#state': 'state' },
        ExpressionAttributeValues: { ':jobId': jobId, ':pending': 'pending' },
      }),
    );
  }

  /** A write to a key that another job may have taken over since: then it is theirs, and left alone. */
  private async ifStillOurs(command: UpdateCommand | DeleteCommand): Promise<void> {
    try {
      await this.db.send(command as UpdateCommand);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}

/** A job from its state (a state item, or a request item's submitted state) and its request (beside an older state, or its own item). */
function withRequest(state: Item | undefined, own: Item | undefined): { job: Job; request?: JobRequest } | undefined {
  if (!state) return undefined;
  const job = jobFromItem(state);
  const request = requestFromItem(state, job) ?? (own ? requestFromItem(own, job) : undefined);
  return request ? { job, request } : { job };
}

const idempotencyPk = (clientId: string, key: string) => `idem#${clientId}#${key}`;

function storedClaim(claim: IdempotencyRecord): Item {
  return { jobId: claim.jobId, answer: claim.answer, state: claim.state, claimUntil: new Date(claim.claimUntil).toISOString(), expiresAt: claim.expiresAt };
}

function claimFrom(item: Item): IdempotencyRecord {
  return {
    jobId: String(item['jobId']),
    answer: String(item['answer']),
    state: item['state'] === 'pending' ? 'pending' : 'done',
    claimUntil: Date.parse(String(item['claimUntil'])) || 0,
    expiresAt: Number(item['expiresAt']),
  };
}

export class DynamoClientStore implements ClientStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  async get(clientId: string): Promise<Client | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { clientId }, ConsistentRead: true }));
    return Item as Client | undefined;
  }

  async put(client: Client): Promise<void> {
    await this.db.send(new PutCommand({ TableName: this.table, Item: client }));
  }

  async list(): Promise<Client[]> {
    return (await scanItems(this.db, { TableName: this.table })) as unknown as Client[];
  }

  async revoke(clientId: string, at: string): Promise<boolean> {
    try {
      await conditional(
        this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: { clientId },
            UpdateExpression: 'SET revoked = :at',
            ConditionExpression: 'attribute_exists(clientId)',
            ExpressionAttributeValues: { ':at': at },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  }
}
