//! TEMPORARY stub; replaced by the store query API.
pub fn routes(_r: crate::export::local::StoreReader) -> axum::Router { axum::Router::new() }
