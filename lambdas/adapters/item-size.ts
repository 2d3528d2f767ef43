/**
 * An item's size as DynamoDB counts it, for the write units it costs (one per started KB of the
 * larger of the item before and after a write): test/unit/item-size.test.ts weighs a typical
 * job's items with it, and the benchmark's cost model prices items with it.
 */

/**
 * Attribute names plus values: strings in UTF-8 bytes, numbers about one byte per two
 * significant digits plus one, lists and maps 3 bytes plus one per element. Takes the item in
 * document form, as the document client writes it.
 */
export function dynamoItemSize(item: Record<string, unknown>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name) + dynamoValueSize(value);
  }
  return size;
}

function dynamoValueSize(value: unknown): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number' || typeof value === 'bigint') {
    const digits = String(value).replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/e.*$/i, '');
    return Math.ceil(Math.max(1, digits.length) / 2) + 1;
  }
  if (value instanceof Uint8Array) return value.byteLength;
  if (Array.isArray(value)) return 3 + value.reduce<number>((sum, element) => sum + 1 + dynamoValueSize(element), 0);
  if (value instanceof Set) return [...value].reduce<number>((sum, element) => sum + dynamoValueSize(element), 0);
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return 3 + entries.length + dynamoItemSize(Object.fromEntries(entries));
  }
  return 0;
}

