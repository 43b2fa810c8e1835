//! `tollgate claude-code`: the environment that points Claude Code at this gateway, printed
//! for a shell or merged into Claude Code's `settings.json`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value};
use tollgate_config::Config;

use crate::cli::{ClaudeCodeArgs, ShellKind};

/// The variables, in the order they are printed.
pub fn variables(
    config: &Config,
    a: &ClaudeCodeArgs,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let key = client_key(config, a.key.as_deref())?;
    let base = gateway_url(config, a.base_url.as_deref());
    let pick = |m: &Option<String>| m.clone().unwrap_or_else(|| a.model.clone());
    Ok(vec![
        ("ANTHROPIC_BASE_URL", base),
        ("ANTHROPIC_AUTH_TOKEN", key),
        ("ANTHROPIC_MODEL", a.model.clone()),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", pick(&a.opus_model)),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", pick(&a.sonnet_model)),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", pick(&a.haiku_model)),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
    ])
}

/// The key a client is set up with: `key`, else the gateway's master key.
pub(super) fn client_key(config: &Config, key: Option<&str>) -> anyhow::Result<String> {
    match (key, &config.settings.master_key) {
        (Some(k), _) => Ok(k.to_owned()),
        (None, Some(m)) => Ok(m.expose().clone()),
        (None, None) => bail!("pass --key: this gateway has no master key to default to"),
    }
}

/// The gateway's URL as a client reaches it, without a trailing `/`: `base`, else
/// `http://localhost:<port>`.
pub(super) fn gateway_url(config: &Config, base: Option<&str>) -> String {
    let base =
        base.map_or_else(|| format!("http://localhost:{}", config.settings.port), str::to_owned);
    base.trim_end_matches('/').to_owned()
}

pub fn run(config: &Config, a: &ClaudeCodeArgs) -> anyhow::Result<ExitCode> {
    let vars = variables(config, a)?;
    let mut out = String::new();
    match &a.write {
        Some(path) => {
            let path = match path {
                Some(p) => p.clone(),
                None => default_settings_path()?,
            };
            merge_into(&path, &vars)?;
            out.push_str(&format!("wrote {} variables to {}\n", vars.len(), path.display()));
        }
        None => {
            for (name, value) in &vars {
                let line = match a.shell {
                    ShellKind::Bash | ShellKind::Zsh => {
                        format!("export {name}={}\n", sh_quote(value))
                    }
                    ShellKind::Powershell => format!("$env:{name} = {}\n", ps_quote(value)),
                };
                out.push_str(&line);
            }
        }
    }
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn default_settings_path() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .context("cannot find the home directory; pass a path to --write")?;
    Ok(PathBuf::from(home).join(".claude").join("settings.json"))
}

/// Merges `vars` into the `env` object of the JSON file at `path`, creating it if missing
/// and keeping every other key. A file that is not a JSON object is left untouched.
pub fn merge_into(path: &Path, vars: &[(&'static str, String)]) -> anyhow::Result<()> {
    let mut root: Map<String, Value> = match std::fs::read_to_string(path) {
        Ok(text) if text.trim().is_empty() => Map::new(),
        Ok(text) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => bail!("{} is not a JSON object; left unchanged", path.display()),
            Err(e) => bail!(
                "{} is not valid JSON (line {}, column {}: {e}); left unchanged",
                path.display(),
                e.line(),
                e.column()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let env = root.entry("env").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(env) = env else {
        bail!("{}: `env` is not an object; left unchanged", path.display());
    };
    for (name, value) in vars {
        env.insert((*name).to_owned(), Value::String(value.clone()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&Value::Object(root))? + "\n";
    // Written beside the target and renamed over it, so a crash never leaves half a file.
    let tmp = path.with_extension("json.tollgate-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

pub(super) fn sh_quote(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:@".contains(&b)) {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

pub(super) fn ps_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}
