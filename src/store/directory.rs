//! The store's directory as the sealer last saw it: noticing that it was deleted or replaced
//! while waggle runs (a clean-up script, a volume remounted) and making it again.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The directory blocks are written to, and the identity (device, inode) it had when checked.
pub(super) struct StoreDirectory {
    path: PathBuf,
    identity: Mutex<Option<(u64, u64)>>,
    /// The lock taken in a directory made again while running (the first one is held by the
    /// store's writer).
    relock: Mutex<Option<File>>,
}

/// What [`StoreDirectory::check`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DirectoryCheck {
    /// The directory blocks were written to is still there.
    Same,
    /// It was deleted or replaced and has been made again (or adopted, when replaced): block
    /// files written before may be gone.
    MadeAgain,
}

impl StoreDirectory {
    /// The directory at `path`, which exists (the store has just created or opened it).
    pub(super) fn new(path: &Path) -> StoreDirectory {
        StoreDirectory { path: path.to_path_buf(), identity: Mutex::new(identity(path)), relock: Mutex::new(None) }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure the directory is the one blocks were written to; makes it again (and locks it)
    /// when it was deleted, adopts it when it was replaced. Fails when it cannot be made.
    pub(super) fn check(&self) -> std::io::Result<DirectoryCheck> {
        let mut known = self.identity.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = identity(&self.path);
        if now.is_some() && now == *known {
            return Ok(DirectoryCheck::Same);
        }
        std::fs::create_dir_all(&self.path)?;
        let lock = super::lock_store(&self.path).map_err(std::io::Error::other);
        match lock {
            Ok(lock) => *self.relock.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(lock),
            // Ours already (the directory was only moved and moved back), or another process's:
            // writing goes on either way; a second writer is refused at its own start.
            Err(error) => tracing::debug!(%error, "local store: the directory made again is not locked"),
        }
        *known = identity(&self.path);
        Ok(DirectoryCheck::MadeAgain)
    }
}

/// A directory's (device, inode), `None` when it is missing or not a directory.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().filter(|meta| meta.is_dir()).map(|meta| (meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> tempfile::TempDir {
        tempfile::tempdir().expect("a temporary directory")
    }

    #[test]
    fn an_untouched_directory_is_the_same() {
        let root = scratch();
        let directory = StoreDirectory::new(root.path());
        assert_eq!(directory.check().expect("checked"), DirectoryCheck::Same);
    }

    #[test]
    fn a_deleted_directory_is_made_again_with_a_lock() {
        let root = scratch();
        let path = root.path().join("store");
        std::fs::create_dir(&path).expect("made");
        let directory = StoreDirectory::new(&path);
        std::fs::remove_dir_all(&path).expect("deleted");

        assert_eq!(directory.check().expect("checked"), DirectoryCheck::MadeAgain);
        assert!(path.is_dir());
        assert!(path.join(super::super::LOCK_FILE_NAME).is_file());
        assert_eq!(directory.check().expect("checked again"), DirectoryCheck::Same);
    }

    #[test]
    fn a_replaced_directory_is_adopted() {
        let root = scratch();
        let path = root.path().join("store");
        std::fs::create_dir(&path).expect("made");
        let directory = StoreDirectory::new(&path);
        std::fs::rename(&path, root.path().join("moved")).expect("moved away");
        std::fs::create_dir(&path).expect("another directory in its place");

        assert_eq!(directory.check().expect("checked"), DirectoryCheck::MadeAgain);
    }

    #[test]
    fn a_file_in_its_place_is_an_error() {
        let root = scratch();
        let path = root.path().join("store");
        std::fs::create_dir(&path).expect("made");
        let directory = StoreDirectory::new(&path);
        std::fs::remove_dir(&path).expect("deleted");
        std::fs::write(&path, b"not a directory").expect("a file in its place");

        assert!(directory.check().is_err());
    }
}
