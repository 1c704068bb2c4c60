//! The `aws` object, `origin` and `service` from span and resource attributes.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::*;

#[test]
fn aws_sdk_call_fields() {
    let attributes = vec![
        kv("rpc.system", string("aws-api")),
        kv("rpc.service", string("DynamoDB")),
        kv("rpc.method", string("GetItem")),
        kv("aws.region", string("eu-west-1")),
        kv("aws.request_id", string("V2EXAMPLE0REQUEST0ID")),
        kv("aws.dynamodb.table_names", strings(&["carts"])),
        kv("aws.account_id", string("123456789012")),
    ];
    let doc = document(child(SpanKind::Client, attributes));
    assert_eq!(doc["name"], "DynamoDB");
    assert_eq!(doc["namespace"], "aws");
    assert_eq!(
        doc["aws"],
        json!({"account_id": "123456789012", "operation": "GetItem", "region": "eu-west-1",
               "request_id": "V2EXAMPLE0REQUEST0ID", "table_name": "carts"})
    );
    assert_eq!(doc["metadata"]["default"], json!({"rpc.system": "aws-api"}), "consumed keys are not repeated");
}

#[test]
fn aws_operation_wins_over_rpc_method() {
    let attributes = vec![kv("aws.operation", string("PutObject")), kv("rpc.method", string("Put"))];
    let doc = document(child(SpanKind::Client, attributes));
    assert_eq!(doc["aws"]["operation"], "PutObject");
    assert_eq!(doc["metadata"]["default"]["rpc.method"], "Put", "rpc.method unused, so kept");
}

#[test]
fn several_tables_are_listed() {
    let doc = document(child(SpanKind::Client, vec![kv("aws.dynamodb.table_names", strings(&["carts", "orders"]))]));
    assert_eq!(doc["aws"], json!({"table_names": ["carts", "orders"]}));
}

#[test]
fn alternative_key_spellings() {
    let attributes = vec![
        kv("aws.requestId", string("req-1")),
        kv("aws.queue.url", string("https://sqs.eu-west-1.amazonaws.com/1/q")),
        kv("aws.table.name", string("carts")),
    ];
    let doc = document(child(SpanKind::Client, attributes));
    assert_eq!(
        doc["aws"],
        json!({"request_id": "req-1", "queue_url": "https://sqs.eu-west-1.amazonaws.com/1/q", "table_name": "carts"})
    );
}

#[test]
fn x_ray_sdk_and_environment_from_the_resource() {
    let resource = vec![
        kv("telemetry.sdk.name", string("opentelemetry")),
        kv("telemetry.sdk.language", string("python")),
        kv("telemetry.sdk.version", string("1.27.0")),
        kv("telemetry.auto.version", string("0.48b0")),
        kv("cloud.provider", string("aws")),
        kv("cloud.platform", string("aws_ecs")),
        kv("cloud.account.id", string("123456789012")),
        kv("cloud.availability_zone", string("eu-west-1a")),
        kv("aws.ecs.launchtype", string("fargate")),
        kv("aws.ecs.task.arn", string("arn:aws:ecs:eu-west-1:123456789012:task/shop/abc")),
        kv("container.name", string("checkout")),
        kv("container.id", string("4f3a2b1c0d9e")),
        kv("aws.log.group.arns", strings(&["arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/shop:*"])),
    ];
    let doc = document_in(resource, span(SpanKind::Server, vec![]));
    assert_eq!(doc["origin"], "AWS::ECS::Fargate");
    assert_eq!(
        doc["aws"],
        json!({
            "account_id": "123456789012",
            "xray": {"sdk": "opentelemetry for python", "sdk_version": "1.27.0", "auto_instrumentation": true},
            "ecs": {"container": "checkout", "container_id": "4f3a2b1c0d9e",
                    "task_arn": "arn:aws:ecs:eu-west-1:123456789012:task/shop/abc",
                    "availability_zone": "eu-west-1a", "launch_type": "fargate"},
            "cloudwatch_logs": [{"log_group": "/ecs/shop", "arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/ecs/shop:*"}],
        })
    );
}

#[test]
fn x_ray_sdk_name_already_naming_its_language_is_kept() {
    let resource =
        vec![kv("telemetry.sdk.name", string("X-Ray for Python")), kv("telemetry.sdk.language", string("python"))];
    let doc = document_in(resource, span(SpanKind::Server, vec![]));
    assert_eq!(doc["aws"]["xray"]["sdk"], "X-Ray for Python");
}

#[test]
fn origin_from_cloud_platform() {
    let cases: Vec<(Vec<KeyValue>, Option<&str>)> = vec![
        (vec![kv("cloud.platform", string("aws_ec2"))], Some("AWS::EC2::Instance")),
        (vec![kv("cloud.platform", string("aws_ecs"))], Some("AWS::ECS::Container")),
        (vec![kv("cloud.platform", string("aws_ecs")), kv("aws.ecs.launchtype", string("ec2"))], Some("AWS::ECS::EC2")),
        (
            vec![kv("cloud.platform", string("aws_ecs")), kv("aws.ecs.launchtype", string("fargate"))],
            Some("AWS::ECS::Fargate"),
        ),
        (vec![kv("cloud.platform", string("aws_eks"))], Some("AWS::EKS::Container")),
        (vec![kv("cloud.platform", string("aws_elastic_beanstalk"))], Some("AWS::ElasticBeanstalk::Environment")),
        (vec![kv("cloud.platform", string("aws_app_runner"))], Some("AWS::AppRunner::Service")),
        (vec![kv("cloud.platform", string("gcp_compute_engine"))], None),
        (vec![kv("cloud.provider", string("gcp")), kv("cloud.platform", string("aws_ec2"))], None),
        (vec![], None),
    ];
    for (resource, origin) in cases {
        let doc = document_in(resource.clone(), span(SpanKind::Server, vec![]));
        assert_eq!(doc.get("origin").and_then(|o| o.as_str()), origin, "{resource:?}");
    }
}

#[test]
fn other_cloud_gets_no_aws_object() {
    let resource = vec![kv("cloud.provider", string("gcp")), kv("cloud.account.id", string("my-project"))];
    let doc = document_in(resource, span(SpanKind::Server, vec![kv("aws.region", string("eu-west-1"))]));
    assert!(doc.get("aws").is_none(), "{doc}");
    assert_eq!(doc["metadata"]["default"]["aws.region"], "eu-west-1", "kept in metadata instead");
}

#[test]
fn ec2_eks_and_beanstalk_environments() {
    let ec2 = vec![
        kv("cloud.platform", string("aws_ec2")),
        kv("host.id", string("i-0abc")),
        kv("host.type", string("m5.large")),
        kv("host.image.id", string("ami-123")),
        kv("cloud.availability_zone", string("eu-west-1b")),
    ];
    let eks = vec![
        kv("cloud.platform", string("aws_eks")),
        kv("k8s.cluster.name", string("prod")),
        kv("k8s.pod.name", string("cart-7d9")),
        kv("container.id", string("c0ffee")),
    ];
    let beanstalk = vec![
        kv("cloud.platform", string("aws_elastic_beanstalk")),
        kv("service.namespace", string("shop-prod")),
        kv("service.instance.id", string("42")),
        kv("service.version", string("v7")),
    ];
    let cases = [
        (
            ec2,
            "ec2",
            json!({"instance_id": "i-0abc", "availability_zone": "eu-west-1b", "instance_size": "m5.large", "ami_id": "ami-123"}),
        ),
        (eks, "eks", json!({"cluster_name": "prod", "pod": "cart-7d9", "container_id": "c0ffee"})),
        (
            beanstalk,
            "elastic_beanstalk",
            json!({"environment_name": "shop-prod", "version_label": "v7", "deployment_id": 42}),
        ),
    ];
    for (resource, field, expected) in cases {
        let doc = document_in(resource, span(SpanKind::Server, vec![]));
        assert_eq!(doc["aws"][field], expected, "{field}");
    }
}

#[test]
fn service_version_and_runtime_on_segments() {
    let resource = vec![
        kv("service.version", string("2026.11.1")),
        kv("process.runtime.name", string("CPython")),
        kv("process.runtime.version", string("3.11.7")),
    ];
    let segment = document_in(resource.clone(), span(SpanKind::Server, vec![]));
    assert_eq!(segment["service"], json!({"version": "2026.11.1", "runtime": "CPython", "runtime_version": "3.11.7"}));
    let subsegment = document_in(resource, child(SpanKind::Client, vec![]));
    assert!(subsegment.get("service").is_none());
}

#[test]
fn resource_parts_of_aws_stay_off_subsegments() {
    let resource = vec![kv("cloud.platform", string("aws_ec2")), kv("cloud.account.id", string("123456789012"))];
    let doc = document_in(resource, child(SpanKind::Client, vec![kv("aws.operation", string("GetObject"))]));
    assert_eq!(doc["aws"], json!({"operation": "GetObject"}));
}
