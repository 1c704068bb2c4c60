//! The `sql` block, for SQL databases only, from the old (`db.system`, `db.name`,
//! `db.statement`) and the new (`db.system.name`, `db.namespace`, `db.query.text`) keys.

use std::borrow::Cow;

use serde::Serialize;

use super::attributes::{Key, SpanAttributes};

#[derive(Serialize)]
pub(super) struct Sql<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<Cow<'a, str>>,
    pub database_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sanitized_query: Option<&'a str>,
}

/// `db.system` values of SQL databases: the Collector's list, and the names the newer
/// `db.system.name` gives some of them.
const SQL_SYSTEMS: [&str; 14] = [
    "db2",
    "derby",
    "hive",
    "mariadb",
    "mssql",
    "mysql",
    "oracle",
    "postgresql",
    "sqlite",
    "teradata",
    "other_sql",
    "ibm.db2",
    "microsoft.sql_server",
    "oracle.db",
];

pub(super) fn is_sql(system: &str) -> bool {
    SQL_SYSTEMS.iter().any(|sql| sql.eq_ignore_ascii_case(system))
}

/// The `sql` block, or `None` when the span is not a call to a SQL database.
pub(super) fn sql<'a>(attributes: &SpanAttributes<'a>) -> Option<Sql<'a>> {
    let (_, system) = attributes.first_str(&[Key::DbSystem, Key::DbSystemName])?;
    if !is_sql(system) {
        return None;
    }
    let (url, connection_string) = location(system, attributes);
    Some(Sql {
        url,
        connection_string,
        database_type: system,
        user: attributes.str(Key::DbUser),
        sanitized_query: attributes.first_str(&[Key::DbStatement, Key::DbQueryText]).map(|(_, query)| query),
    })
}

type Location<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// Where the database is, as X-Ray wants it: a URL-style connection string (plus the
/// database) is the `url`, another connection string is kept as `connection_string`;
/// without one the URL is built from `server.address`/`server.port`, else
/// `localhost/<database>`.
fn location<'a>(system: &str, attributes: &SpanAttributes<'a>) -> Location<'a> {
    let database = attributes.first_str(&[Key::DbName, Key::DbNamespace]).map(|(_, database)| database);
    if let Some(connection) = attributes.str(Key::DbConnectionString) {
        if !connection.contains("://") {
            return (None, Some(Cow::Borrowed(connection)));
        }
        let url = match database {
            Some(database) if !connection.trim_end_matches('/').ends_with(&format!("/{database}")) => {
                Cow::Owned(format!("{}/{database}", connection.trim_end_matches('/')))
            }
            _ => Cow::Borrowed(connection),
        };
        return (Some(url), None);
    }
    if let Some(host) = attributes.str(Key::ServerAddress) {
        let port = attributes.int(Key::ServerPort).map(|port| format!(":{port}")).unwrap_or_default();
        let scheme = system.to_ascii_lowercase();
        return (Some(Cow::Owned(format!("{scheme}://{host}{port}/{}", database.unwrap_or_default()))), None);
    }
    (None, database.map(|database| Cow::Owned(format!("localhost/{database}"))))
}
