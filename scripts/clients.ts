/**
 * `npm run --silent clients -- create [--name NAME] | list | revoke CLIENT_ID`
 *
 * Manages API clients. Locally it finds the running local stack of the same DATA_DIR (through
 * DATA_DIR/stack.json), or opens DATA_DIR's store itself when none runs. On AWS it is given the
 * deployed clients table (`--table NAME`) or the stack (`--stack NAME`, read from its outputs).
 * Prints JSON on stdout and nothing else; tokens are shown once, at creation, and never stored.
 */
import '../local/quiet.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { newClient, newSigningSecret } from '../lambdas/core/auth.ts';
import { rotateSecret } from '../lambdas/core/callback.ts';
import { DynamoDocuments } from '../lambdas/adapters/aws/attributes.ts';
import { AwsClient } from '../lambdas/adapters/aws/client.ts';
import { DynamoClientStore } from '../lambdas/adapters/dynamo.ts';
import type { ClientStore } from '../lambdas/core/ports.ts';
import { localTableNames, provisionTables } from '../local/provision.ts';
import { stackFileName, type StackFile } from '../local/stack-file.ts';
import { startStorage } from '../local/storage.ts';

const usage = `usage: npm run --silent clients -- <command>
  create [--name NAME]    add a client; prints {"client_id","verify_token","signing_secret"}
  list                    list clients (never their tokens)
  revoke CLIENT_ID        refuse a client from now on (within 10 seconds)
  rotate-secret CLIENT_ID a new signing secret; the old one keeps signing for 24 hours
options:
  --data-dir DIR          the local stack's DATA_DIR (default: $DATA_DIR or ./.waas)
  --table NAME            a deployed stack's clients table (AWS credentials from the environment)
  --stack NAME            a deployed stack, whose ClientsTableName output names the table
  --region REGION         the AWS region (default: the SDK's)`;

class UsageError extends Error {}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** AWS through the SDK's credential chain and region (profiles, SSO, environment), as the CLI user expects. */
async function awsAccess(region: string | undefined) {
  const cloudFormation = new CloudFormationClient(region ? { region } : {});
  const provider = cloudFormation.config.credentials;
  const credentials = async () => {
    const found = await provider();
    return { accessKeyId: found.accessKeyId, secretAccessKey: found.secretAccessKey, ...(found.sessionToken ? { sessionToken: found.sessionToken } : {}) };
  };
  return { cloudFormation, region: await cloudFormation.config.region(), credentials };
}

/** The client store to work on, and how to let go of it. */
async function openStore(options: { table?: string; stack?: string; region?: string; 'data-dir'?: string }): Promise<{ store: ClientStore; close(): Promise<void> }> {
  let table = options.table;
  if (table || options.stack) {
    const aws = await awsAccess(options.region);
    if (!table) {
      const { Stacks } = await aws.cloudFormation.send(new DescribeStacksCommand({ StackName: options.stack }));
      table = Stacks?.[0]?.Outputs?.find((output) => output.OutputKey === 'ClientsTableName')?.OutputValue;
      if (!table) throw new UsageError(`stack ${options.stack} has no ClientsTableName output`);
    }
    const client = new AwsClient({ service: 'dynamodb', region: aws.region, credentials: aws.credentials });
    return { store: new DynamoClientStore(new DynamoDocuments(client), table), close: async () => client.destroy() };
  }

  const dataDir = resolve(options['data-dir'] ?? process.env['DATA_DIR'] ?? './.waas');
  const local = { service: 'dynamodb', region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } as const;
  const stackFile = join(dataDir, stackFileName);
  if (existsSync(stackFile)) {
    const running = JSON.parse(readFileSync(stackFile, 'utf8')) as StackFile;
    if (alive(running.pid)) {
      const client = new AwsClient({ ...local, endpoint: running.dynamodbEndpoint });
      return { store: new DynamoClientStore(new DynamoDocuments(client), running.tables.clients), close: async () => client.destroy() };
    }
  }
  // No local stack runs on this DATA_DIR: open its store through the stack's own storage process.
  const storage = await startStorage(dataDir);
  const client = new AwsClient({ ...local, endpoint: storage.dynamodbEndpoint });
  await provisionTables(client);
  return {
    store: new DynamoClientStore(new DynamoDocuments(client), localTableNames.clients),
    close: async () => {
      client.destroy();
      await storage.stop();
    },
  };
}

async function main(argv: string[]): Promise<unknown> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      table: { type: 'string' },
      stack: { type: 'string' },
      region: { type: 'string' },
      'data-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) throw new UsageError(usage);
  if (!['create', 'list', 'revoke', 'rotate-secret'].includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}\n${usage}`);
  if ((command === 'revoke' || command === 'rotate-secret') && rest.length !== 1) throw new UsageError(`${command} takes one CLIENT_ID\n${usage}`);

  const { store, close } = await openStore(values);
  try {
    if (command === 'create') {
      const made = newClient(values.name ? { name: values.name } : {});
      await store.put(made.client);
      return { client_id: made.client.clientId, verify_token: made.verifyToken, signing_secret: made.signingSecret };
    }
    if (command === 'list') {
      const clients = await store.list();
      return clients
        .sort((a, b) => a.created.localeCompare(b.created))
        .map((client) => ({ client_id: client.clientId, name: client.name, created: client.created, revoked: client.revoked ?? null }));
    }
    const clientId = rest[0] ?? '';
    if (command === 'rotate-secret') {
      const client = await store.get(clientId);
      if (!client || client.revoked) throw new UsageError(`no client ${clientId}`);
      const rotated = rotateSecret(client, newSigningSecret(), Date.now());
      await store.put(rotated);
      return { client_id: clientId, signing_secret: rotated.signingSecrets[0], previous_secret_signs_until: rotated.secretsRetireAt };
    }
    if (!(await store.revoke(clientId, new Date().toISOString()))) throw new UsageError(`no client ${clientId}`);
    return { client_id: clientId, revoked: true };
  } finally {
    await close();
  }
}

try {
  const result = await main(process.argv.slice(2));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
