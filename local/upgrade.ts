/**
 * Older local data, rewritten in today's layout when the local stack starts: a DATA_DIR kept
 * across upgrades keeps every job and Idempotency-Key. Only the local stack knows the older
 * layouts (the Lambda bundles read today's alone); nothing was ever deployed in them.
 *
 * - the first layout (session 1): every field plain, under its camelCase name, instants as epoch
 *   ms; a request item with `url`, `method`, `headers` and `body`;
 * - the packed layout (session 2): the changing fields under short names (`s`, `a`, `u`, ...),
 *   the rest in brotli blobs (`spec`, `result`, `request`: JSON, then a NUL and a text);
 * - Idempotency-Keys without a `state` (every one then led to its job).
 *
 * A file in DATA_DIR records the layout the data is in, so a start after the upgrade reads nothing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync } from 'node:zlib';
import { DeleteCommand, PutCommand, ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { JOB, jobItem, newJobItems, REQUEST } from '../lambdas/adapters/job-items.ts';
import { isFinal, type AttemptOutput, type Job, type JobRequest } from '../lambdas/core/job.ts';

/** Today's layout, as the file records it. */
export const storeLayout = 3;
export const layoutFileName = 'store-layout';

type Item = Record<string, unknown>;

export interface UpgradeReport {
  jobs: number;
  keys: number;
}

/** Rewrites whatever the jobs table holds in an older layout; then records today's. */
export async function upgradeStore(db: Pick<DynamoDBDocumentClient, 'send'>, table: string, dataDir: string): Promise<UpgradeReport> {
  const report: UpgradeReport = { jobs: 0, keys: 0 };
  const file = join(dataDir, layoutFileName);
  if (existsSync(file) && Number(readFileSync(file, 'utf8').trim()) >= storeLayout) return report;

  const jobs = new Map<string, Item>();
  const requests = new Map<string, Item>();
  let start: Item | undefined;
  do {
    const page = await db.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
    for (const item of page.Items ?? []) {
      const pk = String(item['pk']);
      if (item['sk'] === JOB && layoutOf(item) !== 'today') jobs.set(pk, item);
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
    const request = isFinal(job.status) ? undefined : (beside(item, job) ?? (own ? ownRequest(own, job) : undefined));
    // The request first, then the job, as a submit writes them.
    const items = request ? newJobItems(job, request) : [jobItem(job)];
    for (const written of items) await db.send(new PutCommand({ TableName: table, Item: written }));
    const olderOwn = own !== undefined && ('url' in own || own['request'] instanceof Uint8Array);
    if (olderOwn && !items.some((written) => written['sk'] === REQUEST)) await db.send(new DeleteCommand({ TableName: table, Key: { pk, sk: REQUEST } }));
    report.jobs++;
  }
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
