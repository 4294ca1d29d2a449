//! A reader's warnings (checksum mismatches, dirty logs, …): shared by
//! threads, each distinct message kept once, and bounded, so a badly damaged
//! volume reports the first hundred and counts the rest.

use std::sync::Mutex;

const MAX: usize = 100;

#[derive(Default)]
pub struct Warnings(Mutex<(Vec<String>, usize)>);

impl Warnings {
    pub fn add(&self, msg: String) {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if w.0.len() < MAX {
            if !w.0.contains(&msg) {
                w.0.push(msg);
            }
        } else {
            w.1 += 1;
        }
    }

    pub fn list(&self) -> Vec<String> {
        let w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = w.0.clone();
        if w.1 > 0 {
            out.push(format!("… and {} more warnings", w.1));
        }
        out
    }
}
