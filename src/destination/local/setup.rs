//! The local store lane from its settings: off and why, or the opened store and what `/status`
//! says about it.

use std::path::{Path, PathBuf};

use super::{LocalStore, LocalStoreSettings};
use crate::store::{self, StoreError, StoreReader};

/// Whether the local store runs.
pub(crate) enum LocalSetup {
    /// Off, with the reason `/status` gives.
    Off(&'static str),
    On(OpenedStore),
}

/// The opened store: the lane's exporter, the query side, and the reason `/status` gives.
pub(crate) struct OpenedStore {
    pub store: LocalStore,
    pub reader: StoreReader,
    pub reason: String,
}

/// The store is on but could not be opened.
#[derive(Debug)]
pub(crate) struct OpenFailed {
    pub path: PathBuf,
    pub source: StoreError,
}

/// Opens the store under `data_dir` when the settings turn it on.
pub(crate) fn setup(settings: &LocalStoreSettings, data_dir: &Path) -> Result<LocalSetup, OpenFailed> {
    if !settings.enabled {
        return Ok(LocalSetup::Off("disabled by destinations.local.enabled = false"));
    }
    let path = store::store_path(data_dir);
    let (store, reader) = match LocalStore::open(&path, settings.store_options()) {
        Ok(opened) => opened,
        Err(source) => return Err(OpenFailed { path, source }),
    };
    store.import_previous(data_dir);
    let reason = format!(
        "embedded store at {} (max_size {}, max_age {})",
        path.display(),
        settings.max_size,
        age_text(settings.max_age)
    );
    Ok(LocalSetup::On(OpenedStore { store, reader, reason }))
}

/// A store's `max_age` as a person writes it: whole hours as "24h" (humantime would say
/// "1day"), anything else in humantime's form ("90m", "1h 30m").
fn age_text(age: std::time::Duration) -> String {
    const HOUR: u64 = 3600;
    match age.as_secs() {
        seconds if seconds > 0 && seconds % HOUR == 0 && age.subsec_nanos() == 0 => format!("{}h", seconds / HOUR),
        _ => humantime::format_duration(age).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use bytesize::ByteSize;

    use super::*;

    #[test]
    fn disabled_is_off_and_opens_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LocalStoreSettings { enabled: false, ..LocalStoreSettings::default() };
        let Ok(LocalSetup::Off(reason)) = setup(&settings, dir.path()) else { panic!("not off") };
        assert_eq!(reason, "disabled by destinations.local.enabled = false");
        assert!(!store::store_path(dir.path()).exists());
    }

    #[test]
    fn enabled_opens_the_store_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let settings = LocalStoreSettings { max_size: ByteSize::mib(8), ..LocalStoreSettings::default() };
        let Ok(LocalSetup::On(opened)) = setup(&settings, dir.path()) else { panic!("not on") };
        let path = store::store_path(dir.path());
        assert_eq!(
            opened.reason,
            format!("embedded store at {} (max_size {}, max_age 24h)", path.display(), ByteSize::mib(8))
        );
        assert!(path.exists());
    }

    #[test]
    fn an_age_in_whole_hours_is_told_in_hours_and_any_other_as_humantime_writes_it() {
        use std::time::Duration;
        assert_eq!(age_text(Duration::from_secs(24 * 3600)), "24h");
        assert_eq!(age_text(Duration::from_secs(7 * 24 * 3600)), "168h");
        assert_eq!(age_text(Duration::from_secs(90 * 60)), "1h 30m");
        assert_eq!(age_text(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn a_store_that_cannot_be_opened_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(store::store_path(dir.path()), b"a file where the store's directory goes").unwrap();
        let Err(failed) = setup(&LocalStoreSettings::default(), dir.path()) else { panic!("opened") };
        assert_eq!(failed.path, store::store_path(dir.path()));
    }
}
