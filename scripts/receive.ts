/**
 * `npm run --silent receive -- [--port N] [--secret whsec_...]`: what a job needs on a laptop,
 * on 127.0.0.1 only.
 *
 * - `POST /callback` receives waas's callbacks and verifies each one's Standard Webhooks
 *   signature, with the given secret, else with the demo client's signing secrets read from the
 *   local stack's DATA_DIR. It prints one line per callback: the job id, its status, and `valid`
 *   or `forged` (with why), and answers 204, or 401 for a forgery.
 * - Any other path is an echo target, like httpbin's `/anything`: any method, answered 200 with
 *   a JSON object of what it got (method, path, query, headers, body).
 *
 * ```bash
 * npm run --silent receive                # listening on http://127.0.0.1:4000
 * curl -u ... -d '{"service":"http://127.0.0.1:4000/post","callback":"http://127.0.0.1:4000/callback"}' ...
 * ```
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { DynamoClientStore } from '../lambdas/adapters/dynamo.ts';
import { pathToFileURL } from 'node:url';
import { demoClient } from '../local/demo.ts';
import { openStore, runCli, UsageError } from './store.ts';

/** The default port: beside the API's 3000. */
export const receiverPort = 4000;

/** Bodies are bounded as the API bounds its own: what waas sends fits well within. */
const maxBodyBytes = 1024 * 1024;

export interface Receiver {
  url: string;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  port?: number;
  /** Standard Webhooks secrets (`whsec_...`): a callback is valid when one of them signed it. */
  secrets: readonly string[];
  /** Where each callback's line goes (default: stdout). */
  print?: (line: string) => void;
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBodyBytes) throw new Error(`body over ${maxBodyBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Why no secret verifies the callback, or undefined when one does. */
export function forgery(secrets: readonly string[], body: string, headers: IncomingMessage['headers']): string | undefined {
  const wanted = { 'webhook-id': headers['webhook-id'], 'webhook-timestamp': headers['webhook-timestamp'], 'webhook-signature': headers['webhook-signature'] };
  if (Object.values(wanted).some((value) => typeof value !== 'string')) return 'webhook-id, webhook-timestamp or webhook-signature missing';
  let reason = 'no secret to verify with';
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(body, wanted as Record<string, string>);
      return undefined;
    } catch (error) {
      reason = error instanceof Error ? error.message : String(error);
    }
  }
  return reason;
}

/** One line for a callback: its job, its status, and the verdict. */
function describeCallback(body: string, verdict: string | undefined): string {
  let job: { jobId?: unknown; status?: unknown; notified?: unknown } = {};
  try {
    job = JSON.parse(body) as typeof job;
  } catch {
    // A forgery need not be JSON: its line says so below.
  }
  const field = (value: unknown) => (typeof value === 'string' ? value : '-');
  return `${new Date().toISOString()} callback job ${field(job.jobId)} ${field(job.status)} ${verdict === undefined ? 'valid' : `forged (${verdict})`}`;
}

export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const server: Server = createServer((request, response) => {
    void (async () => {
      let body: string;
      try {
        body = await readBody(request);
      } catch (error) {
        response.writeHead(413, { 'content-type': 'text/plain' }).end(error instanceof Error ? error.message : 'too large');
        return;
      }
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      if (request.method === 'POST' && url.pathname === '/callback') {
        const verdict = forgery(options.secrets, body, request.headers);
        print(describeCallback(body, verdict));
        response.writeHead(verdict === undefined ? 204 : 401).end();
        return;
      }
      const echoed = {
        method: request.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: request.headers,
        body,
      };
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(echoed));
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? receiverPort, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const usage = `usage: npm run --silent receive -- [--port N] [--secret whsec_...]
  --port N         where to listen, on 127.0.0.1 (default ${receiverPort})
  --secret SECRET  verify callbacks with this signing secret (repeatable); default: the demo
                   client's, read from the local stack's DATA_DIR
  --data-dir DIR   the local stack's DATA_DIR (default: $DATA_DIR or ./.waas)`;

/** The demo client's signing secrets, newest first, from the local stack's store. */
async function demoSecrets(dataDir: string | undefined): Promise<string[]> {
  const { documents, table, close } = await openStore({ 'data-dir': dataDir }, 'clients');
  try {
    const client = await new DynamoClientStore(documents, table).get(demoClient.clientId);
    if (!client) throw new UsageError(`the demo client is not in this DATA_DIR: start the local stack once, or give --secret\n${usage}`);
    return client.signingSecrets;
  } finally {
    await close();
  }
}

async function main(argv: string[]): Promise<never> {
  let values: { port?: string | undefined; secret?: string[] | undefined; 'data-dir'?: string | undefined; help?: boolean | undefined };
  try {
    ({ values } = parseArgs({ args: argv, options: { port: { type: 'string' }, secret: { type: 'string', multiple: true }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
  if (values.help) throw new UsageError(usage);
  const port = values.port === undefined ? receiverPort : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new UsageError(`--port must be an integer from 1 to 65535, got ${values.port}\n${usage}`);
  for (const secret of values.secret ?? []) {
    if (!secret.startsWith('whsec_')) throw new UsageError(`--secret must be a signing secret (whsec_...)\n${usage}`);
  }
  const secrets = values.secret ?? (await demoSecrets(values['data-dir']));
  const receiver = await startReceiver({ port, secrets });
  process.stdout.write(`receiving on ${receiver.url}: callbacks at ${receiver.url}/callback, anything else echoed (Ctrl-C to stop)\n`);
  return new Promise<never>(() => undefined);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await runCli(() => main(process.argv.slice(2)));
