//! TEMPORARY stub; replaced by the embedded store.
use std::path::Path;
use crate::batch::{SharedBatch, Signal};
use crate::export::{Built, ExportError, Exporter, Sent};
#[derive(Debug, thiserror::Error)]
#[error("store")]
pub struct StoreError;
pub struct LocalStore;
#[derive(Clone)]
pub struct StoreReader;
impl LocalStore { pub fn open(_p: &Path, _m: u64) -> Result<(LocalStore, StoreReader), StoreError> { Ok((LocalStore, StoreReader)) } }
impl Exporter for LocalStore {
    type Request = usize;
    fn build(&self, _s: Signal, b: &[SharedBatch]) -> Built<usize> { Built::requests(vec![b.iter().map(|b| b.items).sum()]) }
    fn items(r: &usize) -> usize { *r }
    async fn send(&self, r: &mut usize) -> Result<Sent, ExportError> { Ok(Sent::all(*r)) }
}
