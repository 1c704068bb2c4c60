//! Stores written by earlier releases, brought into the current one at start-up: found in the
//! data directory, read as OTLP requests for the current engine to ingest, then renamed out of
//! the way (never deleted). A file that cannot be read is renamed aside with one warning, so
//! it never stops waggle from starting.
//!
//! Start-up calls [`migrate_v1_store`] (or the parts it is made of: [`find_v1_store`],
//! [`read_v1`], [`retire_v1_store`], [`set_aside_v1_store`]).

mod chunk;
mod v1;
mod v1_json;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) use v1::{DEFAULT_CHUNK_ITEMS, V1_SCHEMA_VERSION, V1Chunk, V1Summary, read_v1};

/// The SQLite engine's file in the data directory.
pub(crate) const V1_FILE_NAME: &str = "waggle.db";

/// What `waggle.db` becomes once its contents are in the current store.
const MIGRATED_SUFFIX: &str = ".migrated-v1";
/// What an unreadable `waggle.db` becomes.
const CORRUPT_SUFFIX: &str = ".corrupt";
const UNKNOWN_VERSION_SUFFIX: &str = ".unknown-version";

/// The files SQLite and the old engine keep beside the database, renamed along with it.
const SIBLING_SUFFIXES: [&str; 3] = ["-wal", "-shm", ".lock"];

/// Renames never replace a file: past this many numbered candidates, they give up.
const MAX_RENAME_CANDIDATES: u32 = 100;

/// Why an old store could not be migrated.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MigrateError {
    /// Not an SQLite database, or one without the v1 tables.
    #[error("{path} is not a store written by an earlier waggle ({detail})")]
    NotV1Store { path: PathBuf, detail: String },
    /// An SQLite store whose schema version this release cannot read.
    #[error("the store {path} has schema version {found}; this waggle migrates version {known}", known = V1_SCHEMA_VERSION)]
    UnknownVersion { path: PathBuf, found: i64 },
    #[error("the store {path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: rusqlite::Error },
    /// Another process (a waggle of the previous release) holds the store's lock.
    #[error("the store {path} is in use by another process")]
    InUse { path: PathBuf },
    /// SQLite failed for another reason (permissions, I/O): the file may be fine.
    #[error("cannot read the store {path}: {source}")]
    Sqlite { path: PathBuf, source: rusqlite::Error },
    #[error("cannot read or rename {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// The caller's handling of a chunk failed; reading stopped there.
    #[error("importing the old store's contents failed: {0}")]
    Import(Box<dyn std::error::Error + Send + Sync>),
}

impl MigrateError {
    /// Whether the file can never be read by this release (it is then set aside), rather than
    /// not now (it is left where it is, to try again at the next start).
    pub(crate) fn is_unreadable(&self) -> bool {
        matches!(self, Self::NotV1Store { .. } | Self::UnknownVersion { .. } | Self::Corrupt { .. })
    }
}

/// What start-up did with an old store.
#[derive(Debug)]
pub(crate) enum V1Migration {
    /// Everything readable was handed to the caller; the old files were renamed to `retired_to`.
    Imported { summary: V1Summary, retired_to: PathBuf },
    /// The file could not be read (what was read before the failure was handed on) and was
    /// renamed to `moved_to`.
    SetAside { reason: MigrateError, moved_to: PathBuf },
}

/// `<data_dir>/waggle.db`, if there is one.
pub(crate) fn find_v1_store(data_dir: &Path) -> Option<PathBuf> {
    let path = data_dir.join(V1_FILE_NAME);
    std::fs::metadata(&path).is_ok_and(|metadata| metadata.is_file()).then_some(path)
}

/// Renames an imported `waggle.db` (and its `-wal`, `-shm` and `.lock`) to
/// `waggle.db.migrated-v1` (numbered if that is taken), and says where it went. The user may
/// delete it; waggle never reads it again.
pub(crate) fn retire_v1_store(path: &Path) -> io::Result<PathBuf> {
    rename_with_siblings(path, MIGRATED_SUFFIX)
}

/// Renames an unreadable `waggle.db` (and its siblings) out of the way, to
/// `waggle.db.corrupt` or `waggle.db.unknown-version`, with one warning saying so.
pub(crate) fn set_aside_v1_store(path: &Path, reason: &MigrateError) -> io::Result<PathBuf> {
    let suffix = match reason {
        MigrateError::UnknownVersion { .. } => UNKNOWN_VERSION_SUFFIX,
        _ => CORRUPT_SUFFIX,
    };
    let moved_to = rename_with_siblings(path, suffix)?;
    tracing::warn!(
        path = %path.display(),
        moved_to = %moved_to.display(),
        %reason,
        "local store: the previous release's store cannot be read; moved it aside and starting without its contents"
    );
    Ok(moved_to)
}

/// Finds `<data_dir>/waggle.db`, hands its contents to `each` in requests of at most
/// `max_items` items, oldest first, then retires it. A file that cannot be read is set aside
/// (whatever was read before the failure has been handed on) and waggle goes on. `Ok(None)`:
/// there was no old store. `Err`: the store is in use, `each` failed, or a file could not be
/// renamed; the old store is then left where it is and is read again at the next start.
pub(crate) fn migrate_v1_store<E>(
    data_dir: &Path,
    max_items: usize,
    each: impl FnMut(V1Chunk) -> Result<(), E>,
) -> Result<Option<V1Migration>, MigrateError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(path) = find_v1_store(data_dir) else { return Ok(None) };
    let io = |source| MigrateError::Io { path: path.clone(), source };
    match read_v1(&path, max_items, each) {
        Ok(summary) => {
            let retired_to = retire_v1_store(&path).map_err(io)?;
            Ok(Some(V1Migration::Imported { summary, retired_to }))
        }
        Err(reason) if reason.is_unreadable() => {
            let moved_to = set_aside_v1_store(&path, &reason).map_err(io)?;
            Ok(Some(V1Migration::SetAside { reason, moved_to }))
        }
        Err(error) => Err(error),
    }
}

/// `path` with `suffix` appended to its file name (`waggle.db` + `-wal` → `waggle.db-wal`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames `path` to the first free `path<suffix>`, `path<suffix>.2`, … and its sibling files
/// along with it (`path-wal` → `path<suffix>-wal`, so SQLite still finds them), main file first:
/// once it has gone, nothing reads the old store again.
fn rename_with_siblings(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let target = free_name(path, suffix)?;
    std::fs::rename(path, &target)?;
    for sibling_suffix in SIBLING_SUFFIXES {
        let from = sibling(path, sibling_suffix);
        if std::fs::symlink_metadata(&from).is_ok() {
            std::fs::rename(&from, sibling(&target, sibling_suffix))?;
        }
    }
    Ok(target)
}

/// The first name for `path<suffix>` that neither it nor any of its sibling files has.
fn free_name(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let taken = |candidate: &Path| {
        std::fs::symlink_metadata(candidate).is_ok()
            || SIBLING_SUFFIXES.iter().any(|s| std::fs::symlink_metadata(sibling(candidate, s)).is_ok())
    };
    for number in 1..=MAX_RENAME_CANDIDATES {
        let candidate = if number == 1 { sibling(path, suffix) } else { sibling(path, &format!("{suffix}.{number}")) };
        if !taken(&candidate) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{} and {MAX_RENAME_CANDIDATES} numbered names after it are taken", sibling(path, suffix).display()),
    ))
}
