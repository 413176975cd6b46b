//! Stamps the git revision of the sources this crate is built from into `STRATA_GIT_REVISION`,
//! so a result names the code that produced it rather than whatever is checked out when the
//! run ends. `-dirty` when tracked files differ from HEAD; `unknown` outside a repository.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").current_dir(dir).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.join("../..");
    // Re-run when any source of the workspace changes (the dirty flag) or when HEAD moves.
    println!("cargo:rerun-if-changed={}", workspace.join("crates").display());
    let revision = match git(&workspace, &["rev-parse", "HEAD"]) {
        Some(rev) => {
            if let Some(dir) = git(&workspace, &["rev-parse", "--git-dir"]) {
                let dir = workspace.join(dir);
                let branch = git(&workspace, &["symbolic-ref", "-q", "HEAD"]);
                // Only paths that exist: Cargo treats a missing one as changed on every build
                // (a fresh clone has packed-refs and no loose branch ref; a working repo often the reverse).
                for f in ["HEAD", "index", "packed-refs"].into_iter().chain(branch.as_deref()) {
                    if dir.join(f).exists() {
                        println!("cargo:rerun-if-changed={}", dir.join(f).display());
                    }
                }
            }
            let dirty = git(&workspace, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            if dirty { format!("{rev}-dirty") } else { rev }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=STRATA_GIT_REVISION={revision}");
}
