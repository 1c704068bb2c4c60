//! A Bloom filter over a block's trace ids, kept in memory for every sealed block, so finding a
//! trace reads only the blocks that may hold it.
//!
//! Trace ids are random (W3C) or random in their last 12 bytes (X-Ray), so their own bytes serve
//! as the hashes: no hashing is needed.

/// Bits per trace id: about a 2% false-positive rate with [`PROBES`] probes.
const BITS_PER_ID: usize = 8;
const PROBES: u64 = 4;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TraceBloom {
    words: Vec<u64>,
}

impl TraceBloom {
    /// A filter sized for `ids` distinct trace ids.
    pub(crate) fn with_capacity(ids: usize) -> TraceBloom {
        let words = (ids * BITS_PER_ID).div_ceil(64).max(1);
        TraceBloom { words: vec![0; words] }
    }

    pub(crate) fn insert(&mut self, trace_id: &[u8; 16]) {
        let bits = self.bits();
        for bit in probes(trace_id, bits) {
            self.words[bit / 64] |= 1 << (bit % 64);
        }
    }

    /// False only when the trace is certainly not in the block.
    pub(crate) fn may_contain(&self, trace_id: &[u8; 16]) -> bool {
        let bits = self.bits();
        bits == 0 || probes(trace_id, bits).all(|bit| self.words[bit / 64] & (1 << (bit % 64)) != 0)
    }

    fn bits(&self) -> usize {
        self.words.len() * 64
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|word| word.to_le_bytes()).collect()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> TraceBloom {
        let words =
            bytes.chunks_exact(8).map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or_default())).collect();
        TraceBloom { words }
    }
}

fn probes(trace_id: &[u8; 16], bits: usize) -> impl Iterator<Item = usize> {
    let (high, low) = trace_id.split_at(8);
    let first = u64::from_le_bytes(low.try_into().unwrap_or_default());
    let step = u64::from_le_bytes(high.try_into().unwrap_or_default()) | 1;
    let bits = bits as u64;
    (0..PROBES).map(move |probe| (first.wrapping_add(probe.wrapping_mul(step)) % bits.max(1)) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> [u8; 16] {
        let mut id = [0u8; 16];
        let mixed = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n << 29);
        id[..8].copy_from_slice(&mixed.rotate_left(17).to_le_bytes());
        id[8..].copy_from_slice(&mixed.to_le_bytes());
        id
    }

    #[test]
    fn every_inserted_id_is_found() {
        let mut bloom = TraceBloom::with_capacity(1000);
        (0..1000).for_each(|n| bloom.insert(&id(n)));
        assert!((0..1000).all(|n| bloom.may_contain(&id(n))));
    }

    #[test]
    fn most_other_ids_are_ruled_out() {
        let mut bloom = TraceBloom::with_capacity(1000);
        (0..1000).for_each(|n| bloom.insert(&id(n)));
        let false_positives = (1000..11_000).filter(|&n| bloom.may_contain(&id(n))).count();
        assert!(false_positives < 500, "{false_positives} of 10000");
    }

    #[test]
    fn bytes_round_trip() {
        let mut bloom = TraceBloom::with_capacity(10);
        bloom.insert(&id(3));
        assert_eq!(TraceBloom::from_bytes(&bloom.to_bytes()), bloom);
    }
}
