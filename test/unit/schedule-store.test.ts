/**
 * The ScheduleStore contract, held by the in-memory store the core's tests run on and by the
 * DynamoDB adapter on dynalite (the local stack's schedules table): a create never overwrites,
 * a client's schedules are its own, `due` finds what the local timer runs, and `advance` moves
 * `next_run` forward only. Then the item as an operator reads it.
 */
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoScheduleStore } from '../../lambdas/adapters/schedules.ts';
import { ConditionFailed, type ScheduleStore } from '../../lambdas/core/ports.ts';
import type { Schedule } from '../../lambdas/core/schedule.ts';
import { localTableNames } from '../../local/provision.ts';
import { startDynalite } from '../support/dynalite.ts';
import { MemoryScheduleStore } from '../support/memory.ts';
import { portSubjects, useSubject } from '../support/subjects.ts';

const at = (text: string) => Date.parse(text);
const schedule = (fields: Partial<Schedule> & Pick<Schedule, 'scheduleId'>): Schedule => ({
  clientId: '11111111111111',
  cron: '* * * * *',
  timezone: 'UTC',
  expression: 'cron(* * * * ? *)',
  job: { url: 'https://service.example.com/', body: { deep: [1, { x: null }], big: 1e300 } },
  nextRun: at('2026-12-02T10:01:00.000Z'),
  created: '2026-12-02T10:00:30.000Z',
  ...fields,
});
const a = '0a000000-0000-4000-8000-000000000000';
const b = '0b000000-0000-4000-8000-000000000000';
const c = '0c000000-0000-4000-8000-000000000000';

describe.each(portSubjects<ScheduleStore>('MemoryScheduleStore', () => new MemoryScheduleStore(), 'DynamoScheduleStore', (db) => new DynamoScheduleStore(db.documents, localTableNames.schedules)))(
  '$name',
  (subject) => {
    const store = useSubject(subject);

    it('keeps a schedule as it was made, its job byte for byte, and never writes one over another of its id', async () => {
      const made = schedule({ scheduleId: a });
      await store().create(made);
      expect(await store().get(a)).toEqual(made);
      await expect(store().create({ ...made, cron: '0 9 * * *' })).rejects.toThrow(ConditionFailed);
      expect((await store().get(a))?.cron).toBe('* * * * *');
      await store().remove(a);
      expect(await store().get(a)).toBeUndefined();
    });

    it("lists a client's schedules alone, newest first", async () => {
      await store().create(schedule({ scheduleId: a, created: '2026-12-02T10:00:00.000Z' }));
      await store().create(schedule({ scheduleId: b, created: '2026-12-02T11:00:00.000Z' }));
      await store().create(schedule({ scheduleId: c, clientId: '22222222222222' }));
      expect((await store().list('11111111111111')).map((s) => s.scheduleId)).toEqual([b, a]);
      expect((await store().list('33333333333333'))).toEqual([]);
      expect(await store().count('11111111111111')).toBe(2);
      expect(await store().count('33333333333333')).toBe(0);
    });

    it('finds the schedules due at an instant, and none whose next run is later or gone', async () => {
      await store().create(schedule({ scheduleId: a, nextRun: at('2026-12-02T10:01:00.000Z') }));
      await store().create(schedule({ scheduleId: b, nextRun: at('2026-12-02T10:02:00.000Z') }));
      const { nextRun: _none, ...never } = schedule({ scheduleId: c });
      await store().create(never);
      expect((await store().due(at('2026-12-02T10:01:00.000Z'))).map((s) => s.scheduleId)).toEqual([a]);
      expect((await store().due(at('2026-12-02T10:05:00.000Z'))).map((s) => s.scheduleId).sort()).toEqual([a, b]);
    });

    it('moves next_run forward from the run made, never back, and says when it did not', async () => {
      await store().create(schedule({ scheduleId: a }));
      const ran = at('2026-12-02T10:01:00.000Z');
      expect(await store().advance(a, ran, at('2026-12-02T10:02:00.000Z'), 'job-1')).toBe(true);
      expect(await store().get(a)).toMatchObject({ nextRun: at('2026-12-02T10:02:00.000Z'), lastRun: ran, lastJobId: 'job-1' });
      // A late repeat of the run before: next_run stays.
      expect(await store().advance(a, ran, at('2026-12-02T10:02:00.000Z'), 'job-1')).toBe(false);
      // A run that made nothing, and a cron that matches no later time.
      expect(await store().advance(a, at('2026-12-02T10:02:00.000Z'), undefined, undefined)).toBe(true);
      const last = await store().get(a);
      expect(last?.nextRun).toBeUndefined();
      expect(last?.lastJobId).toBeUndefined();
      expect(await store().advance(b, ran, undefined, undefined)).toBe(false);
    });
  },
);

it("lies in the table under the API's names, its instants as ISO-8601 text and its job as its JSON text", async () => {
  const db = await startDynalite();
  try {
    await new DynamoScheduleStore(db.documents, localTableNames.schedules).create(schedule({ scheduleId: a }));
    const { Item } = await db.documents.send(new GetCommand({ TableName: localTableNames.schedules, Key: { schedule_id: a } }));
    expect(Item).toEqual({
      schedule_id: a,
      clientId: '11111111111111',
      cron: '* * * * *',
      timezone: 'UTC',
      schedule_expression: 'cron(* * * * ? *)',
      job: '{"url":"https://service.example.com/","body":{"deep":[1,{"x":null}],"big":1e+300}}',
      next_run: '2026-12-02T10:01:00.000Z',
      created: '2026-12-02T10:00:30.000Z',
    });
  } finally {
    await db.close();
  }
});
