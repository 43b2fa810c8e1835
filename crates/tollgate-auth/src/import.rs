//! Importing the GitHub OAuth token LiteLLM's `github_copilot` provider saved, so a team
//! moving from LiteLLM does not have to link its account again (`tollgate auth-helper import`).
//!
//! LiteLLM keeps the token in `$GITHUB_COPILOT_TOKEN_DIR/$GITHUB_COPILOT_ACCESS_TOKEN_FILE`,
//! by default `~/.config/litellm/github_copilot/access-token`.

use std::path::{Path, PathBuf};

use tollgate_config::{EnvSource, Secret};
use tollgate_store::{CredentialRecord, SecretBox, StoreApi, StoreError};

/// LiteLLM's variable naming the token directory.
pub const TOKEN_DIR_VAR: &str = "GITHUB_COPILOT_TOKEN_DIR";
/// LiteLLM's variable naming the token file inside it.
pub const TOKEN_FILE_VAR: &str = "GITHUB_COPILOT_ACCESS_TOKEN_FILE";
/// LiteLLM's default token directory.
pub const DEFAULT_TOKEN_DIR: &str = "~/.config/litellm/github_copilot";
/// LiteLLM's default token file name.
pub const DEFAULT_TOKEN_FILE: &str = "access-token";

/// Where LiteLLM keeps its GitHub token under `env`; `None` when the path needs a home
/// directory and none is known.
pub fn litellm_token_path(env: &dyn EnvSource) -> Option<PathBuf> {
    let dir = env.var(TOKEN_DIR_VAR).unwrap_or_else(|| DEFAULT_TOKEN_DIR.to_owned());
    let file = env.var(TOKEN_FILE_VAR).unwrap_or_else(|| DEFAULT_TOKEN_FILE.to_owned());
    // As Python's os.path.join: an absolute file name stands on its own.
    Some(expand_home(dir.trim(), env)?.join(expand_home(file.trim(), env)?))
}

/// LiteLLM's saved GitHub OAuth token and where it was found, if the file exists and holds
/// one.
pub fn find_litellm_token(env: &dyn EnvSource) -> Option<(PathBuf, Secret<String>)> {
    let path = litellm_token_path(env)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.lines().map(str::trim).find(|l| !l.is_empty())?.to_owned();
            Some((path, Secret::new(token)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read LiteLLM's GitHub token");
            None
        }
    }
}

/// Stores `token` as `owner`'s GitHub Copilot account (sealed like a linked one), replacing
/// any earlier link, and audits it as a link by `actor` (`cli` for `tollgate auth-helper
/// import`). The GitHub login is not known, so the label stays empty.
pub async fn import_token(
    store: &dyn StoreApi,
    secret_box: &SecretBox,
    owner: &str,
    token: &Secret<String>,
    actor: &str,
) -> Result<CredentialRecord, StoreError> {
    if token.expose().trim().is_empty() {
        return Err(StoreError::Invalid("the GitHub token to import is empty".to_owned()));
    }
    crate::link::save(store, secret_box, owner, None, token, actor).await
}

/// `~` and `~/...` against `HOME` (or `USERPROFILE`); other paths as they are.
fn expand_home(path: &str, env: &dyn EnvSource) -> Option<PathBuf> {
    let rest = match path.strip_prefix('~') {
        None => return Some(PathBuf::from(path)),
        Some("") => "",
        Some(rest) if rest.starts_with('/') || rest.starts_with('\\') => &rest[1..],
        // `~user/...` is not expanded, as LiteLLM does not either.
        Some(_) => return Some(PathBuf::from(path)),
    };
    let home = env.var("HOME").or_else(|| env.var("USERPROFILE"))?;
    Some(Path::new(&home).join(rest))
}

#[cfg(test)]
mod tests {
    use tollgate_config::MapEnv;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> MapEnv {
        MapEnv::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn litellm_defaults_live_under_home() {
        assert_eq!(
            litellm_token_path(&env(&[("HOME", "/home/dev")])),
            Some(PathBuf::from("/home/dev/.config/litellm/github_copilot/access-token"))
        );
        assert_eq!(litellm_token_path(&env(&[])), None);
    }

    #[test]
    fn the_variables_override_dir_and_file() {
        let e = env(&[(TOKEN_DIR_VAR, "/srv/gh"), (TOKEN_FILE_VAR, "token.txt")]);
        assert_eq!(litellm_token_path(&e), Some(PathBuf::from("/srv/gh/token.txt")));
        let e = env(&[(TOKEN_DIR_VAR, "~/gh"), ("HOME", "/h")]);
        assert_eq!(litellm_token_path(&e), Some(PathBuf::from("/h/gh/access-token")));
        let e = env(&[(TOKEN_DIR_VAR, "/srv/gh"), (TOKEN_FILE_VAR, "/etc/abs")]);
        assert_eq!(litellm_token_path(&e), Some(PathBuf::from("/etc/abs")));
    }

    #[test]
    fn missing_and_empty_files_are_not_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert!(find_litellm_token(&env(&[(TOKEN_DIR_VAR, d)])).is_none());
        std::fs::write(dir.path().join("access-token"), "\n  \n").unwrap();
        assert!(find_litellm_token(&env(&[(TOKEN_DIR_VAR, d)])).is_none());
        std::fs::write(dir.path().join("access-token"), "  ghu_abc \n").unwrap();
        let (path, token) = find_litellm_token(&env(&[(TOKEN_DIR_VAR, d)])).unwrap();
        assert_eq!(path, dir.path().join("access-token"));
        assert_eq!(token.expose(), "ghu_abc");
    }
}
