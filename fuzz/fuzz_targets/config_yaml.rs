//! Fuzzes the configuration loaders (prometheus.yml and the web configuration file): any input
//! gives a configuration or an error naming a position, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::Config::from_str(text, "fuzz.yml");
    let _ = config::WebConfig::from_str(text, "web.yml");
    let _ = config::redacted_yaml(text);
});
