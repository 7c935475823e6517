//! Where an account's messages go: `deliver_to`, and for a domain mailbox
//! `recipients_from` with `local_domains`.
//!
//! The two multidrop keys only make sense together, and `deliver_to`
//! stays required beside them: it receives every message whose header
//! names no local recipient, so a multidrop account never has a message
//! with nowhere to go.

use std::ops::Range;

use toml::Spanned;

use super::raw::RawAccount;
use super::validate::Scope;
use super::{ConfigError, Multidrop, RecipientHeader};

impl Scope<'_> {
    /// `recipients_from` and `local_domains`, checked as a pair.
    pub(super) fn multidrop(&self, raw: &RawAccount) -> Result<Option<Multidrop>, ConfigError> {
        let (header, domains) = match (&raw.recipients_from, &raw.local_domains) {
            (None, None) => return Ok(None),
            (Some(header), Some(domains)) => (header, domains),
            (Some(header), None) => {
                let problem = "needs local_domains, the domains whose addresses popferry may \
                               deliver to (for example local_domains = [\"example.org\"])"
                    .to_owned();
                return Err(self.error(header.span(), "recipients_from", problem));
            }
            (None, Some(domains)) => {
                let problem = format!(
                    "has no effect without recipients_from: set recipients_from to the header \
                     that names each message's recipients ({})",
                    header_names()
                );
                return Err(self.error(domains.span(), "local_domains", problem));
            }
        };
        let Some(header) = RecipientHeader::from_name(header.get_ref()) else {
            let problem = format!(
                "{:?} is not a header popferry reads recipients from: use {}",
                header.get_ref(),
                header_names()
            );
            return Err(self.error(header.span(), "recipients_from", problem));
        };
        if domains.get_ref().is_empty() {
            let problem = "list at least one domain (for example [\"example.org\"])".to_owned();
            return Err(self.error(domains.span(), "local_domains", problem));
        }
        let local_domains = (domains.get_ref().iter())
            .map(|domain| self.local_domain(domain))
            .collect::<Result<_, _>>()?;
        Ok(Some(Multidrop {
            header,
            local_domains,
        }))
    }

    /// One of `local_domains`, lowercased so that comparing it with an
    /// address's domain needs no further care.
    fn local_domain(&self, raw: &Spanned<String>) -> Result<String, ConfigError> {
        const KEY: &str = "local_domains";
        let domain = raw.get_ref();
        let refused = |why: &str| {
            let problem = format!("{domain:?} is not a domain: {why}");
            self.error(raw.span(), KEY, problem)
        };
        if domain.trim().is_empty() {
            return Err(refused("it is empty"));
        }
        if domain.contains('@') {
            return Err(refused(
                "write only the part after the @ (for example \"example.org\")",
            ));
        }
        if domain.contains('*') {
            return Err(refused(
                "wildcards are not supported: list each domain, subdomains included",
            ));
        }
        let stray = |c: char| c.is_whitespace() || c.is_control() || "<>,;".contains(c);
        if domain.chars().any(stray) {
            return Err(refused(
                "it contains a space or one of < > , ; which no domain has",
            ));
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(refused(
                "remove the leading or trailing dot (for example \"example.org\")",
            ));
        }
        Ok(domain.to_lowercase())
    }

    /// `deliver_to`: required of every account, and said to be the fallback
    /// when a multidrop account lacks it.
    pub(super) fn deliver_to(
        &self,
        raw: &RawAccount,
        table: Range<usize>,
        multidrop: Option<&Multidrop>,
    ) -> Result<Vec<String>, ConfigError> {
        const KEY: &str = "deliver_to";
        let Some(list) = &raw.deliver_to else {
            let problem = match multidrop {
                Some(multidrop) => format!(
                    "missing key `deliver_to`: a multidrop account still needs it, for the \
                     messages whose {} names no address in local_domains \
                     (for example deliver_to = [\"postmaster@example.org\"])",
                    multidrop.header
                ),
                None => "missing key `deliver_to`: list where the messages go \
                         (for example deliver_to = [\"alice@example.org\"])"
                    .to_owned(),
            };
            return Err(self.table_error(table, &problem));
        };
        if list.get_ref().is_empty() {
            let problem = "list at least one address".to_owned();
            return Err(self.error(list.span(), KEY, problem));
        }
        let mut addresses: Vec<String> = Vec::with_capacity(list.get_ref().len());
        for raw in list.get_ref() {
            let address = self.address(KEY, raw)?;
            // One recipient twice would be one mailbox with two outcomes.
            if let Some(earlier) = addresses.iter().find(|a| a.eq_ignore_ascii_case(&address)) {
                let problem = if *earlier == address {
                    format!("{address} is listed twice")
                } else {
                    format!("{address} is listed twice (also as {earlier}); list it once")
                };
                return Err(self.error(raw.span(), KEY, problem));
            }
            addresses.push(address);
        }
        Ok(addresses)
    }
}

/// The accepted `recipients_from` values, quoted as they are written.
fn header_names() -> String {
    let names: Vec<String> = RecipientHeader::ALL
        .iter()
        .map(|header| format!("\"{header}\""))
        .collect();
    match names.split_last() {
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}
