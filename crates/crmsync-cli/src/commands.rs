//! The commands: each returns its exit code, or a [`CliError`] that stopped it.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use crmsync_core::engine::SyncReport;
use crmsync_core::{AccountStatus, Contact, CrmId, Event, Record, RunSummary};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::RunArgs;
use crate::config::{AccountConfig, Collection, Config, DEFAULT_CONFIG_FILE, ProviderKind};
use crate::exit::{self, CliError, code_for_report, worst};
use crate::output::{PlanRow, ProgressOutput, plan_rows, table};
use crate::provider::Provider;
use crate::session::{Context, RunFlags, RunOp, Session, account_error};

/// Loads the configuration named by `--config`, else `./crmsync.toml`, and opens the state.
///
/// # Errors
/// A configuration error (exit code 2) or a state that cannot be opened.
pub async fn open_context(config: Option<&Path>) -> Result<Context, CliError> {
    let path = config.map_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE), Path::to_owned);
    let config = Config::load(&path)?;
    let mut ctx = Context::new(config)?;
    ctx.open_state().await?;
    Ok(ctx)
}

fn collection_name(c: Collection) -> &'static str {
    match c {
        Collection::Events => "events",
        Collection::Contacts => "contacts",
    }
}

fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::usage(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

// ---------------------------------------------------------------- auth

/// `crmsync auth <account>` for a memory account: nothing to sign in to.
///
/// # Errors
/// Unknown account.
pub fn auth_memory(config: &Config, name: &str) -> Result<u8, CliError> {
    let account = config.account(name)?;
    println!(
        "Account {:?} uses the memory provider: there is nothing to sign in to, it is ready to sync.",
        account.name
    );
    Ok(exit::SUCCESS)
}

/// How `crmsync auth` signs in.
#[derive(Debug, Clone, Copy)]
pub enum AuthMode {
    /// Listen on 127.0.0.1 for the browser's redirect.
    Loopback {
        /// Try to open a browser (only when one seems to be there).
        open_browser: bool,
        /// How long to wait for the redirect.
        timeout: std::time::Duration,
    },
    /// Print the address; read the redirected address from stdin.
    Paste,
    /// The device-code flow.
    Device,
}

/// The redirect address of the paste flow: a loopback address nothing answers on, so the
/// browser stops there with the code in its address bar (Google desktop clients and
/// Microsoft public clients accept any loopback port).
const PASTE_REDIRECT: &str = "http://127.0.0.1:1/";

/// `crmsync auth <account>`: signs a Google or Microsoft account in and saves its tokens
/// (encrypted) in the state database.
///
/// # Errors
/// Unknown account; a configuration error; `--device` on Google (exit code 2).
pub async fn auth(ctx: &Context, name: &str, mode: AuthMode) -> Result<u8, CliError> {
    let account = ctx.config.account(name)?.clone();
    if account.provider == ProviderKind::Memory {
        return auth_memory(&ctx.config, name);
    }
    let provider = ctx.provider(&account)?;
    let context = format!("account {:?}: signing in", account.name);
    let result = if let Some(google) = provider.as_google() {
        auth_google(&account, google, mode).await?
    } else if let Some(microsoft) = provider.as_microsoft() {
        auth_microsoft(&account, microsoft, mode).await?
    } else {
        return auth_memory(&ctx.config, name);
    };
    match result {
        Ok(_) => {
            // The tokens were saved by the sign-in.
            if let (Ok(state), Some(tokens)) = (ctx.state(), provider.tokens())
                && let Err(e) = state
                    .set_account_status(tokens.account, AccountStatus::Ok)
                    .await
            {
                tracing::warn!(error = %e, "could not record the account status");
            }
            println!(
                "Signed in: account {:?} is authorised; its tokens are saved, encrypted, in {}.",
                account.name,
                ctx.config.state_path().display()
            );
            Ok(exit::SUCCESS)
        }
        Err(e) => Err(account_error(&account, &context, &e)),
    }
}

/// Prints the sign-in address of the loopback flow and opens a browser when asked.
fn show_loopback_address(
    account: &AccountConfig,
    who: &str,
    url: &url::Url,
    open_browser: bool,
    timeout: std::time::Duration,
) {
    println!("Open this address in a browser, sign in to {who} and allow access:\n\n  {url}\n");
    println!(
        "Waiting for the browser to come back (up to {} s; no browser here? stop and run `crmsync auth {} --paste`)...",
        timeout.as_secs(),
        account.name
    );
    flush_stdout();
    if open_browser {
        try_open_browser(url.as_str());
    }
}

/// Prints the paste flow's address and reads the address the browser ended on.
fn read_pasted_redirect(
    account: &AccountConfig,
    who: &str,
    url: &url::Url,
) -> Result<String, CliError> {
    println!(
        "Open this address in a browser (on any machine), sign in to {who} and allow access:\n\n  {url}\n"
    );
    println!(
        "The browser then fails to load a page on 127.0.0.1: that is expected. Copy the whole address from its address bar and paste it here, then press Enter:"
    );
    flush_stdout();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    let line = line.trim();
    if !matches!(read, Ok(n) if n > 0) || line.is_empty() {
        return Err(CliError::usage("no address was pasted: nothing was saved")
            .with_remedy(format!("run `crmsync auth {} --paste` again", account.name)));
    }
    Ok(line.to_owned())
}

/// Google: loopback or paste (desktop apps have no device flow). The outer error stops the
/// command before any sign-in (exit code 2).
async fn auth_google(
    account: &AccountConfig,
    google: &crate::provider::GoogleProvider,
    mode: AuthMode,
) -> Result<crmsync_core::Result<crmsync_core::TokenSet>, CliError> {
    let context = format!("account {:?}: signing in", account.name);
    Ok(match mode {
        AuthMode::Device => {
            return Err(CliError::usage(
                "Google desktop apps do not support the device flow; use --paste",
            )
            .with_remedy(format!(
                "run `crmsync auth {} --paste` (or without options, on a machine with a browser)",
                account.name
            )));
        }
        AuthMode::Loopback {
            open_browser,
            timeout,
        } => {
            google
                .auth()
                .sign_in_loopback(google.account(), timeout, |url| {
                    show_loopback_address(account, "Google", url, open_browser, timeout);
                })
                .await
        }
        AuthMode::Paste => {
            let pending = google
                .auth()
                .authorization_request(PASTE_REDIRECT)
                .map_err(|e| account_error(account, &context, &e))?;
            let line = read_pasted_redirect(account, "Google", pending.url())?;
            google
                .auth()
                .complete_from_pasted_redirect(google.account(), &pending, &line)
                .await
        }
    })
}

/// Microsoft: loopback, paste, or the device-code flow (prints where to go and the code to
/// type, then polls until the user signs in).
async fn auth_microsoft(
    account: &AccountConfig,
    microsoft: &crate::provider::MicrosoftProvider,
    mode: AuthMode,
) -> Result<crmsync_core::Result<crmsync_core::TokenSet>, CliError> {
    let context = format!("account {:?}: signing in", account.name);
    let auth = microsoft.auth();
    Ok(match mode {
        AuthMode::Device => {
            auth.sign_in_device_code(microsoft.account(), |prompt| {
                println!(
                    "On any device, open {} and enter the code {}\n",
                    prompt.verification_uri, prompt.user_code
                );
                println!("  {}\n", prompt.message);
                println!(
                    "Waiting for the sign-in (the code is valid for {} min)...",
                    prompt.expires_in.as_secs().div_ceil(60)
                );
                flush_stdout();
            })
            .await
        }
        AuthMode::Loopback {
            open_browser,
            timeout,
        } => {
            auth.sign_in_loopback(microsoft.account(), timeout, |url| {
                show_loopback_address(account, "Microsoft", url, open_browser, timeout);
            })
            .await
        }
        AuthMode::Paste => {
            let pending = auth
                .authorization_request(PASTE_REDIRECT)
                .map_err(|e| account_error(account, &context, &e))?;
            let line = read_pasted_redirect(account, "Microsoft", pending.url())?;
            let pasted = url::Url::parse(&line).map_err(|e| {
                CliError::usage(format!("the pasted text is not an address: {e}")).with_remedy(
                    format!(
                        "copy the whole address from the browser's address bar and run `crmsync auth {} --paste` again",
                        account.name
                    ),
                )
            })?;
            let params: Vec<(String, String)> = pasted
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            auth.complete(
                microsoft.account(),
                &pending,
                params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .await
        }
    })
}

fn flush_stdout() {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

/// Opens `url` in the desktop's browser when there seems to be one; never fails (the
/// address is printed anyway).
fn try_open_browser(url: &str) {
    let command: Option<(&str, Vec<&str>)> = if cfg!(target_os = "macos") {
        Some(("open", vec![url]))
    } else if cfg!(windows) {
        Some(("rundll32", vec!["url.dll,FileProtocolHandler", url]))
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        Some(("xdg-open", vec![url]))
    } else {
        None
    };
    let Some((program, args)) = command else {
        tracing::info!("no graphical session: not opening a browser");
        return;
    };
    match std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => tracing::info!(program, "asked the desktop to open the sign-in address"),
        Err(e) => tracing::info!(program, error = %e, "could not open a browser"),
    }
}

// ---------------------------------------------------------------- plan

#[derive(Serialize)]
struct PlanOutput {
    account: String,
    collection: &'static str,
    key: String,
    actions: Vec<PlanRow>,
    nothing_to_do: bool,
    guard: Option<String>,
    limit: Option<crmsync_core::engine::LimitReport>,
}

fn plan_output<R: Record>(
    account: &str,
    collection: Collection,
    plan: &crmsync_core::engine::Plan<R>,
) -> PlanOutput {
    PlanOutput {
        account: account.to_owned(),
        collection: collection_name(collection),
        key: plan.key.to_string(),
        actions: plan_rows(plan),
        nothing_to_do: plan.is_empty(),
        guard: plan.guard.as_ref().map(ToString::to_string),
        limit: plan.limit.clone(),
    }
}

/// `crmsync plan [<account>] [--json]`.
///
/// # Errors
/// Unknown account, configuration problems, a listing that fails.
pub async fn plan(ctx: &Context, name: Option<&str>, json: bool) -> Result<u8, CliError> {
    let accounts = ctx.accounts(&name.map(str::to_owned).into_iter().collect::<Vec<_>>())?;
    let mut outputs = Vec::new();
    for account in &accounts {
        let mut session = ctx.session(account, RunFlags::default()).await?;
        let context = |c: &str| format!("account {:?}: planning the {c}", account.name);
        if let Some(plan) = session.plan::<Event>(ctx).await {
            let plan = plan.map_err(|e| account_error(account, &context("events"), &e))?;
            outputs.push(plan_output(&account.name, Collection::Events, &plan));
        }
        if let Some(plan) = session.plan::<Contact>(ctx).await {
            let plan = plan.map_err(|e| account_error(account, &context("contacts"), &e))?;
            outputs.push(plan_output(&account.name, Collection::Contacts, &plan));
        }
    }
    let code = if outputs.iter().any(|o| o.guard.is_some()) {
        exit::GUARD
    } else {
        exit::SUCCESS
    };
    if json {
        print_json(&outputs)?;
        return Ok(code);
    }
    for o in &outputs {
        println!("Plan for account {} ({}):", o.account, o.collection);
        let rows: Vec<Vec<String>> = o
            .actions
            .iter()
            .map(|r| {
                vec![
                    r.side.clone(),
                    r.operation.clone(),
                    r.record.clone(),
                    r.fields.clone(),
                ]
            })
            .collect();
        if rows.is_empty() {
            println!("  nothing to do");
        } else {
            print!(
                "{}",
                table(&["side", "operation", "record", "fields"], &rows)
            );
        }
        if let Some(l) = &o.limit {
            println!(
                "  warning: cap of {} reached: {} new record(s) would be left out",
                l.cap, l.left_out
            );
        }
        if let Some(g) = &o.guard {
            println!("  STOPPED: {g} (sync with --allow-mass-deletion to go ahead)");
        }
        println!();
    }
    println!("Nothing was written. `crmsync sync` carries this out.");
    Ok(code)
}

// ---------------------------------------------------------------- sync, pull, push

/// What a run did for one account.
#[derive(Serialize)]
struct AccountOutcome {
    account: String,
    exit_code: u8,
    error: Option<ErrorOutput>,
    reports: Vec<CollectionReport>,
}

#[derive(Serialize)]
struct ErrorOutput {
    message: String,
    remedy: Option<String>,
}

#[derive(Serialize)]
struct CollectionReport {
    collection: &'static str,
    report: SyncReport,
}

#[derive(Serialize)]
struct RunOutput {
    exit_code: u8,
    accounts: Vec<AccountOutcome>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RunMode {
    Sync,
    Pull,
}

async fn run_account(
    ctx: Arc<Context>,
    account: AccountConfig,
    flags: RunFlags,
    mode: RunMode,
    progress: ProgressOutput,
) -> AccountOutcome {
    let mut outcome = AccountOutcome {
        account: account.name.clone(),
        exit_code: exit::SUCCESS,
        error: None,
        reports: Vec::new(),
    };
    let mut session = match ctx.session(&account, flags).await {
        Ok(s) => s,
        Err(e) => {
            outcome.exit_code = e.code;
            outcome.error = Some(ErrorOutput {
                message: e.message,
                remedy: e.remedy,
            });
            return outcome;
        }
    };
    let mut bars = Vec::new();
    for (collection, present) in [
        (Collection::Events, session.events.is_some()),
        (Collection::Contacts, session.contacts.is_some()),
    ] {
        if present {
            let (p, bar) =
                progress.for_run(format!("{} {}", account.name, collection_name(collection)));
            bars.extend(bar);
            session.set_progress(collection, p);
        }
    }
    let op = match mode {
        RunMode::Sync => RunOp::Sync,
        RunMode::Pull => RunOp::Pull,
    };
    let mut failure = None;
    if let Some(result) = session.run::<Event>(&ctx, op).await {
        match result {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "events",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "syncing the events", &e)),
        }
    }
    if failure.is_none()
        && let Some(result) = session.run::<Contact>(&ctx, op).await
    {
        match result {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "contacts",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "syncing the contacts", &e)),
        }
    }

    for bar in bars {
        bar.finish_and_clear();
    }
    if let Err(e) = session.persist() {
        failure = failure.or(Some(e));
    }
    finish_outcome(&session, &mut outcome, failure).await;
    outcome
}

async fn finish_outcome(
    session: &Session,
    outcome: &mut AccountOutcome,
    failure: Option<CliError>,
) {
    if !outcome.reports.is_empty() {
        let reports: Vec<&SyncReport> = outcome.reports.iter().map(|r| &r.report).collect();
        let summary = RunSummary {
            started_at: reports
                .iter()
                .map(|r| r.started_at)
                .min()
                .unwrap_or_else(Utc::now),
            finished_at: Utc::now(),
            written: reports.iter().map(|r| r.written()).sum(),
            conflicts: reports.iter().map(|r| r.conflicts.len() as u64).sum(),
            errors: reports.iter().map(|r| r.errors.len() as u64).sum(),
            text: reports
                .iter()
                .map(|r| r.one_line())
                .collect::<Vec<_>>()
                .join("; "),
        };
        session.record_last_run(summary).await;
    }
    let mut codes: Vec<u8> = outcome
        .reports
        .iter()
        .map(|r| code_for_report(&r.report))
        .collect();
    if let Some(e) = failure {
        codes.push(e.code);
        outcome.error = Some(ErrorOutput {
            message: e.message,
            remedy: e.remedy,
        });
    }
    outcome.exit_code = worst(codes);
}

fn print_outcomes(outcomes: &[AccountOutcome]) {
    for o in outcomes {
        println!("== account {} ==", o.account);
        for r in &o.reports {
            print!("{}", r.report);
        }
        if let Some(e) = &o.error {
            println!("  error: {}", e.message);
            if let Some(remedy) = &e.remedy {
                println!("  what to do: {remedy}");
            }
        }
        let pending: usize = o
            .reports
            .iter()
            .map(|r| r.report.pending_deletions.len())
            .sum();
        if pending > 0 {
            println!(
                "  {pending} deletion(s) await confirmation and were left: run again with --confirm-deletions to carry them out"
            );
        }
        println!();
    }
    let rows: Vec<Vec<String>> = outcomes
        .iter()
        .flat_map(|o| {
            let status = match o.exit_code {
                exit::SUCCESS => "ok",
                exit::RECORDS_FAILED => "some records failed",
                exit::USAGE => "configuration error",
                exit::REAUTHORIZE => "needs re-authorisation",
                exit::GUARD => "stopped by a guard",
                _ => "failed",
            };
            let mut rows: Vec<Vec<String>> = o
                .reports
                .iter()
                .map(|r| {
                    let rep = &r.report;
                    vec![
                        o.account.clone(),
                        r.collection.to_owned(),
                        format!(
                            "+{} ~{} -{}",
                            rep.crm.created, rep.crm.updated, rep.crm.deleted
                        ),
                        format!(
                            "+{} ~{} -{}",
                            rep.provider.created, rep.provider.updated, rep.provider.deleted
                        ),
                        rep.conflicts.len().to_string(),
                        rep.skipped.len().to_string(),
                        rep.errors.len().to_string(),
                        if rep.nothing_to_do() {
                            "nothing to do".to_owned()
                        } else {
                            status.to_owned()
                        },
                    ]
                })
                .collect();
            if o.reports.is_empty() {
                rows.push(vec![
                    o.account.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    status.to_owned(),
                ]);
            }
            rows
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "account",
                "collection",
                "crm",
                "provider",
                "conflicts",
                "skipped",
                "errors",
                "status"
            ],
            &rows
        )
    );
}

/// `crmsync sync [<account>...]`: every account named (all when none), at most
/// `concurrency` at a time.
///
/// # Errors
/// An unknown account name.
pub async fn sync(
    ctx: Arc<Context>,
    names: &[String],
    json: bool,
    run: RunArgs,
) -> Result<u8, CliError> {
    run_many(ctx, names, json, run, RunMode::Sync).await
}

/// `crmsync pull <account>`.
///
/// # Errors
/// An unknown account name.
pub async fn pull(ctx: Arc<Context>, name: &str, json: bool, run: RunArgs) -> Result<u8, CliError> {
    run_many(ctx, &[name.to_owned()], json, run, RunMode::Pull).await
}

async fn run_many(
    ctx: Arc<Context>,
    names: &[String],
    json: bool,
    run: RunArgs,
    mode: RunMode,
) -> Result<u8, CliError> {
    let accounts = ctx.accounts(names)?;
    let flags = RunFlags {
        confirm_deletions: run.confirm_deletions,
        allow_mass_deletion: run.allow_mass_deletion,
    };
    let progress = ProgressOutput::new(json);
    let limit = Arc::new(Semaphore::new(ctx.config.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (i, account) in accounts.into_iter().enumerate() {
        let ctx = Arc::clone(&ctx);
        let limit = Arc::clone(&limit);
        let progress = progress.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.ok();
            (i, run_account(ctx, account, flags, mode, progress).await)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                return Err(CliError {
                    code: exit::RECORDS_FAILED,
                    message: format!("an account's run panicked: {e}"),
                    remedy: Some("report it, with the output of `-vv`".into()),
                });
            }
        }
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<AccountOutcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    let code = worst(outcomes.iter().map(|o| o.exit_code));
    if json {
        print_json(&RunOutput {
            exit_code: code,
            accounts: outcomes,
        })?;
    } else {
        print_outcomes(&outcomes);
    }
    Ok(code)
}

/// `crmsync push <account> <crm-id>...`.
///
/// # Errors
/// An unknown account or record id (exit code 2).
pub async fn push(ctx: &Context, name: &str, ids: &[String], json: bool) -> Result<u8, CliError> {
    let account = ctx.config.account(name)?.clone();
    let mut session = ctx.session(&account, RunFlags::default()).await?;
    let in_events: Vec<String> = all_ids(&session.crm_events)?;
    let in_contacts: Vec<String> = all_ids(&session.crm_contacts)?;
    let mut event_ids = Vec::new();
    let mut contact_ids = Vec::new();
    for id in ids {
        let crm_id = CrmId::new(id.as_str())
            .map_err(|e| CliError::from_error(&format!("record id {id:?}"), &e))?;
        if in_events.contains(id) && session.events.is_some() {
            event_ids.push(crm_id);
        } else if in_contacts.contains(id) && session.contacts.is_some() {
            contact_ids.push(crm_id);
        } else {
            return Err(CliError::usage(format!(
                "no record {id:?} in the events or contacts account {name:?} syncs ({})",
                ctx.config.crm_folder(&account).display()
            )));
        }
    }
    let mut outcome = AccountOutcome {
        account: account.name.clone(),
        exit_code: exit::SUCCESS,
        error: None,
        reports: Vec::new(),
    };
    let mut failure = None;
    if !event_ids.is_empty()
        && let Some(result) = session.run::<Event>(ctx, RunOp::Push(&event_ids)).await
    {
        match result {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "events",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "pushing events", &e)),
        }
    }
    if !contact_ids.is_empty()
        && failure.is_none()
        && let Some(result) = session.run::<Contact>(ctx, RunOp::Push(&contact_ids)).await
    {
        match result {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "contacts",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "pushing contacts", &e)),
        }
    }
    if let Err(e) = session.persist() {
        failure = failure.or(Some(e));
    }
    finish_outcome(&session, &mut outcome, failure).await;
    let code = outcome.exit_code;
    let outcomes = vec![outcome];
    if json {
        print_json(&RunOutput {
            exit_code: code,
            accounts: outcomes,
        })?;
    } else {
        print_outcomes(&outcomes);
    }
    Ok(code)
}

fn all_ids<R: Record>(crm: &crate::filecrm::FileCrm<R>) -> Result<Vec<String>, CliError> {
    Ok(crm
        .all()
        .map_err(|e| CliError::from_error(&format!("reading {}", crm.data_path().display()), &e))?
        .into_iter()
        .map(|s| s.id.to_string())
        .collect())
}

// ---------------------------------------------------------------- reset

/// What `reset` covers.
#[derive(Debug, Clone, Copy)]
pub struct ResetArgs {
    /// The calendar's links.
    pub calendar: bool,
    /// The contacts' links.
    pub contacts: bool,
    /// Also delete our copies on the provider.
    pub remove_remote: bool,
    /// Do not ask.
    pub yes: bool,
    /// Also forget the account's tokens (`--all`).
    pub tokens: bool,
    /// Revoke the grant at the provider before forgetting the tokens.
    pub revoke: bool,
}

/// `crmsync reset <account>`: asks on stdin unless `--yes`.
///
/// # Errors
/// Unknown account; not confirmed (exit code 2).
pub async fn reset(ctx: &Context, name: &str, args: ResetArgs) -> Result<u8, CliError> {
    let account = ctx.config.account(name)?.clone();
    if args.revoke && account.provider != ProviderKind::Google {
        return Err(CliError::usage(format!(
            "--revoke: the {} provider offers no revocation crmsync can call",
            account.provider
        ))
        .with_remedy(match account.provider {
            ProviderKind::Microsoft => format!(
                "run `crmsync reset {name} --all` (it forgets the tokens), then remove the app's access at https://myapps.microsoft.com (work or school) or https://account.live.com/consent/Manage (personal)"
            ),
            _ => format!("run `crmsync reset {name} --all` without --revoke"),
        }));
    }
    let session = match ctx.session(&account, RunFlags::default()).await {
        Ok(s) => s,
        // The provider no longer accepts the tokens: a full reset can still forget
        // everything kept here (nothing on the provider can be deleted without signing in).
        Err(e)
            if e.code == exit::REAUTHORIZE
                && args.tokens
                && !args.remove_remote
                && account.provider != ProviderKind::Memory =>
        {
            return reset_signed_out(ctx, &account, args, e).await;
        }
        Err(e) => return Err(e),
    };
    let events = session.events.as_ref().filter(|_| args.calendar);
    let contacts = session.contacts.as_ref().filter(|_| args.contacts);
    if events.is_none() && contacts.is_none() {
        return Err(CliError::usage(format!(
            "account {name:?} does not sync what you asked to reset"
        )));
    }
    let mut links = 0;
    if let Some(s) = events {
        links += ctx.state()?.link_count(&s.key()).await.unwrap_or(0);
    }
    if let Some(s) = contacts {
        links += ctx.state()?.link_count(&s.key()).await.unwrap_or(0);
    }
    let scope = match (events.is_some(), contacts.is_some()) {
        (true, true) => "calendar and contact",
        (true, false) => "calendar",
        _ => "contact",
    };
    if !args.yes {
        println!(
            "This forgets the {links} {scope} link(s) of account {name:?}{}.",
            if args.remove_remote {
                ", and DELETES the copies crmsync made on the provider"
            } else {
                " (both sides keep their records; the next sync re-links them)"
            }
        );
        if args.tokens && account.provider != ProviderKind::Memory {
            println!(
                "It also forgets the account's tokens{} (sign in again with `crmsync auth {name}`).",
                if args.revoke {
                    " and revokes its grant at Google"
                } else {
                    ""
                }
            );
        }
        confirm()?;
    }
    let mut reports = Vec::new();
    for (collection, result) in [
        (
            "events",
            match events {
                Some(s) => Some(s.reset(args.remove_remote).await),
                None => None,
            },
        ),
        (
            "contacts",
            match contacts {
                Some(s) => Some(s.reset(args.remove_remote).await),
                None => None,
            },
        ),
    ] {
        match result {
            Some(Ok((report, counts))) => {
                println!(
                    "{collection}: forgot {} link(s), {} intent(s), {} deferred item(s), {} cursor(s); deleted {} copy(ies) on the provider",
                    counts.links,
                    counts.intents,
                    counts.deferred,
                    counts.cursors,
                    report.provider.deleted
                );
                for e in &report.errors {
                    println!(
                        "  error: {} {}: {} -> {}",
                        e.side,
                        e.id.as_deref().unwrap_or("?"),
                        e.message,
                        e.remedy.replace("<account>", &account.name)
                    );
                }
                reports.push(report);
            }
            Some(Err(e)) => {
                session.persist()?;
                return Err(account_error(
                    &account,
                    &format!("resetting the {collection}"),
                    &e,
                ));
            }
            None => {}
        }
    }
    session.persist()?;
    let mut codes: Vec<u8> = reports.iter().map(code_for_report).collect();
    if args.tokens && session.provider.tokens().is_some() {
        codes.push(forget_tokens(ctx, &account, session.provider.as_ref(), args.revoke).await?);
    }
    Ok(worst(codes))
}

/// Asks `Continue? [y/N]` on stdin.
fn confirm() -> Result<(), CliError> {
    print!("Continue? [y/N] ");
    flush_stdout();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    let yes = matches!(read, Ok(n) if n > 0)
        && matches!(answer.trim().to_lowercase().as_str(), "y" | "yes");
    if yes {
        Ok(())
    } else {
        println!();
        Err(CliError::usage("not confirmed: nothing was reset")
            .with_remedy("answer `y`, or pass --yes"))
    }
}

/// `reset --all` of an account that must sign in again: the provider cannot be reached,
/// so every link, cursor, intent and deferred item of the account is forgotten from the
/// state alone, then its tokens.
async fn reset_signed_out(
    ctx: &Context,
    account: &AccountConfig,
    args: ResetArgs,
    why: CliError,
) -> Result<u8, CliError> {
    let provider = ctx.provider(account)?;
    let Some(tokens) = provider.tokens() else {
        return Err(why);
    };
    println!(
        "Account {:?} must sign in again ({}), so {} cannot be reached: this forgets everything crmsync keeps for it here (links, cursors, intents, deferred items) and its tokens{}.",
        account.name,
        why.message,
        provider_name(account.provider),
        if args.revoke {
            ", after trying to revoke its grant"
        } else {
            ""
        }
    );
    if !args.yes {
        confirm()?;
    }
    let counts = ctx
        .state()?
        .reset(&crmsync_core::ResetScope {
            account: tokens.account.clone(),
            kind: None,
            collection: None,
        })
        .await
        .map_err(|e| account_error(account, "resetting the state", &e))?;
    println!(
        "state: forgot {} link(s), {} intent(s), {} deferred item(s), {} cursor(s)",
        counts.links, counts.intents, counts.deferred, counts.cursors
    );
    forget_tokens(ctx, account, provider.as_ref(), args.revoke).await
}

/// The provider's name in messages.
fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Google => "Google",
        ProviderKind::Microsoft => "Microsoft",
        ProviderKind::Memory => "the memory provider",
    }
}

/// `reset --all`: revokes the grant when asked (Google), purges the tokens, and records
/// that the account must sign in again.
async fn forget_tokens(
    ctx: &Context,
    account: &AccountConfig,
    provider: &dyn Provider,
    revoke: bool,
) -> Result<u8, CliError> {
    let Some(tokens) = provider.tokens() else {
        return Ok(exit::SUCCESS);
    };
    let mut code = exit::SUCCESS;
    if revoke && let Some(google) = provider.as_google() {
        match google.auth().revoke(google.account()).await {
            Ok(()) => println!("tokens: the grant was revoked at Google"),
            Err(e) => {
                println!(
                    "  error: revoking the grant at Google: {e} -> {}",
                    e.remedy()
                );
                println!(
                    "  the tokens are forgotten here all the same; remove the app's access at https://myaccount.google.com/permissions if needed"
                );
                code = exit::RECORDS_FAILED;
            }
        }
    }
    tokens
        .store
        .purge(tokens.account)
        .await
        .map_err(|e| account_error(account, "forgetting the tokens", &e))?;
    println!(
        "tokens: forgotten; run `crmsync auth {}` before the next sync",
        account.name
    );
    let status = AccountStatus::NeedsReauthorization {
        cause: "its tokens were forgotten by `crmsync reset --all`".into(),
    };
    if let Err(e) = ctx
        .state()?
        .set_account_status(tokens.account, status)
        .await
    {
        tracing::warn!(error = %e, "could not record the account status");
    }
    Ok(code)
}

// ---------------------------------------------------------------- status

#[derive(Serialize)]
struct StatusRow {
    account: String,
    provider: &'static str,
    status: AccountStatus,
    last_run: Option<RunSummary>,
}

/// `crmsync status [--json]`.
///
/// # Errors
/// The state cannot be read.
pub async fn status(ctx: &Context, json: bool) -> Result<u8, CliError> {
    let state = ctx.state()?;
    let mut rows = Vec::new();
    for account in &ctx.config.accounts {
        let id = crmsync_core::AccountId::new(account.account_id())
            .map_err(|e| CliError::from_error(&format!("account {:?}", account.name), &e))?;
        let status = state
            .account_status(&id)
            .await
            .map_err(|e| CliError::from_error("reading the state", &e))?;
        let last_run = state
            .last_run(&id)
            .await
            .map_err(|e| CliError::from_error("reading the state", &e))?;
        rows.push(StatusRow {
            account: account.name.clone(),
            provider: account.provider.as_str(),
            status,
            last_run,
        });
    }
    let code = worst(rows.iter().map(|r| match r.status {
        AccountStatus::Ok => exit::SUCCESS,
        AccountStatus::NeedsReauthorization { .. } => exit::REAUTHORIZE,
        AccountStatus::Failing { .. } => exit::RECORDS_FAILED,
    }));
    if json {
        print_json(&rows)?;
        return Ok(code);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let status = match &r.status {
                AccountStatus::Ok => "ok".to_owned(),
                AccountStatus::NeedsReauthorization { cause } => {
                    format!(
                        "needs re-authorisation ({cause}): run `crmsync auth {}`",
                        r.account
                    )
                }
                AccountStatus::Failing { last_error } => format!("failing: {last_error}"),
            };
            let (when, text) = match &r.last_run {
                Some(s) => (
                    s.finished_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                    s.text.clone(),
                ),
                None => ("never".to_owned(), String::new()),
            };
            vec![r.account.clone(), r.provider.to_owned(), status, when, text]
        })
        .collect();
    print!(
        "{}",
        table(
            &["account", "provider", "status", "last run", "summary"],
            &cells
        )
    );
    Ok(code)
}
