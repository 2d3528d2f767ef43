/**
 * The flow keys' records on the limits table (adapters/flow-store.ts): the commands it sends,
 * against the document client mocked with aws-sdk-client-mock; then the FlowStore contract, held
 * by it on dynalite and by the in-memory store the core's tests run on; then the item as an
 * operator finds it.
 */
import { ConditionalCheckFailedException, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, ScanCommand, UpdateCommand, type PutCommandInput, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoFlowStore, flowItemKey } from '../../lambdas/adapters/flow-store.ts';
import type { FlowState, FlowStore } from '../../lambdas/core/flow.ts';
import { flowTiming } from '../../lib/definitions.ts';
import { startDynalite, type LocalDynamo } from '../support/dynalite.ts';
import { expectPlaceholdersMatch } from '../support/expressions.ts';
import { ManualClock, MemoryFlowStore } from '../support/memory.ts';
import { useMockedDocuments } from '../support/mock-documents.ts';
import { portSubjects, useSubject } from '../support/subjects.ts';

const alice = '11111111111111';
const bob = '22222222222222';
const t0 = Date.parse('2025-03-04T05:06:07.890Z');
const jobA = '0b6f1c52-8a3e-4d7b-9c1f-2e5a7b9d0c11';
const jobB = '7d2e4f60-1b3c-4a5d-8e9f-0a1b2c3d4e5f';
const state: FlowState = { version: 1, rate: 20, parallelism: 3, settingsCreated: '2025-03-04T05:06:00.000Z', nextStartAt: t0 + 55, holders: { [jobA]: t0 + 25_000 } };

describe('DynamoFlowStore, as it calls DynamoDB', () => {
  const { ddb: mocked, documents, inputs } = useMockedDocuments();
  const store = new DynamoFlowStore(documents, 'Limits', new ManualClock(t0));
  const lost = () => new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

  it('reads the key of the client, consistently (a stale record could let a start past the limits)', async () => {
    mocked().on(GetCommand).resolves({});
    await expect(store.read(alice, 'tenant-1')).resolves.toEqual({ version: 0, holders: {} });
    expect(mocked().calls()[0]?.args[0].input).toEqual({ TableName: 'Limits', Key: { key: `flow#${alice}#tenant-1` }, ConsistentRead: true });
  });

  it('writes the whole item in one PutItem conditioned on the version it read, or on there being none', async () => {
    mocked().on(PutCommand).resolves({});
    await expect(store.write(alice, 'tenant-1', state, 0)).resolves.toBe(true);
    await expect(store.write(alice, 'tenant-1', { ...state, version: 8 }, 7)).resolves.toBe(true);
    const [first, second] = inputs<PutCommandInput>(PutCommand);
    expect(first).toMatchObject({ ConditionExpression: 'attribute_not_exists(#key)', ExpressionAttributeNames: { '#key': 'key' } });
    expect(second).toMatchObject({ ConditionExpression: '#version = :expected', ExpressionAttributeValues: { ':expected': 7 }, Item: { version: 8 } });
    for (const input of [first, second]) expectPlaceholdersMatch(input);
  });

  it('says a write lost to another worker\'s is not written, and lets every other failure through', async () => {
    mocked().on(PutCommand).rejectsOnce(lost()).rejects(new ProvisionedThroughputExceededException({ message: 'Rate exceeded', $metadata: {} }));
    await expect(store.write(alice, 'tenant-1', state, 0)).resolves.toBe(false);
    await expect(store.write(alice, 'tenant-1', state, 0)).rejects.toBeInstanceOf(ProvisionedThroughputExceededException);
  });

  it('lets a slot go in one UpdateItem without a read, moving the version on; a slot no longer held is no error', async () => {
    mocked().on(UpdateCommand).resolvesOnce({}).rejects(lost());
    await store.release(alice, 'tenant-1', jobA);
    await store.release(alice, 'tenant-1', jobA);
    const [input] = inputs<UpdateCommandInput>(UpdateCommand);
    expect(input).toMatchObject({ UpdateExpression: 'REMOVE #holders.#job ADD #version :one', ConditionExpression: 'attribute_exists(#holders.#job)', ExpressionAttributeNames: { '#job': jobA } });
    expectPlaceholdersMatch(input);
  });

  it('pauses the key in one UpdateItem that never shortens a longer pause', async () => {
    mocked().on(UpdateCommand).resolvesOnce({}).rejects(lost());
    await store.pause(alice, 'tenant-1', t0 + 2_000);
    await store.pause(alice, 'tenant-1', t0 + 1_000);
    const [input] = inputs<UpdateCommandInput>(UpdateCommand);
    expect(input).toMatchObject({ ConditionExpression: 'attribute_not_exists(#paused) OR #paused < :until', ExpressionAttributeValues: { ':until': '2025-03-04T05:06:09.890Z' } });
    expectPlaceholdersMatch(input);
  });
});

const subjects = portSubjects<FlowStore>('MemoryFlowStore', () => new MemoryFlowStore(), 'DynamoFlowStore', (db) => new DynamoFlowStore(db.documents, db.limitsTable));

describe.each(subjects)('the FlowStore contract: $name', (subject) => {
  const store = useSubject(subject);

  it('reads back what it wrote, and refuses a write on a version that moved', async () => {
    await expect(store().write(alice, 'tenant-1', state, 0)).resolves.toBe(true);
    await expect(store().read(alice, 'tenant-1')).resolves.toEqual(state);
    await expect(store().write(alice, 'tenant-1', { ...state, version: 2 }, 0)).resolves.toBe(false);
    await expect(store().write(alice, 'tenant-1', { ...state, version: 2, holders: {} }, 1)).resolves.toBe(true);
    await expect(store().write(alice, 'tenant-1', { ...state, version: 2 }, 1)).resolves.toBe(false);
  });

  it('moves the version on when a slot goes, so that a start decided before it is decided again', async () => {
    await store().write(alice, 'tenant-1', { ...state, holders: { [jobA]: t0 + 1_000, [jobB]: t0 + 2_000 } }, 0);
    await store().release(alice, 'tenant-1', jobA);
    await store().release(alice, 'tenant-1', jobA);
    await store().release(alice, 'tenant-9', jobA);
    const after = await store().read(alice, 'tenant-1');
    expect(after).toMatchObject({ version: 2, holders: { [jobB]: t0 + 2_000 } });
    await expect(store().write(alice, 'tenant-1', { ...state, version: 2 }, 1)).resolves.toBe(false);
  });

  it('pauses a key, made or not, only ever longer', async () => {
    await store().pause(alice, 'tenant-1', t0 + 2_000);
    await store().pause(alice, 'tenant-1', t0 + 1_000);
    await expect(store().read(alice, 'tenant-1')).resolves.toMatchObject({ version: 1, pausedUntil: t0 + 2_000, holders: {} });
    await store().pause(alice, 'tenant-1', t0 + 3_000);
    await expect(store().read(alice, 'tenant-1')).resolves.toMatchObject({ version: 2, pausedUntil: t0 + 3_000 });
  });

  it("keeps one client's key apart from another's of the same name", async () => {
    await store().write(alice, 'tenant-1', state, 0);
    await expect(store().read(bob, 'tenant-1')).resolves.toEqual({ version: 0, holders: {} });
  });
});

describe('the limits table, as an operator reads a flow key', () => {
  let dynamo: LocalDynamo;
  beforeEach(async () => {
    dynamo = await startDynalite();
  });
  afterEach(() => dynamo.close());

  it('holds one item per client and key, of plain attributes: the settings and their job, the next start, the holders, the pause, and when it may go', async () => {
    const store = new DynamoFlowStore(dynamo.documents, dynamo.limitsTable, new ManualClock(t0));
    await store.write(alice, 'tenant-1', state, 0);
    await store.pause(alice, 'tenant-1', t0 + 2_000);
    const { Items } = await dynamo.documents.send(new ScanCommand({ TableName: dynamo.limitsTable }));
    expect(Items).toEqual([
      {
        key: flowItemKey(alice, 'tenant-1'),
        clientId: alice,
        flow_key: 'tenant-1',
        flow_rate: 20,
        flow_parallelism: 3,
        created: '2025-03-04T05:06:00.000Z',
        next_start_at: '2025-03-04T05:06:07.945Z',
        holders: { [jobA]: '2025-03-04T05:06:32.890Z' },
        paused_until: '2025-03-04T05:06:09.890Z',
        version: 2,
        // The pause wrote last: a day after it ends (a lease is minutes at most, so no holder outlives it).
        expiresAt: Math.ceil((t0 + 2_000 + flowTiming.idleKeyMs) / 1000),
      },
    ]);
  });
});
