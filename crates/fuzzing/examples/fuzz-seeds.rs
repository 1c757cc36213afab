//! Writes every target's seeds into `<dir>/<target>/` for cargo-fuzz:
//! `cargo run -p mamori-fuzzing --example fuzz-seeds -- fuzz/corpus` (an example, not a binary:
//! `cargo run -- demo` at the top must find only `mamori`).

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or("fuzz/corpus".into()));
    for t in mamori_fuzzing::TARGETS {
        let d = dir.join(t.name);
        std::fs::create_dir_all(&d).expect("a corpus directory");
        for (i, s) in (t.seeds)().iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:03}")), s).expect("a seed");
        }
        println!("{}: {} seeds", t.name, (t.seeds)().len());
    }
}
