/**
 * The flow keys' records (core/flow.ts) in the limits table, through the AWS SDK's document
 * client: one item per client and key, readable as it stands:
 *
 * ```
 * key               flow#66666666666668#tenant-42
 * clientId          66666666666668
 * flow_key          tenant-42
 * flow_rate         20                        the newest job's settings...
 * flow_parallelism  3
 * created           2025-03-04T05:06:07.890Z  ...and the `created` of the job they came from
 * next_start_at     2025-03-04T05:06:08.145Z  the earliest start of the next attempt (GCRA)
 * holders           { "0b6f…": "2025-03-04T05:06:33.090Z", … }   job id → when its lease, and slot, ends
 * paused_until      2025-03-04T05:06:10.000Z  a 429/503's Retry-After: no start before
 * version           412                       bumped by every write: the condition of the next
 * expiresAt         1741151167                epoch seconds: TTL forgets an idle key a day on
 * ```
 *
 * What it costs (on demand; the item is well under 1 KB below some ten holders, a write unit
 * per write; each holder adds about 60 bytes): a start let in is one consistent GetItem (one
 * read unit up to 4 KB) and one conditional PutItem; letting its slot go one UpdateItem (only
 * where the key counts slots); a start refused one GetItem and nothing else; a pause one
 * UpdateItem. Another worker's write between a read and a write costs the read and write again.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { flowTiming } from '../../lib/definitions.ts';
import type { FlowState, FlowStore } from '../core/flow.ts';
import { systemClock, type Clock } from '../core/ports.ts';
import type { Documents } from './dynamo.ts';

/** A key's item: per client, so one client's key never meets another's. */
export const flowItemKey = (clientId: string, key: string): string => `flow#${clientId}#${key}`;

const iso = (ms: number) => new Date(ms).toISOString();
const instant = (value: unknown): number | undefined => (typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? Date.parse(value) : undefined);

/** The state in an item (none: version 0, no holders). */
export function flowStateFromItem(item: Record<string, unknown> | undefined): FlowState {
  if (!item) return { version: 0, holders: {} };
  const holders: Record<string, number> = {};
  for (const [jobId, until] of Object.entries((item['holders'] as Record<string, unknown> | undefined) ?? {})) {
    const at = instant(until);
    if (at !== undefined) holders[jobId] = at;
  }
  const number = (value: unknown) => (typeof value === 'number' ? value : undefined);
  const state: FlowState = { version: number(item['version']) ?? 0, holders };
  const fields: Partial<FlowState> = {
    rate: number(item['flow_rate']),
    parallelism: number(item['flow_parallelism']),
    settingsCreated: typeof item['created'] === 'string' ? item['created'] : undefined,
    nextStartAt: instant(item['next_start_at']),
    pausedUntil: instant(item['paused_until']),
  };
  for (const [field, value] of Object.entries(fields)) if (value !== undefined) Object.assign(state, { [field]: value });
  return state;
}

/** The item of a state, its instants as ISO-8601 text, an absent setting absent. */
export function flowItem(clientId: string, key: string, state: FlowState, now: number): Record<string, unknown> {
  const instants = [now, state.nextStartAt ?? 0, state.pausedUntil ?? 0, ...Object.values(state.holders)];
  const item: Record<string, unknown> = {
    key: flowItemKey(clientId, key),
    clientId,
    flow_key: key,
    holders: Object.fromEntries(Object.entries(state.holders).map(([jobId, until]) => [jobId, iso(until)])),
    version: state.version,
    expiresAt: Math.ceil((Math.max(...instants) + flowTiming.idleKeyMs) / 1000),
  };
  if (state.rate !== undefined) item['flow_rate'] = state.rate;
  if (state.parallelism !== undefined) item['flow_parallelism'] = state.parallelism;
  if (state.settingsCreated !== undefined) item['created'] = state.settingsCreated;
  if (state.nextStartAt !== undefined) item['next_start_at'] = iso(state.nextStartAt);
  if (state.pausedUntil !== undefined) item['paused_until'] = iso(state.pausedUntil);
  return item;
}

const refused = (error: unknown) => error instanceof ConditionalCheckFailedException;

export class DynamoFlowStore implements FlowStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Consistent: a start decided on a stale record could pass the key's limits. */
  async read(clientId: string, key: string): Promise<FlowState> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: { key: flowItemKey(clientId, key) }, ConsistentRead: true }));
    return flowStateFromItem(Item);
  }

  /** The whole item, if no other write came since the version read. */
  async write(clientId: string, key: string, state: FlowState, expectedVersion: number): Promise<boolean> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: flowItem(clientId, key, state, this.clock.now()),
          ...(expectedVersion === 0
            ? { ConditionExpression: 'attribute_not_exists(#key)', ExpressionAttributeNames: { '#key': 'key' } }
            : { ConditionExpression: '#version = :expected', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':expected': expectedVersion } }),
        }),
      );
      return true;
    } catch (error) {
      if (refused(error)) return false;
      throw error;
    }
  }

  /** One UpdateItem, no read: the version moves on, so a start decided on the record before it is written again. */
  async release(clientId: string, key: string, jobId: string): Promise<void> {
    // Refused: not a holder (any more), its lease ran out and a later start pruned it.
    await this.updateUnlessRefused(clientId, key, {
      UpdateExpression: 'REMOVE #holders.#job ADD #version :one',
      ConditionExpression: 'attribute_exists(#holders.#job)',
      ExpressionAttributeNames: { '#holders': 'holders', '#job': jobId, '#version': 'version' },
      ExpressionAttributeValues: { ':one': 1 },
    });
  }

  async pause(clientId: string, key: string, until: number): Promise<void> {
    // Refused: paused as long or longer already.
    await this.updateUnlessRefused(clientId, key, {
      UpdateExpression: 'SET #paused = :until, #clientId = :clientId, #flowKey = :flowKey, #holders = if_not_exists(#holders, :none), #expiresAt = :expiresAt ADD #version :one',
      ConditionExpression: 'attribute_not_exists(#paused) OR #paused < :until',
      ExpressionAttributeNames: { '#paused': 'paused_until', '#clientId': 'clientId', '#flowKey': 'flow_key', '#holders': 'holders', '#expiresAt': 'expiresAt', '#version': 'version' },
      ExpressionAttributeValues: {
        ':until': iso(until),
        ':clientId': clientId,
        ':flowKey': key,
        ':none': {},
        ':one': 1,
        ':expiresAt': Math.ceil((Math.max(until, this.clock.now()) + flowTiming.idleKeyMs) / 1000),
      },
    });
  }

  /** One conditional UpdateItem of the key's item; a refused condition means there was nothing to do. */
  private async updateUnlessRefused(clientId: string, key: string, update: Pick<UpdateCommandInput, 'UpdateExpression' | 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>): Promise<void> {
    try {
      await this.db.send(new UpdateCommand({ TableName: this.table, Key: { key: flowItemKey(clientId, key) }, ...update }));
    } catch (error) {
      if (!refused(error)) throw error;
    }
  }
}
