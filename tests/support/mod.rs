//! Shared by the integration tests: the `weir` binary, and the guest
//! components, each language built from source once per test run when a
//! test first uses it.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod crash;
pub mod kafka;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The guest components, each language built from source on first use,
/// once per test run (and once across concurrent test processes, through a
/// lock file): a test builds only the languages it uses.
pub struct Guests {
    /// `guest-examples/dist`: `<language>-<name>.wasm`.
    dist: PathBuf,
    /// Where the guests build (beside the weir binary's target directory).
    target: PathBuf,
    /// What is built: languages of `guest-examples/build.sh`, and `test`
    /// (`tests/guests/*`).
    built: Mutex<BTreeSet<&'static str>>,
}

/// Every language of the examples.
pub const LANGUAGES: [&str; 5] = ["rust", "python", "js", "c", "go"];

impl Guests {
    /// An example component, e.g. `example("rust", "words")`, built.
    pub fn example(&self, language: &str, name: &str) -> PathBuf {
        self.build(language);
        self.dist.join(format!("{language}-{name}.wasm"))
    }

    /// A test-only component, e.g. `test_guest("misbehave")`, built.
    pub fn test_guest(&self, name: &str) -> PathBuf {
        self.build("test");
        self.target
            .join("wasm32-wasip2/guest")
            .join(format!("{}.wasm", name.replace('-', "_")))
    }

    /// Builds the examples of every language.
    pub fn all(&self) -> &Self {
        for language in LANGUAGES {
            self.build(language);
        }
        self
    }

    /// Builds the languages whose components `pipeline` (a pipeline file's
    /// text) names under `dist/`.
    pub fn for_pipeline(&self, pipeline: &str) -> &Self {
        for language in LANGUAGES {
            if pipeline.contains(&format!("dist/{language}-")) {
                self.build(language);
            }
        }
        self
    }

    /// [`Guests::for_pipeline`] of the pipeline file at `path`.
    pub fn for_pipeline_file(&self, path: &Path) -> &Self {
        self.for_pipeline(&std::fs::read_to_string(path).expect("read the pipeline file"))
    }

    fn build(&self, what: &str) {
        let mut built = self.built.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(what) = LANGUAGES.into_iter().chain(["test"]).find(|l| *l == what) else {
            panic!("no guests of language {what:?} (languages: {LANGUAGES:?})");
        };
        if built.contains(what) {
            return;
        }
        let lock = File::create(self.target.join(format!(".build-{what}.lock"))).expect("create the build lock");
        lock.lock().expect("lock the guest build");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_weir"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        if what == "test" {
            run(Command::new(&cargo)
                .current_dir(repo())
                .args(["build", "--quiet", "--target", "wasm32-wasip2", "--profile", "guest"])
                .args([
                    "-p",
                    "misbehave",
                    "-p",
                    "wrong-types",
                    "-p",
                    "typed-uppercase",
                    "-p",
                    "count-text",
                    "-p",
                    "map-uppercase",
                ])
                .env("CARGO_TARGET_DIR", &self.target)
                // The same code generation as the examples (guest-examples/build.sh).
                .env("CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS", "-C target-feature=+simd128"));
        } else {
            run(Command::new("bash")
                .arg(repo().join("guest-examples/build.sh"))
                .arg(what)
                .env("WEIR", &bin)
                .env("CARGO", &cargo)
                .env("CARGO_TARGET_DIR", &self.target));
        }
        built.insert(what);
    }
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_owned()
}

/// A file in `guest-examples/testdata`.
pub fn testdata(name: &str) -> PathBuf {
    repo().join("guest-examples/testdata").join(name)
}

/// The `weir` binary under test.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_LOG", "error");
    cmd
}

/// The guest components; each language builds when a test first asks for
/// one of its components. Guests build in their own target directory so
/// that cargo's lock on the outer build is never waited on.
pub fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_weir"));
        let target = bin
            .parent()
            .and_then(Path::parent)
            .expect("the weir binary lives in target/<profile>/")
            .join("guests");
        std::fs::create_dir_all(&target).expect("create the guest target dir");
        Guests {
            dist: repo().join("guest-examples/dist"),
            target,
            built: Mutex::default(),
        }
    })
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What one `weir` run printed.
pub struct Run {
    /// Exit success.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Output lines parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// `(line, code)` of every typed failure reported on stderr.
    pub fn failures(&self) -> Vec<(usize, String)> {
        self.stderr
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("line ")?;
                let (n, rest) = rest.split_once(": failure ")?;
                let code = rest.split(':').next()?;
                Some((n.parse().ok()?, code.to_owned()))
            })
            .collect()
    }

    /// Lines of stderr that start with `line N:`.
    pub fn problem_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("line ")).collect()
    }
}

/// Runs `weir` with arguments.
pub fn run_weir<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = weir().args(args).output().expect("run weir");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `weir test MODULE --input FILE` with extra arguments.
pub fn weir_test(module: &Path, input: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "test".as_ref(),
        module.as_os_str(),
        "--input".as_ref(),
        input.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    run_weir(args)
}

/// The events of a JSON-lines test input, parsed as `weir test` parses them.
pub fn read_events(path: &Path) -> Vec<weir::event::Event> {
    std::fs::read_to_string(path)
        .expect("read test input")
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| weir::jsonl::parse_event(l, i + 1).expect("test input is valid"))
        .collect()
}

/// One long-running test at a time: on two cores they would measure each other.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Example pipeline `name`'s text before `[kafka]`, with `app` as its
/// application id, module paths (and `group-by`s) pointing at the built components, and each
/// quoted topic name `"from"` of `names` replaced by `"to"`.
pub fn example_body(name: &str, app: &str, names: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(repo().join("guest-examples/pipelines").join(name)).expect("example pipeline");
    guests().for_pipeline(&text);
    let body = text.split("\n[kafka]").next().expect("a body");
    let mut body: String = body
        .lines()
        .map(|l| {
            if l.starts_with("application-id") {
                format!("application-id = \"{app}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    // Modules, key modules and group-bys.
    body = body.replace(
        "= \"../dist/",
        &format!("= \"{}/", repo().join("guest-examples/dist").display()),
    );
    for (from, to) in names {
        body = body.replace(&format!("\"{from}\""), &format!("\"{to}\""));
    }
    body
}
