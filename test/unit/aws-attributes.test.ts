import { marshall as sdkMarshall, unmarshall as sdkUnmarshall } from '@aws-sdk/util-dynamodb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AttributeValueError, DynamoDocuments, marshall, unmarshall, type AttributeValue } from '../../lambdas/adapters/aws/attributes.ts';
import { AwsError, type AwsClient } from '../../lambdas/adapters/aws/client.ts';

/** The SDK keeps binaries as Uint8Array; on the wire (and from our marshall) they are base64. */
function toWire(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(toWire);
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) result[key] = toWire(entry);
    return result;
  }
  return value;
}

/** The wire's base64 binaries as the SDK's protocol layer hands them to util-dynamodb. */
function fromWire(value: unknown, key?: string): unknown {
  if (key === 'B' && typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  if (key === 'BS' && Array.isArray(value)) return value.map((entry) => new Uint8Array(Buffer.from(entry as string, 'base64')));
  if (Array.isArray(value)) return value.map((entry) => fromWire(entry));
  if (value !== null && typeof value === 'object') {
    const result: Record<string, unknown> = {};
    for (const [name, entry] of Object.entries(value)) result[name] = fromWire(entry, name);
    return result;
  }
  return value;
}

/** What a call gives: its value, or the fact that it threw. */
function outcome<T>(run: () => T): { value: T } | { threw: true } {
  try {
    return { value: run() };
  } catch {
    return { threw: true };
  }
}

// Field names, without __proto__ (the SDK drops it; ours keeps it, tested on its own below).
const fieldName = fc.string({ maxLength: 6 }).filter((name) => name !== '__proto__');
const binary = fc.uint8Array({ maxLength: 12 });
const scalar = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constant(''),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, -(2 ** 60), 1e300, 5e-324, -0),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  binary,
);
const set = fc.oneof(
  fc.uniqueArray(fc.string({ maxLength: 5 }), { maxLength: 4 }).map((values) => new Set(values)),
  fc.uniqueArray(fc.integer(), { maxLength: 4 }).map((values) => new Set(values)),
);
// Documents: nested maps and lists with undefined here and there, sets and binaries inside.
const { document } = fc.letrec<{ value: unknown; document: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, fc.constant(undefined), set, fc.array(tie('value'), { maxLength: 4 }), tie('document')),
  document: fc.dictionary(fieldName, tie('value'), { maxKeys: 5, noNullPrototype: true }),
}));

// For the round trip: what comes back as it went in (no undefined, bigint, -0, Map or empty Set).
const { plain } = fc.letrec<{ entry: unknown; plain: Record<string, unknown> }>((tie) => ({
  entry: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 8 }),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true, min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }).filter((n) => !Object.is(n, -0)),
    fc.boolean(),
    fc.constant(null),
    binary,
    set.filter((values) => values.size > 0),
    fc.array(tie('entry'), { maxLength: 4 }),
    tie('plain'),
  ),
  plain: fc.dictionary(fieldName, tie('entry'), { maxKeys: 5, noNullPrototype: true }),
}));

describe('marshall and unmarshall', () => {
  it('marshall agrees with @aws-sdk/util-dynamodb (removeUndefinedValues) on any document, refusals included', () => {
    fc.assert(
      fc.property(document, (doc) => {
        const ours = outcome(() => marshall(doc));
        const theirs = outcome(() => toWire(sdkMarshall(doc, { removeUndefinedValues: true })));
        expect(ours).toEqual(theirs);
      }),
      { numRuns: 1000 },
    );
  });

  it('unmarshall agrees with @aws-sdk/util-dynamodb on what marshall makes', () => {
    fc.assert(
      fc.property(document, (doc) => {
        const wire = outcome(() => marshall(doc));
        if (!('value' in wire)) return;
        expect(unmarshall(wire.value)).toEqual(sdkUnmarshall(fromWire(wire.value) as never));
      }),
      { numRuns: 1000 },
    );
  });

  it('gives back what it was given, through JSON as on the wire', () => {
    fc.assert(
      fc.property(plain, (doc) => {
        const wire = JSON.parse(JSON.stringify(marshall(doc))) as Record<string, AttributeValue>;
        expect(unmarshall(wire)).toEqual(doc);
      }),
      { numRuns: 500 },
    );
  });

  it('maps each kind of value to its attribute type', () => {
    expect(
      marshall({
        s: '',
        n: 1.5,
        big: 12345678901234567890n,
        yes: true,
        nothing: null,
        gone: undefined,
        bytes: Buffer.from('hi'),
        view: new Uint8Array([255]),
        list: [1, undefined, 'a'],
        map: { inner: { deeper: [] } },
        fromMap: new Map([['k', 1]]),
        strings: new Set(['a']),
        numbers: new Set([1, 2n]),
        binaries: new Set([new Uint8Array([1])]),
      }),
    ).toEqual({
      s: { S: '' },
      n: { N: '1.5' },
      big: { N: '12345678901234567890' },
      yes: { BOOL: true },
      nothing: { NULL: true },
      bytes: { B: 'aGk=' },
      view: { B: '/w==' },
      list: { L: [{ N: '1' }, { S: 'a' }] },
      map: { M: { inner: { M: { deeper: { L: [] } } } } },
      fromMap: { M: { k: { N: '1' } } },
      strings: { SS: ['a'] },
      numbers: { NS: ['1', '2'] },
      binaries: { BS: ['AQ=='] },
    });
  });

  it('reads numbers as numbers, too-large integers as bigints, binaries as Uint8Array and sets as Sets', () => {
    const item = unmarshall({
      n: { N: '-0.25' },
      big: { N: '12345678901234567890' },
      b: { B: 'AAH/' },
      ss: { SS: ['a', 'b'] },
      ns: { NS: ['1', '2'] },
      bs: { BS: ['AQ=='] },
    });
    expect(item).toEqual({ n: -0.25, big: 12345678901234567890n, b: new Uint8Array([0, 1, 255]), ss: new Set(['a', 'b']), ns: new Set([1, 2]), bs: new Set([new Uint8Array([1])]) });
    expect(item['b']).toBeInstanceOf(Uint8Array);
  });

  it('refuses NaN, Infinity and imprecise numbers, naming the field', () => {
    expect(() => marshall({ a: { b: [1, Number.NaN] } })).toThrow(new AttributeValueError('the field a.b[1] is NaN: DynamoDB stores finite numbers only'));
    expect(() => marshall({ x: -Infinity })).toThrow(/the field x is -Infinity/);
    expect(() => marshall({ x: 2 ** 60 })).toThrow(/pass a bigint/);
  });

  it('refuses class instances, a Date among them, and empty sets', () => {
    expect(() => marshall({ when: new Date(0) })).toThrow(/the field when is a Date.*toISOString/);
    expect(() => marshall({ s: new Set() })).toThrow(/empty Set/);
    expect(() => marshall({ s: new Set(['a', 1]) })).toThrow(/mixes strings/);
    class Job {
      id = 1;
    }
    expect(() => marshall({ job: new Job() })).toThrow(AttributeValueError);
  });

  it('keeps a field named __proto__ as a field', () => {
    const doc = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>;
    const wire = marshall(doc);
    expect(Object.keys(wire)).toEqual(['__proto__']);
    expect(JSON.stringify(wire)).toBe('{"__proto__":{"M":{"x":{"N":"1"}}}}');
    const back = unmarshall(JSON.parse(JSON.stringify(wire)) as Record<string, AttributeValue>);
    expect(Object.keys(back)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
  });
});

/** An AwsClient stand-in: records each call and answers from `answer`. */
function fakeClient(answer: (operation: string, input: Record<string, unknown>) => unknown) {
  const calls: Array<{ operation: string; input: Record<string, unknown> }> = [];
  const client: Pick<AwsClient, 'call'> = {
    call: async <O>(operation: string, input: Record<string, unknown>) => {
      calls.push({ operation, input: structuredClone(input) });
      return answer(operation, input) as O;
    },
  };
  return { db: new DynamoDocuments(client), calls };
}

const job = { pk: 'job#1', sk: 'job', attempts: 2, tags: ['a'] };
const jobAttributes = { pk: { S: 'job#1' }, sk: { S: 'job' }, attempts: { N: '2' }, tags: { L: [{ S: 'a' }] } };
const key = { pk: 'job#1', sk: 'job' };
const keyAttributes = { pk: { S: 'job#1' }, sk: { S: 'job' } };

describe('DynamoDocuments', () => {
  it('PutItem: marshals Item and ExpressionAttributeValues, unmarshals the old Attributes, passes the rest', async () => {
    const { db, calls } = fakeClient(() => ({ Attributes: jobAttributes, ConsumedCapacity: { CapacityUnits: 1 } }));
    const input = { TableName: 't', Item: job, ConditionExpression: '#s <> :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'done' }, ReturnValues: 'ALL_OLD' };
    const output = await db.send('PutItem', input);
    expect(calls).toEqual([
      {
        operation: 'PutItem',
        input: { ...input, Item: jobAttributes, ExpressionAttributeValues: { ':s': { S: 'done' } } },
      },
    ]);
    expect(output).toEqual({ Attributes: job, ConsumedCapacity: { CapacityUnits: 1 } });
    expect(input.Item).toBe(job);
  });

  it('GetItem: marshals Key, unmarshals Item, and leaves a missing Item missing', async () => {
    const { db, calls } = fakeClient((_operation, input) => ((input['Key'] as { pk: { S: string } }).pk.S === 'job#1' ? { Item: jobAttributes } : {}));
    expect(await db.send('GetItem', { TableName: 't', Key: key, ConsistentRead: true })).toEqual({ Item: job });
    expect(await db.send('GetItem', { TableName: 't', Key: { pk: 'other', sk: 'job' } })).toEqual({});
    expect(calls[0]?.input).toEqual({ TableName: 't', Key: keyAttributes, ConsistentRead: true });
  });

  it.each(['UpdateItem', 'DeleteItem'])('%s: marshals Key and ExpressionAttributeValues, unmarshals Attributes', async (operation) => {
    const { db, calls } = fakeClient(() => ({ Attributes: jobAttributes }));
    const output = await db.send(operation, { TableName: 't', Key: key, UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': 3, ':n': null } });
    expect(calls[0]?.input).toEqual({ TableName: 't', Key: keyAttributes, UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': { N: '3' }, ':n': { NULL: true } } });
    expect(output).toEqual({ Attributes: job });
  });

  it.each(['Query', 'Scan'])('%s: marshals ExclusiveStartKey and values, unmarshals Items and LastEvaluatedKey', async (operation) => {
    const { db, calls } = fakeClient(() => ({ Items: [jobAttributes, jobAttributes], Count: 2, ScannedCount: 2, LastEvaluatedKey: keyAttributes }));
    const output = await db.send(operation, { TableName: 't', ExpressionAttributeValues: { ':pk': 'job#1' }, ExclusiveStartKey: key, Limit: 2 });
    expect(calls[0]?.input).toEqual({ TableName: 't', ExpressionAttributeValues: { ':pk': { S: 'job#1' } }, ExclusiveStartKey: keyAttributes, Limit: 2 });
    expect(output).toEqual({ Items: [job, job], Count: 2, ScannedCount: 2, LastEvaluatedKey: key });
  });

  it('BatchWriteItem: marshals put requests’ Items and delete requests’ Keys, unmarshals UnprocessedItems', async () => {
    const wireRequests = [{ PutRequest: { Item: jobAttributes } }, { DeleteRequest: { Key: keyAttributes } }];
    const { db, calls } = fakeClient(() => ({ UnprocessedItems: { jobs: wireRequests } }));
    const requests = [{ PutRequest: { Item: job } }, { DeleteRequest: { Key: key } }];
    const output = await db.send('BatchWriteItem', { RequestItems: { jobs: requests, clients: [{ PutRequest: { Item: { id: 'c' } } }] }, ReturnConsumedCapacity: 'TOTAL' });
    expect(calls[0]?.input).toEqual({
      RequestItems: { jobs: wireRequests, clients: [{ PutRequest: { Item: { id: { S: 'c' } } } }] },
      ReturnConsumedCapacity: 'TOTAL',
    });
    expect(output).toEqual({ UnprocessedItems: { jobs: requests } });
  });

  it('BatchGetItem: marshals each table’s Keys keeping its other fields, unmarshals Responses and UnprocessedKeys', async () => {
    const { db, calls } = fakeClient(() => ({
      Responses: { jobs: [jobAttributes], clients: [] },
      UnprocessedKeys: { jobs: { Keys: [keyAttributes], ConsistentRead: true } },
    }));
    const spec = { Keys: [key], ConsistentRead: true, ProjectionExpression: '#a', ExpressionAttributeNames: { '#a': 'attempts' } };
    const output = await db.send('BatchGetItem', { RequestItems: { jobs: spec } });
    expect(calls[0]?.input).toEqual({ RequestItems: { jobs: { ...spec, Keys: [keyAttributes] } } });
    expect(output).toEqual({ Responses: { jobs: [job], clients: [] }, UnprocessedKeys: { jobs: { Keys: [key], ConsistentRead: true } } });
  });

  it('TransactWriteItems: marshals Put, Update, Delete and ConditionCheck entries', async () => {
    const { db, calls } = fakeClient(() => ({}));
    await db.send('TransactWriteItems', {
      TransactItems: [
        { Put: { TableName: 't', Item: job, ExpressionAttributeValues: { ':x': 1 } } },
        { Update: { TableName: 't', Key: key, UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': 'b' } } },
        { Delete: { TableName: 't', Key: key } },
        { ConditionCheck: { TableName: 't', Key: key, ConditionExpression: 'a = :a', ExpressionAttributeValues: { ':a': true } } },
      ],
      ClientRequestToken: 'token',
    });
    expect(calls[0]?.input).toEqual({
      TransactItems: [
        { Put: { TableName: 't', Item: jobAttributes, ExpressionAttributeValues: { ':x': { N: '1' } } } },
        { Update: { TableName: 't', Key: keyAttributes, UpdateExpression: 'SET a = :a', ExpressionAttributeValues: { ':a': { S: 'b' } } } },
        { Delete: { TableName: 't', Key: keyAttributes } },
        { ConditionCheck: { TableName: 't', Key: keyAttributes, ConditionExpression: 'a = :a', ExpressionAttributeValues: { ':a': { BOOL: true } } } },
      ],
      ClientRequestToken: 'token',
    });
  });

  it('TransactGetItems: marshals each Get’s Key and unmarshals each response’s Item', async () => {
    const { db, calls } = fakeClient(() => ({ Responses: [{ Item: jobAttributes }, {}] }));
    const output = await db.send('TransactGetItems', { TransactItems: [{ Get: { TableName: 't', Key: key } }, { Get: { TableName: 't', Key: { pk: 'x', sk: 'y' } } }] });
    expect(calls[0]?.input).toEqual({
      TransactItems: [{ Get: { TableName: 't', Key: keyAttributes } }, { Get: { TableName: 't', Key: { pk: { S: 'x' }, sk: { S: 'y' } } } }],
    });
    expect(output).toEqual({ Responses: [{ Item: job }, {}] });
  });

  it('unmarshals the current item a failed condition hands back in the error', async () => {
    const failure = new AwsError({
      name: 'ConditionalCheckFailedException',
      message: 'UpdateItem: ConditionalCheckFailedException (400): The conditional request failed',
      statusCode: 400,
      retryable: false,
      operation: 'UpdateItem',
      details: { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', Item: jobAttributes },
    });
    const { db } = fakeClient(() => {
      throw failure;
    });
    const error = await db.send('UpdateItem', { TableName: 't', Key: key, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }).catch((caught: unknown) => caught);
    expect(error).toBe(failure);
    expect(failure.details['Item']).toEqual(job);
  });

  it('unmarshals the items of a cancelled transaction’s reasons', async () => {
    const failure = new AwsError({
      name: 'TransactionCanceledException',
      message: 'cancelled',
      statusCode: 400,
      retryable: false,
      operation: 'TransactWriteItems',
      details: { CancellationReasons: [{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: jobAttributes }] },
    });
    const { db } = fakeClient(() => {
      throw failure;
    });
    await expect(db.send('TransactWriteItems', { TransactItems: [] })).rejects.toBe(failure);
    expect(failure.details['CancellationReasons']).toEqual([{ Code: 'None' }, { Code: 'ConditionalCheckFailed', Item: job }]);
  });
});
