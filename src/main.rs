//! The `ucr` binary: `ucr serve` runs the daemon; other subcommands are small clients of it.

use clap::Parser;
use ucr::config::{Cli, Command, ConfigCommand, LaunchFlags};

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
        Command::Config(c) => config(c),
        Command::Prune(flags) => return client(ucr::client::prune(flags)),
        Command::Pull(flags) => return client(ucr::client::pull(flags)),
        Command::Ps(flags) => return client(ucr::client::ps(flags)),
        Command::Pods(flags) => return client(ucr::client::pods(flags)),
        Command::Inspect(flags) => return client(ucr::client::inspect(flags)),
        Command::Images(flags) => return client(ucr::client::images(flags)),
        Command::Logs(flags) => return client(ucr::client::logs(flags)),
        Command::Stats(flags) => return client(ucr::client::stats(flags)),
        Command::Rm(flags) => return client(ucr::client::rm(flags)),
        Command::Exec(flags) => return client_code(ucr::client::exec(flags)),
        // No tokio here: the launcher must run in a single-threaded process.
        Command::Launch(flags) => return launch(flags),
        // Both single-threaded too: they clone or setns into container namespaces.
        Command::Monitor(flags) => {
            return ucr::monitor::main(&flags.bundle, flags.sync_fd, flags.hold_fd)
        }
        Command::Nsexec(flags) => {
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
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ucr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn config(command: ConfigCommand) -> anyhow::Result<()> {
    let text = match command {
        ConfigCommand::Default => ucr::config::defaults::render(),
        ConfigCommand::Check(flags) => flags
            .resolve()?
            .as_flags()
            .into_iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect(),
    };
    write_stdout(&text)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
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

/// Runs a client subcommand: exit 0, or 1 with the error on stderr.
fn client(
    work: impl std::future::Future<Output = Result<(), ucr::client::ClientError>>,
) -> std::process::ExitCode {
    client_code(async { work.await.map(|()| 0) })
}

/// Runs a client subcommand whose success has an exit code of its own (`exec`).
fn client_code(
    work: impl std::future::Future<Output = Result<i32, ucr::client::ClientError>>,
) -> std::process::ExitCode {
    init_logging("warn");
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ucr: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(work);
    // Not a graceful shutdown: a read of stdin (exec -i) may still block a thread, and
    // would hold the exit until a key is pressed.
    rt.shutdown_background();
    match result {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("ucr: {e}");
            std::process::ExitCode::FAILURE
        }
    }
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
