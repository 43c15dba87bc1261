//! [`GoogleConfig`]: the OAuth client registration, every endpoint, and what to sync.

use crmsync_core::Result;
use crmsync_http::{BaseUrl, ClientSecret};
use url::Url;

/// Scope of full Calendar access (calendarList, events, colors).
pub const SCOPE_CALENDAR: &str = "https://www.googleapis.com/auth/calendar";
/// Scope of read/write contacts (People API).
pub const SCOPE_CONTACTS: &str = "https://www.googleapis.com/auth/contacts";

/// How to reach Google for one OAuth client registration, and what to sync.
///
/// Every endpoint is a field, so a fake or a proxy can stand in
/// ([`GoogleConfig::with_root_url`] points all of them at one root). `Debug` never shows
/// the client secret.
#[derive(Clone, Debug)]
pub struct GoogleConfig {
    /// The OAuth client id (`….apps.googleusercontent.com`).
    pub client_id: String,
    /// The OAuth client secret. Google's desktop clients need it at the token endpoint
    /// even with PKCE (G-OA-4); it is kept out of logs all the same.
    pub client_secret: ClientSecret,
    /// The Calendar API base, `https://www.googleapis.com/calendar/v3/`.
    pub calendar_url: BaseUrl,
    /// The Calendar batch endpoint, `https://www.googleapis.com/batch/calendar/v3`
    /// (G-CAL-2: the global batch endpoint is gone).
    pub batch_url: Url,
    /// The People API base, `https://people.googleapis.com/v1/`.
    pub people_url: BaseUrl,
    /// The OAuth authorization endpoint.
    pub authorize_url: Url,
    /// The OAuth token endpoint.
    pub token_url: Url,
    /// The OAuth revocation endpoint.
    pub revoke_url: Url,
    /// The name of the calendar to sync (its `summaryOverride`, else its `summary`).
    pub calendar_name: Option<String>,
    /// The contacts to sync, by name ([`ContactSelection`](crate::ContactSelection)):
    /// `None` or "Contacts" (also "My Contacts", "myContacts") is the whole address book;
    /// "Starred" the starred contacts; another name the members of that user contact group
    /// (created on the first create when missing; contacts we create join it). See
    /// [`GoogleContacts`](crate::GoogleContacts).
    pub contact_group: Option<String>,
    /// The scopes asked for at sign-in and required of the grant.
    pub scopes: Vec<String>,
}

fn fixed(url: &str) -> Url {
    Url::parse(url).expect("static URL")
}

impl GoogleConfig {
    /// Google's production endpoints, the Calendar and Contacts scopes, no calendar name.
    pub fn new(client_id: impl Into<String>, client_secret: ClientSecret) -> Self {
        let base = |u: &str| BaseUrl::parse(u).expect("static URL");
        GoogleConfig {
            client_id: client_id.into(),
            client_secret,
            calendar_url: base("https://www.googleapis.com/calendar/v3/"),
            batch_url: fixed("https://www.googleapis.com/batch/calendar/v3"),
            people_url: base("https://people.googleapis.com/v1/"),
            authorize_url: fixed("https://accounts.google.com/o/oauth2/v2/auth"),
            token_url: fixed("https://oauth2.googleapis.com/token"),
            revoke_url: fixed("https://oauth2.googleapis.com/revoke"),
            calendar_name: None,
            contact_group: None,
            scopes: vec![SCOPE_CALENDAR.to_owned(), SCOPE_CONTACTS.to_owned()],
        }
    }

    /// Every endpoint under one root, laid out as Google's paths are (`<root>/calendar/v3`,
    /// `<root>/batch/calendar/v3`, `<root>/v1`, `<root>/o/oauth2/v2/auth`, `<root>/token`,
    /// `<root>/revoke`): how a proxy or the test fake serves them.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crmsync_core::ErrorKind::InvalidInput) when `root` is
    /// not an absolute http(s) URL without query.
    pub fn with_root_url(mut self, root: &str) -> Result<Self> {
        let root = BaseUrl::parse(root)?;
        self.calendar_url = BaseUrl::parse(root.join("calendar/v3/")?.as_str())?;
        self.batch_url = root.join("batch/calendar/v3")?;
        self.people_url = BaseUrl::parse(root.join("v1/")?.as_str())?;
        self.authorize_url = root.join("o/oauth2/v2/auth")?;
        self.token_url = root.join("token")?;
        self.revoke_url = root.join("revoke")?;
        Ok(self)
    }

    /// Sets the name of the calendar to sync.
    #[must_use]
    pub fn with_calendar_name(mut self, name: impl Into<String>) -> Self {
        self.calendar_name = Some(name.into());
        self
    }

    /// Sets the name of the contact group to sync.
    #[must_use]
    pub fn with_contact_group(mut self, name: impl Into<String>) -> Self {
        self.contact_group = Some(name.into());
        self
    }

    /// Sets the scopes asked for and required.
    #[must_use]
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}
