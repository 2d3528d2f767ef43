/**
 * The schedules table on DynamoDB, through the document client: one item per schedule, readable
 * as it stands (lib/definitions.ts `tables.schedules` says why a table of its own):
 *
 * ```
 * schedule_id          0b4c...                   the key
 * clientId             66666666666668            with `created`, the client index's keys
 * cron                 0 9 * * 1-5
 * timezone             Europe/Paris
 * schedule_expression  cron(0 9 ? * 2,3,4,5,6 *)
 * job                  {"url":"https://...","method":"POST"}   the v1 job, as JSON text
 * next_run             2026-12-02T09:15:00.000Z   absent once the cron matches no later time
 * created              2026-12-02T09:01:12.345Z
 * last_run, last_job_id                           the last run made, and its job
 * ```
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, paginateQuery, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { tables } from '../../lib/definitions.ts';
import { ConditionFailed, type ScheduleStore } from '../core/ports.ts';
import type { Schedule } from '../core/schedule.ts';
import type { V1JobRequest } from '../core/schemas.ts';
import { queryItems, scanItems, type Documents } from './dynamo.ts';

type Item = Record<string, unknown>;

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
const epoch = (value: unknown) => (typeof value === 'string' ? Date.parse(value) : undefined);

/** The schedule's item: instants as ISO-8601 text, the job as its JSON text, nothing absent written. */
export function scheduleItem(schedule: Schedule): Item {
  const item: Item = {
    schedule_id: schedule.scheduleId,
    clientId: schedule.clientId,
    cron: schedule.cron,
    timezone: schedule.timezone,
    schedule_expression: schedule.expression,
    job: JSON.stringify(schedule.job),
    next_run: iso(schedule.nextRun),
    created: schedule.created,
    last_run: iso(schedule.lastRun),
    last_job_id: schedule.lastJobId,
  };
  return Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined));
}

export function scheduleFromItem(item: Item): Schedule {
  const nextRun = epoch(item['next_run']);
  const lastRun = epoch(item['last_run']);
  return {
    scheduleId: String(item['schedule_id']),
    clientId: String(item['clientId']),
    cron: String(item['cron']),
    timezone: String(item['timezone']),
    expression: String(item['schedule_expression']),
    job: JSON.parse(String(item['job'])) as V1JobRequest,
    created: String(item['created']),
    ...(nextRun !== undefined ? { nextRun } : {}),
    ...(lastRun !== undefined ? { lastRun } : {}),
    ...(item['last_job_id'] !== undefined ? { lastJobId: String(item['last_job_id']) } : {}),
  };
}

export class DynamoScheduleStore implements ScheduleStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  async create(schedule: Schedule): Promise<void> {
    try {
      await this.db.send(new PutCommand({ TableName: this.table, Item: scheduleItem(schedule), ConditionExpression: 'attribute_not_exists(schedule_id)' }));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw new ConditionFailed('a schedule of this id is there already', { cause: error });
      throw error;
    }
  }

  async get(scheduleId: string): Promise<Schedule | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { schedule_id: scheduleId }, ConsistentRead: true }));
    return Item ? scheduleFromItem(Item) : undefined;
  }

  async remove(scheduleId: string): Promise<void> {
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: { schedule_id: scheduleId } }));
  }

  /** The client index, newest first, then each schedule read consistently (at most scheduleLimits.perClient of them). */
  async list(clientId: string): Promise<Schedule[]> {
    const index = tables.schedules.clientIndex;
    const entries = await queryItems(this.db, {
      TableName: this.table,
      IndexName: index.name,
      KeyConditionExpression: '#client = :client',
      ExpressionAttributeNames: { '#client': index.partitionKey },
      ExpressionAttributeValues: { ':client': clientId },
      ScanIndexForward: false,
    });
    const found = await Promise.all(entries.map((entry) => this.get(String(entry['schedule_id']))));
    // One deleted since the index listed it is left out.
    return found.filter((schedule): schedule is Schedule => schedule !== undefined && schedule.clientId === clientId);
  }

  /** The client index's entries, counted (Select COUNT, page after page): one read however many, and no schedule read. */
  async count(clientId: string): Promise<number> {
    const index = tables.schedules.clientIndex;
    let count = 0;
    const pages = paginateQuery(
      { client: this.db },
      {
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#client = :client',
        ExpressionAttributeNames: { '#client': index.partitionKey },
        ExpressionAttributeValues: { ':client': clientId },
        Select: 'COUNT',
      },
    );
    for await (const page of pages) count += page.Count ?? 0;
    return count;
  }

  /**
   * A Scan, filtered: for the local stack's timer alone, over a local table (on AWS EventBridge
   * Scheduler fires the schedules, and nothing scans).
   */
  async due(now: number): Promise<Schedule[]> {
    const items = await scanItems(this.db, {
      TableName: this.table,
      FilterExpression: 'next_run <= :now',
      ExpressionAttributeValues: { ':now': new Date(now).toISOString() },
      ConsistentRead: true,
    });
    return items.map(scheduleFromItem);
  }

  async advance(scheduleId: string, ran: number, next: number | undefined, jobId: string | undefined): Promise<boolean> {
    const sets = ['last_run = :ran', ...(next !== undefined ? ['next_run = :next'] : []), ...(jobId !== undefined ? ['last_job_id = :job'] : [])];
    const removes = [...(next === undefined ? ['next_run'] : []), ...(jobId === undefined ? ['last_job_id'] : [])];
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { schedule_id: scheduleId },
          UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
          // ISO-8601 text of one form orders as the instants do.
          ConditionExpression: 'attribute_exists(schedule_id) AND next_run <= :ran',
          ExpressionAttributeValues: { ':ran': new Date(ran).toISOString(), ...(next !== undefined ? { ':next': new Date(next).toISOString() } : {}), ...(jobId !== undefined ? { ':job': jobId } : {}) },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
