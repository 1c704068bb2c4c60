//! The `sql` block from old and new database keys.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::super::sql::is_sql;
use super::*;

fn sql_of(attributes: Vec<KeyValue>) -> serde_json::Value {
    document(child(SpanKind::Client, attributes)).get("sql").cloned().unwrap_or_default()
}

#[test]
fn sql_systems() {
    for system in
        ["postgresql", "mysql", "mariadb", "mssql", "oracle", "db2", "derby", "hive", "sqlite", "teradata", "other_sql"]
    {
        assert!(is_sql(system), "{system}");
    }
    for system in ["microsoft.sql_server", "oracle.db", "ibm.db2", "PostgreSQL"] {
        assert!(is_sql(system), "{system}");
    }
    for system in ["redis", "mongodb", "dynamodb", "cassandra", "elasticsearch", ""] {
        assert!(!is_sql(system), "{system}");
    }
}

#[test]
fn old_keys_with_a_url_connection_string() {
    let sql = sql_of(vec![
        kv("db.system", string("postgresql")),
        kv("db.connection_string", string("postgresql://db.example.com:5432")),
        kv("db.name", string("shop")),
        kv("db.user", string("app")),
        kv("db.statement", string("SELECT * FROM carts WHERE id = $1")),
    ]);
    assert_eq!(
        sql,
        json!({"url": "postgresql://db.example.com:5432/shop", "database_type": "postgresql", "user": "app",
               "sanitized_query": "SELECT * FROM carts WHERE id = $1"})
    );
}

#[test]
fn new_keys_build_the_url_from_the_server() {
    let sql = sql_of(vec![
        kv("db.system.name", string("mysql")),
        kv("db.namespace", string("shop")),
        kv("server.address", string("db.internal")),
        kv("server.port", Value::IntValue(3306)),
        kv("db.query.text", string("SELECT 1")),
    ]);
    assert_eq!(
        sql,
        json!({"url": "mysql://db.internal:3306/shop", "database_type": "mysql", "sanitized_query": "SELECT 1"})
    );
}

#[test]
fn other_connection_strings_are_kept_as_connection_string() {
    let sql = sql_of(vec![
        kv("db.system", string("mssql")),
        kv("db.connection_string", string("Server=sql01;Database=shop")),
        kv("db.name", string("shop")),
    ]);
    assert_eq!(sql, json!({"connection_string": "Server=sql01;Database=shop", "database_type": "mssql"}));
}

#[test]
fn without_any_location_the_database_is_on_localhost() {
    let sql = sql_of(vec![kv("db.system", string("sqlite")), kv("db.name", string("cache.db"))]);
    assert_eq!(sql, json!({"connection_string": "localhost/cache.db", "database_type": "sqlite"}));
}

#[test]
fn url_already_ending_in_the_database_is_not_doubled() {
    let sql = sql_of(vec![
        kv("db.system", string("postgresql")),
        kv("db.connection_string", string("postgresql://db:5432/shop")),
        kv("db.name", string("shop")),
    ]);
    assert_eq!(sql["url"], "postgresql://db:5432/shop");
}

#[test]
fn non_sql_database_has_no_sql_block_and_keeps_its_keys() {
    let doc =
        document(child(SpanKind::Client, vec![kv("db.system", string("redis")), kv("db.statement", string("GET k"))]));
    assert!(doc.get("sql").is_none());
    assert_eq!(doc["metadata"]["default"], json!({"db.system": "redis", "db.statement": "GET k"}));
}

#[test]
fn sql_keys_are_not_repeated_in_metadata() {
    let doc =
        document(child(SpanKind::Client, vec![kv("db.system", string("postgresql")), kv("db.name", string("shop"))]));
    assert!(doc.get("metadata").is_none(), "{doc}");
}
