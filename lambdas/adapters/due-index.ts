/**
 * The due index on DynamoDB (lib/definitions.ts `tables.jobs.dueIndex`): a sparse GSI of the job
 * items that carry `due` ("<minute>#<shard>"), sorted by `next_attempt_at`, projecting
 * `timeout_ms`. The release's own progress is one item of the jobs table (`pk` = `release`,
 * `sk` = `state`), its attributes plain for an operator: `released_through` (ISO-8601, the last
 * minute whose every bucket was sent) and `last_saved`.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, paginateQuery, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { jobLimits, tables } from '../../lib/definitions.ts';
import type { DueIndex, DueJob } from '../core/ports.ts';
import type { Documents } from './dynamo.ts';
import { JOB } from './job-items.ts';

const index = tables.jobs.dueIndex;
const stateKey = { pk: tables.jobs.releaseState.pk, sk: tables.jobs.releaseState.sk };
const iso = (ms: number) => new Date(ms).toISOString();

export class DynamoDueIndex implements DueIndex {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  /** The bucket's entries, page by page (eventually consistent, as an index is: an entry just taken out may still show, and is then sent twice). */
  async *due(bucket: string): AsyncIterable<DueJob> {
    const pages = paginateQuery(
      { client: this.db },
      {
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#due = :bucket',
        ExpressionAttributeNames: { '#due': index.partitionKey },
        ExpressionAttributeValues: { ':bucket': bucket },
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        const startAt = Date.parse(String(item[index.sortKey]));
        if (item['sk'] !== JOB || !Number.isFinite(startAt)) continue;
        // An absent timeout is the stored default (job-items.ts leaves it out).
        const timeoutMs = typeof item['timeout_ms'] === 'number' ? item['timeout_ms'] : jobLimits.timeoutMs.default;
        yield { jobId: String(item['pk']), due: bucket, startAt, timeoutMs };
      }
    }
  }

  /** REMOVE due, if the job is still in this bucket: one write unit, and the index entry's removal. */
  async released(jobId: string, bucket: string): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: jobId, sk: JOB },
          UpdateExpression: 'REMOVE #due',
          ConditionExpression: '#due = :bucket',
          ExpressionAttributeNames: { '#due': index.partitionKey },
          ExpressionAttributeValues: { ':bucket': bucket },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async releasedThrough(): Promise<number | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: stateKey, ConsistentRead: true }));
    const through = Date.parse(String(Item?.['released_through']));
    return Number.isFinite(through) ? through : undefined;
  }

  /** Forward only: ISO-8601 text in UTC orders as the instant does. */
  async saveReleasedThrough(minute: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: stateKey,
          UpdateExpression: 'SET released_through = :through, last_saved = :now',
          ConditionExpression: 'attribute_not_exists(released_through) OR released_through < :through',
          ExpressionAttributeValues: { ':through': iso(minute), ':now': iso(Date.now()) },
        }),
      );
    } catch (error) {
      // A later minute is saved already (an overlapping run's): it stands.
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}
