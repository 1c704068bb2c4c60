//! The resource of a segment document: the service, its SDK and where it runs.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::attributes::Attributes;
use super::document::{Aws, Segment, lenient_int};

/// `service.name` when a streamed subsegment's segment is not in the same batch: the OTel
/// default for an unknown service.
pub(super) const UNKNOWN_SERVICE: &str = "unknown_service";

/// Resource attributes of a document. `service_name` is the segment's name (for a streamed
/// subsegment, the name of the segment it belongs to, when known).
pub(super) fn resource_attributes(document: &Segment, service_name: &str) -> Vec<KeyValue> {
    let mut attributes = Attributes::default();
    attributes.string("service.name", service_name);
    if let Some(service) = &document.service {
        attributes.opt_string("service.version", service.version.as_ref());
        attributes.opt_string("process.runtime.name", service.runtime.as_ref());
        attributes.opt_string("process.runtime.version", service.runtime_version.as_ref());
    }
    add_origin(document.origin.as_deref(), &mut attributes);
    if let Some(aws) = &document.aws {
        add_sdk(aws, &mut attributes);
        add_environment(aws, &mut attributes);
    }
    attributes.opt_string("aws.xray.resource_arn", document.resource_arn.as_ref());
    attributes.into_vec()
}

/// `origin` (`AWS::EC2::Instance`, …) → `cloud.provider` and `cloud.platform`.
fn add_origin(origin: Option<&str>, attributes: &mut Attributes) {
    let Some(origin) = origin else { return };
    let platform = match origin {
        "AWS::EC2::Instance" => Some("aws_ec2"),
        "AWS::ECS::Container" | "AWS::ECS::EC2" | "AWS::ECS::Fargate" => Some("aws_ecs"),
        "AWS::EKS::Container" => Some("aws_eks"),
        "AWS::ElasticBeanstalk::Environment" => Some("aws_elastic_beanstalk"),
        "AWS::Lambda::Function" => Some("aws_lambda"),
        "AWS::AppRunner::Service" => Some("aws_app_runner"),
        _ => None,
    };
    if platform.is_some() || origin.starts_with("AWS::") {
        attributes.string("cloud.provider", "aws");
    }
    if let Some(platform) = platform {
        attributes.string("cloud.platform", platform);
    }
    if origin == "AWS::ECS::EC2" || origin == "AWS::ECS::Fargate" {
        let launch_type = if origin == "AWS::ECS::EC2" { "ec2" } else { "fargate" };
        attributes.string("aws.ecs.launchtype", launch_type);
    }
}

/// `aws.xray.sdk` ("X-Ray for Python") and `sdk_version` → `telemetry.sdk.*`, and the raw
/// values as `aws.xray.sdk` / `aws.xray.sdk_version`.
fn add_sdk(aws: &Aws, attributes: &mut Attributes) {
    let Some(xray) = &aws.xray else { return };
    if let Some(sdk) = &xray.sdk {
        attributes.string("telemetry.sdk.name", sdk);
        if let Some((_, language)) = sdk.split_once("for ") {
            attributes.string("telemetry.sdk.language", &sdk_language(language));
        }
    }
    attributes.opt_string("telemetry.sdk.version", xray.sdk_version.as_ref());
    attributes.opt_string("aws.xray.sdk", xray.sdk.as_ref());
    attributes.opt_string("aws.xray.sdk_version", xray.sdk_version.as_ref());
}

/// "Python" → "python", "Node.js" → "nodejs", ".NET" → "dotnet" (OTel's well-known values).
fn sdk_language(language: &str) -> String {
    match language.trim() {
        "Node.js" | "NodeJS" | "Node" => "nodejs".to_owned(),
        ".NET" | ".NET Core" => "dotnet".to_owned(),
        other => other.to_ascii_lowercase(),
    }
}

/// Where the service runs: account, EC2, ECS, EKS, Elastic Beanstalk, CloudWatch log groups.
fn add_environment(aws: &Aws, attributes: &mut Attributes) {
    attributes.opt_string("cloud.account.id", aws.account_id.as_ref());
    if let Some(ec2) = &aws.ec2 {
        attributes.opt_string("cloud.availability_zone", ec2.availability_zone.as_ref());
        attributes.opt_string("host.id", ec2.instance_id.as_ref());
        attributes.opt_string("host.type", ec2.instance_size.as_ref());
        attributes.opt_string("host.image.id", ec2.ami_id.as_ref());
    }
    if let Some(ecs) = &aws.ecs {
        attributes.opt_string("container.name", ecs.container.as_ref());
        attributes.opt_string("container.id", ecs.container_id.as_ref());
        attributes.opt_string("cloud.availability_zone", ecs.availability_zone.as_ref());
        attributes.opt_string("aws.ecs.task.arn", ecs.task_arn.as_ref());
        attributes.opt_string("aws.ecs.task.family", ecs.task_family.as_ref());
        attributes.opt_string("aws.ecs.cluster.arn", ecs.cluster_arn.as_ref());
        attributes.opt_string("aws.ecs.container.arn", ecs.container_arn.as_ref());
        attributes.opt_string("aws.ecs.launchtype", ecs.launch_type.as_ref().map(|t| t.to_ascii_lowercase()).as_ref());
    }
    if let Some(eks) = &aws.eks {
        attributes.opt_string("k8s.cluster.name", eks.cluster_name.as_ref());
        attributes.opt_string("k8s.pod.name", eks.pod.as_ref());
        attributes.opt_string("container.id", eks.container_id.as_ref());
    }
    if let Some(beanstalk) = &aws.elastic_beanstalk {
        attributes.opt_string("service.namespace", beanstalk.environment_name.as_ref());
        if !attributes.contains("service.version") {
            attributes.opt_string("service.version", beanstalk.version_label.as_ref());
        }
        let deployment = beanstalk.deployment_id.as_ref().and_then(lenient_int).map(|id| id.to_string());
        attributes.opt_string("service.instance.id", deployment.as_ref());
    }
    if let Some(log_groups) = &aws.cloudwatch_logs {
        let names: Vec<String> = log_groups.iter().filter_map(|group| group.log_group.clone()).collect();
        let arns: Vec<String> = log_groups.iter().filter_map(|group| group.arn.clone()).collect();
        if !names.is_empty() {
            attributes.strings("aws.log.group.names", names);
        }
        if !arns.is_empty() {
            attributes.strings("aws.log.group.arns", arns);
        }
    }
    let on_aws = aws.account_id.is_some()
        || aws.ec2.is_some()
        || aws.ecs.is_some()
        || aws.eks.is_some()
        || aws.elastic_beanstalk.is_some();
    if on_aws && !attributes.contains("cloud.provider") {
        attributes.string("cloud.provider", "aws");
    }
}
