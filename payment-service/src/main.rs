//! `payment-service`: the charge API and its outbox relay.

use clap::Parser;
use payment_service::{config::Settings, startup::Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let settings = Settings::parse();
    shared::telemetry::init(settings.log_format);
    let shutdown = shared::shutdown::on_signal();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            // A readable message (with its causes), not a panic or a backtrace.
            eprintln!("payment-service: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("payment-service: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
