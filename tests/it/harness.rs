//! A small fluent harness for running the real `pxebuild` binary.
//!
//! ```ignore
//! Test::new().example_site().args(["check"]).run().success().stdout_contains("ok:");
//! ```
//!
//! Every `Test` owns a fresh temporary directory, which is the child's working
//! directory, so the default `--site site.toml` and `--out dist` land inside it.
//! An `Output` keeps the directory alive, so files can be checked after a run,
//! and `Test::run` borrows, so one `Test` can run several commands in turn.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use tempfile::TempDir;

/// The repository root (where the example site.toml and tests/fixtures live).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> String {
    let path = repo_root().join("tests/fixtures").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub struct Test {
    dir: Rc<TempDir>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        let dir = tempfile::Builder::new()
            .prefix("pxebuild-it-")
            .tempdir()
            .expect("creating a temporary directory");
        Test {
            dir: Rc::new(dir),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The temporary directory (the child's working directory).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `site.toml` with `text`.
    pub fn site(self, text: &str) -> Test {
        self.file("site.toml", text)
    }

    /// Writes the repository's example `site.toml`.
    pub fn example_site(self) -> Test {
        let text =
            std::fs::read_to_string(repo_root().join("site.toml")).expect("reading site.toml");
        self.site(&text)
    }

    /// Writes `site.toml` from `tests/fixtures/sites/<name>`.
    pub fn site_fixture(self, name: &str) -> Test {
        self.site(&fixture(&format!("sites/{name}")))
    }

    /// Replaces the first `from` in the site.toml written so far with `to`
    /// (panics when `from` is absent, so a stale edit cannot pass silently).
    pub fn edit_site(self, from: &str, to: &str) -> Test {
        let path = self.path().join("site.toml");
        let text = std::fs::read_to_string(&path).expect("edit_site needs a site.toml first");
        assert!(text.contains(from), "site.toml has no {from:?}");
        self.site(&text.replacen(from, to, 1))
    }

    /// Writes a file (creating parent directories) relative to the temp dir.
    pub fn file(self, rel: &str, contents: &str) -> Test {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("creating fixture directory");
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self
    }

    /// Appends arguments for the next run.
    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs the binary with the arguments given so far.
    pub fn run(&self) -> Output {
        self.run_with(self.args.clone())
    }

    /// Runs the binary with `args` instead of the builder's arguments.
    pub fn run_with<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .args(&args)
            .current_dir(self.path())
            // Keep the child's cache inside the temp dir, never the user's.
            .env("PXEBUILD_CACHE", self.path().join(".cache"))
            .env_remove("PXEBUILD_MIRROR")
            .env_remove("PXEBUILD_SIGNING_KEY")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running pxebuild");
        Output {
            args,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
            dir: Rc::clone(&self.dir),
        }
    }

    /// Every file under the temp dir with its bytes, for "nothing changed" checks.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        snapshot(self.path())
    }
}

/// Every file and directory under `root`, relative, with file contents
/// (directories map to an empty vector).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("listing directory") {
            let path = entry.expect("reading directory entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("path under root")
                .to_path_buf();
            if path.is_dir() {
                stack.push(path);
                out.insert(rel, Vec::new());
            } else {
                out.insert(rel, std::fs::read(&path).expect("reading file"));
            }
        }
    }
    out
}

/// What one run printed and how it ended.
pub struct Output {
    pub args: Vec<OsString>,
    pub stdout: String,
    pub stderr: String,
    /// None when killed by a signal.
    pub code: Option<i32>,
    dir: Rc<TempDir>,
}

impl Output {
    /// The run's working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn context(&self) -> String {
        format!(
            "pxebuild {:?}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    pub fn code(&self, want: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(want),
            "unexpected exit code\n{}",
            self.context()
        );
        self
    }

    pub fn success(&self) -> &Output {
        self.code(0)
    }

    pub fn stdout_is(&self, want: &str) -> &Output {
        assert_eq!(self.stdout, want, "stdout differs\n{}", self.context());
        self
    }

    pub fn stderr_is(&self, want: &str) -> &Output {
        assert_eq!(self.stderr, want, "stderr differs\n{}", self.context());
        self
    }

    pub fn stdout_contains(&self, want: &str) -> &Output {
        assert!(
            self.stdout.contains(want),
            "stdout lacks {want:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_contains(&self, want: &str) -> &Output {
        assert!(
            self.stderr.contains(want),
            "stderr lacks {want:?}\n{}",
            self.context()
        );
        self
    }

    pub fn stderr_lacks(&self, unwanted: &str) -> &Output {
        assert!(
            !self.stderr.contains(unwanted),
            "stderr has {unwanted:?}\n{}",
            self.context()
        );
        self
    }

    /// Asserts a file exists under the working directory and returns its text.
    pub fn read(&self, rel: &str) -> String {
        let path = self.path().join(rel);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}\n{}", path.display(), self.context()))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }
}
