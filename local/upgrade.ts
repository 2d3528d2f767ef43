/**
 * Older local data, rewritten in today's layout when the local stack starts: a DATA_DIR kept
 * across upgrades keeps every job and Idempotency-Key. Only the local stack knows the older
 * layouts (the Lambda bundles read today's alone); nothing was ever deployed in them.
 *
 * The jobs table itself, when its indexes are not today's (it lacks one, such as the unsettled
 * index as it projects now, or has one no more used, such as the `client` index of before the
 * listing entries): dynalite can neither add an index to a table, nor change or drop one
 * (its UpdateTable changes throughput alone: it refuses an index's Create without a throughput,
 * which an on-demand table has none of, and takes one with it without doing anything; see
 * node_modules/dynalite/actions/updateTable.js), so the table is made again. Every item is copied into a table of
 * its own (`<table>-rebuild`), which is marked whole once the copy is done; then the old table
 * is deleted, made anew from lib/definitions.ts, and the items are copied back. A start cut short
 * anywhere in this goes on from where it was: before the mark, the old table is still whole and
 * the copy is made again; after it, the copy is.
 *
 * - the first layout (session 1): every field plain, under its camelCase name, instants as epoch
 *   ms; a request item with `url`, `method`, `headers` and `body`;
 * - the packed layout (session 2): the changing fields under short names (`s`, `a`, `u`, ...),
 *   the rest in brotli blobs (`spec`, `result`, `request`: JSON, then a NUL and a text);
 * - Idempotency-Keys without a `state` (every one then led to its job);
 * - jobs without a listing entry (layout 3 and before: GET /v1/jobs read the `client` index):
 *   each job gets one of its own, one job per entry, as a single submit lists it (a batch's jobs
 *   had instants of their own then, and nothing recorded which were one batch's).
 *
 * A file in DATA_DIR records the layout the data is in, so a start after the upgrade reads nothing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { DeleteTableCommand, DescribeTableCommand, ResourceNotFoundException, type TableDescription } from '@aws-sdk/client-dynamodb';
import { BatchWriteCommand, DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { hasSubmittedState, JOB, jobFromItem, jobItem, REQUEST, requestItem } from '../lambdas/adapters/job-items.ts';
import { listingItem } from '../lambdas/adapters/job-listing.ts';
import type { AttemptOutput, Job, JobRequest } from '../lambdas/core/job.ts';
import { createTable, jobsTableSpec } from './provision.ts';

/** Today's layout, as the file records it. */
export const storeLayout = 4;
export const layoutFileName = 'store-layout';

type Item = Record<string, unknown>;

export interface UpgradeReport {
  jobs: number;
  keys: number;
}

type Documents = Pick<DynamoDBDocumentClient, 'send'>;

/** Makes the jobs table again with today's indexes, if its are not; then rewrites whatever it holds in an older layout, lists its jobs, and records today's layout. */
export async function upgradeStore(db: Documents, table: string, dataDir: string): Promise<UpgradeReport> {
  await rebuildJobsTable(db, table);
  const report: UpgradeReport = { jobs: 0, keys: 0 };
  const file = join(dataDir, layoutFileName);
  if (existsSync(file) && Number(readFileSync(file, 'utf8').trim()) >= storeLayout) return report;

  const jobs = new Map<string, Item>();
  const requests = new Map<string, Item>();
  /** Today's job items: listed, as the older ones are once rewritten. */
  const listed: Job[] = [];
  let start: Item | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) {
      const pk = String(item['pk']);
      if (item['sk'] === JOB && layoutOf(item) !== 'today') jobs.set(pk, item);
      else if (item['sk'] === JOB) listed.push(jobFromItem(item));
      else if (item['sk'] === REQUEST) requests.set(pk, item);
      else if (item['sk'] === 'idem' && item['state'] === undefined) {
        await db.send(new UpdateCommand({ TableName: table, Key: { pk, sk: 'idem' }, UpdateExpression: 'SET #state = :done', ExpressionAttributeNames: { '#state': 'state' }, ExpressionAttributeValues: { ':done': 'done' } }));
        report.keys++;
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);

  for (const [pk, item] of jobs) {
    const job = layoutOf(item) === 'first' ? firstLayoutJob(item) : packedJob(item);
    const own = requests.get(pk);
    // Kept for a final job too, where the older layout still had it: a replay sends it again.
    const request = beside(item, job) ?? (own ? ownRequest(own, job) : undefined);
    // The request first, then the job's state: a job of an older layout has one, whatever it is.
    const items = request ? [requestItem(job, request), jobItem(job)] : [jobItem(job)];
    for (const written of items) await db.send(new PutCommand({ TableName: table, Item: written }));
    const olderOwn = own !== undefined && ('url' in own || own['request'] instanceof Uint8Array);
    if (olderOwn && !items.some((written) => written['sk'] === REQUEST)) await db.send(new DeleteCommand({ TableName: table, Key: { pk, sk: REQUEST } }));
    listed.push(job);
    report.jobs++;
  }
  // Jobs not yet tried, whose state is their request item's (job-items.ts): listed too.
  for (const [pk, own] of requests) if (hasSubmittedState(own) && !jobs.has(pk) && !listed.some((job) => job.jobId === pk)) listed.push(jobFromItem(own));
  // A listing entry per job (written again, it is the same item: a start cut short goes on).
  const listable = listed.filter((job) => typeof job.clientId === 'string' && typeof job.created === 'string');
  await writeItems(db, table, listable.map((job) => listingItem(job.clientId, job.created, [job.jobId], job.expiresAt)));
  writeFileSync(file, `${storeLayout}\n`);
  return report;
}

function layoutOf(item: Item): 'first' | 'packed' | 'today' {
  if ('s' in item || 'spec' in item) return 'packed';
  if ('maxAttempts' in item) return 'first';
  return 'today';
}

/** A first-layout job item: the Job's own fields, as they are (its instants were epoch ms already). */
function firstLayoutJob(item: Item): Job {
  const { pk, sk: _sk, ...fields } = item;
  return { callback: null, output: null, history: [], notifyoutput: null, ...fields, jobId: String(pk) } as unknown as Job;
}

const packedNames: Readonly<Record<string, string>> = { u: 'lastUpdate', s: 'status', a: 'attempts', l: 'leaseUntil', at: 'nextAttemptAt', n: 'notified', no: 'notifyoutput', na: 'notifyAttempts', nl: 'notifyLeaseUntil', nat: 'nextNotifyAt' };

/** A packed blob: JSON, then after a NUL (which JSON text never holds raw) a text kept apart. */
function unpackBlob<T>(bytes: unknown): { value: T; text?: string } | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  const raw = brotliDecompressSync(bytes).toString('utf8');
  const split = raw.indexOf('\u0000');
  return split < 0 ? { value: JSON.parse(raw) as T } : { value: JSON.parse(raw.slice(0, split)) as T, text: raw.slice(split + 1) };
}

function packedJob(item: Item): Job {
  const { pk, sk: _sk, request: _request, spec, result, ...plain } = item;
  const fields: Item = {};
  for (const [name, value] of Object.entries(plain)) fields[packedNames[name] ?? name] = value;
  const packedResult = unpackBlob<{ output: AttemptOutput | null; history: unknown }>(result);
  const output = packedResult?.value.output ?? null;
  return {
    callback: null,
    notifyoutput: null,
    ...fields,
    ...unpackBlob<Item>(spec)?.value,
    output: output && packedResult?.text !== undefined ? { ...output, body: packedResult.text } : output,
    history: packedResult?.value.history ?? [],
    jobId: String(pk),
  } as unknown as Job;
}

/** The request packed beside a packed-layout job. */
function beside(item: Item, job: Job): JobRequest | undefined {
  const stored = unpackBlob<{ headers: Record<string, string> }>(item['request']);
  return stored ? { url: job.service, method: job.methodtype, headers: stored.value.headers, body: stored.text ?? null } : undefined;
}

/** A request item of either older layout (today's is left as it is: undefined). */
function ownRequest(item: Item, job: Job): JobRequest | undefined {
  const packed = beside(item, job);
  if (packed) return packed;
  if (!('url' in item)) return undefined;
  const { headers, body } = item as Partial<JobRequest>;
  return { url: job.service, method: job.methodtype, headers: headers ?? {}, body: body ?? null };
}

/** The table a rebuild copies the jobs table's items into, and the item that marks the copy whole. */
export const rebuildTableName = (table: string): string => `${table}-rebuild`;
const copiedWhole = { pk: 'rebuild', sk: 'copied whole' } as const;

/** Whether the table has today's jobs table's indexes, each with its keys and projection, and no other. */
function hasTodaysIndexes(description: TableDescription | undefined): boolean {
  const wanted = jobsTableSpec().GlobalSecondaryIndexes ?? [];
  const projection = (value: { ProjectionType?: string; NonKeyAttributes?: string[] } | undefined) => JSON.stringify([value?.ProjectionType, [...(value?.NonKeyAttributes ?? [])].sort()]);
  if ((description?.GlobalSecondaryIndexes ?? []).length !== wanted.length) return false;
  return wanted.every((index) => {
    const found = description?.GlobalSecondaryIndexes?.find((each) => each.IndexName === index.IndexName);
    return found !== undefined && JSON.stringify(found.KeySchema) === JSON.stringify(index.KeySchema) && projection(found.Projection) === projection(index.Projection);
  });
}

async function describeTable(db: Documents, table: string): Promise<TableDescription | undefined> {
  try {
    return (await db.send(new DescribeTableCommand({ TableName: table }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/** Deletes the table, if it is there, and waits until it is gone. */
async function dropTable(db: Documents, table: string): Promise<void> {
  if (!(await describeTable(db, table))) return;
  try {
    await db.send(new DeleteTableCommand({ TableName: table }));
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  for (let i = 0; i < 200 && (await describeTable(db, table)); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (await describeTable(db, table)) throw new Error(`table ${table} was not deleted`);
}

/** Puts the items into `to` as they are, in batches of 25, unprocessed ones again. */
async function writeItems(db: Documents, to: string, items: readonly Item[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let requests = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    for (let round = 0; requests.length > 0; round++) {
      if (round === 20) throw new Error(`could not write ${requests.length} items into ${to}`);
      const answer = await db.send(new BatchWriteCommand({ RequestItems: { [to]: requests } }));
      requests = (answer.UnprocessedItems?.[to] ?? []) as typeof requests;
    }
  }
}

/** Copies every item of `from` into `to` (but the rebuild's mark), as they are. */
async function copyItems(db: Documents, from: string, to: string): Promise<number> {
  let copied = 0;
  let start: Item | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: from, ConsistentRead: true, ExclusiveStartKey: start }));
    const items = (page.Items ?? []).filter((item) => !(item['pk'] === copiedWhole.pk && item['sk'] === copiedWhole.sk));
    await writeItems(db, to, items);
    copied += items.length;
    start = page.LastEvaluatedKey;
  } while (start);
  return copied;
}

/**
 * Makes the jobs table again, every item kept, where its indexes are not today's (see the
 * file's head): the number of items copied, or undefined when the table had today's.
 */
export async function rebuildJobsTable(db: Documents, table: string): Promise<number | undefined> {
  const staging = rebuildTableName(table);
  const copy = await describeTable(db, staging);
  const whole = copy !== undefined && (await db.send(new GetCommand({ TableName: staging, Key: copiedWhole, ConsistentRead: true }))).Item !== undefined;
  if (!whole) {
    // A copy cut short before it was whole: the jobs table still is; start again.
    if (copy) await dropTable(db, staging);
    const current = await describeTable(db, table);
    if (!current || hasTodaysIndexes(current)) return undefined;
    await createTable(db, { TableName: staging, KeySchema: jobsTableSpec().KeySchema, AttributeDefinitions: jobsTableSpec().AttributeDefinitions?.slice(0, 2) });
    await copyItems(db, table, staging);
    await db.send(new PutCommand({ TableName: staging, Item: { ...copiedWhole } }));
  }
  // The copy is whole: the jobs table may go (or be gone already, or be made anew and partly filled).
  if (!hasTodaysIndexes(await describeTable(db, table))) await dropTable(db, table);
  await createTable(db, jobsTableSpec(table));
  const copied = await copyItems(db, staging, table);
  await dropTable(db, staging);
  return copied;
}
