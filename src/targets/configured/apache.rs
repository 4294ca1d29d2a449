//! Apache: `CustomLog` / `ErrorLog` / `TransferLog`, relative to
//! `ServerRoot`, with `${APACHE_LOG_DIR}` from Debian's envvars, in the main
//! config and its `Include`/`IncludeOptional` files.

use super::{each_config, expand_include, log_glob};
use crate::host::view::MachineView;
use crate::targets::Target;

pub fn target(view: &MachineView) -> Option<Target> {
    let mut apache = Vec::new();
    for (main, default_root) in [("/etc/apache2/apache2.conf", "/etc/apache2"), ("/etc/httpd/conf/httpd.conf", "/etc/httpd")] {
        let envvars = view.read("/etc/apache2/envvars").unwrap_or_default();
        let log_dir = envvars
            .lines()
            .find_map(|l| l.trim().strip_prefix("export APACHE_LOG_DIR="))
            .map(|v| v.split('$').next().unwrap_or("").trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/var/log/apache2".into());
        let mut root = default_root.to_string();
        each_config(view, main, |_, text| {
            let mut includes = Vec::new();
            for line in text.lines() {
                let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
                let arg = |i: usize| words.get(i).map(|w| w.trim_matches('"').replace("${APACHE_LOG_DIR}", &log_dir));
                match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
                    Some("serverroot") => root = arg(1).unwrap_or(root.clone()),
                    Some("include") | Some("includeoptional") => {
                        if let Some(p) = arg(1) {
                            includes.extend(expand_include(view, &root, &p));
                        }
                    }
                    Some("customlog") | Some("errorlog") | Some("transferlog") => {
                        if let Some(p) = arg(1).filter(|p| !p.starts_with('|') && !p.starts_with("syslog")) {
                            let abs = if p.starts_with('/') { p } else { format!("{root}/{p}") };
                            apache.extend(log_glob(&abs));
                        }
                    }
                    _ => {}
                }
            }
            includes
        });
    }
    super::target("config:apache", "logs where Apache's CustomLog/ErrorLog put them", apache)
}
