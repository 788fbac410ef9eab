// Generates the admin API (proto/ucr/admin/v1/admin.proto). The CRI types come from the
// k8s-cri crate. protoc is Debian's protobuf-compiler (hack/install-deps.sh).
//
// Also builds `ucr-pod-init` (src/launcher/pod_init/init.rs), the PID 1 of pods sharing
// a PID namespace, on its own: without std or libc, and with panic=abort, which no
// target of this package could have (tests need unwinding). The crate embeds the result.
use std::path::PathBuf;
use std::process::Command;

const POD_INIT: &str = "src/launcher/pod_init/init.rs";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/ucr/admin/v1/admin.proto"], &["proto"])?;
    build_mesos()?;
    build_pod_init()
}

/// The Mesos door's wire types (proto/mesos/v1/): prost for protobuf, pbjson for the JSON
/// mapping Mesos uses (proto field names, enum names). Unknown JSON fields are ignored,
/// as protobuf ignores unknown fields: a client's call naming payloads ucr does not model
/// yet still decodes, and gets an honest answer for its type.
fn build_mesos() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = PathBuf::from(std::env::var("OUT_DIR")?).join("mesos-descriptors.bin");
    prost_build::Config::new()
        .file_descriptor_set_path(&descriptors)
        .compile_protos(
            &[
                "proto/mesos/v1/mesos.proto",
                "proto/mesos/v1/agent/agent.proto",
            ],
            &["proto"],
        )?;
    let set = std::fs::read(&descriptors)?;
    pbjson_build::Builder::new()
        .register_descriptors(&set)?
        .preserve_proto_field_names()
        .ignore_unknown_fields()
        // Mesos writes 64-bit integers as JSON numbers, not proto3's strings: the
        // statistics are mapped by hand (src/mesos/wire.rs), and so are the files
        // calls' answers and the enum with a value pbjson cannot name, `SELF`
        // (src/mesos/wire_json.rs).
        .exclude([
            ".mesos.v1.ResourceStatistics",
            ".mesos.v1.FileInfo",
            ".mesos.v1.agent.Response.ReadFile",
            ".mesos.v1.Volume.Source.SandboxPath.Type",
        ])
        .build(&[".mesos"])?;
    Ok(())
}

fn build_pod_init() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed={POD_INIT}");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("ucr-pod-init");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET")?;
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--target",
            &target,
        ])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "strip=symbols", "-C", "relocation-model=static"])
        // No C runtime at all: `_start` is ours, and nothing is linked in.
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args([
            "-C",
            "link-arg=-static",
            "-C",
            "link-arg=-Wl,--build-id=none",
        ])
        .arg(POD_INIT)
        .arg("-o")
        .arg(&out)
        .status()?;
    if !status.success() {
        return Err(format!("building {POD_INIT}: rustc {status}").into());
    }
    Ok(())
}
