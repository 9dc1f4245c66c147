//! Shared checks of the exposition fuzz targets.

use model::exposition::{Entry, Format, Parser, TextEncoder};

type Flat = (String, Vec<(String, String)>, u64, Option<i64>);

fn flatten(data: &[u8], format: Format, strict: bool) -> Result<Vec<Flat>, String> {
    let mut p = Parser::new(data, format).map_err(|e| e.to_string())?;
    if strict {
        p = p.strict();
    }
    let mut out = Vec::new();
    while let Some(e) = p.next_entry() {
        if let Entry::Sample(s) = e.map_err(|e| e.to_string())? {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .filter(|l| !l.value.is_empty())
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            labels.sort();
            let bits = if s.value.is_nan() { f64::NAN.to_bits() } else { s.value.to_bits() };
            out.push((s.name.to_string(), labels, bits, s.timestamp));
        }
    }
    Ok(out)
}

pub fn check(data: &[u8], format: Format) {
    let lenient = flatten(data, format, false);
    let strict = flatten(data, format, true);
    // Strict mode only adds rules: whatever it accepts, lenient mode accepts identically.
    if let Ok(s) = &strict {
        assert_eq!(Ok(s), lenient.as_ref(), "strict accepted what lenient did not");
    }
    let Ok(samples) = lenient else { return };
    let mut buf = Vec::new();
    let mut enc = TextEncoder::new(&mut buf);
    for (name, labels, bits, ts) in &samples {
        // An empty name cannot be written; the parser never yields one.
        assert!(!name.is_empty());
        enc.sample_parts(name, labels.iter().map(|(n, v)| (n.as_str(), v.as_str())), f64::from_bits(*bits), *ts);
    }
    let back = flatten(&buf, Format::Text, false)
        .unwrap_or_else(|e| panic!("encoder output does not parse: {e}\n{}", String::from_utf8_lossy(&buf)));
    assert_eq!(back, samples, "round trip changed samples");
}
