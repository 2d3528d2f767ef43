/**
 * How the operator's CLIs (clients, jobs) reach the store: locally the DATA_DIR of a local
 * stack (the running one's storage, or its own storage process when none runs), on AWS the
 * deployed table (`--table NAME`, or `--stack NAME` read from the stack's outputs) with the AWS
 * SDK's credential chain and region (environment, profiles, SSO), as the CLI user expects.
 */
import '../local/quiet.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsClients, closeAwsClients } from '../lambdas/adapters/aws.ts';
import { dataDirFromEnv } from '../local/data-dir.ts';
import { localTableNames } from '../local/provision.ts';
import { stackFileName, type StackFile } from '../local/stack-file.ts';
import { startStorage } from '../local/storage.ts';
import { upgradeStore } from '../local/upgrade.ts';

/** A mistake in how the CLI was called: said with the usage, exit code 2. */
export class UsageError extends Error {}

/** What a CLI cannot do as asked (no such client or job, no data): one line, exit code 1. */
export class Refusal extends Error {}

export const storeOptions = {
  table: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  'data-dir': { type: 'string' },
} as const;

export const storeUsage = `  --data-dir DIR          the local stack's DATA_DIR (default: $DATA_DIR or ./.waas)
  --table NAME            a deployed stack's table (AWS credentials from the environment or a profile)
  --stack NAME            a deployed stack, whose outputs name its tables
  --region REGION         the AWS region (default: the SDK's)`;

export interface StoreOptions {
  table?: string | undefined;
  stack?: string | undefined;
  region?: string | undefined;
  'data-dir'?: string | undefined;
}

export interface OpenStore {
  documents: DynamoDBDocumentClient;
  table: string;
  close(): Promise<void>;
}

/** The stack output that names each table. */
const outputs = { clients: 'ClientsTableName', jobs: 'JobsTableName', limits: 'LimitsTableName' } as const;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where a local stack keeps its tables: a DATA_DIR without it holds no stack data. */
export const hasStackData = (dataDir: string): boolean => existsSync(join(dataDir, 'dynamodb'));

/** The clients, jobs or limits table to work on, and how to let go of it. */
export async function openStore(options: StoreOptions, which: keyof typeof outputs): Promise<OpenStore> {
  if (options.table || options.stack) {
    const aws = awsClients(options.region ? { region: options.region } : {});
    let table = options.table;
    if (!table) {
      const cloudFormation = new CloudFormationClient(options.region ? { region: options.region } : {});
      try {
        const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: options.stack }));
        table = Stacks?.[0]?.Outputs?.find((output) => output.OutputKey === outputs[which])?.OutputValue;
      } finally {
        cloudFormation.destroy();
      }
      if (!table) throw new Refusal(`stack ${options.stack} has no ${outputs[which]} output`);
    }
    return { documents: aws.documents, table, close: async () => closeAwsClients(aws) };
  }

  const dataDir = resolve(options['data-dir'] ?? dataDirFromEnv());
  // Never a store of our own in the wrong folder: a client made there is one the stack rejects.
  if (!hasStackData(dataDir)) throw new Refusal(`${dataDir} holds no waas data: start the local stack there first (npm start), or name its DATA_DIR with --data-dir`);
  const local = { region: 'us-east-1' };
  process.env['AWS_ACCESS_KEY_ID'] ??= 'local';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'local';
  const stackFile = join(dataDir, stackFileName);
  if (existsSync(stackFile)) {
    const running = JSON.parse(readFileSync(stackFile, 'utf8')) as StackFile;
    if (alive(running.pid)) {
      const aws = awsClients({ ...local, endpoints: { dynamodb: running.dynamodbEndpoint } });
      return { documents: aws.documents, table: running.tables[which], close: async () => closeAwsClients(aws) };
    }
  }
  // No local stack runs on this DATA_DIR: open its store through the stack's own storage process.
  const storage = await startStorage(dataDir);
  const aws = awsClients({ ...local, endpoints: { dynamodb: storage.dynamodbEndpoint } });
  await upgradeStore(aws.documents, localTableNames.jobs, dataDir);
  return {
    documents: aws.documents,
    table: localTableNames[which],
    close: async () => {
      closeAwsClients(aws);
      await storage.stop();
    },
  };
}

/** Runs a CLI: its result as one line of JSON on stdout; a failure as one line on stderr. */
export async function runCli(main: () => Promise<unknown>): Promise<void> {
  try {
    const result = await main();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  }
}
