//! The guest SDKs' own unit tests, run natively in their languages so that
//! `cargo test` covers every SDK: Python (unittest), JavaScript (node --test),
//! C (the header compiled for the host, with sanitizers where available) and
//! Go (go test, then probes of stock Go's behaviour in the sandbox, built for
//! wasip1 and run by this build's `weir test`).

mod support;

use std::process::Command;

use support::repo;

fn run(cmd: &mut Command) {
    let out = cmd
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_sdk_unit_tests() {
    run(Command::new("python3").args([
        "-m",
        "unittest",
        "discover",
        "-s",
        "sdk/python/tests",
        "-t",
        "sdk/python",
    ]));
}

#[test]
fn javascript_sdk_unit_tests() {
    run(Command::new("node").args(["--test", "sdk/js/"]));
}

#[test]
fn c_sdk_unit_tests() {
    run(Command::new("bash").arg("sdk/c/test.sh"));
}

#[test]
fn go_sdk_unit_tests() {
    run(Command::new("bash")
        .arg("sdk/go/test.sh")
        .env("WEIR", env!("CARGO_BIN_EXE_weir")));
}
