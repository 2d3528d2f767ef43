/**
 * DynamoDB's attribute values, and a document layer over AwsClient that speaks plain values:
 * what @aws-sdk/util-dynamodb and lib-dynamodb's DynamoDBDocumentClient do for the handlers
 * (with `removeUndefinedValues: true`), without the SDK.
 *
 * ```ts
 * const db = new DynamoDocuments(new AwsClient({ service: 'dynamodb' }));
 * await db.send('PutItem', { TableName, Item: { pk: 'job#1', attempts: 0, tags: ['a'] } });
 * const { Item } = await db.send('GetItem', { TableName, Key: { pk: 'job#1' } });
 * ```
 *
 * Values map as the SDK maps them: string → S, number and bigint → N, boolean → BOOL, null →
 * NULL, Uint8Array (Buffer, any ArrayBuffer view, ArrayBuffer) → B, array → L, plain object and
 * Map → M, Set of strings/numbers/binaries → SS/NS/BS. Undefined fields and list entries are
 * left out; functions are skipped. NaN, ±Infinity, numbers beyond Number.MAX_SAFE_INTEGER (use
 * a bigint), class instances (a Date among them) and empty sets are refused with an
 * AttributeValueError naming the field. On the way back N is a number (a bigint when it is
 * an integer too large for one), B a Uint8Array, SS/NS/BS a Set.
 *
 * These are the wire's attribute values: B and BS hold base64 strings, ready for JSON.
 */
import { AwsError, type AwsCaller } from './client.ts';

export type AttributeValue =
  | { S: string }
  | { N: string }
  | { B: string }
  | { BOOL: boolean }
  | { NULL: true }
  | { L: AttributeValue[] }
  | { M: Record<string, AttributeValue> }
  | { SS: string[] }
  | { NS: string[] }
  | { BS: string[] };

/** A value DynamoDB cannot store, or an attribute value this module cannot read. */
export class AttributeValueError extends Error {
  override readonly name = 'AttributeValueError';
}

/** Plain values → attribute values: `{ n: 1 }` → `{ n: { N: '1' } }`. */
export function marshall(value: Record<string, unknown>): Record<string, AttributeValue> {
  return toMap(value, '');
}

/** Attribute values → plain values: `{ n: { N: '1' } }` → `{ n: 1 }`. */
export function unmarshall(item: Record<string, AttributeValue>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(item)) put(result, key, toNative(item[key] as AttributeValue, key));
  return result;
}

/** `target[key] = value`, even for a field named __proto__ (a name DynamoDB allows). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function toMap(value: object, path: string): Record<string, AttributeValue> {
  const result: Record<string, AttributeValue> = {};
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    if (field === undefined || typeof field === 'function') continue;
    put(result, key, toAttribute(field, path ? `${path}.${key}` : key));
  }
  return result;
}

function toAttribute(value: unknown, path: string): AttributeValue {
  switch (typeof value) {
    case 'string':
      return { S: value };
    case 'number':
      return { N: numberText(value, path) };
    case 'bigint':
      return { N: value.toString() };
    case 'boolean':
      return { BOOL: value };
    case 'object': {
      if (value === null) return { NULL: true };
      if (Array.isArray(value)) {
        const list: AttributeValue[] = [];
        value.forEach((entry: unknown, i) => {
          if (entry !== undefined && typeof entry !== 'function') list.push(toAttribute(entry, `${path}[${i}]`));
        });
        return { L: list };
      }
      if (isBinary(value)) return { B: base64(value) };
      if (value instanceof Set) return toSet(value, path);
      if (value instanceof Map) {
        const map: Record<string, AttributeValue> = {};
        for (const [key, entry] of value) {
          if (entry !== undefined && typeof entry !== 'function') put(map, String(key), toAttribute(entry, `${path}.${String(key)}`));
        }
        return { M: map };
      }
      if (isPlainObject(value)) return { M: toMap(value, path) };
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      const hint = value instanceof Date ? ' (store date.toISOString() or a number)' : '';
      throw new AttributeValueError(`${describe(path)} is a ${kind}: DynamoDB stores plain objects, arrays, Maps and Sets only${hint}`);
    }
    default:
      throw new AttributeValueError(`${describe(path)} is a ${typeof value}, which DynamoDB cannot store`);
  }
}

function numberText(value: number, path: string): string {
  if (!Number.isFinite(value)) throw new AttributeValueError(`${describe(path)} is ${value}: DynamoDB stores finite numbers only`);
  if (value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER) {
    throw new AttributeValueError(`${describe(path)} is ${value}, beyond Number.MAX_SAFE_INTEGER: pass a bigint to store it exactly`);
  }
  return value.toString();
}

function toSet(set: Set<unknown>, path: string): AttributeValue {
  const values = [...set].filter((value) => value !== undefined);
  const first = values[0];
  if (values.length === 0) throw new AttributeValueError(`${describe(path)} is an empty Set: DynamoDB stores no empty sets`);
  const all = (test: (value: unknown) => boolean, kind: string) => {
    if (!values.every(test)) throw new AttributeValueError(`${describe(path)} is a Set that mixes ${kind}s with other values`);
  };
  if (typeof first === 'string') {
    all((value) => typeof value === 'string', 'string');
    return { SS: values as string[] };
  }
  if (typeof first === 'number' || typeof first === 'bigint') {
    all((value) => typeof value === 'number' || typeof value === 'bigint', 'number');
    return { NS: values.map((value) => (typeof value === 'number' ? numberText(value, path) : String(value))) };
  }
  if (isBinary(first)) {
    all(isBinary, 'binary');
    return { BS: values.map((value) => base64(value as ArrayBufferView | ArrayBuffer)) };
  }
  throw new AttributeValueError(`${describe(path)} is a Set of ${typeof first}s: DynamoDB sets hold strings, numbers or binaries`);
}

function isBinary(value: unknown): value is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer;
}

function base64(value: ArrayBufferView | ArrayBuffer): string {
  const bytes = value instanceof ArrayBuffer ? Buffer.from(value) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return bytes.toString('base64');
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || (value as { constructor?: { name?: string } }).constructor?.name === 'Object';
}

function describe(path: string): string {
  return path ? `the field ${path}` : 'the value';
}

function toNative(value: AttributeValue, path: string): unknown {
  const attribute = value as Partial<Record<string, unknown>>;
  if (attribute['S'] !== undefined) return attribute['S'];
  if (attribute['N'] !== undefined) return toNumber(attribute['N'] as string, path);
  if (attribute['BOOL'] !== undefined) return Boolean(attribute['BOOL']);
  if (attribute['NULL'] !== undefined) return null;
  if (attribute['M'] !== undefined) {
    const map = attribute['M'] as Record<string, AttributeValue>;
    const result: Record<string, unknown> = {};
    for (const key of Object.keys(map)) put(result, key, toNative(map[key] as AttributeValue, `${path}.${key}`));
    return result;
  }
  if (attribute['L'] !== undefined) return (attribute['L'] as AttributeValue[]).map((entry, i) => toNative(entry, `${path}[${i}]`));
  if (attribute['B'] !== undefined) return fromBase64(attribute['B'] as string);
  if (attribute['SS'] !== undefined) return new Set(attribute['SS'] as string[]);
  if (attribute['NS'] !== undefined) return new Set((attribute['NS'] as string[]).map((n) => toNumber(n, path)));
  if (attribute['BS'] !== undefined) return new Set((attribute['BS'] as string[]).map(fromBase64));
  throw new AttributeValueError(`${describe(path)} has no attribute type this client reads: ${Object.keys(attribute).join(', ') || 'none'}`);
}

/** A number, or a bigint when the integer is too large for a number to hold exactly (as the SDK). */
function toNumber(text: string, path: string): number | bigint {
  const value = Number(text);
  if ((value > Number.MAX_SAFE_INTEGER || value < Number.MIN_SAFE_INTEGER) && Number.isFinite(value)) {
    try {
      return BigInt(text);
    } catch {
      throw new AttributeValueError(`${describe(path)} is ${text}, beyond what a number holds exactly and not an integer`);
    }
  }
  return value;
}

function fromBase64(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'base64');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

type Loose = Record<string, any>;

const isObject = (value: unknown): value is Loose => value !== null && typeof value === 'object' && !Array.isArray(value);
const mapValues = (value: Loose, convert: (entry: any) => unknown): Loose => {
  const result: Loose = {};
  for (const key of Object.keys(value)) result[key] = convert(value[key]);
  return result;
};

/** The Item, Key and ExpressionAttributeValues of a request (or transaction entry), marshalled. */
function marshallFields(request: Loose): Loose {
  const result = { ...request };
  for (const field of ['Item', 'Key', 'ExpressionAttributeValues', 'ExclusiveStartKey'] as const) {
    if (isObject(result[field])) result[field] = marshall(result[field]);
  }
  return result;
}

const transactKinds = ['Put', 'Update', 'Delete', 'ConditionCheck', 'Get'] as const;

function marshallInput(operation: string, input: Loose): Loose {
  const wire = marshallFields(input);
  if (isObject(input['RequestItems'])) {
    wire['RequestItems'] = operation === 'BatchWriteItem' ? mapValues(input['RequestItems'], writeRequests(marshall)) : mapValues(input['RequestItems'], keysAndAttributes(marshall));
  }
  if (Array.isArray(input['TransactItems'])) {
    wire['TransactItems'] = input['TransactItems'].map((entry: unknown) => {
      if (!isObject(entry)) return entry;
      const converted = { ...entry };
      for (const kind of transactKinds) if (isObject(entry[kind])) converted[kind] = marshallFields(entry[kind]);
      return converted;
    });
  }
  return wire;
}

/** BatchWriteItem's `[{ PutRequest: { Item } } | { DeleteRequest: { Key } }]`, either way. */
const writeRequests =
  (convert: (item: any) => Loose) =>
  (requests: unknown): unknown =>
    Array.isArray(requests)
      ? requests.map((request: unknown) => {
          if (!isObject(request)) return request;
          const converted = { ...request };
          if (isObject(request['PutRequest']) && isObject(request['PutRequest']['Item'])) {
            converted['PutRequest'] = { ...request['PutRequest'], Item: convert(request['PutRequest']['Item']) };
          }
          if (isObject(request['DeleteRequest']) && isObject(request['DeleteRequest']['Key'])) {
            converted['DeleteRequest'] = { ...request['DeleteRequest'], Key: convert(request['DeleteRequest']['Key']) };
          }
          return converted;
        })
      : requests;

/** BatchGetItem's `{ Keys: [...], ConsistentRead, ProjectionExpression, ... }`, either way. */
const keysAndAttributes =
  (convert: (item: any) => Loose) =>
  (spec: unknown): unknown =>
    isObject(spec) && Array.isArray(spec['Keys']) ? { ...spec, Keys: spec['Keys'].map(convert) } : spec;

const unmarshallList = (items: unknown): unknown => (Array.isArray(items) ? items.map((item) => (isObject(item) ? unmarshall(item) : item)) : items);

function unmarshallOutput(operation: string, output: Loose): Loose {
  const result = { ...output };
  for (const field of ['Item', 'Attributes', 'LastEvaluatedKey'] as const) {
    if (isObject(output[field])) result[field] = unmarshall(output[field]);
  }
  if (Array.isArray(output['Items'])) result['Items'] = unmarshallList(output['Items']);
  if (isObject(output['Responses'])) result['Responses'] = mapValues(output['Responses'], unmarshallList);
  // TransactGetItems: `[{ Item }]`.
  if (Array.isArray(output['Responses'])) {
    result['Responses'] = output['Responses'].map((entry: unknown) => (isObject(entry) && isObject(entry['Item']) ? { ...entry, Item: unmarshall(entry['Item']) } : entry));
  }
  if (isObject(output['UnprocessedItems'])) result['UnprocessedItems'] = mapValues(output['UnprocessedItems'], writeRequests(unmarshall));
  if (isObject(output['UnprocessedKeys'])) result['UnprocessedKeys'] = mapValues(output['UnprocessedKeys'], keysAndAttributes(unmarshall));
  return result;
}

/** A failed condition's old item (ReturnValuesOnConditionCheckFailure), as plain values. */
function unmarshallErrorDetails(error: AwsError): void {
  const details = error.details as Loose;
  if (isObject(details['Item'])) details['Item'] = unmarshall(details['Item']);
  // TransactionCanceledException: one reason per transaction entry, each with its own Item.
  if (Array.isArray(details['CancellationReasons'])) {
    details['CancellationReasons'] = details['CancellationReasons'].map((reason: unknown) =>
      isObject(reason) && isObject(reason['Item']) ? { ...reason, Item: unmarshall(reason['Item']) } : reason,
    );
  }
}

/**
 * Like the SDK's DynamoDBDocumentClient: plain values in and out of any DynamoDB operation.
 * Marshalled on the way in: Item, Key, ExpressionAttributeValues, ExclusiveStartKey,
 * RequestItems (BatchWriteItem's put and delete requests, BatchGetItem's Keys) and TransactItems'
 * Put/Update/Delete/ConditionCheck/Get. Unmarshalled on the way out: Item, Items, Attributes,
 * LastEvaluatedKey, Responses, UnprocessedItems, UnprocessedKeys, and an AwsError's
 * `details.Item` (and its CancellationReasons' Items). Other fields pass as they are.
 */
export class DynamoDocuments {
  constructor(private readonly client: AwsCaller) {}

  async send<O = Record<string, any>>(operation: string, input: Record<string, unknown>): Promise<O> {
    let output: Loose;
    try {
      output = await this.client.call<Loose>(operation, marshallInput(operation, input));
    } catch (error) {
      if (error instanceof AwsError) unmarshallErrorDetails(error);
      throw error;
    }
    return unmarshallOutput(operation, output) as O;
  }
}
