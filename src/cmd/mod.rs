pub mod bench;
pub mod data;
pub mod doctor;
pub mod eval;
pub mod export;
pub mod plot;
#[cfg(feature = "train")]
pub mod train;
#[cfg(feature = "train")]
pub mod launch;
pub mod zoo;

/// `0.485,0.456,0.406` -> [0.485, 0.456, 0.406]
pub fn parse_triple(s: &str) -> Result<[f32; 3], String> {
    let v: Vec<f32> = s.split(',').map(|x| x.trim().parse::<f32>()).collect::<Result<_, _>>().map_err(|e| format!("`{s}`: {e}"))?;
    v.try_into().map_err(|_| format!("`{s}`: expected three comma-separated numbers"))
}

/// `--threads N` checked against this machine: at most 4 threads a core
/// (`eval --threads 20000` once spent minutes starting threads, silently).
/// 0 means the engine's default.
pub fn check_threads(threads: usize) -> Result<(), String> {
    let cores = std::thread::available_parallelism().map(|c| c.get()).unwrap_or(1);
    match threads > 4 * cores {
        true => Err(format!("--threads {threads}: this machine has {cores} cores; use at most {} (0 for the default)", 4 * cores)),
        false => Ok(()),
    }
}
