/**
 * The limits table on DynamoDB, through the AWS SDK's document client: counters that every
 * function instance shares. Failed authentications are one item per source address and window,
 * readable as it stands:
 *
 * ```
 * key          auth-failures#203.0.113.7#2025-03-04T05:06:00.000Z
 * source       203.0.113.7
 * windowStart  2025-03-04T05:06:00.000Z
 * failures     12                      every failure from the source in the window
 * client 66666666666668   10           the failures against that client id
 * client 12345678901234   2
 * expiresAt    1741064880              epoch seconds: TTL forgets the item a minute after its window
 * ```
 *
 * Each client id is a top-level attribute of its own, not an entry of a map: ADD makes a
 * missing top-level number, but cannot add to an entry of a map that does not exist yet (nor can
 * SET make the map in the same expression: the paths overlap), so a map would cost a second
 * write, or a conditional retry, for each window's first failure. So one UpdateItem per
 * failure and one GetItem per source a second in an instance is all the limiter costs. The ids are bounded in shape (the
 * limiter counts only 14-digit ids) and in number: a source is refused after `perSource`
 * failures a window, so an item holds about that many ids at most (1,000 attributes of some 24
 * bytes: 24 KB, far below DynamoDB's 400 KB). A write is billed by the item's size, so a source
 * that tries a thousand ids in a minute makes its last writes cost some 24 units each: about
 * 12,000 write units in all, under a cent on demand, before it is refused for the minute.
 */
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { CountWindow, FailureCount, FailureCounter } from '../core/ports.ts';
import type { Documents } from './dynamo.ts';

/** How long a window's item is kept after the window ends: long enough for an operator to look. */
const keptAfterWindowMs = 60_000;

/** The attribute that counts the failures against one client id. */
const clientAttribute = (clientId: string) => `client ${clientId}`;

export class DynamoFailureCounter implements FailureCounter {
  constructor(
    private readonly db: Documents,
    private readonly table: string,
  ) {}

  /**
   * An eventually consistent read (half a read unit, and twice the reads a partition serves):
   * the limiter trusts what it reads for a second anyway (FailureLimiter), and DynamoDB's
   * replicas agree within about as long.
   */
  async read(source: string, window: CountWindow, clientId: string | undefined): Promise<FailureCount> {
    const names: Record<string, string> = { '#failures': 'failures' };
    if (clientId !== undefined) names['#client'] = clientAttribute(clientId);
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { key: failuresKey(source, window) },
        ProjectionExpression: Object.keys(names).join(', '),
        ExpressionAttributeNames: names,
        ConsistentRead: false,
      }),
    );
    return { fromSource: Number(Item?.['failures'] ?? 0), againstClient: clientId === undefined ? 0 : Number(Item?.[clientAttribute(clientId)] ?? 0) };
  }

  /** One UpdateItem: ADD makes a missing counter 1, and the item is made with the first failure. */
  async record(source: string, window: CountWindow, clientId: string | undefined): Promise<void> {
    const names: Record<string, string> = { '#failures': 'failures', '#source': 'source', '#windowStart': 'windowStart', '#expiresAt': 'expiresAt' };
    const adds = ['#failures :one'];
    if (clientId !== undefined) {
      names['#client'] = clientAttribute(clientId);
      adds.push('#client :one');
    }
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { key: failuresKey(source, window) },
        UpdateExpression: `ADD ${adds.join(', ')} SET #source = :source, #windowStart = :windowStart, #expiresAt = :expiresAt`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: {
          ':one': 1,
          ':source': source,
          ':windowStart': new Date(window.start).toISOString(),
          ':expiresAt': Math.ceil((window.end + keptAfterWindowMs) / 1000),
        },
        ReturnValues: 'NONE',
      }),
    );
  }
}

/** The item of a source's failures in a window: its key says what it counts, and when. */
export const failuresKey = (source: string, window: CountWindow): string => `auth-failures#${source}#${new Date(window.start).toISOString()}`;
