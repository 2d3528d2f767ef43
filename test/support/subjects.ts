/**
 * The implementations of one port that a contract test holds to the same behaviour: the
 * in-memory fake the core's tests run on, and the DynamoDB adapter on dynalite (in memory, a
 * server of its own for each test), so that no core test passes on behaviour the real store
 * would not give.
 *
 * ```ts
 * describe.each(portSubjects('MemoryJobStore', () => new MemoryJobStore(), 'DynamoJobStore', (db) => new DynamoJobStore(db.documents, db.table)))('$name', (subject) => {
 *   const store = useSubject(subject);
 *   it('…', async () => { await store().create(job, request); });
 * });
 * ```
 */
import { afterEach, beforeEach } from 'vitest';
import { startDynalite, type LocalDynamo } from './dynalite.ts';

export interface Subject<T> {
  name: string;
  open(): Promise<{ subject: T; close(): Promise<void> }>;
}

/** The in-memory implementation and the DynamoDB one on dynalite, by the names the tests show. */
export function portSubjects<T>(memoryName: string, memory: () => T, dynamoName: string, dynamo: (db: LocalDynamo) => T): Array<Subject<T>> {
  return [
    { name: memoryName, open: async () => ({ subject: memory(), close: async () => undefined }) },
    {
      name: `${dynamoName} on dynalite`,
      open: async () => {
        const db = await startDynalite();
        return { subject: dynamo(db), close: db.close };
      },
    },
  ];
}

/** A subject of its own for each test of the enclosing block, closed after it. */
export function useSubject<T>(subject: Subject<T>): () => T {
  let opened: Awaited<ReturnType<Subject<T>['open']>> | undefined;
  beforeEach(async () => {
    opened = await subject.open();
  });
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });
  return () => {
    if (!opened) throw new Error(`no ${subject.name} is open`);
    return opened.subject;
  };
}
