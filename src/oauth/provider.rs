//! What popferry knows about the two providers most users sign in with, so
//! that `provider = "microsoft"` or `"google"` plus a `client_id` is a
//! complete `oauth2` table.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Microsoft 365 and Outlook.com (the Microsoft identity platform v2).
    Microsoft,
    /// Gmail and Google Workspace.
    Google,
}

/// What a table is for: the scopes differ between reading and sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Pop3,
    Smtp,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
        }
    }

    pub fn token_url(self) -> &'static str {
        match self {
            Provider::Microsoft => "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            Provider::Google => "https://oauth2.googleapis.com/token",
        }
    }

    pub fn authorization_url(self) -> &'static str {
        match self {
            Provider::Microsoft => "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
            Provider::Google => "https://accounts.google.com/o/oauth2/v2/auth",
        }
    }

    /// Google allows no device flow for the mail scope.
    pub fn device_authorization_url(self) -> Option<&'static str> {
        match self {
            Provider::Microsoft => {
                Some("https://login.microsoftonline.com/common/oauth2/v2.0/devicecode")
            }
            Provider::Google => None,
        }
    }

    /// `offline_access` is what makes Microsoft return a refresh token;
    /// Google's one scope covers POP3, IMAP and SMTP.
    pub fn scopes(self, used_for: Use) -> Vec<String> {
        let scopes: &[&str] = match (self, used_for) {
            (Provider::Microsoft, Use::Pop3) => &[
                "https://outlook.office.com/POP.AccessAsUser.All",
                "offline_access",
            ],
            (Provider::Microsoft, Use::Smtp) => {
                &["https://outlook.office.com/SMTP.Send", "offline_access"]
            }
            (Provider::Google, _) => &["https://mail.google.com/"],
        };
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Extra parameters of the browser sign-in. Google returns a refresh
    /// token only for `access_type=offline`, and again after the first
    /// consent only with `prompt=consent`.
    pub fn authorization_params(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Provider::Microsoft => &[],
            Provider::Google => &[("access_type", "offline"), ("prompt", "consent")],
        }
    }
}
