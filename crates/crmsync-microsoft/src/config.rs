//! [`MicrosoftConfig`]: the app registration, the tenant, every endpoint, and what to sync.

use crmsync_core::{Error, Result};
use crmsync_http::BaseUrl;
use url::Url;

/// Delegated scope of calendars and events (`Calendars.ReadWrite`).
pub const SCOPE_CALENDARS: &str = "https://graph.microsoft.com/Calendars.ReadWrite";
/// Delegated scope of personal contacts (`Contacts.ReadWrite`).
pub const SCOPE_CONTACTS: &str = "https://graph.microsoft.com/Contacts.ReadWrite";
/// The scope without which the identity platform issues no refresh token.
pub const SCOPE_OFFLINE_ACCESS: &str = "offline_access";

/// Which directory signs the user in: the `{tenant}` segment of the identity platform's
/// endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenant {
    /// Work, school and personal Microsoft accounts (`common`).
    Common,
    /// Work and school accounts of any organisation (`organizations`).
    Organizations,
    /// Personal Microsoft accounts only (`consumers`).
    Consumers,
    /// One organisation, by tenant id (a GUID) or domain name.
    Id(String),
}

impl Tenant {
    /// A tenant from its text: `common`, `organizations`, `consumers`, or a tenant id or
    /// domain.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crmsync_core::ErrorKind::InvalidInput) when the text is
    /// empty or holds anything but letters, digits, `-` and `.`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "common" => Ok(Tenant::Common),
            "organizations" => Ok(Tenant::Organizations),
            "consumers" => Ok(Tenant::Consumers),
            "" => Err(Error::invalid_input("the tenant is empty")),
            id if id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') =>
            {
                Ok(Tenant::Id(id.to_owned()))
            }
            other => Err(Error::invalid_input(format!(
                "`{other}` is not a tenant: use common, organizations, consumers, a tenant id \
                 or a domain"
            ))),
        }
    }

    /// The path segment.
    pub fn as_str(&self) -> &str {
        match self {
            Tenant::Common => "common",
            Tenant::Organizations => "organizations",
            Tenant::Consumers => "consumers",
            Tenant::Id(id) => id,
        }
    }
}

/// How to reach Microsoft for one app registration (a public client: no secret), and what
/// to sync.
///
/// Every endpoint derives from two overridable bases, so a fake or a proxy can stand in.
#[derive(Clone, Debug)]
pub struct MicrosoftConfig {
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The tenant users sign in to.
    pub tenant: Tenant,
    /// The Graph base, `https://graph.microsoft.com/v1.0/`.
    pub graph_url: BaseUrl,
    /// The login authority, `https://login.microsoftonline.com/`; the endpoints are
    /// `{authority}/{tenant}/oauth2/v2.0/{authorize,token,devicecode}`.
    pub authority_url: BaseUrl,
    /// The name of the calendar to sync; `None` for the default calendar.
    pub calendar_name: Option<String>,
    /// The name of the contact folder to sync; `None` for the default folder.
    pub contact_folder: Option<String>,
    /// The scopes asked for at sign-in and on refresh.
    pub scopes: Vec<String>,
}

impl MicrosoftConfig {
    /// Microsoft's production endpoints, the `common` tenant, the Calendars, Contacts and
    /// `offline_access` scopes, the default calendar and contact folder.
    pub fn new(client_id: impl Into<String>) -> Self {
        let base = |u: &str| BaseUrl::parse(u).expect("static URL");
        MicrosoftConfig {
            client_id: client_id.into(),
            tenant: Tenant::Common,
            graph_url: base("https://graph.microsoft.com/v1.0/"),
            authority_url: base("https://login.microsoftonline.com/"),
            calendar_name: None,
            contact_folder: None,
            scopes: vec![
                SCOPE_CALENDARS.to_owned(),
                SCOPE_CONTACTS.to_owned(),
                SCOPE_OFFLINE_ACCESS.to_owned(),
            ],
        }
    }

    /// Sets the tenant.
    #[must_use]
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = tenant;
        self
    }

    /// Sets the Graph base (`…/v1.0`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crmsync_core::ErrorKind::InvalidInput) when `url` is not
    /// an absolute http(s) URL without query.
    pub fn with_graph_url(mut self, url: &str) -> Result<Self> {
        self.graph_url = BaseUrl::parse(url)?;
        Ok(self)
    }

    /// Sets the login authority.
    ///
    /// # Errors
    /// As [`with_graph_url`](MicrosoftConfig::with_graph_url).
    pub fn with_authority_url(mut self, url: &str) -> Result<Self> {
        self.authority_url = BaseUrl::parse(url)?;
        Ok(self)
    }

    /// Sets the name of the calendar to sync.
    #[must_use]
    pub fn with_calendar_name(mut self, name: impl Into<String>) -> Self {
        self.calendar_name = Some(name.into());
        self
    }

    /// Sets the name of the contact folder to sync.
    #[must_use]
    pub fn with_contact_folder(mut self, name: impl Into<String>) -> Self {
        self.contact_folder = Some(name.into());
        self
    }

    /// Sets the scopes asked for.
    #[must_use]
    pub fn with_scopes(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    fn identity(&self, endpoint: &str) -> Url {
        self.authority_url
            .join_segments([self.tenant.as_str(), "oauth2", "v2.0", endpoint])
    }

    /// The tenant's authorization endpoint.
    pub fn authorize_url(&self) -> Url {
        self.identity("authorize")
    }

    /// The tenant's token endpoint.
    pub fn token_url(&self) -> Url {
        self.identity("token")
    }

    /// The tenant's device-code endpoint.
    pub fn device_code_url(&self) -> Url {
        self.identity("devicecode")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_and_endpoints() {
        let config = MicrosoftConfig::new("app")
            .with_tenant(Tenant::parse("contoso.onmicrosoft.com").unwrap())
            .with_authority_url("http://127.0.0.1:9/login")
            .unwrap();
        assert_eq!(
            config.token_url().as_str(),
            "http://127.0.0.1:9/login/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(Tenant::parse("common").unwrap(), Tenant::Common);
        assert_eq!(
            Tenant::parse("organizations").unwrap(),
            Tenant::Organizations
        );
        assert!(Tenant::parse("a/b").is_err());
        assert!(Tenant::parse("").is_err());
    }
}
