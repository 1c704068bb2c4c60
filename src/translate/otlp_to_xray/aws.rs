//! The `aws` object, `origin` and `service`, and what a resource contributes to its
//! segments (worked out once per resource, not per span).

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde::Serialize;

use super::attributes::{Key, SpanAttributes, find, find_str, string_list};

/// `service`: the application's version and runtime, from the resource.
#[derive(Serialize, Default)]
pub(super) struct Service<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<&'a str>,
}

/// Prefix of resource attributes in `metadata.default`.
pub(super) const RESOURCE_METADATA_PREFIX: &str = "otel.resource.";

/// A resource, read once for all of its spans.
pub(super) struct ResourceContext<'a> {
    pub attributes: &'a [KeyValue],
    /// `otel.resource.<key>` for each attribute, same order.
    pub metadata_keys: Vec<String>,
    pub service_name: Option<&'a str>,
    /// `telemetry.sdk.language`, which picks the stack trace parser.
    pub language: Option<&'a str>,
    /// False when `cloud.provider` names another cloud: no `aws` object, no `origin`.
    pub on_aws: bool,
    pub origin: Option<&'static str>,
    pub service: Option<Service<'a>>,
    account_id: Option<&'a str>,
    sdk: Option<Cow<'a, str>>,
    sdk_version: Option<&'a str>,
    auto_instrumentation: bool,
    ec2: Option<Ec2<'a>>,
    ecs: Option<Ecs<'a>>,
    eks: Option<Eks<'a>>,
    elastic_beanstalk: Option<ElasticBeanstalk<'a>>,
    cloudwatch_logs: Vec<LogGroup<'a>>,
}

impl<'a> ResourceContext<'a> {
    pub(super) fn new(resource: Option<&'a Resource>) -> Self {
        let attributes = resource.map(|resource| resource.attributes.as_slice()).unwrap_or_default();
        let get = |key: &str| find_str(attributes, key);
        let provider = get("cloud.provider");
        let on_aws = provider.is_none_or(|provider| provider == "aws");
        let platform = get("cloud.platform");
        let service = Service {
            version: get("service.version"),
            runtime: get("process.runtime.name"),
            runtime_version: get("process.runtime.version"),
        };
        ResourceContext {
            attributes,
            metadata_keys: attributes.iter().map(|kv| format!("{RESOURCE_METADATA_PREFIX}{}", kv.key)).collect(),
            service_name: get("service.name"),
            language: get("telemetry.sdk.language"),
            on_aws,
            origin: on_aws.then(|| origin(platform, get("aws.ecs.launchtype"))).flatten(),
            service: (!service.is_empty()).then_some(service),
            account_id: get("cloud.account.id"),
            sdk: sdk_name(get("telemetry.sdk.name"), get("telemetry.sdk.language")),
            sdk_version: get("telemetry.sdk.version"),
            auto_instrumentation: get("telemetry.auto.version").is_some(),
            ec2: ec2(attributes, platform, provider),
            ecs: (platform == Some("aws_ecs")).then(|| Ecs {
                container: get("container.name"),
                container_id: get("container.id"),
                task_arn: get("aws.ecs.task.arn"),
                task_family: get("aws.ecs.task.family"),
                cluster_arn: get("aws.ecs.cluster.arn"),
                container_arn: get("aws.ecs.container.arn"),
                availability_zone: get("cloud.availability_zone"),
                launch_type: get("aws.ecs.launchtype"),
            }),
            eks: (platform == Some("aws_eks") || get("k8s.cluster.name").is_some()).then(|| Eks {
                cluster_name: get("k8s.cluster.name"),
                pod: get("k8s.pod.name"),
                container_id: get("container.id"),
            }),
            elastic_beanstalk: elastic_beanstalk(attributes, platform),
            cloudwatch_logs: log_groups(attributes),
        }
    }
}

/// `cloud.platform` → X-Ray `origin`.
fn origin(platform: Option<&str>, launch_type: Option<&str>) -> Option<&'static str> {
    Some(match platform? {
        "aws_ec2" => "AWS::EC2::Instance",
        "aws_ecs" => match launch_type {
            Some("ec2") => "AWS::ECS::EC2",
            Some("fargate") => "AWS::ECS::Fargate",
            _ => "AWS::ECS::Container",
        },
        "aws_eks" => "AWS::EKS::Container",
        "aws_elastic_beanstalk" => "AWS::ElasticBeanstalk::Environment",
        "aws_app_runner" => "AWS::AppRunner::Service",
        _ => return None,
    })
}

/// `<telemetry.sdk.name> for <language>`; kept as is when the name already says what it is
/// for, as X-Ray SDK names do ("X-Ray for Python", "X-Ray for Node.js").
fn sdk_name<'a>(name: Option<&'a str>, language: Option<&str>) -> Option<Cow<'a, str>> {
    let name = name?;
    match language {
        Some(language) if !name.contains(" for ") => Some(Cow::Owned(format!("{name} for {language}"))),
        _ => Some(Cow::Borrowed(name)),
    }
}

/// On EC2 by platform, or a host id on AWS.
fn ec2<'a>(attributes: &'a [KeyValue], platform: Option<&str>, provider: Option<&str>) -> Option<Ec2<'a>> {
    let instance_id = find_str(attributes, "host.id");
    let on_ec2 = platform == Some("aws_ec2") || (provider == Some("aws") && instance_id.is_some());
    on_ec2.then(|| Ec2 {
        instance_id,
        availability_zone: find_str(attributes, "cloud.availability_zone"),
        instance_size: find_str(attributes, "host.type"),
        ami_id: find_str(attributes, "host.image.id"),
    })
}

/// Elastic Beanstalk needs its deployment (`service.instance.id`).
fn elastic_beanstalk<'a>(attributes: &'a [KeyValue], platform: Option<&str>) -> Option<ElasticBeanstalk<'a>> {
    if platform != Some("aws_elastic_beanstalk") {
        return None;
    }
    let deployment = find_str(attributes, "service.instance.id")?;
    Some(ElasticBeanstalk {
        environment_name: find_str(attributes, "service.namespace"),
        version_label: find_str(attributes, "service.version"),
        deployment_id: deployment.trim().parse().ok(),
    })
}

/// `aws.log.group.arns` (the name is the ARN's 7th field), else `aws.log.group.names`.
fn log_groups(attributes: &[KeyValue]) -> Vec<LogGroup<'_>> {
    let arns = find(attributes, "aws.log.group.arns").map(string_list).unwrap_or_default();
    if !arns.is_empty() {
        return arns
            .into_iter()
            .map(|arn| LogGroup { log_group: arn.split(':').nth(6).or(Some(arn)), arn: Some(arn) })
            .collect();
    }
    let names = find(attributes, "aws.log.group.names").map(string_list).unwrap_or_default();
    names.into_iter().map(|name| LogGroup { log_group: Some(name), arn: None }).collect()
}

/// The `aws` object of a document, and whether `rpc.method` became its operation.
pub(super) fn aws<'a>(
    attributes: &SpanAttributes<'a>,
    resource: &'a ResourceContext<'a>,
    is_segment: bool,
) -> (Option<Aws<'a>>, bool) {
    if !resource.on_aws {
        return (None, false);
    }
    let operation = attributes.str(Key::AwsOperation);
    let rpc_method = if operation.is_none() { attributes.str(Key::RpcMethod) } else { None };
    let (table_name, table_names) = tables(attributes);
    let segment_part = |part| if is_segment { part } else { None };
    let aws = Aws {
        account_id: attributes.str(Key::AwsAccountId).or(segment_part(resource.account_id)),
        operation: operation.or(rpc_method),
        region: attributes.str(Key::AwsRegion),
        request_id: attributes.first_str(&[Key::AwsRequestId, Key::AwsRequestIdCamel]).map(|(_, id)| id),
        queue_url: attributes
            .first_str(&[Key::MessagingUrl, Key::AwsQueueUrl, Key::AwsQueueUrlDotted])
            .map(|(_, url)| url),
        table_name,
        table_names,
        retries: attributes.int(Key::XrayRetries),
        xray: xray_info(attributes, resource, is_segment),
        ec2: resource.ec2.as_ref().filter(|_| is_segment),
        ecs: resource.ecs.as_ref().filter(|_| is_segment),
        eks: resource.eks.as_ref().filter(|_| is_segment),
        elastic_beanstalk: resource.elastic_beanstalk.as_ref().filter(|_| is_segment),
        cloudwatch_logs: if is_segment { &resource.cloudwatch_logs } else { &[] },
    };
    let empty = aws.is_empty();
    (if empty { None } else { Some(aws) }, rpc_method.is_some() && !empty)
}

/// One table → `table_name`; several (`aws.dynamodb.table_names`) → `table_names`.
fn tables<'a>(attributes: &SpanAttributes<'a>) -> (Option<&'a str>, Vec<&'a str>) {
    let mut names = attributes.strings(Key::AwsDynamodbTableNames);
    match names.len() {
        0 => (attributes.first_str(&[Key::AwsTableName, Key::AwsTableNameDotted]).map(|(_, name)| name), Vec::new()),
        1 => (names.pop(), Vec::new()),
        _ => (None, names),
    }
}

fn xray_info<'a>(
    attributes: &SpanAttributes<'a>,
    resource: &'a ResourceContext<'a>,
    is_segment: bool,
) -> Option<XrayInfo<'a>> {
    let info = XrayInfo {
        sdk: resource.sdk.as_deref().filter(|_| is_segment),
        sdk_version: resource.sdk_version.filter(|_| is_segment),
        auto_instrumentation: (is_segment && resource.auto_instrumentation).then_some(true),
        sampling_rule_name: attributes.str(Key::XraySamplingRuleName),
    };
    let empty = info.sdk.is_none()
        && info.sdk_version.is_none()
        && info.auto_instrumentation.is_none()
        && info.sampling_rule_name.is_none();
    (!empty).then_some(info)
}

#[derive(Serialize)]
pub(super) struct Aws<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<&'a str>,
    /// The region called (the Collector's "remote region").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub table_names: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xray: Option<XrayInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ec2: Option<&'a Ec2<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecs: Option<&'a Ecs<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eks: Option<&'a Eks<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elastic_beanstalk: Option<&'a ElasticBeanstalk<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub cloudwatch_logs: &'a [LogGroup<'a>],
}

impl Aws<'_> {
    fn is_empty(&self) -> bool {
        self.account_id.is_none()
            && self.operation.is_none()
            && self.region.is_none()
            && self.request_id.is_none()
            && self.queue_url.is_none()
            && self.table_name.is_none()
            && self.table_names.is_empty()
            && self.retries.is_none()
            && self.xray.is_none()
            && self.ec2.is_none()
            && self.ecs.is_none()
            && self.eks.is_none()
            && self.elastic_beanstalk.is_none()
            && self.cloudwatch_logs.is_empty()
    }
}

#[derive(Serialize)]
pub(super) struct XrayInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_instrumentation: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_rule_name: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct Ec2<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_size: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ami_id: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct Ecs<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_family: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct Eks<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct ElasticBeanstalk<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_label: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<i64>,
}

#[derive(Serialize)]
pub(super) struct LogGroup<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<&'a str>,
}
