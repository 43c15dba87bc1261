//! The command line, as clap derives it.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

/// Keep a CRM's calendar and contacts in sync with Google, Microsoft 365 and CalDAV.
#[derive(Debug, Parser)]
#[command(
    name = "crmsync",
    version,
    about,
    long_about = "Keep a CRM's calendar and contacts in sync with Google, Microsoft 365 and CalDAV.\n\nThe configuration (accounts, the file CRM, the state, the policy) is one TOML file: --config, else ./crmsync.toml. See docs/cli.md.",
    after_help = concat!("Examples:
  crmsync demo                       # try it: no account, no configuration needed
  crmsync doctor                     # check the configuration and every account
  crmsync plan sam                   # what a sync of account `sam` would do
  crmsync sync                       # two-way sync of every account
  crmsync --config prod.toml -v sync sam ann --json

", "Exit codes:
  0  success (a cap reached is only a warning in the report)
  1  some records failed (listed in the report, retried on the next run)
  2  configuration or usage error
  3  re-authorisation needed (run `crmsync auth <account>`)
  4  a guard stopped the run (mass deletion; see --allow-mass-deletion)")
)]
pub struct Cli {
    /// The configuration file [default: ./crmsync.toml].
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More logging: -v for info, -vv for debug (RUST_LOG overrides).
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign an account in and store its tokens.
    #[command(after_help = concat!("Examples:
  crmsync auth sam                   # prints the sign-in address, opens a browser when there is one
  crmsync auth sam --paste           # no browser here: paste the address the browser ended on
  crmsync auth sam --no-browser      # print the address only (open it on this machine)
  crmsync auth adele --device        # Microsoft: a code to type at microsoft.com/devicelogin

The loopback sign-in waits on 127.0.0.1 for the provider's redirect. With --paste, open the
printed address anywhere, sign in, allow; the browser then fails to load a 127.0.0.1 page:
copy its whole address and paste it. --device (Microsoft) prints where to go and the code
to type, then waits until the user has signed in; Google desktop apps have no device flow
(--device exits 2). Tokens are saved encrypted in the state database under the key in the
account's `token_key_env` variable (default CRMSYNC_TOKEN_KEY).
The memory provider needs no sign-in.

", "Exit codes: 0 signed in (or nothing to do), 1 the sign-in failed (a scope not granted,
the user declined, the token endpoint refused), 2 unknown account or configuration error
or --device on Google, 3 the browser never came back in time or the device code expired."))]
    Auth {
        /// The account, by its `name` in the configuration.
        account: String,
        /// Manual fallback: print the address, then read the redirected address from stdin.
        #[arg(long, conflicts_with = "device")]
        paste: bool,
        /// The device-code flow (Microsoft; not offered by Google desktop apps).
        #[arg(long)]
        device: bool,
        /// Do not try to open a browser; only print the address.
        #[arg(long)]
        no_browser: bool,
        /// How long the loopback sign-in waits for the browser, in seconds.
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        timeout: u64,
    },

    /// Check the configuration, the state, the CRM and each account; print what to do.
    #[command(after_help = "Examples:
  crmsync doctor          # every account
  crmsync doctor sam
  crmsync doctor --json | jq '.accounts[].findings[] | select(.severity == \"error\")'

Exit codes: 0 everything is fine (warnings allowed), 1 something is wrong, 2 the
configuration or a calendar name is wrong, 3 an account must be authorised again.")]
    Doctor {
        /// The account; every account when omitted.
        account: Option<String>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },

    /// The dry run: what a sync would do, as a table (nothing is written).
    #[command(after_help = "Examples:
  crmsync plan
  crmsync plan sam --json | jq '.[].actions[] | select(.operation == \"create\")'

Exit codes: 0 planned, 1 a listing failed, 2 configuration error, 3 re-authorisation needed,
4 the mass-deletion guard would stop the run.")]
    Plan {
        /// The account; every account when omitted.
        account: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Two-way sync of one, several or every account.
    #[command(after_help = concat!("Examples:
  crmsync sync                       # every account
  crmsync sync sam ann --json
  crmsync sync sam --confirm-deletions

", "Exit codes:
  0  success (a cap reached is only a warning in the report)
  1  some records failed (listed in the report, retried on the next run)
  2  configuration or usage error
  3  re-authorisation needed (run `crmsync auth <account>`)
  4  a guard stopped the run (mass deletion; see --allow-mass-deletion)"))]
    Sync {
        /// The accounts; every account when omitted.
        accounts: Vec<String>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        /// Deletion options.
        #[command(flatten)]
        run: RunArgs,
    },

    /// Write these CRM records to the provider now (the on-change push).
    #[command(after_help = "Examples:
  crmsync push sam act-12 act-13     # ids from events.json or contacts.json

Exit codes: 0 pushed, 1 some records failed, 2 unknown account or record id, 3
re-authorisation needed.")]
    Push {
        /// The account.
        account: String,
        /// CRM record ids (from events.json or contacts.json).
        #[arg(required = true)]
        crm_ids: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Provider → CRM only, as at start-up (deletions as the policy says).
    #[command(after_help = "Examples:
  crmsync pull sam
  crmsync pull sam --confirm-deletions

Exit codes: as `sync`.")]
    Pull {
        /// The account.
        account: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Deletion options.
        #[command(flatten)]
        run: RunArgs,
    },

    /// Forget an account's links (and optionally delete our copies on the provider).
    #[command(after_help = "Examples:
  crmsync reset sam                  # asks first; forgets calendar and contact links
  crmsync reset sam --calendar --yes
  crmsync reset sam --all --remove-remote
  crmsync reset ann --all --revoke --yes   # Google: also revoke the grant at Google

A later sync re-links by link key: nothing is duplicated. `--all` also forgets the
account's tokens (sign in again with `crmsync auth` before the next sync).
Exit codes: 0 done, 1 some copies could not be deleted or the revocation failed, 2 usage
error, not confirmed, or --revoke on a provider without revocation (Microsoft), 3 the
provider must be reached and refuses the tokens.")]
    Reset {
        /// The account.
        account: String,
        /// Only the calendar's links.
        #[arg(long, conflicts_with_all = ["contacts", "all"])]
        calendar: bool,
        /// Only the contacts' links.
        #[arg(long, conflicts_with = "all")]
        contacts: bool,
        /// Calendar and contacts (the default), and also the account's tokens.
        #[arg(long)]
        all: bool,
        /// With --all: revoke the account's grant at the provider (Google) before purging
        /// its tokens.
        #[arg(long, requires = "all")]
        revoke: bool,
        /// Also delete the copies crmsync made on the provider.
        #[arg(long)]
        remove_remote: bool,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },

    /// Accounts, their status and their last run.
    #[command(after_help = "Examples:
  crmsync status
  crmsync status --json

Exit codes: 0 every account ok, 1 an account is failing, 3 an account needs
re-authorisation, 2 configuration error.")]
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// The quickstart scenario through the CLI: a CRM and a phone, no account needed.
    #[command(after_help = "Examples:
  crmsync demo                       # in a temporary folder, removed at the end
  crmsync demo --dir try-crmsync     # keep the folder: its crmsync.toml works with every command

Exit codes: 0 the scenario ran cleanly, 1 it did not, 2 the folder is not empty.")]
    Demo {
        /// The folder to use (must be empty or missing); a temporary one when omitted.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options of runs that may delete.
#[derive(Debug, Clone, Copy, Args)]
pub struct RunArgs {
    /// Confirm the deletions the policy wants confirmed (otherwise they are listed and wait).
    #[arg(long)]
    pub confirm_deletions: bool,
    /// Go ahead even when a run would delete more than the mass-deletion threshold.
    #[arg(long)]
    pub allow_mass_deletion: bool,
}
