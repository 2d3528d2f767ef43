/**
 * The document client mocked with aws-sdk-client-mock, for the tests of one adapter's commands:
 * mocked for the enclosing block alone (its dynalite tests send through the same class), reset
 * before each test.
 *
 * ```ts
 * const mocked = useMockedDocuments();
 * mocked.ddb().on(GetCommand).resolves({});
 * await new DynamoFlowStore(mocked.documents, 'Limits').read(...);
 * expect(mocked.inputs<GetCommandInput>(GetCommand)).toEqual([...]);
 * ```
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { documentOptions } from '../../lambdas/adapters/aws.ts';

const mockDocuments = () => mockClient(DynamoDBDocumentClient);

export function useMockedDocuments() {
  let ddb: ReturnType<typeof mockDocuments> | undefined;
  beforeAll(() => {
    ddb = mockDocuments();
  });
  afterAll(() => ddb?.restore());
  beforeEach(() => ddb?.reset());
  const mocked = () => {
    if (!ddb) throw new Error('the document client is mocked only inside its describe block');
    return ddb;
  };
  return {
    ddb: mocked,
    documents: DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } }), documentOptions),
    /** The inputs of the calls of `command`, in order. */
    inputs: <T extends object>(command: abstract new (...args: never[]) => { input: T }): T[] =>
      mocked()
        .calls()
        .flatMap((call) => (call.args[0] instanceof command ? [call.args[0].input as T] : [])),
  };
}
