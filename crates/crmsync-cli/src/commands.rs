//! The commands: each returns its exit code, or a [`CliError`] that stopped it.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use crmsync_core::engine::SyncReport;
use crmsync_core::{
    AccountStatus, CalendarStoreExt, CrmId, ErrorKind, Record, RunSummary, SyncState,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::RunArgs;
use crate::config::{AccountConfig, Collection, Config, DEFAULT_CONFIG_FILE, ProviderKind};
use crate::exit::{self, CliError, code_for_error, code_for_report, worst};
use crate::output::{PlanRow, ProgressOutput, plan_rows, table};
use crate::provider::not_available;
use crate::session::{Context, RunFlags, Session, account_error};

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
/// browser stops there with the code in its address bar (Google accepts any loopback port
/// for desktop clients).
const PASTE_REDIRECT: &str = "http://127.0.0.1:1/";

/// `crmsync auth <account>`: signs a Google account in and saves its tokens (encrypted) in
/// the state database.
///
/// # Errors
/// Unknown account; a configuration error; `--device` on Google (exit code 2); a provider
/// not available yet.
pub async fn auth(ctx: &Context, name: &str, mode: AuthMode) -> Result<u8, CliError> {
    let account = ctx.config.account(name)?.clone();
    if account.provider == ProviderKind::Memory {
        return auth_memory(&ctx.config, name);
    }
    let provider = ctx.provider(&account)?;
    let Some(google) = provider.as_google() else {
        return Err(not_available(account.provider));
    };
    let context = format!("account {:?}: signing in", account.name);
    let result = match mode {
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
                    println!(
                        "Open this address in a browser, sign in to Google and allow access:\n\n  {url}\n"
                    );
                    println!(
                        "Waiting for the browser to come back (up to {} s; no browser here? stop and run `crmsync auth {} --paste`)...",
                        timeout.as_secs(),
                        account.name
                    );
                    flush_stdout();
                    if open_browser {
                        try_open_browser(url.as_str());
                    }
                })
                .await
        }
        AuthMode::Paste => {
            let pending = google
                .auth()
                .authorization_request(PASTE_REDIRECT)
                .map_err(|e| account_error(&account, &context, &e))?;
            println!(
                "Open this address in a browser (on any machine), sign in to Google and allow access:\n\n  {}\n",
                pending.url()
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
            google
                .auth()
                .complete_from_pasted_redirect(google.account(), &pending, line)
                .await
        }
    };
    match result {
        Ok(_) => {
            // The tokens were saved by the sign-in, their scopes checked.
            if let Ok(state) = ctx.state()
                && let Err(e) = state
                    .set_account_status(google.account(), AccountStatus::Ok)
                    .await
            {
                tracing::warn!(error = %e, "could not record the account status");
            }
            println!(
                "Signed in: account {:?} is authorised (every scope granted); its tokens are saved, encrypted, in {}.",
                account.name,
                ctx.config.state_path().display()
            );
            Ok(exit::SUCCESS)
        }
        Err(e) => Err(account_error(&account, &context, &e)),
    }
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

// ---------------------------------------------------------------- doctor

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warning,
    Error,
}

struct Finding {
    level: Level,
    what: String,
    remedy: Option<String>,
    code: u8,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            what: what.into(),
            remedy: None,
            code: exit::SUCCESS,
        }
    }
    fn warning(what: impl Into<String>, remedy: impl Into<String>) -> Self {
        Finding {
            level: Level::Warning,
            what: what.into(),
            remedy: Some(remedy.into()),
            code: exit::SUCCESS,
        }
    }
    fn error(what: impl Into<String>, remedy: impl Into<String>, code: u8) -> Self {
        Finding {
            level: Level::Error,
            what: what.into(),
            remedy: Some(remedy.into()),
            code,
        }
    }
    fn from_cli(e: CliError) -> Self {
        Finding::error(
            e.message,
            e.remedy.unwrap_or_else(|| "see the message".into()),
            e.code,
        )
    }
    fn print(&self) {
        let tag = match self.level {
            Level::Ok => "ok     ",
            Level::Warning => "warning",
            Level::Error => "ERROR  ",
        };
        println!("  {tag} {}", self.what);
        if let Some(remedy) = &self.remedy {
            println!("          -> {remedy}");
        }
    }
}

/// `crmsync doctor [<account>]`: checks and prints each finding with its remedy.
///
/// # Errors
/// Unknown account.
pub async fn doctor(ctx: &Context, name: Option<&str>) -> Result<u8, CliError> {
    let accounts = ctx.accounts(&name.map(str::to_owned).into_iter().collect::<Vec<_>>())?;
    let mut findings = vec![Finding::ok(format!(
        "configuration {} is valid ({} account(s))",
        ctx.config.path.display(),
        ctx.config.accounts.len()
    ))];
    let state = ctx.state()?;
    let state_path = ctx.config.state_path();
    match state.keys(&probe_account()?).await {
        Ok(_) => findings.push(Finding::ok(format!(
            "state {} is reachable",
            state_path.display()
        ))),
        Err(e) => findings.push(Finding::error(
            format!("state {}: {e}", state_path.display()),
            e.remedy(),
            code_for_error(&e),
        )),
    }
    println!("crmsync doctor");
    for f in &findings {
        f.print();
    }
    let mut codes: Vec<u8> = findings.iter().map(|f| f.code).collect();
    for account in &accounts {
        println!("account {:?} ({}):", account.name, account.provider);
        let findings = doctor_account(ctx, account, &state).await;
        for f in &findings {
            f.print();
        }
        codes.extend(findings.iter().map(|f| {
            if f.level == Level::Error {
                f.code.max(1)
            } else {
                f.code
            }
        }));
    }
    let code = worst(codes);
    if code == exit::SUCCESS {
        println!("Everything looks right.");
    } else {
        println!("Something is wrong: see the ERROR lines above and what to do about them.");
    }
    Ok(code)
}

/// The Google-only checks: tokens stored and valid (refreshed when due), scopes granted,
/// the People API reachable. False when the API checks that follow cannot work.
async fn doctor_google(
    account: &AccountConfig,
    google: &crate::provider::GoogleProvider,
    findings: &mut Vec<Finding>,
) -> bool {
    let auth = google.auth();
    let again = format!("run `crmsync auth {}`", account.name);
    let tokens = match auth.token_store().load(google.account()).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            findings.push(Finding::error(
                "no tokens are stored for this account: it was never signed in (or was reset)",
                again,
                exit::REAUTHORIZE,
            ));
            return false;
        }
        Err(e) => {
            findings.push(Finding::error(
                format!("the stored tokens cannot be read: {e}"),
                e.remedy().replace("<account>", &account.name),
                code_for_error(&e),
            ));
            return false;
        }
    };
    if let Err(e) = auth.access_token(google.account()).await {
        findings.push(Finding::error(
            format!("the token is not valid: {e}"),
            e.remedy().replace("<account>", &account.name),
            code_for_error(&e),
        ));
        return false;
    }
    // A request proves the token: Google may have revoked it before its expiry.
    match google.contact_groups().await {
        Ok(groups) => {
            findings.push(Finding::ok(
                "the access token is valid: Google accepts it (tokens encrypted in the state)",
            ));
            findings.push(Finding::ok(format!(
                "People API reachable ({} contact group(s))",
                groups.len()
            )));
        }
        Err(e) if matches!(e.kind(), ErrorKind::ReauthorizationRequired { .. }) => {
            findings.push(Finding::error(
                format!("the token is not valid: {e}"),
                e.remedy().replace("<account>", &account.name),
                exit::REAUTHORIZE,
            ));
            return false;
        }
        Err(e) => findings.push(Finding::error(
            format!("People API not reachable: {e}"),
            e.remedy().replace("<account>", &account.name),
            code_for_error(&e),
        )),
    }
    // The scopes of the tokens now stored (a refresh may have replaced them).
    let tokens = match auth.token_store().load(google.account()).await {
        Ok(Some(fresh)) => fresh,
        _ => tokens,
    };
    match auth.check_scopes(&tokens) {
        Ok(()) => findings.push(Finding::ok(format!(
            "every scope is granted ({})",
            google.config().scopes.join(", ")
        ))),
        Err(e) => findings.push(Finding::error(
            format!("{e}"),
            format!("{again} and leave every permission ticked on Google's consent screen"),
            exit::REAUTHORIZE,
        )),
    }
    true
}

fn probe_account() -> Result<crmsync_core::AccountId, CliError> {
    crmsync_core::AccountId::new("crmsync-doctor").map_err(|e| CliError::from_error("doctor", &e))
}

async fn doctor_account(
    ctx: &Context,
    account: &AccountConfig,
    state: &Arc<dyn SyncState>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(env) = &account.client_secret_env {
        // Read into a secret type and only ever report whether it is there.
        let secret = std::env::var(env).ok().map(SecretString::from);
        match secret {
            Some(s) if !s.expose_secret().is_empty() => findings.push(Finding::ok(format!(
                "the client secret is set (environment variable {env})"
            ))),
            _ => {
                let message = format!("environment variable {env} (the client secret) is not set");
                if account.provider == ProviderKind::Memory {
                    findings.push(Finding::warning(
                        message,
                        "the memory provider does not need it; set it before switching to a real provider",
                    ));
                } else {
                    findings.push(Finding::error(
                        message,
                        format!("export {env}=<the OAuth client secret> before running crmsync"),
                        exit::USAGE,
                    ));
                }
            }
        }
    }
    let crm_folder = ctx.config.crm_folder(account);
    match ctx.crm(account) {
        Ok((events, contacts)) => match (events.all(), contacts.all()) {
            (Ok(e), Ok(c)) => findings.push(Finding::ok(format!(
                "file CRM {} is readable ({} event(s), {} contact(s))",
                crm_folder.display(),
                e.len(),
                c.len()
            ))),
            (Err(e), _) | (_, Err(e)) => findings.push(Finding::error(
                format!("file CRM {}: {e}", crm_folder.display()),
                e.remedy().replace("<account>", &account.name),
                code_for_error(&e),
            )),
        },
        Err(e) => findings.push(Finding::from_cli(e)),
    }
    let provider = match ctx.provider(account) {
        Ok(p) => p,
        Err(e) => {
            findings.push(Finding::from_cli(e));
            return findings;
        }
    };
    if let Some(google) = provider.as_google()
        && !doctor_google(account, google, &mut findings).await
    {
        return findings;
    }
    match provider.calendars().calendars().await {
        Ok(list) => findings.push(Finding::ok(format!(
            "provider reachable: {} ({} calendar(s))",
            provider.location(),
            list.len()
        ))),
        Err(e) => {
            findings.push(Finding::error(
                format!("provider not reachable: {e}"),
                e.remedy().replace("<account>", &account.name),
                code_for_error(&e),
            ));
            return findings;
        }
    }
    if account.syncs(Collection::Events) {
        let name = account.calendar.as_deref().unwrap_or("");
        match provider.calendars().calendar_by_name(name).await {
            Ok(info) => findings.push(Finding::ok(format!(
                "calendar {:?} resolves (id {})",
                info.name, info.id
            ))),
            Err(e) => {
                let mut what = format!("calendar: {e}");
                if matches!(e.kind(), ErrorKind::CalendarNotFound { .. })
                    && let Ok(list) = provider.calendars().calendars().await
                {
                    let names: Vec<String> = list
                        .iter()
                        .filter(|c| c.writable)
                        .map(|c| format!("{:?}", c.name))
                        .collect();
                    what.push_str(&format!(" (writable calendars: {})", names.join(", ")));
                }
                findings.push(Finding::error(
                    what,
                    e.remedy().replace("<account>", &account.name),
                    code_for_error(&e),
                ));
            }
        }
    }
    if account.syncs(Collection::Contacts) {
        match provider.address_book(account.contacts_name()).await {
            Ok(info) => findings.push(Finding::ok(format!(
                "contact group {:?} resolves (id {})",
                info.name, info.id
            ))),
            Err(e) => findings.push(Finding::error(
                format!("contact group: {e}"),
                "set `contacts` to the name of an existing contact group or folder",
                code_for_error(&e),
            )),
        }
        if provider.kind() == ProviderKind::Google && account.contacts_name() != "Contacts" {
            findings.push(Finding::warning(
                format!(
                    "the whole Google address book is synced, not only the group {:?}",
                    account.contacts_name()
                ),
                "the group is checked but is not a filter yet; memberships travel in the contacts' `groups` field",
            ));
        }
    }
    match crmsync_core::AccountId::new(account.account_id()) {
        Ok(id) => match state.account_status(&id).await {
            Ok(AccountStatus::Ok) => findings.push(Finding::ok("account status: ok")),
            Ok(AccountStatus::NeedsReauthorization { cause }) => findings.push(Finding::error(
                format!("the account must be authorised again: {cause}"),
                format!("run `crmsync auth {}`", account.name),
                exit::REAUTHORIZE,
            )),
            Ok(AccountStatus::Failing { last_error }) => findings.push(Finding::warning(
                format!("the last run failed: {last_error}"),
                "fix what the error says, then run `crmsync sync` again",
            )),
            Err(e) => findings.push(Finding::error(
                format!("account status: {e}"),
                e.remedy().replace("<account>", &account.name),
                code_for_error(&e),
            )),
        },
        Err(e) => findings.push(Finding::error(e.to_string(), e.remedy(), exit::USAGE)),
    }
    findings
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
        let session = ctx.session(account, RunFlags::default()).await?;
        let context = |c: &str| format!("account {:?}: planning the {c}", account.name);
        if let Some(s) = &session.events {
            let plan = s
                .plan()
                .await
                .map_err(|e| account_error(account, &context("events"), &e))?;
            outputs.push(plan_output(&account.name, Collection::Events, &plan));
        }
        if let Some(s) = &session.contacts {
            let plan = s
                .plan()
                .await
                .map_err(|e| account_error(account, &context("contacts"), &e))?;
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
    if let Some(s) = session.events.take() {
        let (p, bar) = progress.for_run(format!("{} events", account.name));
        bars.extend(bar);
        session.events = Some(s.with_progress(p));
    }
    if let Some(s) = session.contacts.take() {
        let (p, bar) = progress.for_run(format!("{} contacts", account.name));
        bars.extend(bar);
        session.contacts = Some(s.with_progress(p));
    }
    let mut failure = None;
    if let Some(s) = &session.events {
        let result = match mode {
            RunMode::Sync => s.sync().await,
            RunMode::Pull => s.pull().await,
        };
        match result {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "events",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "syncing the events", &e)),
        }
    }
    if failure.is_none()
        && let Some(s) = &session.contacts
    {
        let result = match mode {
            RunMode::Sync => s.sync().await,
            RunMode::Pull => s.pull().await,
        };
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
    let session = ctx.session(&account, RunFlags::default()).await?;
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
    if let (Some(s), false) = (&session.events, event_ids.is_empty()) {
        match s.push(&event_ids).await {
            Ok(r) => outcome.reports.push(CollectionReport {
                collection: "events",
                report: r,
            }),
            Err(e) => failure = Some(account_error(&account, "pushing events", &e)),
        }
    }
    if let (Some(s), false, None) = (&session.contacts, contact_ids.is_empty(), &failure) {
        match s.push(&contact_ids).await {
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
    let session = match ctx.session(&account, RunFlags::default()).await {
        Ok(s) => s,
        // Google no longer accepts the tokens: a full reset can still forget everything
        // kept here (nothing on the provider can be deleted without signing in).
        Err(e)
            if e.code == exit::REAUTHORIZE
                && args.tokens
                && !args.remove_remote
                && account.provider == ProviderKind::Google =>
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
        if args.tokens && account.provider == ProviderKind::Google {
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
                        e.remedy
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
    if args.tokens
        && let Some(google) = session.provider.as_google()
    {
        codes.push(forget_tokens(ctx, &account, google, args.revoke).await?);
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

/// `reset --all` of a Google account that must sign in again: the provider cannot be
/// reached, so every link, cursor, intent and deferred item of the account is forgotten
/// from the state alone, then its tokens.
async fn reset_signed_out(
    ctx: &Context,
    account: &AccountConfig,
    args: ResetArgs,
    why: CliError,
) -> Result<u8, CliError> {
    let provider = ctx.provider(account)?;
    let Some(google) = provider.as_google() else {
        return Err(why);
    };
    println!(
        "Account {:?} must sign in again ({}), so Google cannot be reached: this forgets everything crmsync keeps for it here (links, cursors, intents, deferred items) and its tokens{}.",
        account.name,
        why.message,
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
            account: google.account().clone(),
            kind: None,
            collection: None,
        })
        .await
        .map_err(|e| account_error(account, "resetting the state", &e))?;
    println!(
        "state: forgot {} link(s), {} intent(s), {} deferred item(s), {} cursor(s)",
        counts.links, counts.intents, counts.deferred, counts.cursors
    );
    forget_tokens(ctx, account, google, args.revoke).await
}

/// `reset --all` of a Google account: revokes the grant when asked, purges the tokens, and
/// records that the account must sign in again.
async fn forget_tokens(
    ctx: &Context,
    account: &AccountConfig,
    google: &crate::provider::GoogleProvider,
    revoke: bool,
) -> Result<u8, CliError> {
    let mut code = exit::SUCCESS;
    if revoke {
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
    google
        .auth()
        .token_store()
        .purge(google.account())
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
        .set_account_status(google.account(), status)
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
