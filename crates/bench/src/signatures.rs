//! `bench-baseline --signatures [ROUNDS]`: what one JWS signature costs on this machine, by the
//! server's own signing code (`postern_core::signing`, with OpenSSL for RS256 as in the server's
//! build), on one thread and with nothing else running.
//!
//! The harness puts these figures beside the ratio targets: a request that signs a token cannot
//! use less CPU than its signature, so a CPU budget below it cannot be met on this machine by
//! any change to the server short of signing less.

use postern_core::signing::{Algorithm, PrivateKey};
use std::time::Instant;

/// The signing input of a typical access token: base64url header and claims, about 350 bytes.
const INPUT: &[u8] = &[b'e'; 350];

/// Per algorithm, the median over `rounds` rounds of the microseconds one signature took.
pub fn measure(rounds: usize) -> Result<Vec<(Algorithm, f64)>, String> {
    let mut figures = Vec::new();
    for alg in Algorithm::ALL {
        let key = PrivateKey::generate(alg, &mut postern_core::system::os_rng()).map_err(|e| format!("{alg}: {e}"))?;
        // Enough signatures a round to last some milliseconds, whatever the algorithm.
        let per_round = if alg == Algorithm::RS256 { 100 } else { 1_000 };
        sign(&key, per_round / 10)?;
        let mut times: Vec<f64> = (0..rounds.max(1))
            .map(|_| {
                let start = Instant::now();
                sign(&key, per_round)?;
                Ok(start.elapsed().as_secs_f64() * 1e6 / per_round as f64)
            })
            .collect::<Result<_, String>>()?;
        times.sort_by(f64::total_cmp);
        figures.push((alg, times[times.len() / 2]));
    }
    Ok(figures)
}

fn sign(key: &PrivateKey, count: usize) -> Result<(), String> {
    for _ in 0..count {
        let signature = key.sign(std::hint::black_box(INPUT)).map_err(|e| e.to_string())?;
        std::hint::black_box(signature);
    }
    Ok(())
}

/// The figures as one JSON object, `{"EdDSA": 15.2, ...}`, microseconds per signature.
pub fn json(figures: &[(Algorithm, f64)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = figures
        .iter()
        .map(|(alg, us)| (alg.as_str().to_owned(), serde_json::json!((us * 10.0).round() / 10.0)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_is_measured_and_printed() {
        let figures = measure(1).unwrap();
        let printed: serde_json::Value = serde_json::from_str(&json(&figures)).unwrap();
        for alg in Algorithm::ALL {
            let us = printed[alg.as_str()].as_f64().unwrap_or_else(|| panic!("{alg} missing from {printed}"));
            assert!(us > 0.0, "{alg}: {us} µs");
        }
    }
}
