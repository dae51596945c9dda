//! Where an account's SCIM API is served: base path templates that name
//! the account, such as `/gateway/ng/api/scim/account/{account}`.
//!
//! The host configures them (an embedder mounts SCIM under its own paths);
//! the default is the reference platform's three tenant URL forms. The first
//! template is the one accounts report as their tenant URL.

use std::fmt;

/// The placeholder a template names the account with.
pub const ACCOUNT: &str = "{account}";

/// The reference platform's forms: NextGen, FirstGen and self-managed.
pub const DEFAULT_BASE_PATHS: [&str; 3] =
    ["/gateway/ng/api/scim/account/{account}", "/gateway/api/scim/account/{account}", "/api/scim/account/{account}"];

/// Most templates one host may configure: every request tries each.
const MAX_TEMPLATES: usize = 8;

/// One template, split around its account segment.
#[derive(Clone, PartialEq, Eq)]
pub struct BasePath {
    /// Up to and including the `/` before the account.
    before: String,
    /// From the `/` after the account, or empty.
    after: String,
}

impl fmt::Debug for BasePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{ACCOUNT}{}", self.before, self.after)
    }
}

impl BasePath {
    /// Parses a template. It starts with `/`, names `{account}` once as a
    /// whole segment, and holds only unreserved characters and `/` besides:
    /// what a client sends byte for byte, with nothing to decode.
    pub fn parse(template: &str) -> Result<BasePath, String> {
        let bad = |why: &str| Err(format!("base path {template:?}: {why}"));
        let Some((before, after)) = template.split_once(ACCOUNT) else {
            return bad("it must name the account as {account}");
        };
        if after.contains(ACCOUNT) {
            return bad("{account} may appear once");
        }
        if !before.starts_with('/') || !before.ends_with('/') || !(after.is_empty() || after.starts_with('/')) {
            return bad("it must start with / and {account} must be a whole segment");
        }
        if template.ends_with('/') || template.contains("//") {
            return bad("no empty segments and no trailing /");
        }
        let literal = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if !literal(before) || !literal(after) {
            return bad("only letters, digits, -, ., _, ~ and / besides {account}");
        }
        if before.split('/').chain(after.split('/')).any(|s| s == "." || s == "..") {
            return bad("no . or .. segments");
        }
        Ok(BasePath { before: before.to_owned(), after: after.to_owned() })
    }

    /// Splits a request path (without its query) into the raw account
    /// segment, the base it matched and the resource path below it.
    fn split<'p>(&self, path: &'p str) -> Option<(&'p str, &'p str, &'p str)> {
        let rest = path.strip_prefix(&self.before)?;
        let end = rest.find('/').unwrap_or(rest.len());
        let (account, rest) = rest.split_at(end);
        let below = rest.strip_prefix(&self.after)?;
        if !(below.is_empty() || below.starts_with('/')) {
            return None;
        }
        let base = &path[..path.len() - below.len()];
        Some((account, base, below.trim_start_matches('/')))
    }

    /// The template with the account filled in.
    pub fn for_account(&self, account: &str) -> String {
        format!("{}{account}{}", self.before, self.after)
    }
}

/// The templates a host serves, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePaths(Vec<BasePath>);

impl Default for BasePaths {
    fn default() -> Self {
        BasePaths(DEFAULT_BASE_PATHS.iter().filter_map(|t| BasePath::parse(t).ok()).collect())
    }
}

/// A matched request: `account` is still percent-encoded as sent.
pub(crate) struct Matched<'p> {
    pub(crate) account: &'p str,
    /// The request path up to the resource path, e.g. `/scim/acme/v2`.
    pub(crate) base: &'p str,
    /// Below the base, e.g. `Users/123`.
    pub(crate) resource: &'p str,
}

impl BasePaths {
    /// Parses a comma-separated list of templates (the form hosts pass in
    /// `SCIMLET_BASE_PATHS`); blank means the defaults.
    pub fn parse_list(list: &str) -> Result<BasePaths, String> {
        let templates: Vec<&str> = list.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
        if templates.is_empty() {
            return Ok(BasePaths::default());
        }
        if templates.len() > MAX_TEMPLATES {
            return Err(format!("at most {MAX_TEMPLATES} base paths, not {}", templates.len()));
        }
        let parsed = templates.iter().map(|t| BasePath::parse(t)).collect::<Result<Vec<_>, _>>()?;
        // Each request is matched against the templates in order, so one that
        // shadows another is an operator's mistake worth refusing early.
        for (i, a) in parsed.iter().enumerate() {
            if parsed[..i].contains(a) {
                return Err(format!("base path {a:?} is listed twice"));
            }
        }
        Ok(BasePaths(parsed))
    }

    pub(crate) fn matching<'p>(&self, path: &'p str) -> Option<Matched<'p>> {
        self.0.iter().find_map(|b| b.split(path)).map(|(account, base, resource)| Matched { account, base, resource })
    }

    /// The tenant path of an account under the first template.
    pub fn scim_path(&self, account: &str) -> String {
        self.0.first().map(|b| b.for_account(account)).unwrap_or_default()
    }

    /// Whether any template's literal start lies under `prefix` (the admin
    /// API's), which would make the two routes ambiguous.
    pub(crate) fn overlaps(&self, prefix: &str) -> bool {
        self.0.iter().any(|b| b.before.starts_with(prefix) || prefix.starts_with(b.before.trim_end_matches('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_the_account_as_a_whole_segment() {
        for good in ["/scim/{account}", "/tenants/{account}/scim/v2", "/{account}", "/a-b/c.d_e~f/{account}/v2"] {
            assert!(BasePath::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "scim/{account}",
            "/scim/{account}/",
            "/scim/x{account}",
            "/scim/{account}x/v2",
            "/scim",
            "/{account}/{account}",
            "/scim//{account}",
            "/sc im/{account}",
            "/scim/{account}/v2?x=1",
            "/scim/%41/{account}",
            "/../{account}",
            "/scim/{account}/.",
        ] {
            assert!(BasePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_split_into_account_base_and_resource() {
        let paths = BasePaths::parse_list("/tenants/{account}/scim/v2, /scim/{account}").unwrap();
        let m = paths.matching("/tenants/acme/scim/v2/Users/42").unwrap();
        assert_eq!((m.account, m.base, m.resource), ("acme", "/tenants/acme/scim/v2", "Users/42"));
        let m = paths.matching("/tenants/acme/scim/v2").unwrap();
        assert_eq!((m.account, m.resource), ("acme", ""));
        let m = paths.matching("/scim/a%2Fb/Groups").unwrap();
        assert_eq!((m.account, m.base, m.resource), ("a%2Fb", "/scim/a%2Fb", "Groups"));
        assert!(paths.matching("/tenants/acme/scim/v2x/Users").is_none());
        assert!(paths.matching("/tenants/acme/other/Users").is_none());
        assert!(paths.matching("/api/scim/account/acme/Users").is_none());
        assert_eq!(paths.scim_path("acme"), "/tenants/acme/scim/v2");
    }

    #[test]
    fn the_default_is_the_three_tenant_url_forms() {
        assert_eq!(BasePaths::parse_list(" ").unwrap(), BasePaths::default());
        let paths = BasePaths::default();
        assert_eq!(paths.scim_path("acc1"), "/gateway/ng/api/scim/account/acc1");
        for base in ["/gateway/ng/api/scim/account/acc1", "/gateway/api/scim/account/acc1", "/api/scim/account/acc1"] {
            let path = format!("{base}/Users");
            let m = paths.matching(&path).unwrap();
            assert_eq!((m.account, m.base, m.resource), ("acc1", base, "Users"));
        }
    }

    #[test]
    fn lists_are_bounded_and_without_repeats() {
        assert!(BasePaths::parse_list("/a/{account},/a/{account}").is_err());
        let nine = (0..9).map(|i| format!("/p{i}/{{account}}")).collect::<Vec<_>>().join(",");
        assert!(BasePaths::parse_list(&nine).is_err());
        assert!(BasePaths::parse_list("/scim/{account}, nope").is_err());
    }

    #[test]
    fn a_template_under_the_admin_api_overlaps_it() {
        assert!(BasePaths::parse_list("/api/accounts/{account}").unwrap().overlaps("/api/accounts"));
        assert!(BasePaths::parse_list("/api/{account}").unwrap().overlaps("/api/accounts"));
        assert!(!BasePaths::default().overlaps("/api/accounts"));
    }
}
