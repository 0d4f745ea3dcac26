"""Deploys every template under infra/templates/ into moto's CloudFormation (no AWS account) and
checks the resources it creates; where moto does not model a resource type (autoscaling, alarms,
function URLs, HTTP APIs, queue policies, S3 notifications set from CloudFormation), the checks
read the template itself.

    PYTHONPATH=$(bash infra/fetch-moto.sh) python3 -m unittest discover -s infra/templates -v
"""

import ast
import io
import logging
import json
import os
import unittest
import warnings
import zipfile

import boto3
import yaml
from moto import mock_aws

# moto logs each resource type it skips; the tests say which ones they expect
logging.getLogger("moto").setLevel(logging.ERROR)

HERE = os.path.dirname(os.path.abspath(__file__))
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/hf-inference-rs:cpu"
TEMPLATES = ["sagemaker-endpoint", "serverless-endpoint", "async-endpoint", "lambda-proxy", "async-lambda"]


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags, turned into their long form."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(name):
    with open(os.path.join(HERE, name, "template.yaml")) as f:
        return yaml.load(f, Loader=_CfnLoader)


def _mentions(value, logical_ids):
    text = json.dumps(value)
    return any(f'"{i}"' in text or f"{i}." in text for i in logical_ids)


class Stack:
    """A template deployed into moto: its outputs, and the resource types moto skipped."""

    count = 0

    def __init__(self, name, params, stack_name=None):
        template = load(name)
        # moto has no model of these: it skips them with a warning, and fails the stack when an
        # output reads one of their attributes; such outputs are dropped here (and the resources
        # are checked from the template)
        modeled = _moto_types()
        unmodeled = [k for k, r in template["Resources"].items() if r["Type"] not in modeled]
        template["Outputs"] = {
            k: v for k, v in template.get("Outputs", {}).items() if not _mentions(v, unmodeled)
        }
        self.template = template
        self.skipped = sorted({template["Resources"][k]["Type"] for k in unmodeled})
        cf = boto3.client("cloudformation", region_name=REGION)
        Stack.count += 1
        self.name = stack_name or f"hf-{name}-{Stack.count}"
        # moto warns of each resource type it skips (listed in self.skipped), whenever it
        # reads the stack; unittest resets the filters per test, so they are set here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cf.create_stack(
                StackName=self.name,
                TemplateBody=json.dumps(template),
                Capabilities=["CAPABILITY_IAM"],
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            )
            stack = cf.describe_stacks(StackName=self.name)["Stacks"][0]
            if stack["StackStatus"] != "CREATE_COMPLETE":
                raise AssertionError(f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason')}")
            self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
            self.resources = {
                r["LogicalResourceId"]: r["PhysicalResourceId"]
                for r in cf.list_stack_resources(StackName=self.name)["StackResourceSummaries"]
            }

    def role_policies(self, logical_id):
        iam = boto3.client("iam", region_name=REGION)
        role = self.resources[logical_id]
        return {
            n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
            for n in iam.list_role_policies(RoleName=role)["PolicyNames"]
        }


def _moto_types():
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def statements(policies):
    out = []
    for doc in policies.values():
        if isinstance(doc, str):
            # moto keeps the None that an AWS::NoValue leaves in a list of statements (CloudFormation
            # drops it) and then hands back the document as Python's repr
            doc = ast.literal_eval(doc)
        out += [s for s in doc["Statement"] if s is not None]
    return out


def resources_for(policies, action):
    found = []
    for s in statements(policies):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if action in actions:
            found += s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
    return sorted(found)


def put_zip(bucket, key):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", b"\x7fELF")
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())


class Documentation(unittest.TestCase):
    def test_each_template_has_a_readme_naming_every_parameter(self):
        for name in TEMPLATES:
            with open(os.path.join(HERE, name, "README.md")) as f:
                readme = f.read()
            for param in load(name)["Parameters"]:
                self.assertIn(f"`{param}`", readme, f"{name}/README.md does not document {param}")


@mock_aws
class RealTimeEndpoint(unittest.TestCase):
    def test_model_from_s3(self):
        s = Stack("sagemaker-endpoint", {
            "ImageUri": IMAGE,
            "ModelDataUrl": "s3://models-bucket/minilm/model.tar.gz",
            "HfTask": "feature-extraction",
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": "2",
        })
        sm = boto3.client("sagemaker", region_name=REGION)
        model = sm.describe_model(ModelName=s.outputs["ModelName"])["PrimaryContainer"]
        self.assertEqual(model["Image"], IMAGE)
        self.assertEqual(model["ModelDataUrl"], "s3://models-bucket/minilm/model.tar.gz")
        self.assertEqual(model["Environment"]["HF_TASK"], "feature-extraction")
        self.assertNotIn("HF_MODEL_ID", model["Environment"])
        endpoint = sm.describe_endpoint(EndpointName=s.outputs["EndpointName"])
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        [variant] = config["ProductionVariants"]
        self.assertEqual(variant["VariantName"], "AllTraffic")
        self.assertEqual(variant["InstanceType"], "ml.c5.xlarge")
        self.assertEqual(variant["InitialInstanceCount"], 2)
        self.assertEqual(variant["ModelName"], s.outputs["ModelName"])
        self.assertFalse(config.get("AsyncInferenceConfig"))
        policies = s.role_policies("ExecutionRole")
        self.assertEqual(resources_for(policies, "s3:GetObject"),
                         ["arn:aws:s3:::models-bucket/minilm/model.tar.gz"])
        self.assertEqual(s.skipped, ["AWS::ApplicationAutoScaling::ScalableTarget",
                                     "AWS::ApplicationAutoScaling::ScalingPolicy"])

    def test_model_from_the_hub_reads_no_bucket(self):
        s = Stack("sagemaker-endpoint", {"ImageUri": IMAGE, "HfModelId": "sentence-transformers/all-MiniLM-L6-v2"})
        sm = boto3.client("sagemaker", region_name=REGION)
        model = sm.describe_model(ModelName=s.outputs["ModelName"])["PrimaryContainer"]
        self.assertEqual(model["Environment"]["HF_MODEL_ID"], "sentence-transformers/all-MiniLM-L6-v2")
        self.assertNotIn("HF_TASK", model["Environment"])
        self.assertFalse(model.get("ModelDataUrl"))
        self.assertEqual(resources_for(s.role_policies("ExecutionRole"), "s3:GetObject"), [])

    def test_autoscaling_on_invocations_per_instance(self):
        r = load("sagemaker-endpoint")["Resources"]
        target = r["ScalableTarget"]["Properties"]
        self.assertEqual(target["ScalableDimension"], "sagemaker:variant:DesiredInstanceCount")
        self.assertEqual(target["ResourceId"], {"Fn::Sub": "endpoint/${Endpoint.EndpointName}/variant/AllTraffic"})
        self.assertEqual(target["MinCapacity"], {"Ref": "MinInstanceCount"})
        policy = r["InvocationsScalingPolicy"]["Properties"]
        self.assertEqual(policy["PolicyType"], "TargetTrackingScaling")
        tt = policy["TargetTrackingScalingPolicyConfiguration"]
        self.assertEqual(tt["PredefinedMetricSpecification"]["PredefinedMetricType"],
                         "SageMakerVariantInvocationsPerInstance")
        self.assertEqual(tt["TargetValue"], {"Ref": "InvocationsPerInstanceTarget"})


@mock_aws
class ServerlessEndpoint(unittest.TestCase):
    def variant(self, params):
        s = Stack("serverless-endpoint", {"ImageUri": IMAGE, "HfModelId": "distilbert-base-uncased", **params})
        sm = boto3.client("sagemaker", region_name=REGION)
        endpoint = sm.describe_endpoint(EndpointName=s.outputs["EndpointName"])
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        [variant] = config["ProductionVariants"]
        model = sm.describe_model(ModelName=s.outputs["ModelName"])["PrimaryContainer"]
        return variant, model

    def test_memory_and_concurrency(self):
        variant, model = self.variant({"MemorySizeInMB": "4096", "MaxConcurrency": "20"})
        self.assertEqual(variant["ServerlessConfig"], {"MemorySizeInMB": 4096, "MaxConcurrency": 20})
        self.assertNotIn("InstanceType", variant)
        self.assertEqual(model["Environment"]["SAGEMAKER_MAX_PAYLOAD_IN_MB"], "4")

    def test_provisioned_concurrency(self):
        variant, _ = self.variant({"MaxConcurrency": "10", "ProvisionedConcurrency": "2"})
        self.assertEqual(variant["ServerlessConfig"]["ProvisionedConcurrency"], 2)

    def test_a_memory_size_serverless_refuses_is_refused(self):
        from botocore.exceptions import ClientError

        with self.assertRaises(ClientError):
            self.variant({"MemorySizeInMB": "1500"})


@mock_aws
class AsyncEndpoint(unittest.TestCase):
    def test_outputs_topics_and_role(self):
        s = Stack("async-endpoint", {"ImageUri": IMAGE, "HfModelId": "distilbert-base-uncased",
                                     "MaxConcurrentInvocationsPerInstance": "2"})
        sm = boto3.client("sagemaker", region_name=REGION)
        endpoint = sm.describe_endpoint(EndpointName=s.outputs["EndpointName"])
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        bucket = s.outputs["ResultsBucket"]
        self.assertEqual(bucket, s.resources["ResultsBucket"])
        out = config["AsyncInferenceConfig"]["OutputConfig"]
        self.assertEqual(out["S3OutputPath"], f"s3://{bucket}/async-output/")
        self.assertEqual(out["S3FailurePath"], f"s3://{bucket}/async-failure/")
        topics = {t["TopicArn"] for t in boto3.client("sns", region_name=REGION).list_topics()["Topics"]}
        self.assertEqual(out["NotificationConfig"]["SuccessTopic"], s.outputs["SuccessTopicArn"])
        self.assertEqual(out["NotificationConfig"]["ErrorTopic"], s.outputs["ErrorTopicArn"])
        self.assertLessEqual({s.outputs["SuccessTopicArn"], s.outputs["ErrorTopicArn"]}, topics)
        self.assertEqual(config["AsyncInferenceConfig"]["ClientConfig"],
                         {"MaxConcurrentInvocationsPerInstance": 2})
        model = sm.describe_model(ModelName=s.outputs["ModelName"])["PrimaryContainer"]
        self.assertEqual(model["Environment"]["SAGEMAKER_MODEL_SERVER_TIMEOUT"], "3600")
        policies = s.role_policies("ExecutionRole")
        self.assertEqual(resources_for(policies, "s3:PutObject"),
                         [f"arn:aws:s3:::{bucket}/async-failure/*", f"arn:aws:s3:::{bucket}/async-output/*"])
        self.assertEqual(resources_for(policies, "s3:GetObject"), [f"arn:aws:s3:::{bucket}/async-input/*"])
        self.assertEqual(resources_for(policies, "sns:Publish"),
                         sorted([s.outputs["SuccessTopicArn"], s.outputs["ErrorTopicArn"]]))
        self.assertIn("AWS::CloudWatch::Alarm", s.skipped)

    def test_scales_to_zero_on_the_backlog_and_back_from_zero(self):
        r = load("async-endpoint")["Resources"]
        self.assertEqual(r["ScalableTarget"]["Properties"]["MinCapacity"], 0)
        tt = r["BacklogScalingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        metric = tt["CustomizedMetricSpecification"]
        self.assertEqual((metric["Namespace"], metric["MetricName"]),
                         ("AWS/SageMaker", "ApproximateBacklogSizePerInstance"))
        self.assertEqual(metric["Dimensions"][0]["Name"], "EndpointName")
        step = r["ScaleOutFromZeroPolicy"]["Properties"]
        self.assertEqual(step["PolicyType"], "StepScaling")
        self.assertEqual(step["StepScalingPolicyConfiguration"]["StepAdjustments"],
                         [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}])
        alarm = r["HasBacklogWithoutCapacityAlarm"]["Properties"]
        self.assertEqual(alarm["MetricName"], "HasBacklogWithoutCapacity")
        self.assertEqual(alarm["ComparisonOperator"], "GreaterThanOrEqualToThreshold")
        self.assertEqual(alarm["Threshold"], 1)
        self.assertEqual(alarm["AlarmActions"], [{"Ref": "ScaleOutFromZeroPolicy"}])


@mock_aws
class LambdaProxy(unittest.TestCase):
    def deploy(self, **params):
        put_zip("code-bucket", "lambda-proxy.zip")
        base = {"CodeS3Bucket": "code-bucket", "CodeS3Key": "lambda-proxy.zip"}
        return Stack("lambda-proxy", {**base, **params})

    def test_routes_environment_and_exactly_the_listed_endpoints(self):
        routes = json.dumps({"sentiment": {"endpoint": "sentiment-prod", "task": "text-classification"},
                             "ner": {"endpoint": "ner-prod", "task": "ner"}})
        s = self.deploy(EndpointNames="sentiment-prod,ner-prod", Routes=routes, Architecture="arm64")
        lam = boto3.client("lambda", region_name=REGION)
        c = lam.get_function_configuration(FunctionName=s.outputs["FunctionName"])
        self.assertEqual(c["Runtime"], "provided.al2023")
        self.assertEqual(c["Handler"], "bootstrap")
        # moto leaves Architectures out of the function it builds from CloudFormation
        arch = load("lambda-proxy")["Resources"]["Function"]["Properties"]["Architectures"]
        self.assertEqual(arch, [{"Ref": "Architecture"}])
        env = c["Environment"]["Variables"]
        self.assertEqual(json.loads(env["HF_ROUTES"]), json.loads(routes))
        # moto keeps a Number parameter's type in the environment; Lambda and CloudFormation use strings
        self.assertEqual(str(env["HF_PROXY_TIMEOUT_SECONDS"]), "25")
        self.assertNotIn("SAGEMAKER_ENDPOINT_NAME", env)
        self.assertNotIn("HF_PROXY_RESPONSE_STREAM", env)
        policies = s.role_policies("FunctionRole")
        self.assertEqual(sorted(policies), ["invoke-endpoints", "logs"])
        [invoke] = policies["invoke-endpoints"]["Statement"]
        self.assertEqual(sorted(invoke["Action"]), ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync",
                                                    "sagemaker:InvokeEndpointWithResponseStream"])
        self.assertEqual(sorted(invoke["Resource"]), ["arn:*:sagemaker:*:*:endpoint/ner-prod",
                                                      "arn:*:sagemaker:*:*:endpoint/sentiment-prod"])
        self.assertEqual(invoke["Condition"], {"StringEquals": {"aws:RequestedRegion": REGION,
                                                                "aws:ResourceAccount": ACCOUNT}})
        # only API Gateway may invoke it (the function URL is AWS_IAM)
        policy = json.loads(lam.get_policy(FunctionName=s.outputs["FunctionName"])["Policy"])
        principals = sorted(json.dumps(st["Principal"]) for st in policy["Statement"])
        self.assertEqual(principals, ['{"Service": "apigateway.amazonaws.com"}'])

    def test_one_endpoint_public_url_streaming(self):
        s = self.deploy(EndpointNames="my-llm", SageMakerEndpointName="my-llm", HfTask="text-generation",
                        FunctionUrlAuthType="NONE", FunctionUrlInvokeMode="RESPONSE_STREAM")
        lam = boto3.client("lambda", region_name=REGION)
        env = lam.get_function_configuration(FunctionName=s.outputs["FunctionName"])["Environment"]["Variables"]
        self.assertEqual((env["SAGEMAKER_ENDPOINT_NAME"], env["HF_TASK"]), ("my-llm", "text-generation"))
        self.assertEqual(env["HF_PROXY_RESPONSE_STREAM"], "1")
        self.assertNotIn("HF_ROUTES", env)
        policy = json.loads(lam.get_policy(FunctionName=s.outputs["FunctionName"])["Policy"])
        public = [st for st in policy["Statement"] if st["Principal"] == "*"]
        self.assertEqual(len(public), 1, policy)
        self.assertEqual(public[0]["Action"], "lambda:InvokeFunctionUrl")
        self.assertEqual(resources_for(s.role_policies("FunctionRole"), "sagemaker:InvokeEndpoint"),
                         ["arn:*:sagemaker:*:*:endpoint/my-llm"])

    def test_local_routes_only_may_call_no_endpoint_and_async_prefixes(self):
        s = self.deploy(Routes='{"ner": {"local": true, "task": "ner"}}')
        self.assertEqual(sorted(s.role_policies("FunctionRole")), ["logs"])
        s = self.deploy(EndpointNames="big-job", AsyncS3Prefixes="jobs-bucket/in/,jobs-bucket/out/",
                        Routes='{"big": {"endpoint": "big-job", "task": "text-classification"}}')
        self.assertEqual(resources_for(s.role_policies("FunctionRole"), "s3:GetObject"),
                         ["arn:*:s3:::jobs-bucket/in/*", "arn:*:s3:::jobs-bucket/out/*"])

    def test_function_url_and_http_api(self):
        r = load("lambda-proxy")["Resources"]
        url = r["FunctionUrl"]["Properties"]
        self.assertEqual(url["AuthType"], {"Ref": "FunctionUrlAuthType"})
        self.assertEqual(url["TargetFunctionArn"], {"Fn::GetAtt": ["Function", "Arn"]})
        route = r["HttpApiRoute"]["Properties"]
        self.assertEqual(route["RouteKey"], "$default")
        self.assertEqual(route["AuthorizationType"], {"Ref": "HttpApiAuthType"})
        integration = r["HttpApiIntegration"]["Properties"]
        self.assertEqual((integration["IntegrationType"], integration["PayloadFormatVersion"]), ("AWS_PROXY", "2.0"))
        self.assertEqual(r["PublicUrlPermission"]["Condition"], "PublicUrl")


@mock_aws
class AsyncLambda(unittest.TestCase):
    def deploy(self, **params):
        put_zip("code-bucket", "async-handler.zip")
        base = {"CodeS3Bucket": "code-bucket", "CodeS3Key": "async-handler.zip", "HfTask": "text-classification"}
        return Stack("async-lambda", {**base, **params})

    def test_s3_trigger(self):
        s = self.deploy(BucketName="hf-jobs-s3")
        self.assertEqual(s.resources["JobBucket"], "hf-jobs-s3")
        self.assertNotIn("JobQueue", s.resources)
        lam = boto3.client("lambda", region_name=REGION)
        c = lam.get_function_configuration(FunctionName=s.outputs["FunctionName"])
        env = c["Environment"]["Variables"]
        self.assertEqual(env["HF_MODEL_DIR"], "/var/task/model")
        self.assertNotIn("HF_MODEL_ID", env)
        self.assertEqual(env["HF_ASYNC_OUTPUT_PATH"], "s3://hf-jobs-s3/output/")
        self.assertEqual(env["HF_ASYNC_FAILURE_PATH"], "s3://hf-jobs-s3/failure/")
        self.assertEqual(env["HF_ASYNC_SUCCESS_TOPIC"], s.outputs["SuccessTopicArn"])
        self.assertEqual(env["HF_ASYNC_ERROR_TOPIC"], s.outputs["ErrorTopicArn"])
        self.assertEqual(c["Timeout"], 900)
        policy = json.loads(lam.get_policy(FunctionName=s.outputs["FunctionName"])["Policy"])
        [st] = policy["Statement"]
        self.assertEqual(st["Principal"], {"Service": "s3.amazonaws.com"})
        self.assertEqual(st["Condition"]["ArnLike"]["AWS:SourceArn"], "arn:aws:s3:::hf-jobs-s3")
        p = s.role_policies("FunctionRole")
        self.assertEqual(sorted(p), ["async-handler"])
        self.assertEqual(resources_for(p, "s3:GetObject"), ["arn:aws:s3:::hf-jobs-s3/failure/*",
                                                            "arn:aws:s3:::hf-jobs-s3/input/*",
                                                            "arn:aws:s3:::hf-jobs-s3/output/*"])
        self.assertEqual(resources_for(p, "s3:PutObject"), ["arn:aws:s3:::hf-jobs-s3/failure/*",
                                                            "arn:aws:s3:::hf-jobs-s3/output/*"])
        # moto does not apply NotificationConfiguration from CloudFormation: read the template
        note = load("async-lambda")["Resources"]["JobBucket"]["Properties"]["NotificationConfiguration"]["Fn::If"]
        self.assertEqual(note[0], "IsS3")
        [to_lambda] = note[1]["LambdaConfigurations"]
        self.assertEqual(to_lambda["Event"], "s3:ObjectCreated:*")
        self.assertEqual(to_lambda["Function"], {"Fn::GetAtt": ["Function", "Arn"]})
        self.assertEqual(to_lambda["Filter"]["S3Key"]["Rules"], [{"Name": "prefix", "Value": "input/"}])
        [to_queue] = note[2]["QueueConfigurations"]
        self.assertEqual(to_queue["Queue"], {"Fn::GetAtt": ["JobQueue", "Arn"]})
        self.assertEqual(to_queue["Filter"], to_lambda["Filter"])

    def test_sqs_with_a_dead_letter_queue(self):
        s = self.deploy(BucketName="hf-jobs-sqs", Trigger="SQS", MaxReceiveCount="5",
                        HfModelId="distilbert-base-uncased-finetuned-sst-2-english")
        sqs = boto3.client("sqs", region_name=REGION)
        attrs = sqs.get_queue_attributes(QueueUrl=s.outputs["JobQueueUrl"], AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=s.outputs["DeadLetterQueueUrl"],
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.loads(attrs["RedrivePolicy"])
        self.assertEqual(redrive["deadLetterTargetArn"], dlq_arn)
        self.assertEqual(int(redrive["maxReceiveCount"]), 5)
        self.assertEqual(attrs["VisibilityTimeout"], "5400")
        lam = boto3.client("lambda", region_name=REGION)
        [mapping] = lam.list_event_source_mappings(FunctionName=s.outputs["FunctionName"])["EventSourceMappings"]
        self.assertEqual(mapping["EventSourceArn"], attrs["QueueArn"])
        self.assertEqual(mapping["BatchSize"], 1)
        self.assertEqual(mapping["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        env = lam.get_function_configuration(FunctionName=s.outputs["FunctionName"])["Environment"]["Variables"]
        self.assertEqual(env["HF_MODEL_ID"], "distilbert-base-uncased-finetuned-sst-2-english")
        self.assertEqual(env["HF_HOME"], "/tmp/hf")
        self.assertNotIn("HF_MODEL_DIR", env)
        p = s.role_policies("FunctionRole")
        self.assertEqual(resources_for(p, "sqs:ReceiveMessage"), [attrs["QueueArn"]])
        self.assertNotIn("Policy", json.dumps(lam.get_function(FunctionName=s.outputs["FunctionName"])))


if __name__ == "__main__":
    unittest.main()
