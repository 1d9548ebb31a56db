//! Running the service as a program: what `confab-signaling` and `confab serve` both do with
//! their flags.

use crate::{Error, ServeArgs};

/// Binds `args.listen` and serves until Ctrl-C or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<(), Error> {
    let listen = args.listen;
    let config = args.into_config();
    raise_fd_limit(config.max_connections);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Listen { addr: listen, source })?;
    // The port alone: no log line carries an IP address, not even our own.
    tracing::info!(port = listener.local_addr()?.port(), "listening");
    crate::run(listener, config, shutdown_signal()).await
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
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
