//! A map that misbehaves on command, to test the sandbox: the value says what
//! to do. Anything else is echoed.

use weir_sdk::{Event, Failure, Output};

/// Obeys the event's value.
#[weir_sdk::map]
pub fn misbehave<'a>(event: &Event<'a>) -> Result<Output<'a>, Failure> {
    match event.value_str().unwrap_or_default() {
        "panic" => panic!("asked to panic at offset {}", event.offset()),
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "oom" => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hog);
            }
        }
        // What the sandbox grants: a frozen wall clock, fixed-seed randomness, no files,
        // no environment.
        "clock" => {
            let since_epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(Output::forward(event).text(since_epoch.as_millis().to_string()))
        }
        "file" => Ok(Output::forward(event).text(match std::fs::read("/etc/hostname") {
            Ok(_) => "read a host file".to_owned(),
            Err(e) => format!("denied: {e}"),
        })),
        "random" => {
            // RandomState seeds from WASI randomness: fixed-seed in Weir.
            use std::hash::BuildHasher;
            let hash = std::collections::hash_map::RandomState::new().hash_one("weir");
            Ok(Output::forward(event).text(hash.to_string()))
        }
        // The monotonic clock moves by exactly what the guest slept.
        "monotonic" => {
            let before = std::time::Instant::now();
            std::thread::sleep(std::time::Duration::from_secs(600));
            Ok(Output::forward(event).text(before.elapsed().as_millis().to_string()))
        }
        "sleep" => {
            std::thread::sleep(std::time::Duration::from_secs(600));
            Ok(Output::forward(event).text("slept"))
        }
        "env" => Ok(Output::forward(event).text(std::env::vars().count().to_string())),
        "fail" => Err(Failure::new("asked-to-fail", "the value said fail")),
        "config" => {
            weir_sdk::metrics::counter_add("config-reads", 1);
            weir_sdk::log::info("reading greeting");
            Ok(Output::forward(event).text(weir_sdk::config::get("greeting").unwrap_or_else(|| "unset".into())))
        }
        _ => Ok(Output::forward(event)),
    }
}
