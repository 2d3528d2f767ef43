/**
 * A DynamoDB for a test: dynalite in memory on 127.0.0.1 (a free port), with the local stack's
 * tables created from lib/definitions.ts, reached through the same SDK clients the functions use.
 *
 * ```ts
 * let db: LocalDynamo;
 * beforeAll(async () => (db = await startDynalite()));
 * afterAll(() => db.close());
 * const jobs = new DynamoJobStore(db.documents, db.table);
 * ```
 */
import type { AddressInfo } from 'node:net';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { awsClients, closeAwsClients } from '../../lambdas/adapters/aws.ts';
import type { Documents } from '../../lambdas/adapters/dynamo.ts';
import { localTableNames, provisionTables } from '../../local/provision.ts';

export interface LocalDynamo {
  /** The low-level client (tables, indexes). */
  client: DynamoDBClient;
  /** The document client, as the stores take it. */
  documents: Documents;
  /** The jobs table's name. */
  table: string;
  /** The clients table's name. */
  clientsTable: string;
  /** The limits table's name. */
  limitsTable: string;
  endpoint: string;
  /** Stops the server and the clients, and gives the environment its credentials back. */
  close(): Promise<void>;
}

const credentialNames = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

export interface DynaliteOptions {
  /**
   * Runs on the empty server before the tables are provisioned: a table it makes is kept, as a
   * DATA_DIR's tables of an earlier run are.
   */
  beforeProvision?: (db: DynamoDBClient) => Promise<void>;
}

export async function startDynalite(options: DynaliteOptions = {}): Promise<LocalDynamo> {
  // dynalite checks no signature, but the SDK signs every call: any credentials do.
  const saved = credentialNames.map((name) => [name, process.env[name]] as const);
  for (const name of credentialNames) process.env[name] = 'local';
  const restore = () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
  } catch (error) {
    restore();
    throw error;
  }
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const aws = awsClients({ region: 'us-east-1', endpoints: { dynamodb: endpoint } });
  const close = async () => {
    closeAwsClients(aws);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    restore();
  };
  try {
    await options.beforeProvision?.(aws.dynamodb);
    await provisionTables(aws.dynamodb);
  } catch (error) {
    await close();
    throw error;
  }
  return { client: aws.dynamodb, documents: aws.documents, table: localTableNames.jobs, clientsTable: localTableNames.clients, limitsTable: localTableNames.limits, endpoint, close };
}
