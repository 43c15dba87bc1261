//! The `crmsync` binary, run for real against a file CRM and the Google fake of
//! crmsync-testkit (Calendar v3, People API and Google OAuth on 127.0.0.1).
//!
//! The fake runs on a tokio runtime owned by the test; the binary is a separate process
//! pointed at the fake by `api_base_url` / `auth_base_url`. Tokens are seeded into the
//! CLI's token store (the state database, encrypted under the test key), or obtained by
//! running `crmsync auth` and playing the browser.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use chrono::{Duration, Utc};
use crmsync_core::{
    AccessToken, AccountId, CollectionId, RefreshToken, SyncState, TokenKey, TokenSet, TokenStore,
};
use crmsync_sqlite::{SqliteState, SqliteTokenStore};
use crmsync_testkit::{
    CalendarSpec, DEFAULT_CLIENT_ID, DEFAULT_USER, Endpoint, GoogleFake, SCOPE_CALENDAR,
    SCOPE_CONTACTS,
};
use predicates::prelude::*;
use serde_json::Value;

/// The OAuth client secret of the fake's client: must never be printed.
const SECRET_SENTINEL: &str = "g00gle-SENTINEL-client-secret-7731";
const SECRET_ENV: &str = "CRMSYNC_TEST_GOOGLE_SECRET";
const KEY_ENV: &str = "CRMSYNC_TEST_TOKEN_KEY";
const CRM_CALENDAR: &str = "crm-calendar@group.calendar.google.com";

fn key() -> TokenKey {
    TokenKey::from_bytes([7; 32])
}

fn today_plus(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days)).to_string()
}

/// A Google fake with a "CRM" calendar, and a folder with a configuration pointing at it
/// and a file CRM of two events and two contacts.
struct Env {
    // Dropped before the runtime that serves it.
    fake: GoogleFake,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Self::with_calendar("CRM")
    }

    fn with_calendar(calendar: &str) -> Env {
        Self::with_names(calendar, None)
    }

    /// `contacts = "<contacts>"` in the account when given.
    fn with_names(calendar: &str, contacts: Option<&str>) -> Env {
        let contacts = contacts
            .map(|c| format!("contacts = \"{c}\"\n"))
            .unwrap_or_default();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let fake = rt.block_on(GoogleFake::start());
        fake.register_client(DEFAULT_CLIENT_ID, SECRET_SENTINEL, &[]);
        fake.add_calendar(CalendarSpec::new(CRM_CALENDAR, "CRM"));
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = format!(
            r#"
[crm]
folder = "crm"

[policy]
window = {{ months_before = 1, months_after = 12 }}

[[accounts]]
name = "ann"
provider = "google"
account_id = "{DEFAULT_USER}"
client_id = "{DEFAULT_CLIENT_ID}"
client_secret_env = "{SECRET_ENV}"
token_key_env = "{KEY_ENV}"
calendar = "{calendar}"
{contacts}api_base_url = "{base}"
auth_base_url = "{base}"
"#,
            base = fake.base_url()
        );
        std::fs::write(dir.path().join("crmsync.toml"), config).expect("write the config");
        std::fs::create_dir_all(dir.path().join("crm")).expect("make the CRM folder");
        let events = serde_json::json!([
            { "id": "act-1", "title": "Kickoff with Acme",
              "period": { "kind": "all_day", "first_day": today_plus(2), "last_day": today_plus(2) } },
            { "id": "act-2", "title": "Call Bob", "location": "Phone",
              "period": { "kind": "timed", "start": format!("{}T14:00:00", today_plus(3)),
                          "end": format!("{}T14:30:00", today_plus(3)), "zone": "Europe/Paris" } }
        ]);
        let contacts = serde_json::json!([
            { "id": "ct-1", "display_name": "Ann Lee",
              "emails": [ { "address": "ann@acme.example", "usage": "work" } ] },
            { "id": "ct-2", "display_name": "Bob Martin" }
        ]);
        for (file, value) in [("events.json", events), ("contacts.json", contacts)] {
            std::fs::write(
                dir.path().join("crm").join(file),
                serde_json::to_vec_pretty(&value).expect("json"),
            )
            .expect("write the file CRM");
        }
        Env { fake, rt, dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state_path(&self) -> PathBuf {
        self.path().join("crmsync.db")
    }

    fn crmsync(&self) -> Command {
        let mut cmd = Command::cargo_bin("crmsync").expect("the crmsync binary is built");
        cmd.current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env(SECRET_ENV, SECRET_SENTINEL)
            .env(KEY_ENV, key().to_base64().as_str());
        cmd
    }

    /// Signs the account in directly: tokens issued by the fake, saved in the CLI's token
    /// store. `expires_in` is how long the stored access token is taken to be valid
    /// (negative: expired, so the CLI refreshes first). Returns the access and refresh
    /// tokens.
    fn seed_tokens(&self, expires_in: Duration) -> (String, String) {
        let issued = self
            .fake
            .issue_tokens(DEFAULT_USER, &[SCOPE_CALENDAR, SCOPE_CONTACTS]);
        let path = self.state_path();
        let (access, refresh) = (issued.access_token.clone(), issued.refresh_token.clone());
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let store = SqliteTokenStore::new(&state, key());
            let account = AccountId::new(DEFAULT_USER).expect("account");
            store
                .save(
                    &account,
                    &TokenSet::new(
                        AccessToken::new(access),
                        Some(RefreshToken::new(refresh)),
                        Utc::now() + expires_in,
                    )
                    .with_scopes([SCOPE_CALENDAR, SCOPE_CONTACTS]),
                )
                .await
                .expect("save the tokens");
            state.close().await;
        });
        (issued.access_token, issued.refresh_token)
    }

    fn has_tokens(&self) -> bool {
        let path = self.state_path();
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let store = SqliteTokenStore::new(&state, key());
            let account = AccountId::new(DEFAULT_USER).expect("account");
            let found = store.load(&account).await.expect("load").is_some();
            state.close().await;
            found
        })
    }

    /// The calendar id the state remembers for the name `CRM`.
    fn calendar_alias(&self) -> Option<String> {
        let path = self.state_path();
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let account = AccountId::new(DEFAULT_USER).expect("account");
            let alias = state
                .collection_alias(&account, "event", "CRM")
                .await
                .expect("read the alias");
            state.close().await;
            alias.map(|id| id.as_str().to_owned())
        })
    }

    /// Makes the state remember `id` for the calendar name `CRM`.
    fn set_calendar_alias(&self, id: &str) {
        self.write_calendar_alias(Some(CollectionId::new(id).expect("an id")));
    }

    /// Makes the state forget the calendar id of the name `CRM`.
    fn forget_calendar_alias(&self) {
        self.write_calendar_alias(None);
    }

    fn write_calendar_alias(&self, id: Option<CollectionId>) {
        let path = self.state_path();
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let account = AccountId::new(DEFAULT_USER).expect("account");
            state
                .set_collection_alias(&account, "event", "CRM", id.as_ref())
                .await
                .expect("write the alias");
            state.close().await;
        });
    }

    fn sync_json(&self) -> Value {
        let out = self
            .crmsync()
            .args(["sync", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).expect("the output is JSON")
    }

    fn crm_count(&self, file: &str) -> usize {
        let bytes = std::fs::read(self.path().join("crm").join(file)).expect("read");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        v.as_array().expect("an array").len()
    }

    /// Plays the browser: follows the authorization address to Google's redirect and
    /// returns where it points (the fake signs the browser user in and consents).
    fn browse_to_redirect(&self, url: &str) -> String {
        self.rt.block_on(async {
            let browser = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client");
            let answer = browser
                .get(url)
                .send()
                .await
                .expect("the authorization page");
            assert_eq!(answer.status().as_u16(), 302, "Google redirects");
            answer.headers()["location"]
                .to_str()
                .expect("a location")
                .to_owned()
        })
    }
}

fn written(run: &Value) -> u64 {
    let mut written = 0;
    for account in run["accounts"].as_array().expect("accounts") {
        for r in account["reports"].as_array().expect("reports") {
            let rep = &r["report"];
            for side in ["crm", "provider"] {
                for k in ["created", "updated", "deleted"] {
                    written += rep[side][k].as_u64().expect("a count");
                }
            }
        }
    }
    written
}

#[test]
fn sync_into_google_then_nothing_to_do() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    let first = env.sync_json();
    assert_eq!(first["exit_code"], 0, "{first}");
    assert_eq!(written(&first), 4, "{first}");
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2);
    assert_eq!(env.fake.contacts().len(), 2);

    env.fake.reset_counters();
    let second = env.sync_json();
    assert_eq!(written(&second), 0, "{second}");
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2);
    assert_eq!(env.fake.contacts().len(), 2);
    // One incremental listing per collection on Google's side; the calendar's id comes
    // from the state (its alias), so the calendar list is not read again.
    assert_eq!(env.fake.requests(Endpoint::EventsList), 1);
    assert_eq!(env.fake.requests(Endpoint::ConnectionsList), 1);
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 0);
    assert_eq!(
        env.fake.requests(Endpoint::Token),
        0,
        "a valid token is not refreshed"
    );

    env.crmsync()
        .args(["sync"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    env.crmsync()
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("ann").and(predicate::str::contains("google")));
    env.crmsync()
        .args(["doctor", "ann"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Google accepted the refresh token")
                .and(predicate::str::contains(
                    "every configured scope is granted",
                ))
                .and(predicate::str::contains("the People API answers"))
                .and(predicate::str::contains("calendar \"CRM\" found")),
        );
}

#[test]
fn doctor_names_a_wrong_calendar_and_its_remedy() {
    let env = Env::with_calendar("Crm work");
    env.seed_tokens(Duration::minutes(50));
    env.crmsync()
        .args(["doctor", "ann"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("no writable calendar is named \"Crm work\"")
                .and(predicate::str::contains("\"CRM\""))
                .and(predicate::str::contains("check the calendar's name")),
        );
    // A sync stops with the same remedy.
    env.crmsync()
        .args(["sync", "ann"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("check the calendar's name"));
}

#[test]
fn a_revoked_refresh_token_is_exit_code_3_and_shown_by_status() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    env.sync_json();
    env.fake.revoke_refresh_tokens();
    env.fake.expire_access_tokens();
    env.crmsync().args(["sync", "ann"]).assert().code(3).stdout(
        predicate::str::contains("Token has been expired or revoked")
            .and(predicate::str::contains("crmsync auth ann")),
    );
    env.crmsync().arg("status").assert().code(3).stdout(
        predicate::str::contains("needs re-authorisation")
            .and(predicate::str::contains("crmsync auth ann")),
    );
    env.crmsync()
        .args(["doctor", "ann"])
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("Token has been expired or revoked")
                .and(predicate::str::contains("crmsync auth ann")),
        );
    // Signing in again puts it right.
    env.seed_tokens(Duration::minutes(50));
    env.crmsync().args(["sync", "ann"]).assert().success();
    env.crmsync().arg("status").assert().success();
}

#[test]
fn the_client_secret_and_tokens_never_reach_the_output() {
    let env = Env::new();
    // An expired stored access token: the first command refreshes, sending the secret.
    let (access, refresh) = env.seed_tokens(Duration::minutes(-5));
    let mut seen = String::new();
    for args in [
        &["-vv", "doctor"][..],
        &["-vv", "plan"][..],
        &["-vv", "sync"][..],
        &["-vv", "sync", "--json"][..],
        &["-vv", "status"][..],
        &["-vv", "auth", "ann", "--device"][..],
    ] {
        let assert = env.crmsync().args(args).env("RUST_LOG", "trace").assert();
        let out = assert.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [SECRET_SENTINEL, access.as_str(), refresh.as_str()] {
            assert!(!all.contains(secret), "{args:?} printed a secret");
        }
        seen.push_str(&all);
    }
    assert!(
        env.fake.requests(Endpoint::Token) >= 1,
        "the secret was used (a refresh)"
    );
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "logs were on"
    );
    let recorded = env.fake.recorded_requests();
    assert!(
        recorded
            .iter()
            .any(|r| r.url.starts_with("/token") && r.body.contains(SECRET_SENTINEL)),
        "the secret went to the token endpoint"
    );
}

#[test]
fn reset_all_then_sync_without_duplicates() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    env.sync_json();
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2);
    assert_eq!(env.fake.contacts().len(), 2);

    env.crmsync()
        .args(["reset", "ann", "--all", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("tokens: forgotten"));
    assert!(!env.has_tokens(), "reset --all purges the tokens");
    env.crmsync()
        .arg("status")
        .assert()
        .code(3)
        .stdout(predicate::str::contains("needs re-authorisation"));
    env.crmsync().args(["sync", "ann"]).assert().code(3);

    env.seed_tokens(Duration::minutes(50));
    let again = env.sync_json();
    assert_eq!(again["exit_code"], 0, "{again}");
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2, "no duplicate");
    assert_eq!(env.fake.contacts().len(), 2, "no duplicate");
    assert_eq!(env.crm_count("events.json"), 2);
    assert_eq!(env.crm_count("contacts.json"), 2);
    let third = env.sync_json();
    assert_eq!(written(&third), 0, "{third}");
}

#[test]
fn reset_all_with_revoke_revokes_at_google() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    env.sync_json();
    env.crmsync()
        .args(["reset", "ann", "--all", "--revoke", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("revoked"));
    assert_eq!(env.fake.requests(Endpoint::Revoke), 1);
    assert!(!env.has_tokens());
}

/// Reads the child's stdout until a line holding the authorization address.
fn read_auth_url(lines: &mut impl Iterator<Item = std::io::Result<String>>, base: &str) -> String {
    for line in lines {
        let line = line.expect("a line of output");
        if let Some(at) = line.find(base) {
            return line[at..].trim().to_owned();
        }
    }
    panic!("crmsync auth printed no authorization address");
}

/// Runs `crmsync auth ann --paste`, plays the browser and pastes the redirect; returns
/// whether it succeeded and its output.
fn auth_paste(env: &Env) -> (bool, Vec<String>) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .args(["auth", "ann", "--paste"])
        .current_dir(env.path())
        .stderr(Stdio::null())
        .env_remove("RUST_LOG")
        .env(SECRET_ENV, SECRET_SENTINEL)
        .env(KEY_ENV, key().to_base64().as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run crmsync auth");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = read_auth_url(&mut lines, &env.fake.auth_url());
    let redirected = env.browse_to_redirect(&url);
    assert!(
        redirected.starts_with("http://127.0.0.1:1/"),
        "{redirected}"
    );
    writeln!(child.stdin.take().expect("stdin"), "{redirected}").expect("paste");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("crmsync auth ends");
    (status.success(), rest)
}

#[test]
fn auth_paste_signs_in_then_sync_works() {
    let env = Env::new();
    let (ok, rest) = auth_paste(&env);
    assert!(ok, "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("Signed in")), "{rest:?}");
    assert!(env.has_tokens());
    let run = env.sync_json();
    assert_eq!(written(&run), 4, "{run}");
}

#[test]
fn auth_loopback_signs_in_through_the_browser() {
    let env = Env::new();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .args(["auth", "ann", "--no-browser", "--timeout", "60"])
        .current_dir(env.path())
        .env_remove("RUST_LOG")
        .env(SECRET_ENV, SECRET_SENTINEL)
        .env(KEY_ENV, key().to_base64().as_str())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run crmsync auth");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = read_auth_url(&mut lines, &env.fake.auth_url());
    let redirected = env.browse_to_redirect(&url);
    // The browser follows the redirect to crmsync's loopback listener.
    env.rt.block_on(async {
        let _ = reqwest::get(redirected.as_str()).await;
    });
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("crmsync auth ends");
    assert!(status.success(), "{rest:?}");
    assert!(env.has_tokens());
    env.crmsync().args(["doctor", "ann"]).assert().success();
}

#[test]
fn auth_device_is_not_offered_by_google() {
    let env = Env::new();
    env.crmsync()
        .args(["auth", "ann", "--device"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "Google desktop apps do not support the device flow; use --paste",
        ));
}

#[test]
fn a_missing_token_key_is_a_configuration_error() {
    let env = Env::new();
    env.crmsync()
        .env_remove(KEY_ENV)
        .args(["sync", "ann"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains(KEY_ENV)
                .and(predicate::str::contains("openssl rand -base64 32")),
        );
    env.crmsync()
        .env(KEY_ENV, "not-a-key")
        .args(["auth", "ann", "--paste"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(KEY_ENV));
}

#[test]
fn a_signed_out_account_can_still_be_reset_fully() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    env.sync_json();
    env.fake.revoke_refresh_tokens();
    env.fake.expire_access_tokens();
    // The calendar's links only: its id is remembered, so Google is not needed.
    env.crmsync()
        .args(["reset", "ann", "--calendar", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("events: forgot 2 link(s)"));
    // Deleting our copies needs Google, so this says to sign in again.
    env.crmsync()
        .args(["reset", "ann", "--contacts", "--remove-remote", "--yes"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("crmsync auth ann"));
    assert_eq!(env.fake.contacts().len(), 2, "nothing deleted");
    // Without the calendar's id, opening the account needs Google too: a full reset still
    // forgets everything kept here.
    env.forget_calendar_alias();
    env.crmsync()
        .args(["reset", "ann", "--calendar", "--yes"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("crmsync auth ann"));
    env.crmsync()
        .args(["reset", "ann", "--all", "--yes"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("must sign in again")
                .and(predicate::str::contains("tokens: forgotten")),
        );
    assert!(!env.has_tokens());
    env.seed_tokens(Duration::minutes(50));
    let again = env.sync_json();
    assert_eq!(again["exit_code"], 0, "{again}");
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2, "no duplicate");
    assert_eq!(env.fake.contacts().len(), 2, "no duplicate");
    assert_eq!(env.crm_count("events.json"), 2);
    assert_eq!(env.crm_count("contacts.json"), 2);
}

#[test]
fn a_scope_left_unticked_saves_nothing() {
    let env = Env::new();
    env.fake.set_granted_scopes(Some(&[SCOPE_CALENDAR]));
    let (ok, _) = auth_paste(&env);
    assert!(!ok, "a missing scope fails the sign-in");
    assert!(!env.has_tokens(), "nothing is saved");
}

#[test]
fn a_calendar_id_that_is_gone_is_found_again_by_name() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    let first = env.sync_json();
    assert_eq!(first["exit_code"], 0, "{first}");
    assert_eq!(env.calendar_alias().as_deref(), Some(CRM_CALENDAR));

    // The remembered id no longer names a calendar (deleted, then made again by name).
    env.set_calendar_alias("gone@group.calendar.google.com");
    env.fake.reset_counters();
    let again = env.sync_json();
    assert_eq!(again["exit_code"], 0, "{again}");
    assert_eq!(written(&again), 0, "{again}");
    assert_eq!(
        env.fake.requests(Endpoint::CalendarListList),
        1,
        "the name is resolved again, once"
    );
    assert_eq!(env.calendar_alias().as_deref(), Some(CRM_CALENDAR));
    assert_eq!(env.fake.live_event_count(CRM_CALENDAR), 2, "no duplicate");

    env.fake.reset_counters();
    env.sync_json();
    assert_eq!(env.fake.requests(Endpoint::CalendarListList), 0);
}

/// Issue 10, item 4: `contacts = "Contacts"` is the whole address book: every phone contact
/// reaches the CRM and no group is made; doctor says so through the sync's own resolution,
/// and a group name that names no group is refused by both.
#[test]
fn contacts_named_contacts_sync_the_whole_address_book() {
    let env = Env::with_names("CRM", Some("Contacts"));
    env.seed_tokens(Duration::minutes(50));
    for i in 0..5 {
        env.fake.seed_contact(serde_json::json!({
            "names": [{"givenName": format!("Phone{i}"), "familyName": "Contact"}],
        }));
    }
    env.crmsync()
        .args(["doctor", "ann"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("whole address book")
                .and(predicate::str::contains("not a filter").not()),
        );
    env.sync_json();
    assert_eq!(
        env.crm_count("contacts.json"),
        7,
        "2 CRM + 5 phone contacts"
    );
    assert_eq!(env.fake.contacts().len(), 7);
    assert_eq!(env.fake.requests(Endpoint::ContactGroupsCreate), 0);

    let env = Env::with_names("CRM", Some("Custmers"));
    env.seed_tokens(Duration::minutes(50));
    env.fake.add_contact_group("Customers");
    env.crmsync()
        .args(["doctor", "ann"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("no contact group named \"Custmers\"")
                .and(predicate::str::contains("\"Customers\"")),
        );
    env.crmsync().args(["sync", "ann"]).assert().code(2);
    assert_eq!(env.fake.requests(Endpoint::ContactGroupsCreate), 0);
}
