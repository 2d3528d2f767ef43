/**
 * The four Lambda functions, shaped by `functions` in definitions.ts: one bundled ESM entry each,
 * its own log group and its own role. Grants and event sources are the stack's arrows, not here.
 */
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, SystemLogLevel, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type ICommandHooks } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { functions, lambdaSystemLogLevel, metricsNamespace, type FunctionName, type FunctionSpec } from '../definitions.ts';
import { consoleAssetDir } from '../../lambdas/core/console-assets.ts';
import { docsAssetDir, vendorAssets } from '../../lambdas/core/docs-assets.ts';

/** The project root: entries in definitions.ts are relative to it, and so is the lock file. */
const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The api function's documentation page loads Swagger UI's script and style sheet (1.9 MB): in
 * its bundle they would be parsed at every cold start, so they are copied beside it instead and
 * read when the page is first asked for (lambdas/core/docs.ts). The console's (lambdas/core/
 * console.ts) are built beside it from console/src, by console/build.ts, for the same reason.
 */
const resolveFromRoot = createRequire(join(projectRoot, 'package.json'));
const docsAssetHooks: ICommandHooks = {
  beforeBundling: () => [],
  beforeInstall: () => [],
  afterBundling: (inputDir, outputDir) => [
    `mkdir -p "${join(outputDir, docsAssetDir)}"`,
    ...vendorAssets.map((asset) => `cp "${join(inputDir, relative(projectRoot, resolveFromRoot.resolve(asset.module)))}" "${join(outputDir, docsAssetDir, asset.file)}"`),
    `cd "${inputDir}" && node --import tsx console/build.ts "${join(outputDir, consoleAssetDir)}"`,
  ],
};

/** The newest Node.js runtime this aws-cdk-lib knows (cdk-nag AwsSolutions-L1 checks for it). */
const runtime = Runtime.NODEJS_24_X;

export interface FunctionsProps {
  /** The same for every function: the config module reads all of it at once. */
  environment: Record<string, string>;
  logRetention: RetentionDays;
  /** Logs' and metrics' `service`: the stack's name, so that two deployments in one account stay apart. */
  service: string;
  /** Active X-Ray tracing, and Powertools Tracer in the functions (lambdas/adapters/tracing.ts). */
  tracing: boolean;
  /** Reserved concurrency by function; a function not named (or 0) takes from the account's unreserved pool. */
  reservedConcurrency: Partial<Record<FunctionName, number>>;
}

export class Functions extends Construct {
  readonly byName: Readonly<Record<FunctionName, NodejsFunction>>;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const entries = Object.entries(functions) as Array<[FunctionName, FunctionSpec]>;
    this.byName = Object.fromEntries(
      entries.map(([name, spec]) => [name, this.function(name, spec, props)]),
    ) as Record<FunctionName, NodejsFunction>;
  }

  private function(name: FunctionName, spec: FunctionSpec, props: FunctionsProps): NodejsFunction {
    const logGroup = new LogGroup(this, `${name}Logs`, { retention: props.logRetention });
    // An explicit role instead of the default one: the default attaches the AWS managed
    // AWSLambdaBasicExecutionRole, which may write to every log group in the account.
    const role = new Role(this, `${name}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `waas ${name} function`,
    });
    logGroup.grantWrite(role);
    const reserved = props.reservedConcurrency[name];

    return new NodejsFunction(this, name, {
      entry: join(projectRoot, spec.entry),
      projectRoot,
      depsLockFilePath: join(projectRoot, 'package-lock.json'),
      runtime,
      architecture: Architecture.ARM_64,
      memorySize: spec.memoryMb,
      timeout: Duration.seconds(spec.timeoutSeconds),
      role,
      logGroup,
      ...(reserved ? { reservedConcurrentExecutions: reserved } : {}),
      tracing: props.tracing ? Tracing.ACTIVE : Tracing.DISABLED,
      // JSON lines (Powertools writes JSON already), so that Lambda can filter its own by level.
      loggingFormat: LoggingFormat.JSON,
      systemLogLevelV2: SystemLogLevel[lambdaSystemLogLevel],
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: props.service,
        POWERTOOLS_METRICS_NAMESPACE: metricsNamespace,
        POWERTOOLS_TRACE_ENABLED: String(props.tracing),
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        minify: true,
        sourceMap: false,
        mainFields: ['module', 'main'],
        // Some CommonJS dependencies call require(); an ESM bundle has none unless we make one.
        banner: "import { createRequire } from 'module';const require = createRequire(import.meta.url);",
        // The AWS SDK is bundled in, at the version package.json pins, not taken from the
        // runtime: what is tested is what runs, and esbuild keeps only the commands used.
        bundleAwsSDK: true,
        externalModules: [],
        ...(name === 'api' ? { commandHooks: docsAssetHooks } : {}),
      },
    });
  }
}
