//! The configuration file (`crmsync.toml`): accounts, the file CRM, the state and the
//! policy. Every table rejects unknown keys; every error names the file, the line, the key
//! and what is expected. `docs/cli.md` documents each key.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crmsync_core::engine::{
    DeletionMode, FieldPolicy, Guards, PerDirection, SyncOptions, WindowSpec,
};
use crmsync_core::{ContactField, EventField};
use serde::Deserialize;

use crate::exit::CliError;

/// The file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "crmsync.toml";
/// The state database, beside the configuration file, when `state` is not given.
pub const DEFAULT_STATE_FILE: &str = "crmsync.db";

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The SQLite state database; relative paths are relative to the configuration file.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// How many accounts `sync` runs at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The CRM side.
    pub crm: CrmConfig,
    /// The sync policy, for every account.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// The accounts.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Where the file was read from (set after parsing).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_concurrency() -> usize {
    4
}

/// The CRM side: for now, a file CRM (a folder with `events.json` and `contacts.json`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// The file CRM's folder; relative to the configuration file.
    pub folder: PathBuf,
}

/// Which provider an account is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The in-memory provider, kept in snapshot files: for trials and tests.
    Memory,
    /// Google Calendar and Google Contacts (People API).
    Google,
    /// Microsoft 365 / Outlook through Microsoft Graph (calendar; contacts when the
    /// provider crate offers them).
    Microsoft,
}

impl ProviderKind {
    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Memory => "memory",
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an account syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Collection {
    /// The CRM's events with the account's calendar.
    Events,
    /// The CRM's contacts with the account's contact group or folder.
    Contacts,
}

/// What the in-memory provider behaves like (its capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryLike {
    /// Google Calendar and Google Contacts: batches of 50 / 200, Google's 11 event colours.
    #[default]
    Google,
    /// Outlook: three e-mails, one reminder, batches of 20.
    Outlook,
    /// A CalDAV/CardDAV server: no batches.
    Caldav,
    /// Holds everything.
    Unlimited,
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The name used on the command line (`crmsync sync <name>`).
    pub name: String,
    /// The provider.
    pub provider: ProviderKind,
    /// The account id kept in the state (an e-mail address, a CRM user id); default: `name`.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The OAuth client id (Google, Microsoft).
    #[serde(default)]
    pub client_id: Option<String>,
    /// The NAME of the environment variable holding the OAuth client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// The NAME of the environment variable holding the key (base64, 32 bytes) that tokens
    /// are encrypted under in the state database; default `CRMSYNC_TOKEN_KEY`.
    #[serde(default)]
    pub token_key_env: Option<String>,
    /// Rejected with an explanation: secrets never go in the file.
    #[serde(default)]
    client_secret: Option<toml::Value>,
    /// Microsoft: the directory users sign in to: `common`, `organizations`, `consumers`,
    /// or one organisation's tenant id or domain; default `common`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The calendar to sync, by name.
    #[serde(default)]
    pub calendar: Option<String>,
    /// The contact group (Google), folder (Outlook) or address book (memory) to sync.
    #[serde(default)]
    pub contacts: Option<String>,
    /// What to sync; default both.
    #[serde(default = "default_sync")]
    pub sync: BTreeSet<Collection>,
    /// Overrides the provider's API base URL (proxies, fakes).
    #[serde(default)]
    pub api_base_url: Option<String>,
    /// Overrides the provider's OAuth base URL.
    #[serde(default)]
    pub auth_base_url: Option<String>,
    /// This account's own file CRM folder, instead of `[crm] folder`.
    #[serde(default)]
    pub crm_folder: Option<PathBuf>,
    /// Memory provider: the folder of its snapshot files; default `memory-<name>` beside
    /// the configuration file.
    #[serde(default)]
    pub snapshot_folder: Option<PathBuf>,
    /// Memory provider: what it behaves like.
    #[serde(default)]
    pub like: MemoryLike,
    /// Memory provider: the calendars the account has when its snapshot is first made;
    /// default: the configured calendar.
    #[serde(default)]
    pub calendars: Option<Vec<String>>,
}

fn default_sync() -> BTreeSet<Collection> {
    BTreeSet::from([Collection::Events, Collection::Contacts])
}

impl AccountConfig {
    /// The account id kept in the state.
    pub fn account_id(&self) -> &str {
        self.account_id.as_deref().unwrap_or(&self.name)
    }

    /// The address book / contact group name, `Contacts` when not given.
    pub fn contacts_name(&self) -> &str {
        self.contacts.as_deref().unwrap_or("Contacts")
    }

    /// Whether the account syncs this collection.
    pub fn syncs(&self, collection: Collection) -> bool {
        self.sync.contains(&collection)
    }
}

/// Deletion modes: one for both directions, or one per direction.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum DeletionSetting {
    /// The same mode both ways.
    Both(DeletionMode),
    /// `{ crm_to_provider = "...", provider_to_crm = "..." }`.
    PerDirection(PerDirection<DeletionMode>),
}

/// `[policy]`: shared settings, and the field policies of events and contacts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The preset of both field policies unless they name one: `defaults`,
    /// `one_way_from_provider` or `two_way`.
    #[serde(default)]
    pub preset: Option<String>,
    /// The conflict strategy of both unless they say: `crm_wins`, `provider_wins`, `newest`.
    #[serde(default)]
    pub conflicts: Option<toml::Value>,
    /// Deletion modes of both unless they say: `propagate`, `confirm`, `ignore`.
    #[serde(default)]
    pub deletions: Option<DeletionSetting>,
    /// The sync window.
    #[serde(default)]
    pub window: Option<WindowSpecConfig>,
    /// Caps per collection.
    #[serde(default)]
    pub caps: CapsConfig,
    /// The mass-deletion guard.
    #[serde(default)]
    pub mass_deletion: MassDeletionConfig,
    /// The event field policy (`FieldPolicy` serde form).
    #[serde(default)]
    pub events: Option<toml::Table>,
    /// The contact field policy (`FieldPolicy` serde form).
    #[serde(default)]
    pub contacts: Option<toml::Table>,
}

/// `[policy.window]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpecConfig {
    /// Months before today.
    pub months_before: u32,
    /// Months after today.
    pub months_after: u32,
}

/// `[policy.caps]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapsConfig {
    /// The most events a calendar syncs; default 1000.
    #[serde(default)]
    pub events: Option<usize>,
    /// The most contacts an address book syncs; default 2000.
    #[serde(default)]
    pub contacts: Option<usize>,
}

/// `[policy.mass_deletion]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MassDeletionConfig {
    /// Stop when a run would delete more than this share of a side's linked records.
    #[serde(default)]
    pub ratio: Option<f64>,
    /// Deletions below this count never stop a run.
    #[serde(default)]
    pub min: Option<usize>,
}

/// The policies and options built from `[policy]`.
#[derive(Debug, Clone)]
pub struct Policies {
    /// The event field policy.
    pub events: FieldPolicy<EventField>,
    /// The contact field policy.
    pub contacts: FieldPolicy<ContactField>,
    /// The options of event syncers.
    pub event_options: SyncOptions,
    /// The options of contact syncers.
    pub contact_options: SyncOptions,
}

impl Config {
    /// Reads and checks the configuration file.
    ///
    /// # Errors
    /// A [`CliError`] with exit code 2 naming the file, the line, the key and what is
    /// expected.
    pub fn load(path: &Path) -> Result<Config, CliError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                CliError::config(format!(
                    "no configuration file at {} (give one with --config, or run `crmsync demo` to see one; crates/crmsync-cli/crmsync.example.toml is a commented example)",
                    path.display()
                ))
            } else {
                CliError::config(format!("cannot read {}: {e}", path.display()))
            }
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks configuration text read from `path`.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn parse(text: &str, path: &Path) -> Result<Config, CliError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| CliError::config(toml_message(path, text, None, &e)))?;
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            CliError::config(toml_message(path, text, Some(&key), e.inner()))
        })?;
        config.path = path.to_owned();
        config.check(text)?;
        Ok(config)
    }

    fn check(&self, text: &str) -> Result<(), CliError> {
        let bad = |key: String, what: String| {
            let line = line_of_key(text, key.rsplit('.').next().unwrap_or(&key));
            CliError::config(format!(
                "invalid configuration in {}{}: key `{key}`: {what}",
                self.path.display(),
                line.map(|l| format!(", line {l}")).unwrap_or_default()
            ))
        };
        if self.concurrency == 0 {
            return Err(bad("concurrency".into(), "expected at least 1".into()));
        }
        let mut names = BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            let at = |k: &str| format!("accounts[{i}].{k}");
            if a.client_secret.is_some() {
                return Err(bad(
                    at("client_secret"),
                    "secrets must never be written in the configuration file (it gets copied, committed and shared); put the secret in an environment variable and give that variable's NAME in `client_secret_env`".into(),
                ));
            }
            if a.name.trim().is_empty() || a.name.chars().any(char::is_whitespace) {
                return Err(bad(
                    at("name"),
                    "expected a non-empty name without spaces".into(),
                ));
            }
            if !names.insert(a.name.as_str()) {
                return Err(bad(
                    at("name"),
                    format!("the name {:?} is used by two accounts", a.name),
                ));
            }
            if crmsync_core::AccountId::new(a.account_id()).is_err() {
                return Err(bad(
                    at("account_id"),
                    "expected a valid account id (not empty, not too long)".into(),
                ));
            }
            if a.sync.is_empty() {
                return Err(bad(
                    at("sync"),
                    "expected at least one of \"events\", \"contacts\"".into(),
                ));
            }
            for (key, env) in [
                ("client_secret_env", &a.client_secret_env),
                ("token_key_env", &a.token_key_env),
            ] {
                if let Some(env) = env
                    && (env.is_empty()
                        || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                {
                    return Err(bad(
                        at(key),
                        "expected the NAME of an environment variable (letters, digits, `_`), not the secret itself".into(),
                    ));
                }
            }
            if a.provider == ProviderKind::Microsoft {
                if a.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(bad(
                        at("client_id"),
                        "a Microsoft account needs the application (client) id of its app registration (a GUID)".into(),
                    ));
                }
                if a.client_secret_env.is_some() {
                    return Err(bad(
                        at("client_secret_env"),
                        "Microsoft accounts sign in as a public client (a \"Mobile and desktop applications\" app registration), which has no client secret: remove this key".into(),
                    ));
                }
                if let Some(tenant) = &a.tenant
                    && let Err(e) = crmsync_microsoft::Tenant::parse(tenant)
                {
                    return Err(bad(at("tenant"), e.message().to_owned()));
                }
            } else if a.tenant.is_some() {
                return Err(bad(
                    at("tenant"),
                    "only the microsoft provider takes `tenant`".into(),
                ));
            }
            if matches!(a.provider, ProviderKind::Google | ProviderKind::Microsoft) {
                for (key, url) in [
                    ("api_base_url", &a.api_base_url),
                    ("auth_base_url", &a.auth_base_url),
                ] {
                    if let Some(url) = url
                        && let Err(e) = crmsync_http::BaseUrl::parse(url)
                    {
                        return Err(bad(at(key), e.message().to_owned()));
                    }
                }
            }
            if a.provider == ProviderKind::Google {
                if a.client_id.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(bad(
                        at("client_id"),
                        "a Google account needs its OAuth client id (`….apps.googleusercontent.com`)".into(),
                    ));
                }
                if a.client_secret_env.is_none() {
                    return Err(bad(
                        at("client_secret_env"),
                        "a Google account needs the NAME of the environment variable holding its OAuth client secret".into(),
                    ));
                }
            }
            let memory_only = [
                ("snapshot_folder", a.snapshot_folder.is_some()),
                ("calendars", a.calendars.is_some()),
            ];
            if a.provider != ProviderKind::Memory {
                for (key, set) in memory_only {
                    if set {
                        return Err(bad(
                            at(key),
                            format!("only the memory provider takes `{key}`"),
                        ));
                    }
                }
            }
        }
        // Two accounts saving the same snapshots would overwrite each other's writes.
        let mut folders = BTreeSet::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if a.provider == ProviderKind::Memory && !folders.insert(self.snapshot_folder(a)) {
                return Err(bad(
                    format!("accounts[{i}].snapshot_folder"),
                    "another memory account uses the same snapshot folder; give each its own"
                        .into(),
                ));
            }
        }
        self.policies().map(|_| ())
    }

    /// The folder the configuration file is in; relative paths are relative to it.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// A path from the file, made absolute against the configuration file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir().join(path)
        }
    }

    /// The state database's path.
    pub fn state_path(&self) -> PathBuf {
        self.resolve(
            self.state
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_STATE_FILE)),
        )
    }

    /// The file CRM folder of an account.
    pub fn crm_folder(&self, account: &AccountConfig) -> PathBuf {
        self.resolve(account.crm_folder.as_deref().unwrap_or(&self.crm.folder))
    }

    /// The snapshot folder of a memory account.
    pub fn snapshot_folder(&self, account: &AccountConfig) -> PathBuf {
        match &account.snapshot_folder {
            Some(p) => self.resolve(p),
            None => self.base_dir().join(format!("memory-{}", account.name)),
        }
    }

    /// The account with this name.
    ///
    /// # Errors
    /// Exit code 2, listing the accounts, when there is none.
    pub fn account(&self, name: &str) -> Result<&AccountConfig, CliError> {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.accounts.iter().map(|a| a.name.as_str()).collect();
                CliError::usage(format!(
                    "no account named {name:?} in {}; the accounts are: {}",
                    self.path.display(),
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            })
    }

    /// The policies and options from `[policy]`.
    ///
    /// # Errors
    /// Exit code 2 naming the key at fault.
    pub fn policies(&self) -> Result<Policies, CliError> {
        let p = &self.policy;
        let events: FieldPolicy<EventField> = self.field_policy("events", p.events.as_ref())?;
        let contacts: FieldPolicy<ContactField> =
            self.field_policy("contacts", p.contacts.as_ref())?;
        let mut guards = Guards::default();
        if let Some(ratio) = p.mass_deletion.ratio {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(CliError::config(format!(
                    "invalid configuration in {}: key `policy.mass_deletion.ratio`: expected a share between 0.0 and 1.0, got {ratio}",
                    self.path.display()
                )));
            }
            guards.mass_deletion_ratio = ratio;
        }
        if let Some(min) = p.mass_deletion.min {
            guards.mass_deletion_min = min;
        }
        let window = p.window.map(|w| WindowSpec {
            months_before: w.months_before,
            months_after: w.months_after,
        });
        let mut event_options = SyncOptions::for_record::<crmsync_core::Event>();
        event_options.window = window;
        event_options.guards = Guards {
            cap: p.caps.events.or(event_options.guards.cap),
            ..guards
        };
        let mut contact_options = SyncOptions::for_record::<crmsync_core::Contact>();
        contact_options.window = window;
        contact_options.guards = Guards {
            cap: p.caps.contacts.or(contact_options.guards.cap),
            ..guards
        };
        Ok(Policies {
            events,
            contacts,
            event_options,
            contact_options,
        })
    }

    fn field_policy<F: crmsync_core::Field>(
        &self,
        which: &str,
        table: Option<&toml::Table>,
    ) -> Result<FieldPolicy<F>, CliError> {
        let p = &self.policy;
        let mut table = table.cloned().unwrap_or_default();
        if let Some(preset) = &p.preset {
            table
                .entry("preset")
                .or_insert_with(|| toml::Value::String(preset.clone()));
        }
        if let Some(conflicts) = &p.conflicts {
            table
                .entry("conflicts")
                .or_insert_with(|| conflicts.clone());
        }
        if let Some(deletions) = p.deletions {
            let per = match deletions {
                DeletionSetting::Both(mode) => PerDirection {
                    crm_to_provider: mode,
                    provider_to_crm: mode,
                },
                DeletionSetting::PerDirection(per) => per,
            };
            let value = toml::Value::try_from(per).map_err(|e| {
                CliError::config(format!("policy.deletions cannot be converted: {e}"))
            })?;
            table.entry("deletions").or_insert(value);
        }
        toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            CliError::config(format!(
                "invalid configuration in {}: key `policy.{which}` (with the shared `policy` settings): {}; expected the field policy form documented in docs/cli.md",
                self.path.display(),
                e.message().trim()
            ))
        })
    }
}

/// The one-line message of a TOML or schema error: file, line, key, and what is expected.
fn toml_message(path: &Path, text: &str, key: Option<&str>, e: &toml::de::Error) -> String {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let mut message = format!("invalid configuration in {}", path.display());
    if let Some(line) = line {
        message.push_str(&format!(", line {line}"));
    }
    if let Some(key) = key.filter(|k| !k.is_empty() && *k != ".") {
        message.push_str(&format!(": key `{key}`"));
    }
    message.push_str(": ");
    // `client_secret` is a field only so that it can be rejected with its reason.
    message.push_str(&e.message().trim().replace(" `client_secret`,", ""));
    if let Some(expected) = key.and_then(expected_values)
        && !message.contains("expected")
    {
        message.push_str(&format!("; expected {expected}"));
    }
    message
}

/// What the keys taking a fixed set of words accept (toml only says "wanted string").
fn expected_values(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key);
    let last = last.split('[').next().unwrap_or(last);
    Some(match last {
        "provider" => "one of \"memory\", \"google\", \"microsoft\"",
        "like" => "one of \"google\", \"outlook\", \"caldav\", \"unlimited\"",
        "sync" => "a list of \"events\" and/or \"contacts\"",
        "deletions" => {
            "\"propagate\", \"confirm\" or \"ignore\", or { crm_to_provider = ..., provider_to_crm = ... }"
        }
        _ => return None,
    })
}

/// The line where `key = ...` first appears (for errors found after parsing).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let key = key.split('[').next().unwrap_or(key);
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, CliError> {
        Config::parse(text, Path::new("/x/crmsync.toml"))
    }

    const MINIMAL: &str = "[crm]\nfolder = \"crm\"\n[[accounts]]\nname = \"a\"\nprovider = \"memory\"\ncalendar = \"Work\"\n";

    #[test]
    fn the_example_file_is_valid() {
        let text = include_str!("../crmsync.example.toml");
        let c = Config::parse(text, Path::new("/x/crmsync.example.toml")).unwrap();
        let p = c.policies().unwrap();
        assert_eq!(p.event_options.guards.cap, Some(1000));
        assert_eq!(p.contacts.deletions.provider_to_crm, DeletionMode::Confirm);
        assert_eq!(c.accounts[0].calendars.as_ref().map(Vec::len), Some(2));
        assert_eq!(c.accounts[1].provider, ProviderKind::Google);
        assert_eq!(
            c.accounts[1].token_key_env.as_deref(),
            Some("CRMSYNC_TOKEN_KEY")
        );
        assert_eq!(c.accounts[2].provider, ProviderKind::Microsoft);
        assert_eq!(c.accounts[2].tenant.as_deref(), Some("organizations"));
    }

    #[test]
    fn google_accounts_need_their_client() {
        let google = "[crm]\nfolder = \"crm\"\n[[accounts]]\nname = \"a\"\nprovider = \"google\"\ncalendar = \"Work\"\n";
        let e = parse(google).unwrap_err();
        assert!(e.message.contains("accounts[0].client_id"), "{}", e.message);
        let e = parse(&format!("{google}client_id = \"x\"\n")).unwrap_err();
        assert!(
            e.message.contains("accounts[0].client_secret_env"),
            "{}",
            e.message
        );
        let ok = format!("{google}client_id = \"x\"\nclient_secret_env = \"S\"\n");
        parse(&ok).unwrap();
        let e = parse(&format!("{ok}api_base_url = \"ftp://x\"\n")).unwrap_err();
        assert!(e.message.contains("api_base_url"), "{}", e.message);
        let e = parse(&format!("{ok}token_key_env = \"a key\"\n")).unwrap_err();
        assert!(e.message.contains("token_key_env"), "{}", e.message);
    }

    #[test]
    fn microsoft_accounts_are_checked() {
        let microsoft = "[crm]\nfolder = \"crm\"\n[[accounts]]\nname = \"a\"\nprovider = \"microsoft\"\ncalendar = \"Work\"\n";
        let e = parse(microsoft).unwrap_err();
        assert!(e.message.contains("accounts[0].client_id"), "{}", e.message);
        let ok = format!("{microsoft}client_id = \"8f0c6f1e-6b3a-4a52-9d1e-1c2b3a4d5e6f\"\n");
        parse(&ok).unwrap();
        for tenant in [
            "common",
            "organizations",
            "consumers",
            "contoso.onmicrosoft.com",
        ] {
            let c = parse(&format!("{ok}tenant = \"{tenant}\"\n")).unwrap();
            assert_eq!(c.accounts[0].tenant.as_deref(), Some(tenant));
        }
        let e = parse(&format!("{ok}tenant = \"a/b\"\n")).unwrap_err();
        assert!(e.message.contains("accounts[0].tenant"), "{}", e.message);
        let e = parse(&format!("{ok}client_secret_env = \"S\"\n")).unwrap_err();
        assert!(e.message.contains("public client"), "{}", e.message);
        let e = parse(&format!("{ok}auth_base_url = \"not a url\"\n")).unwrap_err();
        assert!(e.message.contains("auth_base_url"), "{}", e.message);
        let e = parse(&format!("{MINIMAL}tenant = \"common\"\n")).unwrap_err();
        assert!(
            e.message.contains("only the microsoft provider"),
            "{}",
            e.message
        );
    }

    #[test]
    fn memory_accounts_do_not_share_snapshots() {
        let two = format!(
            "{MINIMAL}snapshot_folder = \"p\"\n[[accounts]]\nname = \"b\"\nprovider = \"memory\"\nsnapshot_folder = \"p\"\n"
        );
        let e = parse(&two).unwrap_err();
        assert!(
            e.message.contains("accounts[1].snapshot_folder"),
            "{}",
            e.message
        );
    }

    #[test]
    fn minimal_config_parses() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.accounts[0].account_id(), "a");
        assert_eq!(c.state_path(), Path::new("/x/crmsync.db"));
        c.policies().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(&format!("{MINIMAL}colour = 3\n")).unwrap_err();
        assert_eq!(e.code, crate::exit::USAGE);
        assert!(e.message.contains("colour"), "{}", e.message);
        assert!(e.message.contains("/x/crmsync.toml"), "{}", e.message);
    }

    #[test]
    fn policy_overrides_reach_the_field_policy() {
        let c = parse(&format!(
            "{MINIMAL}[policy]\npreset = \"two_way\"\ndeletions = \"ignore\"\n[policy.contacts]\nfields = {{ notes = \"skip\" }}\n"
        ))
        .unwrap();
        let p = c.policies().unwrap();
        assert_eq!(p.contacts.deletions.provider_to_crm, DeletionMode::Ignore);
        assert_eq!(
            p.contacts.rule(ContactField::Notes).direction,
            crmsync_core::Direction::Skip
        );
        let e = parse(&format!(
            "{MINIMAL}[policy.events]\nfields = {{ nope = \"skip\" }}\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("policy.events"), "{}", e.message);
        assert!(e.message.contains("nope"), "{}", e.message);
    }
}
