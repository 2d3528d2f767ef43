/**
 * `npm run --silent clients -- create [--name NAME] | list | revoke CLIENT_ID | rotate-secret CLIENT_ID`
 *
 * Manages API clients, locally in a local stack's DATA_DIR or on AWS in the deployed clients
 * table (scripts/store.ts says how each is reached). Prints JSON on stdout and nothing else;
 * tokens are shown once, at creation, and never stored.
 */
import { parseArgs } from 'node:util';
import { newClient, newSigningSecret } from '../lambdas/core/auth.ts';
import { rotateSecret } from '../lambdas/core/callback.ts';
import { DynamoClientStore } from '../lambdas/adapters/dynamo.ts';
import { openStore, Refusal, runCli, storeOptions, storeUsage, UsageError } from './store.ts';

const usage = `usage: npm run --silent clients -- <command>
  create [--name NAME]    add a client; prints {"client_id","verify_token","signing_secret"}
  list                    list clients (never their tokens)
  revoke CLIENT_ID        refuse a client from now on (within 10 seconds)
  rotate-secret CLIENT_ID a new signing secret; the old one keeps signing for 24 hours
options:
${storeUsage}`;

/** Each command and the positional arguments it takes. */
const commands: Record<string, number> = { create: 0, list: 0, revoke: 1, 'rotate-secret': 1 };

function read(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: { ...storeOptions, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}

async function main(argv: string[]): Promise<unknown> {
  const { values, positionals } = read(argv);
  const [command, ...rest] = positionals;
  if (values.help || !command) throw new UsageError(usage);
  const takes = commands[command];
  if (takes === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}\n${usage}`);
  if (rest.length !== takes) throw new UsageError(`${command} takes ${takes === 0 ? 'no argument' : 'one CLIENT_ID'}\n${usage}`);
  if (values.name !== undefined && command !== 'create') throw new UsageError(`--name is for create only\n${usage}`);

  const { documents, table, close } = await openStore(values, 'clients');
  const store = new DynamoClientStore(documents, table);
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
      if (!client || client.revoked) throw new Refusal(`no client ${clientId}`);
      const rotated = rotateSecret(client, newSigningSecret(), Date.now());
      await store.put(rotated);
      return { client_id: clientId, signing_secret: rotated.signingSecrets[0], previous_secret_signs_until: rotated.secretsRetireAt };
    }
    if (!(await store.revoke(clientId, new Date().toISOString()))) throw new Refusal(`no client ${clientId}`);
    return { client_id: clientId, revoked: true };
  } finally {
    await close();
  }
}

await runCli(() => main(process.argv.slice(2)));
