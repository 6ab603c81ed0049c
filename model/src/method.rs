//! The training methods, named as in flags, checkpoints and zoo manifests.

crate::names::named_enum! {
    pub enum Method ("moco-v2 or simclr") {
        MocoV2 = "moco-v2" | "mocov2" | "moco",
        Simclr = "simclr",
    }
}
