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
