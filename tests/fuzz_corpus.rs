//! The fuzz targets' committed corpora (`fuzz/corpus/<target>/`: captured SDK payloads,
//! generated seeds and any crash reproducers), replayed on the stable toolchain through the
//! same checks the fuzzer runs (`waggle::fuzzing`), so `cargo test` guards them too.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target)
}

fn replay(target: &str) {
    let (_, check) = waggle::fuzzing::TARGETS.iter().find(|(name, _)| *name == target).expect("a fuzz target");
    let mut inputs: Vec<PathBuf> =
        fs::read_dir(corpus(target)).expect("its corpus").map(|e| e.unwrap().path()).collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the {target} corpus is empty");
    for input in inputs {
        // Shown with the panic when an input breaks a property.
        eprintln!("replaying {}", input.display());
        check(&fs::read(&input).expect("a corpus file"));
    }
}

#[test]
fn otlp_protobuf_corpus() {
    replay("otlp_protobuf");
}

#[test]
fn otlp_json_corpus() {
    replay("otlp_json");
}

#[test]
fn xray_datagram_corpus() {
    replay("xray_datagram");
}

#[test]
fn sampling_proxy_corpus() {
    replay("sampling_proxy");
}

#[test]
fn spool_segment_corpus() {
    replay("spool_segment");
}

#[test]
fn daemon_config_corpus() {
    replay("daemon_config");
}

/// Every target has a corpus and a binary in `fuzz/Cargo.toml`, and every corpus a target.
#[test]
fn every_target_is_built_and_seeded() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    for (target, _) in waggle::fuzzing::TARGETS {
        assert!(manifest.contains(&format!("name = \"{target}\"")), "{target} is not in fuzz/Cargo.toml");
        assert!(corpus(target).is_dir(), "{target} has no corpus");
    }
    let corpora = fs::read_dir(corpus("")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
    for name in corpora {
        assert!(waggle::fuzzing::TARGETS.iter().any(|(target, _)| *target == name), "corpus {name} has no target");
    }
}
