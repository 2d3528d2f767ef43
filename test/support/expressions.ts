/**
 * What DynamoDB requires of a request's expressions, checked on the input a store sends (the
 * document client's plain-value input, as aws-sdk-client-mock records it).
 */
import { expect } from 'vitest';

/**
 * DynamoDB refuses a request with a placeholder it does not define, or one it defines and does
 * not use: every `#name` and `:value` of the expressions is given, and every one given is used.
 */
export function expectPlaceholdersMatch(given: object | undefined) {
  const input = (given ?? {}) as { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> } & Record<string, unknown>;
  const expressions = ['UpdateExpression', 'ConditionExpression', 'KeyConditionExpression', 'FilterExpression', 'ProjectionExpression'].map((key) => input[key] ?? '').join(' ');
  const used = (sigil: string) => [...new Set(expressions.match(new RegExp(`${sigil}[A-Za-z0-9_]+`, 'g')) ?? [])].sort();
  expect(used('#')).toEqual(Object.keys(input.ExpressionAttributeNames ?? {}).sort());
  expect(used(':')).toEqual(Object.keys(input.ExpressionAttributeValues ?? {}).sort());
  if (input.ExpressionAttributeValues) expect(Object.keys(input.ExpressionAttributeValues).length).toBeGreaterThan(0);
}
