/**
 * What fires schedules on AWS: a schedule group of the stack's own, in which the api function
 * makes one EventBridge Scheduler schedule per waas schedule (lambdas/adapters/scheduler.ts);
 * the role EventBridge Scheduler assumes to invoke the schedule-run function, allowed that alone
 * (and to hand a run it gave up on to the dead-letter queue); and that queue.
 */
import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { deadLetterRetentionDays, schedulerEnv } from '../definitions.ts';

export interface ScheduleTimersProps {
  /** The function each schedule invokes. */
  run: NodejsFunction;
  /** The function that makes and deletes the schedules. */
  api: NodejsFunction;
}

export class ScheduleTimers extends Construct {
  readonly group: ScheduleGroup;
  readonly role: Role;
  readonly deadLetter: Queue;

  constructor(scope: Construct, id: string, props: ScheduleTimersProps) {
    super(scope, id);
    const stack = Stack.of(this);
    // Its schedules are the clients' (the table keeps their records): kept if the stack goes.
    this.group = new ScheduleGroup(this, 'Group', { removalPolicy: RemovalPolicy.RETAIN });
    this.deadLetter = new Queue(this, 'RunsDeadLetterQueue', {
      retentionPeriod: Duration.days(deadLetterRetentionDays),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    Validations.of(this.deadLetter).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: "It is a dead-letter queue: EventBridge Scheduler's, for runs it gave up on (its target's DeadLetterConfig, which cdk-nag does not see as a redrive policy).",
    });

    // Only EventBridge Scheduler, and only on this account's behalf (the confused deputy).
    this.role = new Role(this, 'InvokerRole', {
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: 'waas: EventBridge Scheduler invokes the schedule-run function',
    });
    this.role.addToPolicy(new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [props.run.functionArn] }));
    this.role.addToPolicy(new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deadLetter.queueArn] }));

    // api: makes and deletes the schedules of this group alone, and hands them this role alone.
    const schedules = stack.formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.group.scheduleGroupName}/*` });
    props.api.addToRolePolicy(new PolicyStatement({ actions: ['scheduler:CreateSchedule', 'scheduler:DeleteSchedule'], resources: [schedules] }));
    props.api.addToRolePolicy(
      new PolicyStatement({ actions: ['iam:PassRole'], resources: [this.role.roleArn], conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } } }),
    );
    const apiPolicy = props.api.role?.node.tryFindChild('DefaultPolicy');
    if (apiPolicy) {
      Validations.of(apiPolicy).acknowledge({
        // The finding as cdk-nag names it: this one resource, no other wildcard of the api's.
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.group.scheduleGroupName}/*]`,
        reason: "The api makes and deletes one EventBridge Scheduler schedule per waas schedule, each named by a new schedule's id: the resource is every schedule of the stack's own group, and no other group's.",
      });
    }
    props.api.addEnvironment(schedulerEnv.group, this.group.scheduleGroupName);
    props.api.addEnvironment(schedulerEnv.targetArn, props.run.functionArn);
    props.api.addEnvironment(schedulerEnv.roleArn, this.role.roleArn);
    props.api.addEnvironment(schedulerEnv.deadLetterArn, this.deadLetter.queueArn);
  }
}
