//! `confab-signaling`: the signaling service as a program. Flags in `--help`; every flag has a
//! `CONFAB_*` environment variable.

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

    confab_signaling::serve(cli.serve).await?;
    Ok(())
}
