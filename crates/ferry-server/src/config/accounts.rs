//! `[[accounts]]`: the checks across accounts and against the rest of the config, on top of
//! each account's own validation in `ferry-accounts`.

use super::AccountConfig;
use super::problems::{Problems, check_unexpanded};

pub(super) fn validate_accounts(
    raw: Vec<AccountConfig>,
    has_state_dir: bool,
    p: &mut Problems,
) -> Vec<AccountConfig> {
    for (i, a) in raw.iter().enumerate() {
        let blank = |s: &Option<ferry_accounts::Secret>| {
            s.as_ref().is_none_or(ferry_accounts::Secret::is_blank)
        };
        if a.is_oauth() && blank(&a.access_token) && blank(&a.refresh_token) && !has_state_dir {
            p.push(
                format!("accounts[{i}].access_token"),
                "an OAuth account needs an access_token or a refresh_token, or gateway.oauth_state_dir holding a `ferry login`",
            );
        }
        for problem in a.validate() {
            match problem {
                ferry_accounts::AccountsError::InvalidConfig { field, problem, .. } => {
                    p.push(format!("accounts[{i}].{field}"), problem);
                }
                other => p.push(format!("accounts[{i}]"), other.to_string()),
            }
        }
        if raw[..i].iter().any(|o| o.name == a.name) {
            p.push(
                format!("accounts[{i}].name"),
                format!("duplicate account name {:?}", a.name),
            );
        }
        let secrets = [
            ("api_key", a.api_key.as_ref()),
            ("access_token", a.access_token.as_ref()),
            ("refresh_token", a.refresh_token.as_ref()),
        ];
        for (field, secret) in secrets {
            if let Some(v) = secret {
                check_unexpanded(p, &format!("accounts[{i}].{field}"), v.expose());
            }
        }
        if let Some(url) = &a.base_url {
            check_unexpanded(p, &format!("accounts[{i}].base_url"), url);
        }
    }
    raw
}
