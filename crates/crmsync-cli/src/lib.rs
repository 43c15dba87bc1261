//! The `crmsync` command-line tool, as a library so its parts can be tested.
//!
//! The binary (`src/main.rs`) calls [`main_entry`]. Commands are in [`commands`],
//! [`doctor`] and [`demo`]; the configuration file in [`config`]; the file CRM in [`filecrm`]; the
//! provider dispatch in [`provider`]; exit codes in [`exit`]. `docs/cli.md` is the user's
//! guide.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod exit;
pub mod filecrm;
pub mod output;
pub mod provider;
pub mod session;

use std::sync::Arc;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::commands::{ResetArgs, open_context};
use crate::exit::CliError;

/// Parses the arguments, runs the command and returns the process exit code.
pub fn main_entry() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and exit 0; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
        }
    };
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::RECORDS_FAILED;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.code
        }
    }
}

/// Logging to stderr: warnings by default, `-v` info, `-vv` debug; `RUST_LOG` overrides.
/// Nothing logged carries a token or a secret: secrets are `secrecy` types, redacted in
/// `Debug`, and the configuration holds only the NAME of the secret's variable.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,sqlx=warn",
        _ => "debug,sqlx=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 1)
        .try_init();
}

/// Runs one command.
///
/// # Errors
/// What stopped the command, with its exit code.
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Demo { dir } => demo::demo(dir).await,
        Command::Auth {
            account,
            paste,
            device,
            no_browser,
            timeout,
        } => {
            let mode = if device {
                commands::AuthMode::Device
            } else if paste {
                commands::AuthMode::Paste
            } else {
                commands::AuthMode::Loopback {
                    open_browser: !no_browser,
                    timeout: std::time::Duration::from_secs(timeout),
                }
            };
            let path = config.map_or_else(
                || std::path::PathBuf::from(config::DEFAULT_CONFIG_FILE),
                std::path::Path::to_owned,
            );
            let loaded = config::Config::load(&path)?;
            if loaded.account(&account)?.provider == config::ProviderKind::Memory {
                return commands::auth_memory(&loaded, &account);
            }
            let ctx = open_context(Some(&path)).await?;
            let result = commands::auth(&ctx, &account, mode).await;
            ctx.close().await;
            result
        }
        command => {
            let ctx = Arc::new(open_context(config).await?);
            let result = match command {
                Command::Doctor { account, json } => {
                    doctor::doctor(&ctx, account.as_deref(), json).await
                }
                Command::Plan { account, json } => {
                    commands::plan(&ctx, account.as_deref(), json).await
                }
                Command::Sync {
                    accounts,
                    json,
                    run,
                } => commands::sync(Arc::clone(&ctx), &accounts, json, run).await,
                Command::Push {
                    account,
                    crm_ids,
                    json,
                } => commands::push(&ctx, &account, &crm_ids, json).await,
                Command::Pull { account, json, run } => {
                    commands::pull(Arc::clone(&ctx), &account, json, run).await
                }
                Command::Reset {
                    account,
                    calendar,
                    contacts,
                    all,
                    revoke,
                    remove_remote,
                    yes,
                } => {
                    let everything = all || (!calendar && !contacts);
                    commands::reset(
                        &ctx,
                        &account,
                        ResetArgs {
                            calendar: calendar || everything,
                            contacts: contacts || everything,
                            remove_remote,
                            yes,
                            tokens: all,
                            revoke,
                        },
                    )
                    .await
                }
                Command::Status { json } => commands::status(&ctx, json).await,
                Command::Demo { .. } | Command::Auth { .. } => Ok(exit::SUCCESS),
            };
            ctx.close().await;
            result
        }
    }
}
