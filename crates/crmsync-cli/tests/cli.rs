//! The `crmsync` binary, run for real against a file CRM and the memory provider.

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const SECRET_SENTINEL: &str = "s3cr3t-SENTINEL-do-not-print-4242";

fn crmsync(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("crmsync").expect("the crmsync binary is built");
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("CRMSYNC_TEST_SECRET", SECRET_SENTINEL);
    cmd
}

const CONFIG: &str = r#"
[crm]
folder = "crm"

[policy]
window = { months_before = 1, months_after = 12 }

[[accounts]]
name = "sam"
provider = "memory"
account_id = "sam@example.com"
client_id = "test-client"
client_secret_env = "CRMSYNC_TEST_SECRET"
calendar = "Work"
contacts = "Contacts"
snapshot_folder = "phone"
"#;

fn today_plus(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// A folder with the configuration and a file CRM of two events and two contacts.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("crmsync.toml"), CONFIG).expect("write the config");
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
    std::fs::write(
        dir.path().join("crm/events.json"),
        serde_json::to_vec_pretty(&events).expect("json"),
    )
    .expect("write events.json");
    std::fs::write(
        dir.path().join("crm/contacts.json"),
        serde_json::to_vec_pretty(&contacts).expect("json"),
    )
    .expect("write contacts.json");
    dir
}

fn json_of(output: &[u8]) -> Value {
    serde_json::from_slice(output).expect("the output is JSON")
}

fn file_count(path: &Path) -> usize {
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    v.as_array().expect("an array").len()
}

/// Records in a memory snapshot, over all its collections.
fn snapshot_count(path: &Path) -> usize {
    let v: Value = serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json");
    v["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .map(|c| c["items"].as_object().map_or(0, |m| m.len()))
        .sum()
}

fn sync_json(dir: &Path) -> Value {
    let out = crmsync(dir)
        .args(["sync", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json_of(&out)
}

fn totals(run: &Value) -> (u64, u64) {
    let mut written = 0;
    let mut linked = 0;
    for account in run["accounts"].as_array().expect("accounts") {
        for r in account["reports"].as_array().expect("reports") {
            let rep = &r["report"];
            for side in ["crm", "provider"] {
                for k in ["created", "updated", "deleted"] {
                    written += rep[side][k].as_u64().expect("a count");
                }
            }
            linked += rep["linked"].as_u64().expect("a count");
        }
    }
    (written, linked)
}

#[test]
fn demo_runs_the_quickstart_scenario() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let target = dir.path().join("demo");
    crmsync(dir.path())
        .args(["demo", "--dir"])
        .arg(&target)
        .assert()
        .success()
        .stdout(predicate::str::contains("by natural key"))
        .stdout(predicate::str::contains("nothing to do"))
        .stdout(predicate::str::contains(
            "CRM    \"Quarterly review with Acme (v2)\" at Café Bellecour",
        ))
        .stdout(predicate::str::contains(
            "phone  \"Quarterly review with Acme (v2)\" at Café Bellecour",
        ));
    // The folder it leaves works with the other commands.
    crmsync(dir.path())
        .arg("--config")
        .arg(target.join("crmsync.toml"))
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
    // A folder that is not empty is refused.
    crmsync(dir.path())
        .args(["demo", "--dir"])
        .arg(&target)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not empty"));
}

#[test]
fn plan_then_sync_then_nothing_to_do() {
    let dir = fixture();
    crmsync(dir.path())
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains("create"))
        .stdout(predicate::str::contains("Kickoff with Acme"))
        .stdout(predicate::str::contains("side"))
        .stdout(predicate::str::contains("operation"));
    // The dry run wrote nothing to the provider.
    assert!(!dir.path().join("phone/events.json").exists());

    let plan = json_of(
        &crmsync(dir.path())
            .args(["plan", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    );
    let creates = plan
        .as_array()
        .expect("an array")
        .iter()
        .flat_map(|p| p["actions"].as_array().expect("actions").iter())
        .filter(|a| a["operation"] == "create" && a["side"] == "provider")
        .count();
    assert_eq!(creates, 4, "{plan:#}");

    let first = sync_json(dir.path());
    assert_eq!(first["exit_code"], 0);
    assert_eq!(totals(&first).0, 4, "{first:#}");
    assert_eq!(snapshot_count(&dir.path().join("phone/events.json")), 2);
    assert_eq!(snapshot_count(&dir.path().join("phone/contacts.json")), 2);

    let second = sync_json(dir.path());
    assert_eq!(totals(&second), (0, 0), "{second:#}");
    for account in second["accounts"].as_array().expect("accounts") {
        for r in account["reports"].as_array().expect("reports") {
            // One change-feed request per side when nothing changed.
            assert_eq!(r["report"]["crm"]["requests"], 1, "{second:#}");
            assert_eq!(r["report"]["provider"]["requests"], 1, "{second:#}");
        }
    }
    crmsync(dir.path())
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to do"));
}

#[test]
fn an_edit_in_the_crm_file_reaches_the_provider() {
    let dir = fixture();
    sync_json(dir.path());
    let path = dir.path().join("crm/events.json");
    let mut events: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
    events[0]["title"] = Value::String("Kickoff with Acme (moved)".into());
    std::fs::write(&path, serde_json::to_vec(&events).expect("json")).expect("write");
    let run = sync_json(dir.path());
    assert_eq!(totals(&run).0, 1, "{run:#}");
    let phone = std::fs::read_to_string(dir.path().join("phone/events.json")).expect("read");
    assert!(phone.contains("Kickoff with Acme (moved)"));
}

#[test]
fn reset_then_sync_makes_no_duplicates() {
    let dir = fixture();
    sync_json(dir.path());
    let counts = |dir: &Path| {
        (
            file_count(&dir.join("crm/events.json")),
            file_count(&dir.join("crm/contacts.json")),
            snapshot_count(&dir.join("phone/events.json")),
            snapshot_count(&dir.join("phone/contacts.json")),
        )
    };
    let before = counts(dir.path());
    assert_eq!(before, (2, 2, 2, 2));

    // Without --yes, a "no" on stdin leaves everything as it is.
    crmsync(dir.path())
        .args(["reset", "sam"])
        .write_stdin("n\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not confirmed"));
    crmsync(dir.path())
        .args(["reset", "sam"])
        .write_stdin("y\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("forgot 2 link(s)"));
    let run = sync_json(dir.path());
    let (written, linked) = totals(&run);
    assert_eq!(written, 0, "{run:#}");
    assert_eq!(linked, 4, "re-linked by link key: {run:#}");
    assert_eq!(counts(dir.path()), before);

    // Removing our copies on the provider, then syncing, copies them again once.
    crmsync(dir.path())
        .args(["reset", "sam", "--calendar", "--remove-remote", "--yes"])
        .assert()
        .success();
    assert_eq!(snapshot_count(&dir.path().join("phone/events.json")), 0);
    sync_json(dir.path());
    assert_eq!(counts(dir.path()), before);
}

#[test]
fn push_and_pull() {
    let dir = fixture();
    crmsync(dir.path())
        .args(["push", "sam", "act-1", "--json"])
        .assert()
        .success();
    assert_eq!(snapshot_count(&dir.path().join("phone/events.json")), 1);
    crmsync(dir.path())
        .args(["push", "sam", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no record \"nope\""));
    crmsync(dir.path()).args(["pull", "sam"]).assert().success();
}

#[test]
fn status_shows_the_last_run() {
    let dir = fixture();
    crmsync(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("never"));
    sync_json(dir.path());
    crmsync(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("sam"))
        .stdout(predicate::str::contains("ok"))
        .stdout(predicate::str::contains("Sync of sam@example.com/event"))
        .stdout(predicate::str::contains("Sync of sam@example.com/contact"));
    let status = json_of(
        &crmsync(dir.path())
            .args(["status", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    );
    assert_eq!(status[0]["status"]["status"], "ok");
    assert!(status[0]["last_run"]["finished_at"].is_string());
}

#[test]
fn doctor_with_a_wrong_calendar_name_prints_the_remedy() {
    let dir = fixture();
    crmsync(dir.path())
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains("calendar \"Work\" resolves"));
    let config = CONFIG.replace(
        "calendar = \"Work\"",
        "calendar = \"Wrok\"\ncalendars = [\"Work\", \"Home\"]",
    );
    std::fs::write(dir.path().join("crmsync.toml"), config).expect("write");
    crmsync(dir.path())
        .args(["doctor", "sam"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("\"Wrok\""))
        .stdout(predicate::str::contains("case-sensitive"));
}

fn bad_config(extra_account_line: &str, expected: &[&str]) {
    let dir = fixture();
    let config = CONFIG.replace(
        "snapshot_folder = \"phone\"",
        &format!("snapshot_folder = \"phone\"\n{extra_account_line}"),
    );
    std::fs::write(dir.path().join("crmsync.toml"), config).expect("write");
    let assert = crmsync(dir.path()).arg("sync").assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("crmsync.toml"), "{stderr}");
    for e in expected {
        assert!(stderr.contains(e), "expected {e:?} in {stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 1, "one message: {stderr}");
}

#[test]
fn bad_configurations_exit_2_naming_the_key() {
    bad_config(
        "colour = \"blue\"",
        &["accounts[0].colour", "unknown field"],
    );
    bad_config(
        "client_secret = \"hunter2\"",
        &[
            "accounts[0].client_secret",
            "client_secret_env",
            "environment variable",
        ],
    );
    bad_config("like = 3", &["accounts[0].like", "\"outlook\""]);
    bad_config("sync = \"events\"", &["accounts[0].sync", "expected"]);
    let dir = fixture();
    std::fs::write(
        dir.path().join("crmsync.toml"),
        CONFIG.replace("months_before = 1", "months_before = \"one\""),
    )
    .expect("write");
    crmsync(dir.path())
        .arg("status")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("policy.window.months_before"))
        .stderr(predicate::str::contains("line 6"));
    let dir = fixture();
    std::fs::write(
        dir.path().join("crmsync.toml"),
        format!("{CONFIG}\n[policy.contacts]\nfields = {{ phone = \"both\" }}\n")
            .replace("[policy]\n", "[policy]\nconflicts = \"crm_wins\"\n"),
    )
    .expect("write");
    crmsync(dir.path())
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("policy.contacts"))
        .stderr(predicate::str::contains("unknown field \"phone\""));
    let dir = tempfile::tempdir().expect("dir");
    crmsync(dir.path())
        .arg("plan")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no configuration file"));
}

#[test]
fn a_microsoft_account_needs_its_token_key() {
    let dir = fixture();
    let config = CONFIG
        .replace("provider = \"memory\"", "provider = \"microsoft\"")
        .replace("client_secret_env = \"CRMSYNC_TEST_SECRET\"\n", "")
        .replace("snapshot_folder = \"phone\"\n", "");
    std::fs::write(dir.path().join("crmsync.toml"), config).expect("write");
    crmsync(dir.path())
        .env_remove("CRMSYNC_TOKEN_KEY")
        .args(["auth", "sam"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("CRMSYNC_TOKEN_KEY")
                .and(predicate::str::contains("openssl rand -base64 32")),
        );
    // `sync` reports each account's failure in its report, and exits with the worst code.
    crmsync(dir.path())
        .env_remove("CRMSYNC_TOKEN_KEY")
        .args(["sync", "sam"])
        .assert()
        .code(2)
        .stdout(predicate::str::contains("CRMSYNC_TOKEN_KEY"));
    let fixture = self::fixture();
    crmsync(fixture.path())
        .args(["auth", "sam"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing to sign in"));
}

#[test]
fn secrets_never_reach_the_output() {
    let dir = fixture();
    for args in [
        &["-vv", "doctor"][..],
        &["-vv", "sync"][..],
        &["-vv", "sync", "--json"][..],
        &["-vv", "status"][..],
    ] {
        let assert = crmsync(dir.path())
            .args(args)
            .env("RUST_LOG", "trace")
            .assert();
        let out = assert.get_output();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains(SECRET_SENTINEL),
            "{args:?} printed the secret"
        );
    }
    crmsync(dir.path())
        .arg("doctor")
        .assert()
        .stdout(predicate::str::contains("CRMSYNC_TEST_SECRET"));
}

#[test]
fn help_of_every_command() {
    let dir = tempfile::tempdir().expect("dir");
    crmsync(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
    for command in [
        "auth", "doctor", "plan", "sync", "push", "pull", "reset", "status", "demo",
    ] {
        crmsync(dir.path())
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples"))
            .stdout(predicate::str::contains("Exit codes"));
    }
    crmsync(dir.path()).arg("frobnicate").assert().code(2);
}

#[test]
fn the_mass_deletion_guard_stops_the_run_with_exit_code_4() {
    let dir = fixture();
    sync_json(dir.path());
    std::fs::write(dir.path().join("crm/events.json"), "[]").expect("write");
    crmsync(dir.path())
        .arg("sync")
        .assert()
        .code(4)
        .stdout(predicate::str::contains("STOPPED"));
    assert_eq!(snapshot_count(&dir.path().join("phone/events.json")), 2);
    crmsync(dir.path())
        .args(["sync", "--allow-mass-deletion"])
        .assert()
        .success();
    assert_eq!(snapshot_count(&dir.path().join("phone/events.json")), 0);
}

#[test]
fn deletions_on_the_provider_wait_for_confirmation() {
    use crmsync_core::{Contact, RecordStore as _};
    use crmsync_memory::MemoryStore;

    let dir = fixture();
    sync_json(dir.path());
    // Ann is deleted on the phone, as its contacts app would.
    let path = dir.path().join("phone/contacts.json");
    let phone = MemoryStore::<Contact>::open_snapshot(&path).expect("snapshot");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let book = runtime
        .block_on(phone.collections())
        .expect("collections")
        .remove(0)
        .id;
    let ann = phone
        .get_all(&book)
        .expect("items")
        .into_iter()
        .find(|c| c.record.display_name == "Ann Lee")
        .expect("Ann on the phone");
    phone.remove_item(&book, &ann.id).expect("delete");
    phone.save_snapshot().expect("save");

    crmsync(dir.path())
        .arg("sync")
        .assert()
        .success()
        .stdout(predicate::str::contains("awaiting confirmation"))
        .stdout(predicate::str::contains("--confirm-deletions"));
    assert_eq!(file_count(&dir.path().join("crm/contacts.json")), 2);
    crmsync(dir.path())
        .args(["sync", "--confirm-deletions"])
        .assert()
        .success();
    assert_eq!(file_count(&dir.path().join("crm/contacts.json")), 1);
}

#[test]
fn several_accounts_sync_at_once_from_one_file_crm() {
    let dir = fixture();
    let config = format!(
        "{CONFIG}\n[[accounts]]\nname = \"ann\"\nprovider = \"memory\"\ncalendar = \"Agenda\"\nsnapshot_folder = \"phone-ann\"\nlike = \"outlook\"\n"
    )
    .replace("[crm]", "concurrency = 2\n\n[crm]");
    std::fs::write(dir.path().join("crmsync.toml"), config).expect("write");
    let first = sync_json(dir.path());
    assert_eq!(first["accounts"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["accounts"][0]["account"], "sam");
    assert_eq!(first["accounts"][1]["account"], "ann");
    for phone in ["phone", "phone-ann"] {
        assert_eq!(
            snapshot_count(&dir.path().join(phone).join("events.json")),
            2
        );
        assert_eq!(
            snapshot_count(&dir.path().join(phone).join("contacts.json")),
            2
        );
    }
    assert_eq!(file_count(&dir.path().join("crm/events.json")), 2);
    let second = sync_json(dir.path());
    assert_eq!(totals(&second), (0, 0), "{second:#}");
    crmsync(dir.path())
        .args(["sync", "ann", "nobody"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no account named \"nobody\""));
}
