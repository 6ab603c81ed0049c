pub mod bench;
pub mod data;
#[cfg(feature = "train")]
pub mod train;
