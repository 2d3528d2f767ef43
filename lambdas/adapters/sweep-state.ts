/**
 * The sweeper's state on DynamoDB: one item in the jobs table (`pk` = `sweeper`, `sk` = `state`;
 * lib/definitions.ts), no job's, written only by UpdateItem, its attributes plain for an
 * operator to read in the console:
 * - `resume_shard`, `resume_after_created`, `resume_after_job`: where the next run starts (the
 *   shard, and the index entry it goes on past; none: the shard's start);
 * - `last_run_unfinished`: the last run stopped at its deadline before it had gone round the index;
 * - `lease_holder`, `lease_until` (ISO-8601): the run that holds the lease, and until when;
 *   absent when no run holds it;
 * - `last_run`, `last_saved` (ISO-8601): the run that saved last, and when.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { tables } from '../../lib/definitions.ts';
import type { SweepClaim, SweepState, SweepStateStore } from '../core/ports.ts';
import type { Documents } from './dynamo.ts';

type Item = Record<string, unknown>;

const key = { pk: tables.jobs.sweeperState.pk, sk: tables.jobs.sweeperState.sk };
const iso = (ms: number) => new Date(ms).toISOString();

export class DynamoSweepStateStore implements SweepStateStore {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  /** One conditional write takes the lease and returns the item: the state the last run left comes with it. */
  async claim(run: string, now: number, until: number): Promise<SweepClaim> {
    try {
      const { Attributes = {} } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: 'SET lease_holder = :run, lease_until = :until',
          // ISO-8601 text in UTC orders as the instant does.
          ConditionExpression: 'attribute_not_exists(lease_until) OR lease_until <= :now',
          ExpressionAttributeValues: { ':run': run, ':until': iso(until), ':now': iso(now) },
          ReturnValues: 'ALL_NEW',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { state: stateFrom(Attributes) };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const held = error.Item ? unmarshall(error.Item) : {};
      const heldUntil = Date.parse(String(held['lease_until']));
      return { held: { ...(typeof held['lease_holder'] === 'string' ? { heldBy: held['lease_holder'] } : {}), ...(Number.isFinite(heldUntil) ? { heldUntil } : {}) } };
    }
  }

  /** Saves the state and drops the lease in one write, conditional on the lease being `run`'s. */
  async release(run: string, state: SweepState, now: number): Promise<boolean> {
    const values: Item = { ':run': run, ':unfinished': state.unfinished, ':now': iso(now) };
    const sets = ['last_run_unfinished = :unfinished', 'last_run = :run', 'last_saved = :now'];
    const removes = ['lease_holder', 'lease_until'];
    const at = state.resumeAt;
    if (at) {
      sets.push('resume_shard = :shard');
      values[':shard'] = at.shard;
    } else removes.push('resume_shard');
    if (at?.after) {
      sets.push('resume_after_created = :created', 'resume_after_job = :job');
      Object.assign(values, { ':created': at.after.created, ':job': at.after.jobId });
    } else removes.push('resume_after_created', 'resume_after_job');
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: key,
          UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
          ConditionExpression: 'lease_holder = :run',
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}

/** The state in the item's attributes; an item without them (the first run's) is the walk's start. */
function stateFrom(item: Item): SweepState {
  const shard = item['resume_shard'];
  const created = item['resume_after_created'];
  const jobId = item['resume_after_job'];
  const after = typeof created === 'string' && typeof jobId === 'string' ? { after: { created, jobId } } : {};
  return { ...(typeof shard === 'string' ? { resumeAt: { shard, ...after } } : {}), unfinished: item['last_run_unfinished'] === true };
}
