//! Group and stream name templates: parsing, rendering, fallbacks, sanitising and `{date}`.

use opentelemetry_proto::tonic::common::v1::any_value::Value;

use super::super::{CloudWatchTranslation, MessageFormat, NameKind, Template, TemplateError};
use super::{DAY_MS, NOW_MS, any, attribute, logs_request, now, record_at, resource_logs, service, text_attribute};

/// 2026-02-28T23:59:59.999Z
const LAST_MS_OF_FEBRUARY: i64 = 1_772_323_199_999;

fn group(source: &str) -> Template {
    Template::parse(source, NameKind::LogGroup).expect("valid group template")
}

fn stream(source: &str) -> Template {
    Template::parse(source, NameKind::LogStream).expect("valid stream template")
}

fn group_error(source: &str) -> TemplateError {
    Template::parse(source, NameKind::LogGroup).expect_err("invalid group template")
}

fn stream_error(source: &str) -> TemplateError {
    Template::parse(source, NameKind::LogStream).expect_err("invalid stream template")
}

#[test]
fn a_present_resource_attribute_is_substituted() {
    assert_eq!(group("/waggle/{service.name}").render(&service("backend-flask"), NOW_MS), "/waggle/backend-flask");
}

#[test]
fn a_missing_resource_attribute_renders_as_unknown() {
    assert_eq!(group("/waggle/{service.name}").render(&[], NOW_MS), "/waggle/unknown");
}

#[test]
fn an_empty_resource_attribute_renders_as_unknown() {
    assert_eq!(stream("{host.name}/app").render(&[text_attribute("host.name", "")], NOW_MS), "unknown/app");
}

#[test]
fn a_non_string_resource_attribute_renders_as_text() {
    let resource = [attribute("deployment.shard", any(Value::IntValue(7)))];

    assert_eq!(stream("shard-{deployment.shard}").render(&resource, NOW_MS), "shard-7");
}

#[test]
fn group_value_characters_outside_the_allowed_set_become_underscores() {
    let resource = service("backend flask:v2*é");

    assert_eq!(group("/waggle/{service.name}").render(&resource, NOW_MS), "/waggle/backend_flask_v2__");
}

#[test]
fn stream_value_colons_asterisks_and_control_characters_become_underscores() {
    let resource = [text_attribute("host.name", "ip-10-0-0-1:2000*\n é")];

    assert_eq!(stream("{host.name}").render(&resource, NOW_MS), "ip-10-0-0-1_2000__ é");
}

#[test]
fn date_is_the_events_utc_date() {
    let template = stream("{host.name}/{date}");
    let resource = [text_attribute("host.name", "web-1")];

    assert_eq!(template.render(&resource, LAST_MS_OF_FEBRUARY), "web-1/2026-02-28");
    assert_eq!(template.render(&resource, LAST_MS_OF_FEBRUARY + 1), "web-1/2026-03-01");
}

#[test]
fn date_of_a_leap_day() {
    // 2024-02-29T12:00:00Z
    assert_eq!(stream("{date}").render(&[], 1_709_208_000_000), "2024-02-29");
}

#[test]
fn date_of_the_epoch() {
    assert_eq!(stream("{date}").render(&[], 0), "1970-01-01");
}

#[test]
fn events_either_side_of_midnight_go_to_their_own_days_stream() {
    let translation = CloudWatchTranslation {
        format: MessageFormat::Raw,
        group: group("/waggle/{service.name}"),
        stream: stream("{date}"),
    };
    let midnight = NOW_MS - NOW_MS.rem_euclid(DAY_MS);
    let request = logs_request(vec![resource_logs(
        service("app"),
        vec![record_at(midnight - 1, "yesterday"), record_at(midnight, "today")],
    )]);

    let prepared = translation.prepare(&[&request], now());

    let streams: Vec<&str> = prepared.batches.iter().map(|batch| batch.stream.as_str()).collect();
    assert_eq!(streams, ["2026-07-31", "2026-08-01"]);
}

#[test]
fn a_rendered_name_is_cut_to_512_characters() {
    let resource = service(&"é".repeat(600));

    let rendered = stream("s/{service.name}").render(&resource, NOW_MS);

    assert_eq!(rendered.chars().count(), 512);
    assert!(rendered.starts_with("s/éé"));
}

#[test]
fn a_rendered_group_starting_with_aws_slash_is_prefixed() {
    assert_eq!(group("{service.name}").render(&service("aws/lambda"), NOW_MS), "_aws/lambda");
}

#[test]
fn doubled_braces_are_literal_braces() {
    assert_eq!(stream("{{literal}}-{service.name}").render(&service("app"), NOW_MS), "{literal}-app");
}

#[test]
fn uses_date_is_true_only_with_a_date_placeholder() {
    assert!(stream("{host.name}/{date}").uses_date());
    assert!(!stream("{host.name}/date").uses_date());
}

#[test]
fn an_empty_template_is_refused() {
    assert_eq!(group_error(""), TemplateError::Empty { kind: NameKind::LogGroup });
}

#[test]
fn an_unclosed_placeholder_is_refused_by_name() {
    let error = group_error("/waggle/{service.name");

    assert_eq!(error.to_string(), "placeholder `{service.name` in the log group name template has no closing `}`");
}

#[test]
fn a_stray_closing_brace_is_refused_with_its_position() {
    assert_eq!(stream_error("app}"), TemplateError::UnmatchedClose { kind: NameKind::LogStream, position: 3 });
}

#[test]
fn an_empty_placeholder_is_refused() {
    assert_eq!(
        stream_error("app/{}"),
        TemplateError::BadPlaceholder { kind: NameKind::LogStream, placeholder: "{}".to_owned() }
    );
}

#[test]
fn a_placeholder_with_a_space_is_refused_by_name() {
    let error = group_error("/waggle/{service name}");

    assert!(error.to_string().contains("`{service name}`"), "{error}");
}

#[test]
fn a_character_not_allowed_in_a_group_name_is_refused() {
    assert_eq!(
        group_error("/waggle/my app"),
        TemplateError::InvalidCharacter { kind: NameKind::LogGroup, character: ' ' }
    );
}

#[test]
fn a_colon_in_a_stream_template_is_refused() {
    assert_eq!(
        stream_error("{host.name}:2000"),
        TemplateError::InvalidCharacter { kind: NameKind::LogStream, character: ':' }
    );
}

#[test]
fn a_group_template_starting_with_aws_slash_is_refused() {
    assert_eq!(group_error("aws/{service.name}"), TemplateError::ReservedPrefix);
}

#[test]
fn a_template_whose_fixed_text_exceeds_512_characters_is_refused() {
    assert_eq!(group_error(&"g".repeat(513)), TemplateError::TooLong { kind: NameKind::LogGroup, chars: 513 });
}

#[test]
fn a_template_of_exactly_512_fixed_characters_is_accepted() {
    assert_eq!(group(&"g".repeat(512)).render(&[], NOW_MS).len(), 512);
}
