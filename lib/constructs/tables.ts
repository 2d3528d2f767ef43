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

export class Tables extends Construct {
  /** Client records: token hashes and signing secrets. */
  readonly clients: Table;
  /** Job records, their requests and Idempotency-Keys, forgotten by TTL. */
  readonly jobs: Table;
  /** Counters every function instance shares (failed authentications per source), forgotten by TTL. */
  readonly limits: Table;

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
    // Sparse and keys-only: an item is in it from submit until settled, and changes to any
    // other attribute never write to it.
    const unsettled = tables.jobs.unsettledIndex;
    this.jobs.addGlobalSecondaryIndex({
      indexName: unsettled.name,
      partitionKey: { name: unsettled.partitionKey, type: AttributeType.STRING },
      sortKey: { name: unsettled.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.KEYS_ONLY,
    });
    this.limits = new Table(this, tables.limits.id, {
      ...common,
      partitionKey: { name: tables.limits.partitionKey, type: AttributeType.STRING },
      timeToLiveAttribute: tables.limits.ttlAttribute,
    });
  }
}
