//! The `crmsync` binary, run for real against a file CRM and the Graph fake of
//! crmsync-testkit (Microsoft Graph and the Microsoft identity platform on 127.0.0.1).
//!
//! The fake runs on a tokio runtime owned by the test; the binary is a separate process
//! pointed at the fake by `api_base_url` (the Graph base) and `auth_base_url` (the login
//! authority). Tokens are seeded into the CLI's token store (the state database, encrypted
//! under the test key), or obtained by running `crmsync auth` and playing the user.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use assert_cmd::Command;
use chrono::{Duration, Utc};
use crmsync_core::{AccessToken, AccountId, RefreshToken, TokenKey, TokenSet, TokenStore};
use crmsync_sqlite::{SqliteState, SqliteTokenStore};
use crmsync_testkit::graph::{
    DEFAULT_MAILBOX, Endpoint, GraphFake, PUBLIC_CLIENT_ID, SCOPE_CALENDARS, SCOPE_CONTACTS,
};
use predicates::prelude::*;
use serde_json::Value;

const KEY_ENV: &str = "CRMSYNC_TEST_TOKEN_KEY";

fn key() -> TokenKey {
    TokenKey::from_bytes([9; 32])
}

fn today_plus(days: i64) -> String {
    (Utc::now().date_naive() + Duration::days(days)).to_string()
}

/// A Graph fake with a "CRM" calendar, and a folder with a configuration pointing at it
/// and a file CRM of two events and two contacts.
struct Env {
    // Dropped before the runtime that serves it.
    fake: GraphFake,
    crm_calendar: String,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Self::with_calendar("CRM")
    }

    fn with_calendar(calendar: &str) -> Env {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let fake = rt.block_on(GraphFake::start());
        let crm_calendar = fake.add_calendar("CRM");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let config = format!(
            r#"
[crm]
folder = "crm"

[policy]
window = {{ months_before = 1, months_after = 12 }}

[[accounts]]
name = "adele"
provider = "microsoft"
account_id = "{DEFAULT_MAILBOX}"
client_id = "{PUBLIC_CLIENT_ID}"
tenant = "organizations"
token_key_env = "{KEY_ENV}"
{calendar_line}
api_base_url = "{graph}"
auth_base_url = "{login}"
"#,
            graph = fake.base_url(),
            login = fake.login_url(),
            // No name: the mailbox's default calendar.
            calendar_line = if calendar.is_empty() {
                String::new()
            } else {
                format!("calendar = \"{calendar}\"")
            },
        );
        std::fs::write(dir.path().join("crmsync.toml"), config).expect("write the config");
        std::fs::create_dir_all(dir.path().join("crm")).expect("make the CRM folder");
        let events = serde_json::json!([
            { "id": "act-1", "title": "Kickoff with Contoso",
              "period": { "kind": "all_day", "first_day": today_plus(2), "last_day": today_plus(2) } },
            { "id": "act-2", "title": "Call Alex", "location": "Phone",
              "period": { "kind": "timed", "start": format!("{}T14:00:00", today_plus(3)),
                          "end": format!("{}T14:30:00", today_plus(3)), "zone": "Europe/Paris" } }
        ]);
        let contacts = serde_json::json!([
            { "id": "ct-1", "display_name": "Alex Wilber",
              "emails": [ { "address": "alex@contoso.example", "usage": "work" } ] },
            { "id": "ct-2", "display_name": "Megan Bowen" }
        ]);
        for (file, value) in [("events.json", events), ("contacts.json", contacts)] {
            std::fs::write(
                dir.path().join("crm").join(file),
                serde_json::to_vec_pretty(&value).expect("json"),
            )
            .expect("write the file CRM");
        }
        Env {
            fake,
            crm_calendar,
            rt,
            dir,
        }
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
            .env(KEY_ENV, key().to_base64().as_str());
        cmd
    }

    /// Signs the mailbox in directly: tokens issued by the fake, saved in the CLI's token
    /// store, taken to be valid for `expires_in` (negative: the CLI refreshes first).
    fn seed_tokens(&self, expires_in: Duration) -> (String, String) {
        let issued = self
            .fake
            .issue_tokens(DEFAULT_MAILBOX, &[SCOPE_CALENDARS, SCOPE_CONTACTS]);
        let (access, refresh) = (issued.access_token.clone(), issued.refresh_token.clone());
        let path = self.state_path();
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let store = SqliteTokenStore::new(&state, key());
            store
                .save(
                    &mailbox(),
                    &TokenSet::new(
                        AccessToken::new(access),
                        Some(RefreshToken::new(refresh)),
                        Utc::now() + expires_in,
                    )
                    .with_scopes([
                        SCOPE_CALENDARS,
                        SCOPE_CONTACTS,
                        "offline_access",
                    ]),
                )
                .await
                .expect("save the tokens");
            state.close().await;
        });
        (issued.access_token, issued.refresh_token)
    }

    /// The tokens the CLI keeps now (after a refresh, they are new ones).
    fn stored_tokens(&self) -> Option<TokenSet> {
        let path = self.state_path();
        self.rt.block_on(async move {
            let state = SqliteState::open(&path).await.expect("open the state");
            let store = SqliteTokenStore::new(&state, key());
            let found = store.load(&mailbox()).await.expect("load");
            state.close().await;
            found
        })
    }

    fn run_json(&self, args: &[&str]) -> Value {
        let out = self
            .crmsync()
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).expect("the output is JSON")
    }

    fn sync_json(&self) -> Value {
        self.run_json(&["sync", "--json"])
    }

    fn crm_count(&self, file: &str) -> usize {
        let bytes = std::fs::read(self.path().join("crm").join(file)).expect("read");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        v.as_array().expect("an array").len()
    }

    fn outlook_events(&self) -> usize {
        self.fake.events(&self.crm_calendar).len()
    }
}

fn mailbox() -> AccountId {
    AccountId::new(DEFAULT_MAILBOX).expect("account")
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
fn plan_then_sync_into_outlook_then_nothing_to_do() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    let plan = env.run_json(&["plan", "adele", "--json"]);
    let plans = plan.as_array().expect("one plan per collection");
    assert_eq!(plans.len(), 2, "{plan}");
    for p in plans {
        let creates = p["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["operation"] == "create" && a["side"] == "provider")
            .count();
        assert_eq!(creates, 2, "{p}");
    }
    assert_eq!(env.outlook_events(), 0, "a plan writes nothing");

    let first = env.sync_json();
    assert_eq!(first["exit_code"], 0, "{first}");
    assert_eq!(written(&first), 4, "{first}");
    assert_eq!(env.outlook_events(), 2);
    assert_eq!(env.fake.contact_count(), 2);

    env.fake.reset_counters();
    let second = env.sync_json();
    assert_eq!(second["exit_code"], 0, "{second}");
    assert_eq!(written(&second), 0, "{second}");
    assert_eq!(env.outlook_events(), 2);
    assert_eq!(env.fake.contact_count(), 2);
    // One delta per collection; the calendar and the folder come from the state's aliases.
    assert_eq!(env.fake.requests(Endpoint::CalendarViewDelta), 1);
    assert_eq!(env.fake.requests(Endpoint::ContactsDelta), 1);
    assert_eq!(env.fake.requests(Endpoint::CalendarsList), 0);
    assert_eq!(env.fake.requests(Endpoint::ContactFoldersList), 0);
    // The echo of the first run's creates, in this new process: no event read back (their
    // transactionId carries the link key; issue 10 item 8).
    assert_eq!(env.fake.requests(Endpoint::EventGet), 0);
    // Documented paths only: the default folder is /me/contacts (issue 10 item 5).
    for r in env.fake.recorded_requests() {
        assert!(
            !r.url
                .to_ascii_lowercase()
                .contains("contactfolders/contacts"),
            "{}",
            r.url
        );
    }
    assert_eq!(
        env.fake.requests(Endpoint::Token),
        0,
        "a valid token is not refreshed"
    );
    assert!(env.fake.peak_in_flight() <= 4, "the mailbox limit holds");

    env.crmsync()
        .args(["sync"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    env.crmsync().arg("status").assert().success().stdout(
        predicate::str::contains("adele")
            .and(predicate::str::contains("microsoft"))
            .and(predicate::str::contains("ok")),
    );
    let status = env.run_json(&["status", "--json"]);
    assert_eq!(status[0]["status"]["status"], "ok", "{status}");
    assert!(
        status[0]["last_run"]["text"].is_string(),
        "the last run is kept: {status}"
    );
    env.crmsync()
        .args(["doctor", "adele"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("the access token is valid")
                .and(predicate::str::contains(
                    "every configured scope is granted",
                ))
                .and(predicate::str::contains("calendar \"CRM\" is used"))
                .and(predicate::str::contains(
                    "the default Contacts folder is used",
                )),
        );
    let doctor = env.run_json(&["doctor", "adele", "--json"]);
    assert_eq!(doctor["exit_code"], 0, "{doctor}");
    assert_eq!(doctor["accounts"][0]["provider"], "microsoft", "{doctor}");
}

/// Without a calendar name, the default calendar is used, and remembered like a named
/// one: the second sync lists no calendars.
#[test]
fn the_default_calendar_is_remembered_too() {
    let env = Env::with_calendar("");
    env.seed_tokens(Duration::minutes(50));
    let first = env.sync_json();
    assert_eq!(first["exit_code"], 0, "{first}");
    env.fake.reset_counters();
    let second = env.sync_json();
    assert_eq!(second["exit_code"], 0, "{second}");
    assert_eq!(written(&second), 0, "{second}");
    assert_eq!(env.fake.requests(Endpoint::CalendarsList), 0);
    assert_eq!(env.fake.requests(Endpoint::CalendarGet), 0);
    assert_eq!(env.fake.requests(Endpoint::CalendarViewDelta), 1);
}

#[test]
fn doctor_names_a_wrong_calendar_and_its_remedy() {
    let env = Env::with_calendar("Crm work");
    env.seed_tokens(Duration::minutes(50));
    env.crmsync()
        .args(["doctor", "adele"])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("no writable calendar is named \"Crm work\"")
                .and(predicate::str::contains("\"CRM\""))
                .and(predicate::str::contains("check the calendar's name")),
        );
    let out = env
        .crmsync()
        .args(["doctor", "adele", "--json"])
        .assert()
        .code(2)
        .get_output()
        .stdout
        .clone();
    let doctor: Value = serde_json::from_slice(&out).expect("JSON");
    let calendar = doctor["accounts"][0]["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["check"] == "calendar")
        .cloned()
        .expect("a calendar finding");
    assert_eq!(calendar["severity"], "error", "{calendar}");
    assert!(calendar["remedy"].is_string(), "{calendar}");
    env.crmsync()
        .args(["sync", "adele"])
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
    env.crmsync()
        .args(["sync", "adele"])
        .assert()
        .code(3)
        .stdout(predicate::str::contains("crmsync auth adele"));
    env.crmsync().arg("status").assert().code(3).stdout(
        predicate::str::contains("needs re-authorisation")
            .and(predicate::str::contains("crmsync auth adele")),
    );
    env.crmsync()
        .args(["doctor", "adele"])
        .assert()
        .code(3)
        .stdout(
            predicate::str::contains("AADSTS50173")
                .and(predicate::str::contains("crmsync auth adele")),
        );
    // Signing in again puts it right.
    env.seed_tokens(Duration::minutes(50));
    env.crmsync().args(["sync", "adele"]).assert().success();
    env.crmsync().arg("status").assert().success();
}

#[test]
fn reset_all_then_sync_without_duplicates() {
    let env = Env::new();
    env.seed_tokens(Duration::minutes(50));
    env.sync_json();
    assert_eq!(env.outlook_events(), 2);
    assert_eq!(env.fake.contact_count(), 2);

    // Microsoft has no revocation endpoint for public clients: --revoke says so.
    env.crmsync()
        .args(["reset", "adele", "--all", "--revoke", "--yes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("myapps.microsoft.com"));
    assert!(env.stored_tokens().is_some(), "nothing was done");

    env.crmsync()
        .args(["reset", "adele", "--all", "--yes"])
        .assert()
        .success()
        .stdout(predicate::str::contains("tokens: forgotten"));
    assert!(
        env.stored_tokens().is_none(),
        "reset --all purges the tokens"
    );
    env.crmsync()
        .arg("status")
        .assert()
        .code(3)
        .stdout(predicate::str::contains("needs re-authorisation"));
    env.crmsync().args(["sync", "adele"]).assert().code(3);

    env.seed_tokens(Duration::minutes(50));
    let again = env.sync_json();
    assert_eq!(again["exit_code"], 0, "{again}");
    assert_eq!(env.outlook_events(), 2, "no duplicate");
    assert_eq!(env.fake.contact_count(), 2, "no duplicate");
    assert_eq!(env.crm_count("events.json"), 2);
    assert_eq!(env.crm_count("contacts.json"), 2);
    let third = env.sync_json();
    assert_eq!(written(&third), 0, "{third}");
}

#[test]
fn tokens_and_the_token_key_never_reach_the_output() {
    let env = Env::new();
    // An expired stored access token: the first command refreshes (a rotated refresh
    // token comes back).
    let (access, refresh) = env.seed_tokens(Duration::minutes(-5));
    let mut secrets = vec![access, refresh, key().to_base64().as_str().to_owned()];
    let mut seen = String::new();
    for args in [
        &["-vv", "doctor"][..],
        &["-vv", "plan"][..],
        &["-vv", "sync"][..],
        &["-vv", "sync", "--json"][..],
        &["-vv", "status"][..],
    ] {
        let assert = env.crmsync().args(args).env("RUST_LOG", "trace").assert();
        let out = assert.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(now) = env.stored_tokens() {
            secrets.push(now.access_token.secret().to_owned());
            secrets.extend(now.refresh_token.map(|r| r.secret().to_owned()));
        }
        for secret in &secrets {
            assert!(!all.contains(secret.as_str()), "{args:?} printed a secret");
        }
        seen.push_str(&all);
    }
    assert!(
        env.fake.requests(Endpoint::Token) >= 1,
        "the refresh token was used"
    );
    assert!(
        seen.contains("TRACE") || seen.contains("DEBUG"),
        "logs were on"
    );
    assert_eq!(env.outlook_events(), 2, "the sync ran");
}

/// Reads the child's stdout until a line holding `needle`, and returns it.
fn read_line_with(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> String {
    for line in lines {
        let line = line.expect("a line of output");
        if line.contains(needle) {
            return line;
        }
    }
    panic!("crmsync auth printed no line with {needle:?}");
}

fn auth_child(env: &Env, args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("crmsync"))
        .args(args)
        .current_dir(env.path())
        .env_remove("RUST_LOG")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env(KEY_ENV, key().to_base64().as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run crmsync auth")
}

#[test]
fn auth_device_prints_the_code_then_signs_in() {
    let env = Env::new();
    let mut child = auth_child(&env, &["auth", "adele", "--device"]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = read_line_with(&mut lines, "enter the code");
    assert!(line.contains("https://microsoft.com/devicelogin"), "{line}");
    let code = line
        .split_whitespace()
        .last()
        .expect("the code ends the line")
        .to_owned();
    assert!(env.fake.approve_device_code(&code), "the fake knows {code}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("crmsync auth ends");
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("Signed in")), "{rest:?}");
    assert!(env.stored_tokens().is_some());
    assert!(env.fake.requests(Endpoint::DeviceCode) == 1);
    let run = env.sync_json();
    assert_eq!(written(&run), 4, "{run}");
}

#[test]
fn auth_paste_signs_in_through_the_organizations_tenant() {
    let env = Env::new();
    let mut child = auth_child(&env, &["auth", "adele", "--paste"]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = read_line_with(&mut lines, &env.fake.authorize_url("organizations"));
    let url = line.trim().to_owned();
    let redirected = env.rt.block_on(async {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let answer = browser
            .get(&url)
            .send()
            .await
            .expect("the authorization page");
        assert_eq!(answer.status().as_u16(), 302, "the sign-in redirects");
        answer.headers()["location"]
            .to_str()
            .expect("a location")
            .to_owned()
    });
    assert!(
        redirected.starts_with("http://127.0.0.1:1/"),
        "{redirected}"
    );
    writeln!(child.stdin.take().expect("stdin"), "{redirected}").expect("paste");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("crmsync auth ends");
    assert!(status.success(), "{rest:?}");
    assert!(env.stored_tokens().is_some());
    env.crmsync().args(["doctor", "adele"]).assert().success();
}

#[test]
fn a_microsoft_account_takes_no_client_secret() {
    let env = Env::new();
    let path = env.path().join("crmsync.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        format!("{text}client_secret_env = \"CRMSYNC_TEST_MS_SECRET\"\n"),
    )
    .expect("write");
    env.crmsync().args(["sync"]).assert().code(2).stderr(
        predicate::str::contains("accounts[0].client_secret_env")
            .and(predicate::str::contains("public client")),
    );
}

#[test]
fn auth_loopback_signs_in_through_the_browser() {
    let env = Env::new();
    let mut child = auth_child(&env, &["auth", "adele", "--no-browser", "--timeout", "60"]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = read_line_with(&mut lines, &env.fake.authorize_url("organizations"));
    let url = line.trim().to_owned();
    env.rt.block_on(async {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        let answer = browser
            .get(&url)
            .send()
            .await
            .expect("the authorization page");
        assert_eq!(answer.status().as_u16(), 302, "the sign-in redirects");
        let back = answer.headers()["location"]
            .to_str()
            .expect("a location")
            .to_owned();
        assert!(back.starts_with("http://127.0.0.1:"), "{back}");
        // The browser follows the redirect to crmsync's loopback listener.
        let _ = reqwest::get(back.as_str()).await;
    });
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("crmsync auth ends");
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("Signed in")), "{rest:?}");
    assert!(env.stored_tokens().is_some());
    env.crmsync().args(["doctor", "adele"]).assert().success();
}
