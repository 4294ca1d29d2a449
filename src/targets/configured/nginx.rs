//! nginx: `access_log` / `error_log` in nginx.conf and what it `include`s.

use super::{each_config, expand_include, log_glob};
use crate::host::view::MachineView;
use crate::targets::Target;

pub fn target(view: &MachineView) -> Option<Target> {
    let mut nginx = Vec::new();
    each_config(view, "/etc/nginx/nginx.conf", |_, text| {
        let mut includes = Vec::new();
        for stmt in text.split(';') {
            let stmt = stmt.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join(" ");
            let words: Vec<&str> = stmt.split_whitespace().filter(|w| *w != "{" && *w != "}").collect();
            let words: Vec<&str> = words.into_iter().skip_while(|w| !matches!(*w, "access_log" | "error_log" | "include")).collect();
            match words.as_slice() {
                ["include", pat, ..] => includes.extend(expand_include(view, "/etc/nginx", pat)),
                ["access_log" | "error_log", path, ..] => nginx.extend(log_glob(path)),
                _ => {}
            }
        }
        includes
    });
    super::target("config:nginx", "logs where nginx's access_log/error_log put them", nginx)
}
