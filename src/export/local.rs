//! The embedded local store (placeholder while it is being written).
