//! The open-file limit: raised at start from the soft to the hard limit (logged), because
//! every connection is a file descriptor and the usual soft limit of 1,024 is too low for a
//! relay with four listeners.

/// The soft `RLIMIT_NOFILE` after start-up, and the hard limit it may not pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft limit to the hard one and logs the result; returns the limit in force
/// (`None` when it cannot be read, in which case nothing was changed).
pub fn raise_to_hard_limit() -> Option<FileLimit> {
    let (before, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit (RLIMIT_NOFILE); leaving it as it is");
            return None;
        }
    };
    let soft = match rlimit::increase_nofile_limit(hard) {
        Ok(soft) => soft,
        Err(error) => {
            tracing::warn!(%error, soft = before, hard, "cannot raise the open-file limit (RLIMIT_NOFILE)");
            before
        }
    };
    if soft > before {
        tracing::info!(from = before, to = soft, hard, "raised the open-file limit (RLIMIT_NOFILE)");
    } else {
        tracing::info!(soft, hard, "open-file limit (RLIMIT_NOFILE)");
    }
    Some(FileLimit { soft, hard })
}
