/**
 * A client's jobs as GET /v1/jobs lists them: listing entries, items of the jobs table of their
 * own, one per submit request that created jobs (lib/definitions.ts `tables.jobs.listing` weighs
 * them against the `client` index they replace):
 *
 * pk       jobs#66666666666668
 * sk       2026-11-20T10:00:00.000Z#0a1b2c3d-...   its `created`, then its first job's id
 * clientId 66666666666668
 * created  2026-11-20T10:00:00.000Z                 the jobs' `created`, one instant for a batch
 * jobs     ["0a1b2c3d-...", "7f00e1aa-...", ...]     the request's jobs, in its order (1 to 100)
 * expiresAt 1800000000                              the latest of the jobs' TTLs
 *
 * A page reads the client's entries newest first (one Query, eventually consistent, a few
 * entries at a time), takes their jobs in order, and reads those through the store's own
 * BatchGetItem: a job enlisted whose items were never written, or are gone (TTL), is passed by.
 * The walk is the same for any store that can read entries (the in-memory one of the unit tests
 * included): `listPage` takes the reading of entries and of jobs as functions.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { tables } from '../../lib/definitions.ts';
import type { Job } from '../core/job.ts';
import { decodeCursor, encodeCursor, listExamined, type JobPage, type ListPosition, type ListQuery } from '../core/ports.ts';
import type { Documents } from './dynamo.ts';

/** A client's listing entries' partition key. */
export const listingPk = (clientId: string): string => `${tables.jobs.listing.prefix}${clientId}`;
/** An entry's sort key: newest first when read backwards (ISO instants sort as text), one instant's entries by their first job. */
export const listingSk = (created: string, first: string): string => `${created}#${first}`;

type Item = Record<string, unknown>;

/** A listing entry as the walk reads it: its key's parts and its jobs. */
export interface ListingEntry {
  created: string;
  first: string;
  jobs: string[];
}

/** The entry's item. */
export function listingItem(clientId: string, created: string, jobIds: string[], expiresAt: number): Item {
  const [first] = jobIds;
  if (first === undefined) throw new RangeError('a listing entry lists at least one job');
  return { pk: listingPk(clientId), sk: listingSk(created, first), clientId, created, jobs: [...jobIds], expiresAt };
}

/** The entry in an item; undefined for an item that is none (no list of ids). */
export function entryFromItem(item: Item): ListingEntry | undefined {
  const { created, jobs } = item;
  if (typeof created !== 'string' || !Array.isArray(jobs) || jobs.length === 0 || !jobs.every((id) => typeof id === 'string')) return undefined;
  return { created, first: jobs[0] as string, jobs: jobs as string[] };
}

/** Where a read of entries starts: at an entry (included, a cursor's), or past one (the last one read). */
export interface EntryStart {
  sk: string;
  inclusive: boolean;
}

/**
 * Reads at most `limit` of a client's entries, newest first, from `from` on (none: the newest),
 * and where the next read goes on from (none: no entry is left).
 */
export type EntryReader = (from: EntryStart | undefined, limit: number) => Promise<{ entries: ListingEntry[]; next: EntryStart | undefined }>;

/** Reads the jobs of these ids (at most 100), by id; a job not there is absent. */
export type JobReader = (ids: string[]) => Promise<Map<string, Job>>;

/** The entries a page's first read asks for, at most: as many as it needs if each holds one job, fewer since a batch's holds up to 100. */
const firstRead = 4;

/**
 * A page of the client's jobs (ports.ts's `JobStore.list` says what it holds), walked over its
 * listing entries. Entries are read a few at a time, each next read as many as the entries read
 * so far say are needed (by the jobs they held on average), until the jobs still to look at and
 * one more are in hand (so that a page that ends where the client's jobs end says so) or the
 * entries end: a page reads about the entries of the jobs it looks at, never more than one a
 * job. Those jobs are read in chunks: the page's size, then (with a status, when jobs of others
 * are left out) as many as it has looked at, at most `listExamined` in all. None of it grows with
 * the jobs stored.
 */
export async function listPage(readEntries: EntryReader, readJobs: JobReader, clientId: string, query: ListQuery): Promise<JobPage> {
  const cursor = query.cursor === undefined ? undefined : decodeCursor(query.cursor, clientId);
  /** The jobs read from entries and not looked at yet, in the listing's order: each with its entry and its place in it. */
  const inHand: Array<{ entry: ListingEntry; index: number }> = [];
  let from: EntryStart | undefined = cursor ? { sk: listingSk(cursor.created, cursor.first), inclusive: true } : undefined;
  let more = true;
  const read = { entries: 0, jobs: 0, calls: 0 };
  /** Reads entries until `wanted` jobs are in hand, or no entry is left (or, against a store that finds none, after as many reads as a page looks at jobs). */
  const fill = async (wanted: number) => {
    while (more && inHand.length < wanted && read.calls++ <= listExamined) {
      const limit = read.entries === 0 ? Math.min(firstRead, wanted) : Math.max(1, Math.ceil((wanted - inHand.length) / (read.jobs / read.entries)));
      const page = await readEntries(from, limit);
      for (const entry of page.entries) {
        // The cursor's own entry (the first read, if it is still there): its jobs up to the cursor were listed already.
        const passed = cursor && read.entries === 0 && entry.created === cursor.created && entry.first === cursor.first ? cursor.seen : 0;
        read.entries++;
        read.jobs += entry.jobs.length;
        for (let index = passed; index < entry.jobs.length; index++) inHand.push({ entry, index });
      }
      from = page.next;
      more = from !== undefined;
    }
  };
  const jobs: Job[] = [];
  let position: ListPosition | undefined;
  let examined = 0;
  while (jobs.length < query.limit && examined < listExamined) {
    const wanted = query.limit - jobs.length;
    const take = Math.min(listExamined - examined, query.status === undefined ? wanted : Math.max(wanted, examined));
    await fill(take + 1);
    const next = inHand.splice(0, take);
    if (next.length === 0) break;
    const found = await readJobs(next.map(({ entry, index }) => entry.jobs[index] as string));
    for (const [n, { entry, index }] of next.entries()) {
      examined++;
      position = { clientId, created: entry.created, first: entry.first, seen: index + 1 };
      const job = found.get(entry.jobs[index] as string);
      // A job gone (its TTL ran out, or its submit failed after it was enlisted) or of another status is left out.
      if (job && (query.status === undefined || job.status === query.status)) jobs.push(job);
      if (jobs.length === query.limit) {
        // Those not looked at go back: the page ends here.
        inHand.unshift(...next.slice(n + 1));
        break;
      }
    }
  }
  return { jobs, nextCursor: (inHand.length > 0 || more) && position ? encodeCursor(position) : null };
}

/** A client's listing entries on DynamoDB: one Query of its partition, newest first, eventually consistent. */
export function dynamoEntries(db: Documents, table: string, clientId: string): EntryReader {
  return async (from, limit) => {
    const page = await db.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: from ? `pk = :pk AND sk ${from.inclusive ? '<=' : '<'} :from` : 'pk = :pk',
        ExpressionAttributeValues: { ':pk': listingPk(clientId), ...(from ? { ':from': from.sk } : {}) },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    const entries = (page.Items ?? []).map(entryFromItem).filter((entry): entry is ListingEntry => entry !== undefined);
    // Past the last item the Query looked at (its Limit, or its megabyte): none when it found the partition's end.
    const last = page.LastEvaluatedKey?.['sk'];
    return { entries, next: typeof last === 'string' ? { sk: last, inclusive: false } : undefined };
  };
}

/** Writes the entry: one PutItem, unconditional (the same entry written again, a retry, is the same item). */
export async function putListing(db: Documents, table: string, clientId: string, created: string, jobIds: string[], expiresAt: number): Promise<void> {
  if (jobIds.length === 0) return;
  await db.send(new PutCommand({ TableName: table, Item: listingItem(clientId, created, jobIds, expiresAt) }));
}
