/**
 * cdk-nag's AWS Solutions rules over the Waas stack. cdk-nag 3 is a CDK validation plugin, not an
 * aspect: its findings are a report (not annotations), and `Validations.of(x).acknowledge()` is how
 * the stack accepts one, with a reason. `bin/waas.ts` registers the same pack, so `cdk synth` fails
 * on a finding too; here the report is read directly to name every finding in a failure.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { WaasStack } from '../../lib/waas-stack.ts';

const projectRoot = join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

let app: App;
let findings: Array<{ rule: string; severity: string; paths: Array<string | undefined> }>;

beforeAll(() => {
  // The rules read the construct tree, not the bundles nor CloudFormation's own checks: both are
  // skipped here to save seconds (stack.test.ts runs them).
  app = new App({
    context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] },
    builtinCloudFormationValidation: false,
  });
  new WaasStack(app, 'Waas');
  app.synth();
  const report = new AwsSolutionsChecks(app, { verbose: true }).validateScope(app);
  findings = report.violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity ?? 'unknown',
    paths: v.violatingResources.map((r) => r.constructPath),
  }));
});

/** Every acknowledgment in the app, as rule id → reason. */
function acknowledgments(): Array<{ rule: string; reason: string; path: string }> {
  return app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([rule, reason]) => ({
          rule: rule.replace(/^annotation::/i, ''),
          reason,
          path: construct.node.path,
        })),
      ),
  );
}

describe('cdk-nag AWS Solutions checks', () => {
  it('leaves no unacknowledged error', () => {
    expect(findings.filter((f) => f.severity === 'error')).toEqual([]);
  });

  it('leaves no unacknowledged warning', () => {
    expect(findings.filter((f) => f.severity !== 'error')).toEqual([]);
  });

  it('acknowledges only the missing API Gateway authorizer, on the API, the alarm topic\'s AWS-managed encryption, the api\'s schedules of its own group, and the schedules\' dead-letter queue, each with its reason', () => {
    const acknowledged = acknowledgments();
    const byRule = (prefix: string) => acknowledged.find(({ rule }) => rule.startsWith(prefix));
    expect(acknowledged.map(({ rule, path }) => ({ rule: rule.replace(/\[.*$/, ''), path })).sort((a, b) => a.rule.localeCompare(b.rule))).toEqual([
      { rule: 'AwsSolutions-APIG4', path: 'Waas/Api/HttpApi' },
      { rule: 'AwsSolutions-IAM5', path: 'Waas/Functions/apiRole/DefaultPolicy' },
      { rule: 'AwsSolutions-SNS2', path: 'Waas/Alarms/Topic' },
      { rule: 'AwsSolutions-SQS3', path: 'Waas/Schedules/RunsDeadLetterQueue' },
    ]);
    // The api's one wildcard: its group's schedules, named by ids made at run time.
    expect(byRule('AwsSolutions-IAM5')?.rule).toMatch(/^AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule\/[^/*]+\/\*\]$/);
    expect(byRule('AwsSolutions-IAM5')?.reason).toMatch(/schedule of the stack's own group/);
    expect(byRule('AwsSolutions-APIG4')?.reason).toMatch(/verify_token/);
    expect(byRule('AwsSolutions-SNS2')?.reason).toMatch(/no job data nor credentials/);
    expect(byRule('AwsSolutions-SQS3')?.reason).toMatch(/dead-letter queue/);
  });
});
