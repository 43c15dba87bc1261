//! `crmsync doctor`: the configuration, the state, the file CRM, and each account's
//! provider checked, every result a [`Finding`] (the type the providers' own diagnostics
//! return) printed with its remedy, the worst one giving the exit code.

use std::sync::Arc;

use crmsync_core::diagnostics::{Diagnosis, Finding, Severity};
use crmsync_core::{AccountStatus, CalendarStoreExt, ErrorKind, SyncState};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Serialize;

use crate::config::{AccountConfig, Collection, ProviderKind};
use crate::exit::{self, CliError, worst};
use crate::provider::Provider;
use crate::session::Context;

/// The exit code a finding calls for: 0 when it passed or is a warning; 3 when the account
/// must sign in again; 2 for configuration problems (a calendar name that does not
/// resolve, a missing variable); 1 otherwise.
pub fn code_for_finding(finding: &Finding) -> u8 {
    if finding.severity != Severity::Error {
        return exit::SUCCESS;
    }
    if finding.needs_reauthorization() {
        return exit::REAUTHORIZE;
    }
    let configuration = [
        ErrorKind::InvalidInput,
        ErrorKind::CalendarNotFound {
            name: String::new(),
        },
        ErrorKind::CalendarNameMissing,
        ErrorKind::NoCalendars,
    ];
    match finding.kind.as_deref() {
        Some(kind) if configuration.iter().any(|k| k.as_str() == kind) => exit::USAGE,
        _ => exit::RECORDS_FAILED,
    }
}

/// The error kind standing for a command's exit code, for findings made of a
/// [`CliError`].
fn kind_for_code(code: u8) -> ErrorKind {
    match code {
        exit::USAGE => ErrorKind::InvalidInput,
        exit::REAUTHORIZE => ErrorKind::ReauthorizationRequired {
            cause: String::new(),
        },
        _ => ErrorKind::Provider,
    }
}

/// A failed check from a command error (its message, remedy and exit code).
fn from_cli(check: &str, e: CliError) -> Finding {
    Finding {
        check: check.to_owned(),
        severity: Severity::Error,
        message: e.message,
        kind: Some(kind_for_code(e.code).as_str().to_owned()),
        remedy: Some(e.remedy.unwrap_or_else(|| "see the message".into())),
    }
}

/// A failed check of a configuration problem found by the command itself.
fn config_error(check: &str, message: impl Into<String>, remedy: impl Into<String>) -> Finding {
    Finding {
        check: check.to_owned(),
        severity: Severity::Error,
        message: message.into(),
        kind: Some(ErrorKind::InvalidInput.as_str().to_owned()),
        remedy: Some(remedy.into()),
    }
}

/// A failed check that needs a new sign-in.
fn reauthorize(check: &str, message: impl Into<String>, remedy: impl Into<String>) -> Finding {
    Finding {
        check: check.to_owned(),
        severity: Severity::Error,
        message: message.into(),
        kind: Some(
            ErrorKind::ReauthorizationRequired {
                cause: String::new(),
            }
            .as_str()
            .to_owned(),
        ),
        remedy: Some(remedy.into()),
    }
}

fn print_finding(f: &Finding) {
    let tag = match f.severity {
        Severity::Ok => "ok     ",
        Severity::Warning => "warning",
        Severity::Error => "ERROR  ",
    };
    println!("  {tag} {}", f.message);
    if let Some(remedy) = &f.remedy
        && f.severity != Severity::Ok
    {
        println!("          -> {remedy}");
    }
}

#[derive(Serialize)]
struct AccountDoctor {
    account: String,
    provider: &'static str,
    exit_code: u8,
    findings: Vec<Finding>,
}

#[derive(Serialize)]
struct DoctorOutput {
    exit_code: u8,
    findings: Vec<Finding>,
    accounts: Vec<AccountDoctor>,
}

/// `crmsync doctor [<account>] [--json]`: checks and prints each finding with its remedy.
///
/// # Errors
/// Unknown account.
pub async fn doctor(ctx: &Context, name: Option<&str>, json: bool) -> Result<u8, CliError> {
    let accounts = ctx.accounts(&name.map(str::to_owned).into_iter().collect::<Vec<_>>())?;
    let mut general = vec![Finding::ok(
        "configuration",
        format!(
            "configuration {} is valid ({} account(s))",
            ctx.config.path.display(),
            ctx.config.accounts.len()
        ),
    )];
    let state = ctx.state()?;
    let state_path = ctx.config.state_path();
    let probe = crmsync_core::AccountId::new("crmsync-doctor")
        .map_err(|e| CliError::from_error("doctor", &e))?;
    match state.keys(&probe).await {
        Ok(_) => general.push(Finding::ok(
            "state",
            format!("state {} is reachable", state_path.display()),
        )),
        Err(e) => {
            let mut f = Finding::from_error("state", &e);
            f.message = format!("state {}: {e}", state_path.display());
            general.push(f);
        }
    }
    let mut per_account = Vec::new();
    for account in &accounts {
        let mut findings = account_findings(ctx, account, &state).await;
        for f in &mut findings {
            f.remedy = f
                .remedy
                .take()
                .map(|r| r.replace("<account>", &account.name));
        }
        per_account.push(AccountDoctor {
            account: account.name.clone(),
            provider: account.provider.as_str(),
            exit_code: worst(findings.iter().map(code_for_finding)),
            findings,
        });
    }
    let code = worst(
        general
            .iter()
            .map(code_for_finding)
            .chain(per_account.iter().map(|a| a.exit_code)),
    );
    if json {
        let text = serde_json::to_string_pretty(&DoctorOutput {
            exit_code: code,
            findings: general,
            accounts: per_account,
        })
        .map_err(|e| CliError::usage(format!("cannot write JSON: {e}")))?;
        println!("{text}");
        return Ok(code);
    }
    println!("crmsync doctor");
    general.iter().for_each(print_finding);
    for a in &per_account {
        println!("account {:?} ({}):", a.account, a.provider);
        a.findings.iter().for_each(print_finding);
    }
    if code == exit::SUCCESS {
        println!("Everything looks right.");
    } else {
        println!("Something is wrong: see the ERROR lines above and what to do about them.");
    }
    Ok(code)
}

/// The checks of one account: its secret variable, its file CRM, its provider (the
/// provider's diagnosis), and the status the state keeps.
async fn account_findings(
    ctx: &Context,
    account: &AccountConfig,
    state: &Arc<dyn SyncState>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(env) = &account.client_secret_env {
        // Read into a secret type and only ever report whether it is there.
        let secret = std::env::var(env).ok().map(SecretString::from);
        match secret {
            Some(s) if !s.expose_secret().is_empty() => findings.push(Finding::ok(
                "client_secret",
                format!("the client secret is set (environment variable {env})"),
            )),
            _ => {
                let message = format!("environment variable {env} (the client secret) is not set");
                if account.provider == ProviderKind::Memory {
                    findings.push(Finding::warning(
                        "client_secret",
                        message,
                        "the memory provider does not need it; set it before switching to a real provider",
                    ));
                } else {
                    findings.push(config_error(
                        "client_secret",
                        message,
                        format!("export {env}=<the OAuth client secret> before running crmsync"),
                    ));
                }
            }
        }
    }
    let crm_folder = ctx.config.crm_folder(account);
    match ctx.crm(account) {
        Ok((events, contacts)) => match (events.all(), contacts.all()) {
            (Ok(e), Ok(c)) => findings.push(Finding::ok(
                "crm",
                format!(
                    "file CRM {} is readable ({} event(s), {} contact(s))",
                    crm_folder.display(),
                    e.len(),
                    c.len()
                ),
            )),
            (Err(e), _) | (_, Err(e)) => {
                let mut f = Finding::from_error("crm", &e);
                f.message = format!("file CRM {}: {e}", crm_folder.display());
                findings.push(f);
            }
        },
        Err(e) => findings.push(from_cli("crm", e)),
    }
    let provider = match ctx.provider(account) {
        Ok(p) => p,
        Err(e) => {
            findings.push(from_cli("provider", e));
            return findings;
        }
    };
    let diagnosis = provider_diagnosis(account, provider.as_ref()).await;
    let signed_out = diagnosis
        .findings
        .iter()
        .any(Finding::needs_reauthorization);
    findings.extend(diagnosis.findings);
    if signed_out {
        // The state's status would only repeat it.
        return findings;
    }
    match crmsync_core::AccountId::new(account.account_id()) {
        Ok(id) => match state.account_status(&id).await {
            Ok(AccountStatus::Ok) => findings.push(Finding::ok("status", "account status: ok")),
            Ok(AccountStatus::NeedsReauthorization { cause }) => findings.push(reauthorize(
                "status",
                format!("the account must be authorised again: {cause}"),
                format!("run `crmsync auth {}`", account.name),
            )),
            Ok(AccountStatus::Failing { last_error }) => findings.push(Finding::warning(
                "status",
                format!("the last run failed: {last_error}"),
                "fix what the error says, then run `crmsync sync` again",
            )),
            Err(e) => findings.push(Finding::from_error("status", &e)),
        },
        Err(e) => findings.push(Finding::from_error("account_id", &e)),
    }
    findings
}

/// The provider's diagnosis of the account: credentials, scopes, API access, the calendar
/// and the contact group or folder. Google and Microsoft diagnose themselves
/// ([`crmsync_google::diagnose`], [`crmsync_microsoft::diagnose`]); the checks of a
/// collection the account does not sync are left out.
async fn provider_diagnosis(account: &AccountConfig, provider: &dyn Provider) -> Diagnosis {
    let mut d = if let Some(google) = provider.as_google() {
        // The `contacts` check is Google's own: it resolves the configured name with the
        // function the sync uses ("Contacts" is the whole address book).
        crmsync_google::diagnose(google.client()).await
    } else if let Some(microsoft) = provider.as_microsoft() {
        crmsync_microsoft::diagnose(microsoft.client()).await
    } else {
        let mut d = Diagnosis::default();
        if store_check(provider, &mut d).await {
            calendar_check(account, provider, &mut d).await;
            contacts_check(account, provider, &mut d).await;
        }
        d
    };
    d.findings.retain(|f| match f.check.as_str() {
        "calendar" => account.syncs(Collection::Events),
        "contact_folder" | "people_api" | "contacts" => account.syncs(Collection::Contacts),
        _ => true,
    });
    if let Some(f) = d.findings.iter_mut().find(|f| {
        f.check == "calendar"
            && f.kind.as_deref()
                == Some(
                    ErrorKind::CalendarNotFound {
                        name: String::new(),
                    }
                    .as_str(),
                )
    }) && provider.kind() == ProviderKind::Google
        && let Ok(list) = provider.calendars().calendars().await
    {
        let names: Vec<String> = list
            .iter()
            .filter(|c| c.writable)
            .map(|c| format!("{:?}", c.name))
            .collect();
        f.message
            .push_str(&format!(" (writable calendars: {})", names.join(", ")));
    }
    d
}

/// The provider answers: a calendar listing. False when it does not (the checks that
/// follow cannot work).
async fn store_check(provider: &dyn Provider, d: &mut Diagnosis) -> bool {
    match provider.calendars().calendars().await {
        Ok(list) => {
            d.push(Finding::ok(
                "calendar_api",
                format!(
                    "provider reachable: {} ({} calendar(s))",
                    provider.location(),
                    list.len()
                ),
            ));
            true
        }
        Err(e) => {
            let mut f = Finding::from_error("calendar_api", &e);
            f.message = format!("provider not reachable: {e}");
            d.push(f);
            false
        }
    }
}

/// The configured calendar resolves; the writable ones are listed when it does not.
async fn calendar_check(account: &AccountConfig, provider: &dyn Provider, d: &mut Diagnosis) {
    let name = account.calendar.as_deref().unwrap_or("");
    match provider.calendars().calendar_by_name(name).await {
        Ok(info) => d.push(Finding::ok(
            "calendar",
            format!("calendar {:?} resolves (id {})", info.name, info.id),
        )),
        Err(e) => {
            let mut f = Finding::from_error("calendar", &e);
            f.message = format!("calendar: {e}");
            if matches!(e.kind(), ErrorKind::CalendarNotFound { .. })
                && let Ok(list) = provider.calendars().calendars().await
            {
                let names: Vec<String> = list
                    .iter()
                    .filter(|c| c.writable)
                    .map(|c| format!("{:?}", c.name))
                    .collect();
                f.message
                    .push_str(&format!(" (writable calendars: {})", names.join(", ")));
            }
            d.push(f);
        }
    }
}

/// The address book (memory) exists. Google and Microsoft check their own contacts.
async fn contacts_check(account: &AccountConfig, provider: &dyn Provider, d: &mut Diagnosis) {
    if !account.syncs(Collection::Contacts) {
        return;
    }
    let what = match provider.kind() {
        ProviderKind::Microsoft => "contact folder",
        ProviderKind::Google => "contact group",
        ProviderKind::Memory => "address book",
    };
    match provider.address_book(account.contacts_name()).await {
        Ok(info) => d.push(Finding::ok(
            "contacts",
            format!(
                "{what} {:?} resolves (id {})",
                account.contacts_name(),
                info.id
            ),
        )),
        Err(e) => {
            let mut f = Finding::from_error("contacts", &e);
            f.message = format!("{what}: {e}");
            f.remedy = Some(format!("set `contacts` to the name of an existing {what}"));
            d.push(f);
        }
    }
}
