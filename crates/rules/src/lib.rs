//! Prometheus' recording and alerting rules: rule files ([`file`]), alert templates
//! ([`template`]), rules and their evaluation ([`rule`], [`group`]), the [`RuleManager`]
//! (start, reload, stop, state for the HTTP API, [`api`] JSON) and the Alertmanager client
//! ([`notifier`]). [`check_files`] is `meridian check rules`.

pub mod api;
pub mod check;
pub mod file;
pub mod group;
pub mod manager;
pub mod notifier;
pub mod rule;
pub mod template;

pub use check::{CheckReport, check_files};
pub use file::{RuleFile, RuleFileError, load_file, parse_rule_file};
pub use manager::{AlertStatus, GroupStatus, RuleManager, RuleManagerOptions, RuleStatus};
pub use notifier::Notifier;
pub use rule::{AlertState, Health, RuleKindView};
