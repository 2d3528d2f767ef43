/**
 * `npm run --silent jobs -- show JOB_ID | list [--status S] [--client ID] [--limit N]`
 *
 * The operator's view of jobs, read from the store itself (no client token): locally a local
 * stack's DATA_DIR, on AWS the deployed jobs table (scripts/store.ts says how each is reached).
 * Records are shown as `GET /status` shows them; `list` prints them newest first.
 */
import { parseArgs } from 'node:util';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoJobStore } from '../lambdas/adapters/dynamo.ts';
import { JOB, jobFromItem, REQUEST } from '../lambdas/adapters/job-items.ts';
import { jobStatuses, publicRecord, type Job } from '../lambdas/core/job.ts';
import { jobIdPattern } from '../lambdas/core/schemas.ts';
import { openStore, Refusal, runCli, storeOptions, storeUsage, UsageError, type OpenStore } from './store.ts';

const usage = `usage: npm run --silent jobs -- <command>
  show JOB_ID             one job's record, as GET /status shows it
  list [--status S] [--client ID] [--limit N]
                          records newest first (default limit 20, at most 1000); S is one of
                          ${jobStatuses.join(', ')}
options:
${storeUsage}`;

const listLimit = { default: 20, max: 1_000 } as const;

function read(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: { ...storeOptions, status: { type: 'string' }, client: { type: 'string' }, limit: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}

/**
 * Every job that matches, read by a scan of the table (an operator's tool: its cost grows with
 * the table), newest first: each job's state item, or, for a job not yet tried, the state its
 * request item was submitted with. The status is judged once the two are merged: a request
 * item's state is the job's only until its state item is made.
 */
async function list(store: OpenStore, filter: { status?: string | undefined; client?: string | undefined }, limit: number): Promise<Job[]> {
  const clauses = ['(sk = :job OR (sk = :request AND attribute_exists(#status)))'];
  const values: Record<string, unknown> = { ':job': JOB, ':request': REQUEST };
  if (filter.client !== undefined) {
    clauses.push('clientId = :client');
    values[':client'] = filter.client;
  }
  const found = new Map<string, Record<string, unknown>>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await store.documents.send(
      new ScanCommand({
        TableName: store.table,
        FilterExpression: clauses.join(' AND '),
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: values,
        ExclusiveStartKey: start,
      }),
    );
    for (const item of page.Items ?? []) if (item['sk'] === JOB || !found.has(String(item['pk']))) found.set(String(item['pk']), item);
    start = page.LastEvaluatedKey;
  } while (start);
  return [...found.values()]
    .map(jobFromItem)
    .filter((job) => filter.status === undefined || job.status === filter.status)
    .sort((a, b) => b.created.localeCompare(a.created) || b.jobId.localeCompare(a.jobId))
    .slice(0, limit);
}

async function main(argv: string[]): Promise<unknown> {
  const { values, positionals } = read(argv);
  const [command, ...rest] = positionals;
  if (values.help || !command) throw new UsageError(usage);
  if (command !== 'show' && command !== 'list') throw new UsageError(`unknown command ${JSON.stringify(command)}\n${usage}`);
  if (command === 'show' && rest.length !== 1) throw new UsageError(`show takes one JOB_ID\n${usage}`);
  if (command === 'list' && rest.length !== 0) throw new UsageError(`list takes no argument\n${usage}`);
  const listing = [values.status, values.client, values.limit].some((value) => value !== undefined);
  if (command === 'show' && listing) throw new UsageError(`--status, --client and --limit are for list\n${usage}`);
  if (values.status !== undefined && !(jobStatuses as readonly string[]).includes(values.status)) throw new UsageError(`--status must be one of ${jobStatuses.join(', ')}\n${usage}`);
  const limit = values.limit === undefined ? listLimit.default : Number(values.limit);
  if (!/^\d+$/.test(values.limit ?? '1') || limit < 1 || limit > listLimit.max) throw new UsageError(`--limit must be an integer from 1 to ${listLimit.max}\n${usage}`);

  const store = await openStore(values, 'jobs');
  try {
    if (command === 'list') return (await list(store, { status: values.status, client: values.client }, limit)).map(publicRecord);
    const jobId = (rest[0] ?? '').toLowerCase();
    const job = jobIdPattern.test(jobId) ? await new DynamoJobStore(store.documents, store.table).get(jobId) : undefined;
    if (!job) throw new Refusal(`no job ${rest[0]}`);
    return publicRecord(job);
  } finally {
    await store.close();
  }
}

await runCli(() => main(process.argv.slice(2)));
