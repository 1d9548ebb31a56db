//! `confab-signaling`: the signaling service as a program. Flags in `--help`; every flag has a
//! `CONFAB_*` environment variable.

use anyhow::Context as _;
use clap::Parser;
use confab_signaling::ServeArgs;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "confab-signaling", version, about = "Confab's signaling service")]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CONFAB_LOG_JSON")]
    log_json: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }

    let listen = cli.serve.listen;
    let config = cli.serve.into_config();
    raise_fd_limit(config.max_connections);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // The port alone: no log line carries an IP address, not even our own.
    tracing::info!(port = listener.local_addr()?.port(), "listening");
    confab_signaling::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Each connection is a file descriptor; the usual soft limit of 1024 would cap the service long
/// before `--max-connections`.
fn raise_fd_limit(max_connections: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if (limit as usize) < max_connections + 64 => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below --max-connections; connections past it will fail"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
