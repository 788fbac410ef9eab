// Generates the admin API (proto/ucr/admin/v1/admin.proto). The CRI types come from the
// k8s-cri crate. protoc is Debian's protobuf-compiler (hack/install-deps.sh).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/ucr/admin/v1/admin.proto"], &["proto"])?;
    Ok(())
}
