/** The DynamoDB tables, shaped by `tables` in definitions.ts. */
import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { tables } from '../definitions.ts';

/** What every table shares: on-demand, recoverable, encrypted, and kept when the stack goes. */
const common = {
  billingMode: BillingMode.PAY_PER_REQUEST,
  pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  encryption: TableEncryption.AWS_MANAGED,
  // Jobs and client credentials outlive a `cdk destroy`: losing them is not an undo.
  removalPolicy: RemovalPolicy.RETAIN,
} as const;

/**
 * CDK context for a stack deployed while the unsettled index was keys-only: CloudFormation
 * cannot change an index's projection in place, so one deploy with this set to true drops the
 * index (the sweeper fails meanwhile), and the next, without it, adds it back as it is now.
 */
export const withoutUnsettledIndex = 'withoutUnsettledIndex';

/**
 * CDK context for the same migration once the due index came: a stack that has today's
 * unsettled index adds it in one deploy, with nothing set; an older one sets this too in the
 * deploy above, then adds it in one more, with nothing set. (A stack deployed with the `client`
 * index of before the listing entries drops it in a deploy of its own first, with nothing set:
 * CloudFormation creates or deletes one index per update.)
 */
export const withoutDueIndex = 'withoutDueIndex';

export class Tables extends Construct {
  /** Client records: token hashes and signing secrets. */
  readonly clients: Table;
  /** Job records, their requests and Idempotency-Keys, forgotten by TTL. */
  readonly jobs: Table;
  /** Counters every function instance shares (failed authentications per source), forgotten by TTL. */
  readonly limits: Table;
  /** Schedules, one item each, kept until their client deletes them. */
  readonly schedules: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.clients = new Table(this, tables.clients.id, {
      ...common,
      partitionKey: { name: tables.clients.partitionKey, type: AttributeType.STRING },
    });
    this.jobs = new Table(this, tables.jobs.id, {
      ...common,
      partitionKey: { name: tables.jobs.partitionKey, type: AttributeType.STRING },
      sortKey: { name: tables.jobs.sortKey, type: AttributeType.STRING },
      timeToLiveAttribute: tables.jobs.ttlAttribute,
    });
    this.limits = new Table(this, tables.limits.id, {
      ...common,
      partitionKey: { name: tables.limits.partitionKey, type: AttributeType.STRING },
      timeToLiveAttribute: tables.limits.ttlAttribute,
    });
    const schedules = tables.schedules;
    this.schedules = new Table(this, schedules.id, {
      ...common,
      partitionKey: { name: schedules.partitionKey, type: AttributeType.STRING },
    });
    // A client's schedules by `created`, for GET /v1/schedules: keys only, written once with the schedule.
    this.schedules.addGlobalSecondaryIndex({
      indexName: schedules.clientIndex.name,
      partitionKey: { name: schedules.clientIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: schedules.clientIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    const left = (key: string) => {
      const value: unknown = this.node.tryGetContext(key);
      return value === true || value === 'true';
    };
    // Each index as definitions.ts describes it: its keys, and the attributes it projects (none: keys only).
    const addIndex = (index: { name: string; partitionKey: string; sortKey: string; projected?: readonly string[] }) =>
      this.jobs.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        ...(index.projected ? { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...index.projected] } : { projectionType: ProjectionType.KEYS_ONLY }),
      });
    // Sparse: a job is in it only while it waits on a retry. It carries the few attributes the
    // sweeper decides on, so that the sweeper reads nothing else (definitions.ts weighs the cost).
    if (!left(withoutUnsettledIndex)) addIndex(tables.jobs.unsettledIndex);
    // No index lists a client's jobs: its listing entries, items of the table, do (definitions.ts
    // weighs them). A stack deployed with the `client` index drops it in its next deploy.
    // Sparse: the delayed jobs that wait in the store, by the minute they fall due (definitions.ts weighs the cost).
    if (!left(withoutDueIndex)) addIndex(tables.jobs.dueIndex);
  }
}
