/**
 * `npm start`: the whole service on this machine until Ctrl-C. Settings come from the
 * environment (PORT, HOST, DATA_DIR, EGRESS_ALLOW_CIDRS, WAAS_DEMO_CLIENT, WAAS_FAULTS), with
 * the contract's defaults.
 */
import './quiet.ts';
import { functions } from '../lib/definitions.ts';
import { checkDataDir, dataDirFromEnv } from './data-dir.ts';
import { demoClientLines, demoClientMode, type DemoClientMode } from './demo.ts';
import { startLocalStack } from './stack.ts';

const started = Date.now();
const host = process.env['HOST'] || '127.0.0.1';
const port = Number(process.env['PORT'] ?? 3000);
const dataDir = dataDirFromEnv();
let demoMode: DemoClientMode;
try {
  // One line naming the real cause, before anything starts: a DATA_DIR that is a file, or read-only, or a bad setting.
  checkDataDir(dataDir);
  demoMode = demoClientMode(process.env);
} catch (error) {
  console.error(`waas could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
const stack = await startLocalStack({
  dataDir,
  demoClient: demoMode,
  host,
  port,
  egressAllowCidrs: process.env['EGRESS_ALLOW_CIDRS'] ?? '127.0.0.0/8,::1/128',
  onError: (error) => console.error('[waas]', error instanceof Error ? `${error.name}: ${error.message}` : error),
  onFatal: (error) => {
    console.error(`waas is stopping: ${error.message}`);
    process.exit(1);
  },
}).catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') console.error(`waas could not start: ${host}:${port} is in use (set PORT to another port, or 0 for any)`);
  else console.error('waas could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});

const { recovered, upgraded, demo } = stack;
console.log(`waas is ready at ${stack.url} (started in ${Date.now() - started} ms; data in ${stack.dataDir})`);
console.log(`  console: ${stack.url}/console (sign in with a client id and token)`);
if (stack.faults) console.log(`  fault mode (WAAS_FAULTS): ${JSON.stringify(stack.faults)}`);
if (upgraded.jobs + upgraded.keys > 0) {
  console.log(`  rewrote ${upgraded.jobs} jobs and ${upgraded.keys} Idempotency-Keys kept in an older layout in today's`);
}
if (recovered.jobs + recovered.callbacks > 0) {
  console.log(`  resumed ${recovered.jobs} unfinished jobs and ${recovered.callbacks} pending callbacks`);
}
for (const line of demoClientLines(demo, stack.url)) console.log(line);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) {
      console.log('waas stops now: the attempts still in flight run again after the next start');
      process.exit(1);
    }
    stopping = true;
    const attempts = Object.values(stack.inFlight()).reduce((sum, count) => sum + count, 0);
    console.log(attempts > 0 ? `waas is stopping: ${attempts} invocations in flight finish first (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to stop at once)` : 'waas is stopping');
    // Bounded by the longest function timeout: nothing in flight can outlive it.
    const force = setTimeout(() => process.exit(1), (Math.max(...Object.values(functions).map((fn) => fn.timeoutSeconds)) + 10) * 1_000);
    force.unref();
    void stack.stop().then(() => process.exit(0));
  });
}
