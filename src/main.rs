//! The `ucr` binary: `ucr serve` runs the daemon; other subcommands are small clients of it.

use clap::Parser;
use ucr::config::{Cli, Command, LaunchFlags, PruneFlags, PullFlags};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(flags) => {
            flags
                .resolve()
                .map_err(anyhow::Error::from)
                .and_then(|settings| {
                    // Flushes the OTLP spans when dropped, after the runtime is gone.
                    let _otlp = ucr::telemetry::logging::init(
                        &settings.log_level,
                        settings.log_format,
                        settings.otlp_endpoint.as_deref(),
                    )?;
                    runtime()?.block_on(ucr::daemon::serve(settings))
                })
        }
        Command::Prune(flags) => {
            init_logging("warn");
            runtime().and_then(|rt| rt.block_on(prune(flags)))
        }
        // No tokio here: the launcher must run in a single-threaded process.
        Command::Launch(flags) => return launch(flags),
        // Both single-threaded too: they clone or setns into container namespaces.
        Command::Monitor(flags) => {
            return ucr::monitor::main(&flags.bundle, flags.sync_fd, flags.hold_fd)
        }
        Command::Exec(flags) => {
            return ucr::launcher::exec::main(&flags.spec, flags.report_fd, flags.console_fd)
        }
        Command::PodInit(flags) => {
            return ucr::launcher::pod_init::main(
                &flags.dir,
                flags.sync_fd,
                flags.userns.as_deref(),
            )
        }
        Command::PodNs(flags) => {
            return ucr::launcher::pod_ns::main(&flags.spec, flags.report_fd, flags.go_fd)
        }
        Command::Pull(flags) => {
            init_logging("warn");
            runtime().and_then(|rt| rt.block_on(pull(flags)))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ucr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UCR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn prune(flags: PruneFlags) -> anyhow::Result<()> {
    use ucr::cri::admin_api::{admin_client::AdminClient, PruneImagesRequest};
    let channel = ucr::cri::client::connect(&flags.listen).await?;
    let report = AdminClient::new(channel)
        .prune_images(PruneImagesRequest {
            excluded_images: flags.exclude,
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    for image in &report.removed_images {
        println!("removed {image}");
    }
    println!(
        "{} image(s), {} layer(s), {} bytes reclaimed",
        report.removed_images.len(),
        report.removed_layers,
        report.reclaimed_bytes
    );
    Ok(())
}

async fn pull(flags: PullFlags) -> anyhow::Result<()> {
    use k8s_cri::v1::{image_service_client::ImageServiceClient, ImageSpec, PullImageRequest};
    let channel = ucr::cri::client::connect(&flags.listen).await?;
    let reply = ImageServiceClient::new(channel)
        .pull_image(PullImageRequest {
            image: Some(ImageSpec {
                image: flags.image,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?
        .into_inner();
    println!("{}", reply.image_ref);
    Ok(())
}

fn launch(flags: LaunchFlags) -> std::process::ExitCode {
    let spec = std::fs::read(&flags.spec)
        .map_err(|e| format!("reading {}: {e}", flags.spec.display()))
        .and_then(|bytes| {
            serde_json::from_slice::<ucr::launcher::LaunchSpec>(&bytes)
                .map_err(|e| format!("parsing {}: {e}", flags.spec.display()))
        });
    let result = spec
        .and_then(|spec| ucr::launcher::run_foreground(&spec).map_err(|e| ucr::error::chain(&e)));
    match result {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("ucr launch: {e}");
            std::process::ExitCode::from(127)
        }
    }
}
