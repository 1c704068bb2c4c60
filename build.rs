//! Compiles the spool record envelope (`proto/`) with protox, a protobuf compiler written in
//! Rust, so building waggle needs no system `protoc`; and, where the linker is Rust's own lld,
//! lays the daemon's start-up code out together (see `link_for_a_small_footprint`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    link_for_a_small_footprint();
    const ENVELOPE: &str = "waggle/spool/v1/spool.proto";
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([ENVELOPE], ["proto"])?;
    prost_build::Config::new()
        // Payload bytes are `bytes::Bytes`: decoding a record read from disk shares its buffer.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}

/// Two linker options that cut the daemon's idle RSS (README, "Performance"), passed only for
/// `x86_64-unknown-linux-gnu` with rustc's default linker (its bundled lld): with a linker chosen
/// elsewhere (`RUSTC_LINKER`, `-C linker…` in RUSTFLAGS) they may not exist, so none is passed.
/// - `--symbol-ordering-file=link/startup.order` puts the functions run from start-up to idle
///   (listed by `scripts/startup-symbol-order`) side by side at the front of `.text`, so the
///   kernel's fault-around maps a couple of MiB of code instead of half the binary.
/// - `-z pack-relative-relocs` stores the ~45,000 relative relocations of the position-independent
///   binary as a bitmap (DT_RELR) instead of a 1 MiB table the loader reads at exec. Only glibc
///   2.36 and later load such a binary (lld marks it as needing `GLIBC_ABI_DT_RELR`), so this is
///   passed only when building on and for a machine with that glibc: built on Ubuntu 22.04 or
///   Amazon Linux 2023 (glibc 2.35, 2.34), waggle would otherwise not start there.
fn link_for_a_small_footprint() {
    const ORDER_FILE: &str = "link/startup.order";
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let default_linker = std::env::var_os("RUSTC_LINKER").is_none() && !rustflags.contains("linker");
    if target != "x86_64-unknown-linux-gnu" || !default_linker {
        return;
    }
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let order_file = std::path::Path::new(&manifest_dir).join(ORDER_FILE);
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order_file.display());
    // Names of functions since renamed or gone are skipped quietly; the list is a layout hint.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    let native = std::env::var("HOST").is_ok_and(|host| host == target);
    if native && glibc_version().is_some_and(|version| version >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// This machine's glibc version, from `getconf GNU_LIBC_VERSION` ("glibc 2.36"); None when that
/// does not answer (another C library, no getconf).
fn glibc_version() -> Option<(u32, u32)> {
    let output = std::process::Command::new("getconf").arg("GNU_LIBC_VERSION").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
