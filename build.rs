//! Compiles the spool record envelope (`proto/`) with protox, a protobuf compiler written in
//! Rust, so building waggle needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const ENVELOPE: &str = "waggle/spool/v1/spool.proto";
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile([ENVELOPE], ["proto"])?;
    prost_build::Config::new()
        // Payload bytes are `bytes::Bytes`: decoding a record read from disk shares its buffer.
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
