//! Times an audit-shaped workload: many large needles added one at a time, with a scan between adds.
//!
//! Run with `cargo run --release -p traceless-scan --example add_scan_timing [needles] [needle_bytes]`.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use traceless_scan::scan::{NeedleId, Scanner, Subject};

fn main() {
    let mut args = std::env::args().skip(1);
    let needles: u32 = args
        .next()
        .map_or(600, |a| a.parse().expect("needle count"));
    let needle_bytes: usize = args
        .next()
        .map_or(90_000, |a| a.parse().expect("needle size in bytes"));
    let mut rng = StdRng::seed_from_u64(7);
    let hay: Vec<u8> = (0..4096).map(|i| b"log line text "[i % 14]).collect();
    let mut scanner = Scanner::new();
    let started = Instant::now();
    let mut hits = 0;
    for request in 0..needles {
        let mut blob = vec![0; needle_bytes];
        rng.fill_bytes(&mut blob);
        scanner.add_blob(
            NeedleId {
                request,
                subject: Subject::Image,
            },
            &blob,
        );
        hits += scanner.scan(&hay).len();
    }
    let adds = started.elapsed();
    let mut big = vec![0; 32 << 20];
    rng.fill_bytes(&mut big);
    let scan_started = Instant::now();
    hits += scanner.scan(&big).len();
    let scan = scan_started.elapsed();
    println!(
        "{needles} needles of {needle_bytes} bytes, add + scan each: {:.2} s; then 32 MiB random scan: {:.3} s ({:.0} MB/s); {hits} hits",
        adds.as_secs_f64(),
        scan.as_secs_f64(),
        32.0 * 1.048_576 / scan.as_secs_f64()
    );
}
