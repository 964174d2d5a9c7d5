//! The stack-action words a BitOps-format plugin uses for `plan --run` and `destroy`.
//!
//! Official plugins read their action from the `export_env` of their `stack-action` property
//! (`$BITOPS_TERRAFORM_COMMAND`, `$CFN_STACK_ACTION`), not from the deploy script's argument, so
//! bitops chooses an action by resolving the property as if its override
//! `BITOPS_<ROOT>_STACK_ACTION=<word>` were set: every export, `BITOPS_<ROOT>_CLI` and argv[1]
//! then agree. The word is the plugin's own: `plan_action` / `destroy_action` in
//! `bitops.plugins.<name>`, else the official plugin's real one (by schema root key).

use crate::model::PluginRef;

/// The words as written in `bitops.plugins.<name>` (`Some("")`: explicitly none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Configured {
    pub plan: Option<String>,
    pub destroy: Option<String>,
}

impl Configured {
    pub fn of(p: &PluginRef) -> Self {
        Configured {
            plan: p.plan_action.clone(),
            destroy: p.destroy_action.clone(),
        }
    }
}

/// The official plugins' words, by the root key of their schema: terraform plans with `plan`
/// and destroys with `destroy`; cloudformation has no dry-run action and deletes with `delete`.
pub fn official(root_key: &str) -> (Option<&'static str>, Option<&'static str>) {
    match root_key {
        "terraform" => (Some("plan"), Some("destroy")),
        "cloudformation" => (None, Some("delete")),
        _ => (None, None),
    }
}

/// The word for a dry run, if the plugin has one.
pub fn plan_word(c: &Configured, root_key: &str) -> Option<String> {
    pick(c.plan.as_deref(), official(root_key).0)
}

/// The word for a destroy, if the plugin has one.
pub fn destroy_word(c: &Configured, root_key: &str) -> Option<String> {
    pick(c.destroy.as_deref(), official(root_key).1)
}

fn pick(written: Option<&str>, official: Option<&str>) -> Option<String> {
    match written {
        Some("") => None,
        Some(w) => Some(w.to_string()),
        None => official.map(str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_words_win_and_empty_means_none() {
        let none = Configured::default();
        assert_eq!(plan_word(&none, "terraform").as_deref(), Some("plan"));
        assert_eq!(destroy_word(&none, "terraform").as_deref(), Some("destroy"));
        assert_eq!(plan_word(&none, "cloudformation"), None);
        assert_eq!(
            destroy_word(&none, "cloudformation").as_deref(),
            Some("delete")
        );
        assert_eq!(plan_word(&none, "my-tool"), None);
        let c = Configured {
            plan: Some("preview".into()),
            destroy: Some(String::new()),
        };
        assert_eq!(plan_word(&c, "my-tool").as_deref(), Some("preview"));
        assert_eq!(destroy_word(&c, "terraform"), None);
    }
}
